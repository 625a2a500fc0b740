"""The fast HTTP path's reading of request heads against aiohttp's, differentially.

``gateway.web.fasthttp.HeadReader`` frames request heads itself (up to the first blank line) and
has llhttp (httptools' copy) read them; everything it does not serve goes to aiohttp, whose C
parser is llhttp too (its own copy, possibly another version, with its own callbacks). A request
framing that the two read differently would be a request-smuggling gap between the two paths of
the same listener. So: for hypothesis-made byte streams (a head full of framing tricks, then a plain
second request), whenever the fast path serves the first head, aiohttp's parser must read the same
stream as the same request (method, target, headers, keep-alive, no body) followed by exactly the
same second request. Heads the fast path refuses (400 and close, always safe) are counted, and so
are those among them aiohttp's llhttp would have read: a newer llhttp is stricter (an empty
``Transfer-Encoding``, say). Pure CPU, no network.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.web.fasthttp import HeadReader, Take
from tests.reliability import llhttp

API, WS = b"/api/", b"/ws"
SECOND = b"GET /api/second HTTP/1.1\r\nHost: s\r\n\r\n"
EXAMPLES = 5000

_tricky = [b" ", b"\t", b"\r", b"\n", b"\r\n", b"\x00", b"\x7f", b"\x80", b"\xff", b":", b";", b",", b'"',
           b"%", b"%0d%0a", b"?", b"#", b"\\", b"{", b"<", b"\x0b", b"\x0c"]  # fmt: skip
_plain = st.text("abcxyzABC019-_.~/=&", max_size=8).map(str.encode)
_piece = st.one_of(*[_plain] * 16, st.sampled_from(_tricky), st.binary(max_size=3))
_bytes = st.lists(_piece, max_size=4).map(b"".join)
_method = st.sampled_from([b"GET"] * 6 + [b"HEAD"] * 2 + [b"get", b"GET ", b"G ET", b"POST", b"GET\t"])
_target = st.one_of(
    *[st.builds(lambda tail: API + tail, _bytes)] * 4,
    st.sampled_from([b"/api/test/model", b"/api/test/model?q=1", b"/api", b"/ws", b"*", b"http://x/api/a"]),
)
_version = st.sampled_from(
    [b"HTTP/1.1"] * 8 + [b"HTTP/1.0", b"HTTP/1.1 ", b"HTTP/2.0", b"http/1.1", b"HTTP/1.10"]
)
_name = st.one_of(
    st.sampled_from([b"Host", b"Content-Length", b"Transfer-Encoding", b"Connection", b"Upgrade", b"Expect",
                     b"TE", b"Trailer", b"X-A", b"Authorization", b"content-length", b"Transfer-Encoding "]),
    *[st.sampled_from([b"Accept", b"X-Token", b"Origin", b"Cookie"])] * 3,
    _bytes,
)  # fmt: skip
_sep = st.sampled_from([b": "] * 6 + [b":", b" : ", b":\t", b"\t:", b"::"])
_value = st.one_of(
    st.sampled_from(
        [b"x", b"0", b"5", b"chunked", b"close", b"keep-alive", b"Upgrade", b"websocket", b" 1 ", b""]
    ),
    *[_plain] * 3,
    _bytes,
)
_header = st.builds(lambda n, s, v: n + s + v, _name, _sep, _value)
_eol = st.sampled_from([b"\r\n"] * 12 + [b"\n", b"\r\n ", b"\r\n\t", b"\r"])
_head = st.builds(
    lambda m, t, v, host, hs, eols: m + b" " + t + b" " + v
    + b"".join(e + h for e, h in zip(eols, host + hs, strict=False)),
    _method,
    _target,
    _version,
    st.sampled_from([[b"Host: x"], [b"Host: x"], [b"Host: x"], []]),
    st.lists(_header, max_size=4),
    st.lists(_eol, min_size=5, max_size=5),
)  # fmt: skip


_valid = st.builds(
    lambda m, t, hs: (
        m + b" " + API + t + b" HTTP/1.1\r\nHost: x" + b"".join(b"\r\n" + n + b": " + v for n, v in hs)
    ),
    st.sampled_from([b"GET", b"HEAD"]),
    _plain,
    st.lists(
        st.tuples(st.sampled_from([b"Accept", b"X-Token", b"Origin", b"Connection"]), _plain), max_size=3
    ),
)


def _mutate(head: bytes, at: int, piece: bytes, replace: bool) -> bytes:
    at %= len(head) + 1
    return head[:at] + piece + head[at + (1 if replace else 0) :]


#: A valid head with one tricky piece put in (or over) a random place: most of these get near the
#: fast path's acceptance edge.
_near_valid = st.builds(
    _mutate,
    _valid,
    st.integers(0, 200),
    st.one_of(st.sampled_from(_tricky), st.binary(max_size=2)),
    st.booleans(),
)
_heads = st.one_of(_head, _near_valid, _valid)


class _NoHost(Exception):
    """aiohttp's own check (after llhttp framed the request) that HTTP/1.1 has a Host header."""


def _llhttp(stream: bytes) -> Iterator[tuple[bytes, bytes, list[tuple[bytes, bytes]], bool]] | None:
    """(method, target, raw headers, should_close) of each complete message llhttp reads, or None
    when it refuses the stream."""
    try:
        messages, upgraded = llhttp.read_messages(stream)
    except llhttp.HttpProcessingError as exc:
        if "Missing 'Host' header" in str(exc):
            raise _NoHost from None
        return None
    out = []
    for msg, payload in messages:
        assert type(payload).__name__ == "EmptyStreamReader", f"llhttp sees a body: {stream!r}"
        out.append((msg.method.encode(), msg.path.encode(), list(msg.raw_headers), bool(msg.should_close)))
    assert not upgraded or len(out) == 1
    return iter(out)


def test_whatever_the_fast_path_takes_llhttp_reads_the_same_way() -> None:
    taken = refused = stricter = 0

    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(head=_heads)
    def check(head: bytes) -> None:
        nonlocal taken, refused, stricter
        head = head.split(b"\r\n\r\n")[0]  # FrontProtocol ends a head at the first blank line
        stream = head + b"\r\n\r\n" + SECOND
        reader = HeadReader(API, WS)
        take = reader.read(head + b"\r\n\r\n")
        if take is Take.REFUSE:
            refused += 1
            with contextlib.suppress(_NoHost):
                if _llhttp(stream) is not None:
                    stricter += 1
            return
        if take is not Take.SERVE:
            return  # handed to aiohttp, i.e. to llhttp itself
        messages = _llhttp(stream)
        taken += 1
        assert messages is not None, f"aiohttp refuses what the fast path serves: {stream!r}"
        got = list(messages)
        first = (
            reader.method.encode(),
            reader.target,
            [(k.encode(), v.encode()) for k, v in reader.headers.items()],
        )
        assert got[0][:3] == first, f"different reading of {stream!r}: fast {first}, aiohttp {got[0]}"
        assert got[0][3] == (not reader.keep_alive), f"keep-alive differs for {stream!r}"
        if reader.keep_alive:
            assert len(got) == 2 and got[1][:2] == (b"GET", b"/api/second"), f"{stream!r}: {got}"

    check()
    print(f"fast path vs aiohttp's llhttp: {EXAMPLES} heads, {taken} served by the fast path and read "
          f"alike by aiohttp, {refused} refused with 400 ({stricter} of them read by aiohttp's llhttp)")  # fmt: skip
    assert taken > EXAMPLES // 10, "too few heads reached the comparison"
