"""Request smuggling corpus and fuzz against a real ``pyresgate`` process, on both HTTP paths.

The cases follow the classes of llhttp's own request tests (``test/request/*.md`` in nodejs/llhttp:
content-length, transfer-encoding, invalid, sample, connection, uri, pipelining), written anew
for this gateway: each case hides a complete GET of a resource of its own (``test.smuggled.cNNN``)
where a correct reading makes it a body, or puts it behind a request that must be refused or that
ends the connection. Every case runs twice on fresh raw sockets on 127.0.0.1:

- ``fast``: the bytes as they are, so the fast path (``gateway.web.fasthttp``, llhttp through
  httptools) reads the first head: it serves it, refuses it, or hands the connection to aiohttp;
- ``aiohttp``: behind a valid request that the fast path hands over (a GET with
  ``Content-Length: 0``), so aiohttp's own parser reads the case.

Invariants: a hidden request is never served (no NATS request for its resource); a case expected
to be refused gets a 4xx and the connection closed; a case expected to be served gets exactly its
own responses; every answer is framed HTTP; the process stays up, without a traceback, its NATS
connection the same, and a bystander is served. The hypothesis fuzz then sends mutated smuggling
heads and checks the gateway against an oracle reading of the same bytes by aiohttp's llhttp: the
hidden request may be served only where the oracle reads it as a request of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.reliability import llhttp
from tests.reliability.test_hostile_input import RecordingService, _bystander_served, _gateway_nats_cid
from tests.runtime.conftest import GatewayStarter
from tests.support.cluster import NatsNode

#: The request that puts a connection on aiohttp's path (the fast path takes no request with a
#: Content-Length): answered 200 before the case is read.
HAND_OVER = b"GET /api/test/model HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
#: How long a connection may stay quiet before its answers are taken as complete.
QUIET = 0.5
#: Go's answer to an HTTP/1.1 request without Host (resgate), which the fast path sends too.
GO_MISSING_HOST = (
    b"HTTP/1.1 400 Bad Request: missing required Host header\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Connection: close\r\n\r\n400 Bad Request: missing required Host header"
)


def hidden(i: int) -> bytes:
    return b"GET /api/test/smuggled/c%03d HTTP/1.1\r\nHost: x\r\n\r\n" % i


@dataclass(frozen=True)
class Case:
    """``build(h)`` makes the bytes around the hidden request ``h``; ``serves``: how many responses
    the case gets when it is not refused (None: it must be refused with a 4xx and a close);
    ``closes``: the connection must be closed after those responses."""

    name: str
    build: Callable[[bytes], bytes]
    serves: int | None = None
    closes: bool = False


POST = b"POST /api/test/model/method HTTP/1.1\r\nHost: x\r\n"
GET = b"GET /api/test/model HTTP/1.1\r\nHost: x\r\n"


def _chunk(h: bytes) -> bytes:
    return b"%x\r\n%s\r\n0\r\n\r\n" % (len(h), h)


CASES = [
    # content-length.md
    Case("CL duplicate, different", lambda h: POST + b"Content-Length: 0\r\nContent-Length: %d\r\n\r\n%s" % (len(h), h)),
    Case("CL duplicate, same", lambda h: POST + b"Content-Length: %d\r\nContent-Length: %d\r\n\r\n%s" % (len(h), len(h), h)),
    Case("CL list", lambda h: POST + b"Content-Length: %d, %d\r\n\r\n%s" % (len(h), len(h), h)),
    Case("CL overflow", lambda h: POST + b"Content-Length: 1844674407370955161600\r\n\r\n" + h),
    Case("CL space inside", lambda h: POST + b"Content-Length: 1 %d\r\n\r\n%s" % (len(h), h)),
    Case("CL empty", lambda h: POST + b"Content-Length:\r\n\r\n" + h),
    Case("CL plus sign", lambda h: POST + b"Content-Length: +%d\r\n\r\n%s" % (len(h), h)),
    Case("CL negative", lambda h: POST + b"Content-Length: -%d\r\n\r\n%s" % (len(h), h)),
    Case("CL hex", lambda h: POST + b"Content-Length: 0x%x\r\n\r\n%s" % (len(h), h)),
    Case("CL CR instead of dash", lambda h: POST + b"Content\rLength: 0\r\n\r\n" + h),
    Case("CL name with space before colon", lambda h: POST + b"Content-Length : 0\r\n\r\n" + h),
    Case("CL leading zeros, body", lambda h: POST + b"Content-Length: 000%d\r\n\r\n%s" % (len(h), h), serves=1),
    Case("CL tab around value, body", lambda h: POST + b"Content-Length:\t%d\t\r\n\r\n%s" % (len(h), h), serves=1),
    Case("CL on GET, body", lambda h: GET + b"Content-Length: %d\r\n\r\n%s" % (len(h), h), serves=1),
    Case("CL on HEAD, body", lambda h: GET.replace(b"GET", b"HEAD") + b"Content-Length: %d\r\n\r\n%s" % (len(h), h), serves=1),
    # transfer-encoding.md
    Case("TE and CL", lambda h: POST + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + h),
    Case("CL and TE", lambda h: POST + b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n" + _chunk(h)),
    Case("TE identity and CL", lambda h: POST + b"Transfer-Encoding: identity\r\nContent-Length: 0\r\n\r\n" + h),
    Case("TE chunked not last", lambda h: POST + b"Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n" + h),
    Case("TE chunked twice", lambda h: POST + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + h),
    Case("TE chunkedchunked", lambda h: POST + b"Transfer-Encoding: chunkedchunked\r\n\r\n0\r\n\r\n" + h),
    Case("TE xchunked", lambda h: POST + b"Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n" + h),
    Case("TE obs-fold", lambda h: POST + b"Transfer-Encoding: identity\r\n chunked\r\n\r\n0\r\n\r\n" + h),
    Case("TE empty", lambda h: POST + b"Transfer-Encoding:\r\n\r\n0\r\n\r\n" + h),
    Case("TE on GET, chunk", lambda h: GET + b"Transfer-Encoding: chunked\r\n\r\n" + _chunk(h), serves=1),
    Case("TE gzip, chunked", lambda h: POST + b"Transfer-Encoding: gzip, chunked\r\n\r\n" + _chunk(h), serves=1),
    Case("chunk, trailer", lambda h: POST + b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\nX-T: 1\r\n\r\n" % (len(h), h), serves=1),
    Case("chunk size overflow", lambda h: POST + b"Transfer-Encoding: chunked\r\n\r\nfffffffffffffffff1\r\n" + h),
    Case("chunk size not hex", lambda h: POST + b"Transfer-Encoding: chunked\r\n\r\n0x5\r\n" + h),
    Case("chunk extension unbalanced quote", lambda h: POST + b'Transfer-Encoding: chunked\r\n\r\n0;a="b\r\n\r\n' + h + b'"\r\n\r\n'),
    Case("chunk header LF only", lambda h: POST + b"Transfer-Encoding: chunked\r\n\r\n0\n\n" + h),
    Case("chunk data without CRLF", lambda h: POST + b"Transfer-Encoding: chunked\r\n\r\n1\r\nAB\r\n0\r\n\r\n" + h),
    Case("space after chunk size", lambda h: POST + b"Transfer-Encoding: chunked\r\n\r\n0 \r\n\r\n" + h),
    # invalid.md, sample.md
    Case("headers separated by CR", lambda h: GET + b"X: a\rContent-Length: %d\r\n\r\n%s" % (len(h), h)),
    Case("headers separated by LF", lambda h: GET.replace(b"\r\n", b"\n") + b"Content-Length: 0\n\n" + h),
    Case("only LF", lambda h: b"GET /api/test/model HTTP/1.1\nHost: x\n\n" + h),
    Case("no LF after CR", lambda h: b"GET /api/test/model HTTP/1.1\rHost: x\r\n\r\n" + h),
    Case("invalid header token", lambda h: GET + b"Fo@: x\r\n\r\n" + h),
    Case("DEL in header name", lambda h: GET + b"X\x7f: x\r\n\r\n" + h),
    Case("NUL in header value", lambda h: GET + b"X: a\x00b\r\n\r\n" + h),
    Case("CTL in header value", lambda h: GET + b"X: a\x01b\r\n\r\n" + h),
    Case("header line folding in name", lambda h: GET + b"X\r\n : a\r\n\r\n" + h),
    Case("obs-fold in value", lambda h: GET + b"X: a\r\n b\r\n\r\n" + h),
    Case("space before first header", lambda h: b"GET /api/test/model HTTP/1.1\r\n Host: x\r\n\r\n" + h),
    Case("header without colon", lambda h: GET + b"Content-Length %d\r\n\r\n%s" % (len(h), h)),
    Case("invalid HTTP version", lambda h: b"GET /api/test/model HTTP/1.15\r\nHost: x\r\n\r\n" + h),
    Case("no HTTP version", lambda h: b"GET /api/test/model\r\nHost: x\r\n\r\n" + h),
    Case("invalid method", lambda h: b"G ET /api/test/model HTTP/1.1\r\nHost: x\r\n\r\n" + h),
    Case("lowercase method", lambda h: b"get /api/test/model HTTP/1.1\r\nHost: x\r\n\r\n" + h),
    Case("UTF-8 in target", lambda h: b"GET /api/test/mod\xc3\xa9l HTTP/1.1\r\nHost: x\r\n\r\n" + h),
    Case("space in target", lambda h: b"GET /api/test/model x HTTP/1.1\r\nHost: x\r\n\r\n" + h),
    Case("CRLF in target", lambda h: b"GET /api/test/model\r\nX: HTTP/1.1\r\nHost: x\r\n\r\n" + h),
    Case("head over 2 MiB", lambda h: GET + b"X: " + b"a" * (2 << 20) + b"\r\nContent-Length: %d\r\n\r\n%s" % (len(h), h)),
    Case("head over MAX_HEAD, body", lambda h: GET + b"X: " + b"a" * 20_000 + b"\r\nContent-Length: %d\r\n\r\n%s" % (len(h), h), serves=1),
    # Host (RFC 9112 3.2; Go's net/http)
    Case("HTTP/1.1 without Host", lambda h: b"GET /api/test/model HTTP/1.1\r\nContent-Length: 0\r\n\r\n" + h),
    Case("two Host headers", lambda h: GET + b"Host: y\r\n\r\n" + h),
    Case("HTTP/1.0 without Host, then close", lambda h: b"GET /api/test/model HTTP/1.0\r\n\r\n" + h, serves=1, closes=True),
    # connection.md, pipelining.md, uri.md
    Case("Connection: close, then a request", lambda h: GET + b"Connection: close\r\n\r\n" + h, serves=1, closes=True),
    Case("Connection: close tab", lambda h: GET + b"Connection: close\t\r\n\r\n" + h, serves=1, closes=True),
    Case("Connection: keep-alive, close", lambda h: GET + b"Connection: keep-alive, close\r\n\r\n" + h, serves=1, closes=True),
    Case("POST Connection: close, then a request", lambda h: POST + b"Connection: close\r\nContent-Length: 2\r\n\r\n{}" + h, serves=1, closes=True),
    Case("Expect 100-continue, body", lambda h: POST + b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n%s" % (len(h), h), serves=1),
    Case("absolute-form target, body", lambda h: b"GET http://x/api/test/model HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(h), h), serves=1),
    Case("h2c upgrade, body", lambda h: GET + b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\nContent-Length: %d\r\n\r\n%s" % (len(h), h), serves=1),
]  # fmt: skip


@dataclass
class Outcome:
    statuses: list[int]
    closed: bool
    raw: bytes


def split_responses(data: bytes) -> tuple[list[int], bool]:
    """Statuses of the HTTP responses in ``data`` and whether all of it is well framed (a response
    without Content-Length, such as Go's 400, runs to the end of the connection)."""
    statuses: list[int] = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        if not sep or not lines[0].startswith((b"HTTP/1.1 ", b"HTTP/1.0 ")):
            return statuses, False
        statuses.append(int(lines[0][9:12]))
        length = [ln.split(b":", 1)[1] for ln in lines[1:] if ln.lower().startswith(b"content-length:")]
        if not length:
            return statuses, True
        # A response to HEAD has a Content-Length but no body: the next response follows at once.
        data = rest if rest.startswith(b"HTTP/1.") else rest[int(length[0]) :]
    return statuses, True


async def exchange(port: int, data: bytes, first: bytes = b"") -> Outcome:
    """Send ``data`` on a fresh connection (after ``first`` and its answer, if given); read until
    the gateway closes it or stays quiet. The answer to ``first`` is not in the outcome."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    out, closed = b"", False
    try:
        if first:
            writer.write(first)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"HTTP/1.1 200 "), head
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            await asyncio.wait_for(reader.readexactly(length), 5)
        with contextlib.suppress(ConnectionError):
            writer.write(data)
            await writer.drain()
        while True:
            try:
                chunk = await asyncio.wait_for(reader.read(1 << 16), QUIET)
            except TimeoutError:
                break
            except ConnectionError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            out += chunk
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    statuses, framed = split_responses(out)
    assert framed, f"not framed HTTP: {out[:300]!r}"
    return Outcome(statuses, closed, out)


async def test_smuggling_corpus_on_both_paths(nats_node: NatsNode, start_gateway: GatewayStarter) -> None:
    svc = await RecordingService(nats_node.url).start()
    gw = await start_gateway(nats_node.url, "-r", "1000")
    try:
        nats_cid = _gateway_nats_cid(nats_node)
        runs = [(path, i, case) for path in ("fast", "aiohttp") for i, case in enumerate(CASES)]
        limit = asyncio.Semaphore(16)

        async def run(path: str, i: int, case: Case) -> Outcome:
            data = case.build(hidden(i))
            async with limit:
                return await exchange(gw.port, data, HAND_OVER if path == "aiohttp" else b"")

        outcomes = await asyncio.gather(*(run(*r) for r in runs))
        await asyncio.sleep(0.3)
        failures, refused = [], 0
        for (path, i, case), out in zip(runs, outcomes, strict=True):
            if any(f"smuggled.c{i:03d}" in s for s in svc.subjects):
                failures.append(f"{path} {case.name}: the hidden request was served")
            statuses = out.statuses
            if case.serves is None:
                refused += 1
                if not (statuses and 400 <= statuses[-1] < 500 and out.closed):
                    failures.append(f"{path} {case.name}: not refused: {statuses} closed={out.closed}")
            else:
                # (an answer may be an API error: a body that is not JSON is invalid params)
                if len(statuses) != case.serves or (out.closed and not case.closes):
                    failures.append(f"{path} {case.name}: expected {case.serves} answers, got {statuses}")
                if case.closes and not out.closed:
                    failures.append(f"{path} {case.name}: the connection was left open")
            if path == "fast" and case.name == "HTTP/1.1 without Host":
                assert out.raw == GO_MISSING_HOST
        assert failures == [], "\n".join(failures)
        assert _gateway_nats_cid(nats_node) == nats_cid
        assert gw.returncode is None
        assert "Traceback" not in gw.log(1_000_000)
        await _bystander_served(gw)
        print(f"smuggling corpus: {len(CASES)} cases x 2 paths: {refused} refusals with 4xx and close, "
              f"{len(runs) - refused} served as exactly the requests they are; no hidden request served")  # fmt: skip
    finally:
        await svc.close()


# --- fuzz -------------------------------------------------------------------------------------------

FUZZ_EXAMPLES = 600

_names = st.sampled_from(
    [b"Content-Length", b"Transfer-Encoding", b"Host", b"Connection", b"Upgrade", b"Expect", b"X",
     b"content-length", b"Content-Length ", b"Transfer-Encoding\t", b"Content_Length", b"TE", b"Trailer"]
)  # fmt: skip
_values = st.sampled_from(
    [b"chunked", b"identity", b"chunked, identity", b"gzip, chunked", b"0", b"{n}", b"{n}, {n}", b"+{n}",
     b" {n} ", b"0{n}", b"close", b"keep-alive", b"Upgrade", b"websocket", b"100-continue", b"x", b""]
)  # fmt: skip
_eols = st.sampled_from([b"\r\n"] * 10 + [b"\n", b"\r", b"\r\n ", b"\r\n\t", b"\x00\r\n"])
_firsts = st.sampled_from(
    [b"GET /api/test/model HTTP/1.1", b"POST /api/test/model/method HTTP/1.1", b"HEAD /api/test/model HTTP/1.1",
     b"GET /api/test/model HTTP/1.0", b"GET http://x/api/test/model HTTP/1.1", b"GET /api/test/model HTTP/1.1 "]
)  # fmt: skip
_bodies = st.sampled_from(["{h}", "{x}\r\n{h}\r\n0\r\n\r\n", "0\r\n\r\n{h}", "{h}0\r\n\r\n", ""])
_streams = st.tuples(
    _firsts,
    st.lists(st.tuples(_names, st.sampled_from([b": ", b":", b" : "]), _values, _eols), max_size=4),
    st.booleans(),  # a Host header
    _bodies,
)


def _render(parts: tuple[bytes, list[tuple[bytes, bytes, bytes, bytes]], bool, str], h: bytes) -> bytes:
    first, headers, host, body = parts
    n = b"%d" % len(h)
    lines = [first + b"\r\n"] + ([b"Host: x\r\n"] if host else [])
    lines += [name + sep + value.replace(b"{n}", n) + eol for name, sep, value, eol in headers]
    rendered = body.format(h=h.decode(), x=f"{len(h):x}").encode()
    return b"".join(lines) + b"\r\n" + rendered


def oracle_reads_hidden(stream: bytes, target: bytes) -> bool:
    """Whether aiohttp's llhttp reads ``stream`` as containing a request of its own for ``target``.
    The stream is read up to the end of that request only: what follows cannot change the answer,
    and a parse error there would hide the messages read before it."""
    at = stream.find(target)
    if at >= 0:
        stream = stream[: stream.index(b"\r\n\r\n", at) + 4]
    try:
        messages, _upgraded = llhttp.read_messages(stream)
    except llhttp.HttpProcessingError:  # refused there (the messages before still count)
        return False
    return any(msg.path.encode() == target for msg, _payload in messages)


async def test_fuzzed_smuggling_streams(nats_node: NatsNode, start_gateway: GatewayStarter) -> None:
    svc = await RecordingService(nats_node.url).start()
    gw = await start_gateway(nats_node.url, "-r", "1000")
    streams: list[tuple[bytes, bool, bool]] = []

    @settings(
        max_examples=FUZZ_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(parts=_streams, via_aiohttp=st.booleans())
    def collect(
        parts: tuple[bytes, list[tuple[bytes, bytes, bytes, bytes]], bool, str], via_aiohttp: bool
    ) -> None:
        i = 100 + len(streams)
        stream = _render(parts, hidden(i))
        allowed = oracle_reads_hidden(stream, b"/api/test/smuggled/c%03d" % i)
        streams.append((stream, via_aiohttp, allowed))

    collect()
    try:
        nats_cid = _gateway_nats_cid(nats_node)
        limit = asyncio.Semaphore(16)

        async def run(data: bytes, via_aiohttp: bool) -> Outcome:
            async with limit:
                return await exchange(gw.port, data, HAND_OVER if via_aiohttp else b"")

        await asyncio.gather(*(run(data, via) for data, via, _ in streams))
        await asyncio.sleep(0.3)
        served = [
            i for i in range(len(streams)) if any(f"smuggled.c{100 + i:03d}" in s for s in svc.subjects)
        ]
        wrong = [streams[i][0] for i in served if not streams[i][2]]
        assert wrong == [], (
            f"hidden requests served that llhttp reads as a body or never reaches: {wrong[:3]}"
        )
        assert _gateway_nats_cid(nats_node) == nats_cid
        assert gw.returncode is None
        assert "Traceback" not in gw.log(1_000_000)
        await _bystander_served(gw)
        allowed = sum(1 for _, _, ok in streams if ok)
        print(f"fuzzed smuggling streams: {len(streams)}, hidden request a request of its own for llhttp in "
              f"{allowed}, served in {len(served)}, served wrongly in 0")  # fmt: skip
    finally:
        await svc.close()
