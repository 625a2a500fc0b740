"""Hostile input against a real ``pyresgate`` process: request smuggling on the HTTP paths, and
WebSocket requests built to break NATS subjects or the JSON reader.

Invariants: the process stays up; its NATS connection is the same one throughout (a subject with a
space, CR/LF or a wildcard, or one past NATS's control-line limit, must never reach the server, which
would drop the connection); a smuggled request hidden in a body is never served; a bystander client
is served all along. ``tests/gateway/test_bad_input.py`` and ``tests/gateway/test_fasthttp.py`` fuzz
frames and request heads in-process; this file adds the process-level view and the smuggling corpus.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any, Self

import nats
import orjson
import websockets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from tests.runtime.conftest import GatewayStarter
from tests.runtime.helpers import GatewayProcess
from tests.support.cluster import NatsNode, http_json
from tests.support.fakeservice import HARNESS_PREFIX
from tests.support.wsclient import WSClient, assert_result

HIDDEN = "test.smuggled"


class RecordingService:
    """Answers everything (access granted, models ``{"ok": true}``) and records every subject."""

    def __init__(self, nats_url: str) -> None:
        self.nats_url = nats_url
        self.nc: NATS | None = None
        self.subjects: list[str] = []

    async def start(self) -> Self:
        self.nc = await nats.connect(self.nats_url, name=f"{HARNESS_PREFIX}-recorder", no_echo=True)
        await self.nc.subscribe(">", cb=self._on_msg)
        await self.nc.flush(timeout=2)
        return self

    async def close(self) -> None:
        if self.nc is not None and not self.nc.is_closed:
            await self.nc.close()

    async def _on_msg(self, msg: Msg) -> None:
        self.subjects.append(msg.subject)
        if not msg.reply:
            return
        kind = msg.subject.partition(".")[0]
        reply: Any = {"result": None}
        if kind == "access":
            reply = {"result": {"get": True, "call": "*"}}
        elif kind == "get":
            reply = {"result": {"model": {"ok": True}}}
        with contextlib.suppress(Exception):
            await msg.respond(orjson.dumps(reply))

    def hidden_seen(self) -> bool:
        return any(HIDDEN in s for s in self.subjects)


def _gateway_nats_cid(node: NatsNode) -> int:
    conns = [c for c in http_json(f"{node.monitor_url}/connz")["connections"] if c.get("name") == "pyresgate"]
    assert len(conns) == 1, conns
    return int(conns[0]["cid"])


# --- request smuggling -------------------------------------------------------------------------------

_SMUGGLED = f"GET /api/{HIDDEN.replace('.', '/')} HTTP/1.1\r\nHost: x\r\n\r\n"


def _smuggling_corpus() -> list[tuple[str, bytes]]:
    """Requests whose framing is ambiguous or malformed (the classes llhttp's test suite and the
    request smuggling literature cover), each followed by a complete GET of the hidden resource
    that is body under the correct reading, or follows a request that must be refused (an
    ambiguous one: a front proxy may have read it differently). Either way it must not be served.
    (Valid framing, such as a tab after the colon, is not in the list: what follows it is a real
    pipelined request.)"""
    s = _SMUGGLED
    n = len(s)
    head = "POST /api/test/model/method HTTP/1.1\r\nHost: x\r\n"
    get = "GET /api/test/model HTTP/1.1\r\nHost: x\r\n"
    cases = {
        "CL.TE": f"{head}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{s}",
        "TE.CL": f"{head}Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n{n:x}\r\n{s}\r\n0\r\n\r\n",
        "duplicate CL": f"{head}Content-Length: 0\r\nContent-Length: {n}\r\n\r\n{s}",
        "duplicate CL same": f"{head}Content-Length: {n}\r\nContent-Length: {n}\r\n\r\n{s}",
        "CL list": f"{head}Content-Length: 0, {n}\r\n\r\n{s}",
        "CL plus": f"{head}Content-Length: +{n}\r\n\r\n{s}",
        "CL negative": f"{head}Content-Length: -1\r\n\r\n{s}",
        "CL hex": f"{head}Content-Length: 0x{n:x}\r\n\r\n{s}",
        "CL overflow": f"{head}Content-Length: 99999999999999999999999\r\n\r\n{s}",
        "CL space before colon": f"{head}Content-Length : 0\r\n\r\n{s}",
        "TE space before colon": f"{head}Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n{s}",
        "TE obfuscated value": f"{head}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n{s}",
        "TE double": f"{head}Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n{s}",
        "TE chunked not last": f"{head}Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n{s}",
        "TE obs-fold": f"{head}Transfer-Encoding: identity\r\n chunked\r\n\r\n0\r\n\r\n{s}",
        "CL on GET": f"{get}Content-Length: {n}\r\n\r\n{s}",
        "chunk size overflow": f"{head}Transfer-Encoding: chunked\r\n\r\nffffffffffffffffffff1\r\n{s}\r\n0\r\n\r\n",
        "chunk extension": f'{head}Transfer-Encoding: chunked\r\n\r\n0;ext="a\r\n\r\n{s}"\r\n\r\n',
        "chunk LF only": f"{head}Transfer-Encoding: chunked\r\n\r\n0\n\n{s}",
        "bare LF headers": f"{head.replace(chr(13), '')}Content-Length: 0\n\n{s}",
        "bare CR": f"{head}X: a\rContent-Length: {n}\r\n\r\n{s}",
        "NUL in header": f"{head}Content-Length: 0\x00{n}\r\n\r\n{s}",
        "header without colon": f"{get}Content-Length {n}\r\n\r\n{s}",
        "space in method": f"G ET /api/test/model HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n{s}",
        "HTTP/1.0 keep-alive CL": f"POST /api/test/model/method HTTP/1.0\r\nConnection: keep-alive\r\n"
        f"Content-Length: {n}\r\n\r\n{s}",
        "Expect 100": f"{head}Expect: 100-continue\r\nContent-Length: {n}\r\n\r\n{s}",
        "upgrade h2c": f"{get}Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n"
        f"Content-Length: {n}\r\n\r\n{s}",
        "fast path CRLF in target": f"GET /api/test/model\r\nX: HTTP/1.1\r\nHost: x\r\n\r\n{s}",
    }
    return [(name, text.encode("latin-1")) for name, text in cases.items()]


async def _send_raw(port: int, data: bytes, quiet: float = 0.5) -> bytes:
    """Send ``data`` and read until the gateway closes or stays quiet for ``quiet`` seconds."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        out = b""
        with contextlib.suppress(ConnectionError):
            while True:
                try:
                    chunk = await asyncio.wait_for(reader.read(65536), quiet)
                except TimeoutError:
                    break
                if not chunk:
                    break
                out += chunk
        return out
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def test_request_smuggling_corpus_never_serves_a_hidden_request(
    nats_node: NatsNode, start_gateway: GatewayStarter
) -> None:
    svc = await RecordingService(nats_node.url).start()
    gw = await start_gateway(nats_node.url, "-r", "500")
    try:
        nats_cid = _gateway_nats_cid(nats_node)
        corpus = _smuggling_corpus()
        results: dict[str, bytes] = {}
        for name, data in corpus:
            results[name] = await _send_raw(gw.port, data)
            assert not svc.hidden_seen(), f"{name}: the hidden request was served\n{results[name][:500]!r}"
        for name, out in results.items():
            # Every answer is framed HTTP (or nothing: the connection was closed on a bad request).
            assert out == b"" or out.startswith((b"HTTP/1.1 ", b"HTTP/1.0 ")), f"{name}: {out[:300]!r}"
        print("smuggling:", {name: out[9:12].decode() or "no answer" for name, out in results.items()})
        await asyncio.sleep(0.3)
        assert not svc.hidden_seen()
        assert _gateway_nats_cid(nats_node) == nats_cid
        await _bystander_served(gw)
    finally:
        await svc.close()


async def _bystander_served(gw: GatewayProcess) -> None:
    client = await WSClient.connect(gw.ws_url)
    try:
        assert_result(await client.request("version", {"protocol": "1.2.3"}), {"protocol": "1.2.3"})
    finally:
        await client.close()


# --- WebSocket requests built against NATS subjects and the JSON reader -----------------------------

_nasty_text = st.sampled_from(
    ["*", ">", "a.*", "a.>", " ", "a b", "a\tb", "a\r\nPUB x 1\r\nX", "\x00", "..", ".", "a.", ".a",
     "\u2028", "\ud800", "é", "a" * 5000, "$sys", "_INBOX.x", "{cid}", "a?b=c d", "a?\r\n"]
)  # fmt: skip
_rid = (
    st.builds(lambda a, b: f"{a}.{b}", st.sampled_from(["test", "test.model", "a"]), _nasty_text)
    | _nasty_text
)
_action = st.sampled_from(["subscribe", "unsubscribe", "get", "call", "auth", "new"])
_method = st.builds(
    lambda act, rid, m: f"{act}.{rid}" + (f".{m}" if act in ("call", "auth") else ""),
    _action,
    _rid,
    _nasty_text,
)
_deep = st.integers(1, 5000).map(lambda n: "[" * n + "]" * n)
_huge_number = st.sampled_from(
    ["1" * 5000, "1e999999", "-0", "18446744073709551616", "1.5e-400", "NaN", "Infinity"]
)
_frames = st.one_of(
    # json.dumps escapes a lone surrogate as \\ud800, which is valid JSON text but no valid string.
    st.builds(lambda i, m: json.dumps({"id": i, "method": m}), st.integers(0, 2**31), _method),
    st.builds(lambda m, d: f'{{"id":1,"method":{json.dumps(m)},"params":{d}}}', _method, _deep),
    st.builds(lambda n: f'{{"id":{n},"method":"version"}}', _huge_number),
    st.builds(lambda n: f'{{"id":1,"method":"call.test.model.m","params":{{"n":{n}}}}}', _huge_number),
    st.binary(max_size=300),
    st.builds(lambda m: b'{"id":1,"method":"' + m.encode("utf-8", "surrogatepass") + b'"}', _method),
)  # fmt: skip


async def test_hostile_websocket_requests_never_reach_nats_as_bad_subjects(
    nats_node: NatsNode, start_gateway: GatewayStarter
) -> None:
    svc = await RecordingService(nats_node.url).start()
    gw = await start_gateway(nats_node.url, "-r", "300")
    frames: list[Any] = []

    @settings(max_examples=400, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(frame=_frames)
    def collect(frame: Any) -> None:
        frames.append(frame)

    collect()
    try:
        nats_cid = _gateway_nats_cid(nats_node)
        async with websockets.connect(gw.ws_url, max_size=None) as ws:
            for i, frame in enumerate(frames):
                await ws.send(frame)
                if i % 50 == 49:  # a marker request: everything before it was handled
                    marker = 2**53 + i
                    await ws.send(orjson.dumps({"id": marker, "method": "version"}))
                    async with asyncio.timeout(5):
                        while orjson.loads(await ws.recv()).get("id") != marker:
                            pass
        await asyncio.sleep(0.5)
        assert _gateway_nats_cid(nats_node) == nats_cid, "the NATS connection was dropped"
        assert gw.returncode is None
        assert any(s.startswith("access.") for s in svc.subjects), "no fuzzed request reached a service"
        bad = [s for s in svc.subjects if any(c in s for c in " \t\r\n*>") or len(s) > 4096]
        assert bad == [], bad[:5]
        await _bystander_served(gw)
        log = gw.log(1_000_000)
        assert "Traceback" not in log, log
        print(f"hostile WebSocket frames: {len(frames)}, service requests they caused: {len(svc.subjects)}")
    finally:
        await svc.close()
