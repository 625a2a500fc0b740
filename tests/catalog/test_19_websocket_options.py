"""Catalog §5.19 (resgate 19websocket_options_test.go): WebSocket compression and WebSocket header auth.

WSOPT-01 runs with a real client that offers permessage-deflate (``websockets``, compression="deflate").
The extra tests check that the extension is really negotiated only when both sides want it, and, with a
raw socket client that sees the frame bits, that the gateway's frames are really compressed (RSV1 set,
payload a raw DEFLATE stream) when it was negotiated and plain otherwise.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import struct
import zlib
from typing import Any

import pytest

from tests.catalog.test_14_http_get import reply_kind
from tests.conftest import GatewayFactory
from tests.support import fixtures, macros
from tests.support.fakeservice import FakeService
from tests.support.fixtures import E_NOTFOUND, PROTOCOL
from tests.support.gatewayrunner import GatewayHandle

FULL_ACCESS = {"get": True, "call": "*"}


def negotiated_extensions(headers: Any) -> str:
    return ", ".join(headers.get_all("Sec-WebSocket-Extensions"))


# ---------------------------------------------------------------------------------------------
# WSOPT-01


# Test that a client offering permessage-deflate to a gateway with wsCompression can subscribe.
async def test_wsopt_01_compression_enabled_can_subscribe(
    gateway_factory: GatewayFactory, service: FakeService
) -> None:
    gw = await gateway_factory(ws_compression=True)
    client = await macros.connect(gw, compression=True)
    assert "permessage-deflate" in negotiated_extensions(client.headers)
    pending = await client.send("subscribe.test.model")
    reqs = await service.requests(2)
    await reqs.get("access.test.model").ok(FULL_ACCESS)
    await reqs.get("get.test.model").json(fixtures.get_reply("test.model"))
    await pending.result(fixtures.resource_set("test.model"))
    # Events reach the compressed connection too, in order.
    await macros.custom(service, "test.model")
    await service.event("test.model", "change", {"values": {"string": "bar"}})
    await client.expect_event("test.model.custom", fixtures.CUSTOM_PAYLOAD)
    await client.expect_event("test.model.change", {"values": {"string": "bar"}})


# ---------------------------------------------------------------------------------------------
# WSOPT-02

_NO_TOKEN = object()
_AUTH_REPLIES: list[tuple[str, Any]] = [("TO", None), ("ERR", E_NOTFOUND), ("RAW", b"{]"), ("OK", None)]
WSOPT_02_ROWS = [
    (kind, value, token) for token in (_NO_TOKEN, {"user": "foo"}, None) for kind, value in _AUTH_REPLIES
]


# Test that wsHeaderAuth is requested during the upgrade, that a token event sent meanwhile applies to the
# connection, and that auth failures do not reject the connection.
@pytest.mark.parametrize(
    ("kind", "value", "token"),
    WSOPT_02_ROWS,
    ids=[f"WSOPT-02.{i:02d}" for i in range(1, len(WSOPT_02_ROWS) + 1)],
)
async def test_wsopt_02_ws_header_auth(
    gateway_factory: GatewayFactory, service: FakeService, kind: str, value: Any, token: Any
) -> None:
    gw = await gateway_factory(ws_header_auth="vault.method")
    attempt = asyncio.ensure_future(gw.try_connect())
    auth = await service.expect_request("auth.vault.method")
    auth.assert_path("isHttp", True).assert_missing("params")
    cid = auth.path("cid")
    assert not attempt.done(), "upgrade completed before the wsHeaderAuth reply"
    expected_token = None
    if token is not _NO_TOKEN:
        await service.conn_event(cid, "token", {"token": token})
        expected_token = token
    await reply_kind(auth, kind, value)
    client, status, _ = await asyncio.wait_for(attempt, 3.0)
    assert status == 101 and client is not None
    resp = await client.request("version", {"protocol": macros.LATEST_CLIENT})
    assert resp.get("result") == {"protocol": PROTOCOL}
    pending = await client.send("subscribe.test.model")
    reqs = await service.requests(2)
    access = reqs.get("access.test.model")
    access.assert_path("token", expected_token).assert_path("cid", cid).assert_missing("isHttp")
    await access.ok(FULL_ACCESS)
    await reqs.get("get.test.model").json(fixtures.get_reply("test.model"))
    await pending.result(fixtures.resource_set("test.model"))


# ---------------------------------------------------------------------------------------------
# Extras: negotiation, and the frames on the wire


@pytest.mark.parametrize(
    ("server", "client_offers", "negotiated"),
    [(True, False, False), (False, True, False), (False, False, False)],
    ids=["server-only", "client-only", "neither"],
)
async def test_wsopt_extra_negotiation(
    gateway_factory: GatewayFactory, service: FakeService, server: bool, client_offers: bool, negotiated: bool
) -> None:
    """permessage-deflate is used only when both sides want it; subscribe and events work either way."""
    gw = await gateway_factory(ws_compression=server)
    client = await macros.connect(gw, compression=client_offers)
    assert ("permessage-deflate" in negotiated_extensions(client.headers)) is negotiated
    await macros.subscribe(client, service, "test.model")
    await macros.custom(service, "test.model")
    await client.expect_event("test.model.custom", fixtures.CUSTOM_PAYLOAD)


class RawWS:
    """A minimal WebSocket client on a plain socket that exposes each frame's RSV1 bit and raw payload."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, headers: dict[str, str]):
        self.reader = reader
        self.writer = writer
        self.headers = headers
        self._inflate = zlib.decompressobj(-zlib.MAX_WBITS)

    @classmethod
    async def open(cls, gw: GatewayHandle, offer_deflate: bool) -> RawWS:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", gw.port), 2.0)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            "GET / HTTP/1.1",
            f"Host: 127.0.0.1:{gw.port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
        ]
        if offer_deflate:
            lines.append("Sec-WebSocket-Extensions: permessage-deflate")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2.0)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        assert " 101 " in status_line + " ", f"upgrade refused: {status_line}"
        headers = {}
        for line in header_lines:
            if ":" in line:
                name, _, val = line.partition(":")
                headers[name.strip().lower()] = val.strip()
        return cls(reader, writer, headers)

    def send(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x80 | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", n)
        self.writer.write(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def send_json(self, msg: Any) -> None:
        self.send(0x1, json.dumps(msg).encode())

    async def frame(self, timeout: float = 1.0) -> tuple[bool, int, bytes]:
        """(rsv1, opcode, payload) of the next frame (unmasked by the server, single-frame messages)."""
        async with asyncio.timeout(timeout):
            b0, b1 = await self.reader.readexactly(2)
            assert not b1 & 0x80, "server frame is masked"
            n = b1 & 0x7F
            if n == 126:
                (n,) = struct.unpack("!H", await self.reader.readexactly(2))
            elif n == 127:
                (n,) = struct.unpack("!Q", await self.reader.readexactly(8))
            payload = await self.reader.readexactly(n)
        assert b0 & 0x80, "fragmented server message (FIN not set)"
        return bool(b0 & 0x40), b0 & 0x0F, payload

    async def message(self, *, compressed: bool, timeout: float = 1.0) -> Any:
        """The next text message as JSON; its RSV1 bit must equal ``compressed`` (and then it must inflate)."""
        rsv1, opcode, payload = await self.frame(timeout)
        assert opcode == 0x1, f"expected a text frame, got opcode {opcode}"
        assert rsv1 is compressed, f"RSV1={rsv1}, expected {compressed} (payload {payload[:80]!r})"
        if compressed:
            payload = self._inflate.decompress(payload + b"\x00\x00\xff\xff")
        return json.loads(payload)

    async def close(self) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError, TimeoutError):
            self.send(0x8, struct.pack("!H", 1000))
            for _ in range(100):  # bounded: skip anything still in flight until the close reply
                _, opcode, _ = await self.frame(1.0)
                if opcode == 0x8:
                    break
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


@pytest.mark.parametrize("compression", [True, False], ids=["negotiated", "not-offered"])
async def test_wsopt_extra_frames_on_the_wire(
    gateway_factory: GatewayFactory, service: FakeService, compression: bool
) -> None:
    """With permessage-deflate negotiated every gateway frame is compressed (RSV1, DEFLATE payload);
    without the client's offer, frames are plain. Covers 7-, 16- and 64-bit payload lengths and the
    order of a burst of responses and events."""
    gw = await gateway_factory(ws_compression=True)
    ws = await RawWS.open(gw, offer_deflate=compression)
    try:
        assert ("permessage-deflate" in ws.headers.get("sec-websocket-extensions", "")) is compression
        ws.send_json({"id": 1, "method": "version", "params": {"protocol": macros.LATEST_CLIENT}})
        assert await ws.message(compressed=compression) == {"id": 1, "result": {"protocol": PROTOCOL}}

        big = {"s": "x" * 70_000, "t": "y" * 100}  # frame length needs the 64-bit form
        ws.send_json({"id": 2, "method": "subscribe.test.model"})
        reqs = await service.requests(2)
        await reqs.get("access.test.model").ok(FULL_ACCESS)
        await reqs.get("get.test.model").ok({"model": big})
        assert await ws.message(compressed=compression) == {
            "id": 2,
            "result": {"models": {"test.model": big}},
        }
        mid = "z" * 1000  # 16-bit length form
        for i in range(20):
            await service.event("test.model", "custom", {"i": i, "pad": mid}, check=False)
        for i in range(20):
            msg = await ws.message(compressed=compression)
            assert msg == {"event": "test.model.custom", "data": {"i": i, "pad": mid}}
    finally:
        await ws.close()


# ---------------------------------------------------------------------------------------------
# Extras: the compressed-connection sink (gateway/web/sink.py CompressingSink) in isolation


class _StubTransport:
    def __init__(self) -> None:
        self.aborted = False

    def abort(self) -> None:
        self.aborted = True


class _StubWriter:
    def __init__(self) -> None:
        self.transport = _StubTransport()


def _stub_ws(send: Any) -> Any:
    from aiohttp import web

    class StubWS(web.WebSocketResponse):
        async def send_frame(self, message: bytes, opcode: Any, compress: int | None = None) -> None:
            await send(message, opcode)

        async def send_str(self, data: str, compress: int | None = None) -> None:
            from aiohttp import WSMsgType

            await send(data.encode(), WSMsgType.TEXT)

    ws = StubWS()
    ws._writer = _StubWriter()  # type: ignore[assignment]
    return ws


async def test_wsopt_extra_compressing_sink_order_and_payloads() -> None:
    """Frames of every length form are re-sent as their text payloads, in order."""
    from gateway.protocol import wsframe
    from gateway.web.sink import CompressingSink

    sent: list[tuple[bytes, Any]] = []

    async def send(message: bytes, opcode: Any) -> None:
        sent.append((message, opcode))

    sink = CompressingSink(_stub_ws(send), cid="c1")
    payloads = [b"a" * 10, b"b" * 300, b"c" * 70_000, b"{}"]
    for p in payloads:
        sink.send(wsframe.text(p))
    async with asyncio.timeout(1):
        while len(sent) < len(payloads):
            await asyncio.sleep(0.001)
    sink.close()
    assert [m for m, _ in sent] == payloads
    assert all(int(op) == 0x1 for _, op in sent)


async def test_wsopt_extra_compressing_sink_slow_consumer_aborts() -> None:
    """A compressed client that does not read is cut off (transport aborted) once its queue passes the
    limit, instead of being left connected without further output."""
    from gateway.protocol import wsframe
    from gateway.web.sink import CompressingSink

    stall = asyncio.Event()

    async def send(message: bytes, opcode: Any) -> None:
        await stall.wait()

    ws = _stub_ws(send)
    sink = CompressingSink(ws, cid="c2", limit=1000)
    writer = sink._task
    assert writer is not None
    for _ in range(5):
        sink.send(wsframe.text(b"x" * 100))
    await asyncio.sleep(0.01)
    assert not ws._writer.transport.aborted
    for _ in range(10):
        sink.send(wsframe.text(b"x" * 100))
    assert ws._writer.transport.aborted
    await asyncio.sleep(0.01)
    assert writer.done() and sink._task is None  # cancelled, and not kept (see _stop_writer)
    sink.send(wsframe.text(b"late"))  # ignored, no error
    sink.close()
    stall.set()


async def test_wsopt_extra_compressing_sink_write_failure_is_quiet() -> None:
    """A failed write (client gone) ends the writer without an unretrieved task exception."""
    from gateway.protocol import wsframe
    from gateway.web.sink import CompressingSink

    async def send(message: bytes, opcode: Any) -> None:
        raise ConnectionResetError("Cannot write to closing transport")

    sink = CompressingSink(_stub_ws(send), cid="c3")
    writer = sink._task
    assert writer is not None
    sink.send(wsframe.text(b"{}"))
    async with asyncio.timeout(1):
        while not writer.done():
            await asyncio.sleep(0.001)
    assert not writer.cancelled() and writer.exception() is None
    sink.send(wsframe.text(b"{}"))  # ignored after the failure
    sink.close()


async def test_wsopt_extra_compressed_client_vanishes_under_events(
    gateway_factory: GatewayFactory, service: FakeService
) -> None:
    """A compressed client whose socket is torn down while events stream in leaves no logged errors and
    its connection is cleaned up (conn namespace unsubscribed)."""
    gw = await gateway_factory(ws_compression=True)
    ws = await RawWS.open(gw, offer_deflate=True)
    ws.send_json({"id": 1, "method": "subscribe.test.model"})
    reqs = await service.requests(2)
    cid = reqs.get("access.test.model").path("cid")
    await reqs.get("access.test.model").ok(FULL_ACCESS)
    await reqs.get("get.test.model").json(fixtures.get_reply("test.model"))
    await ws.message(compressed=True)
    ws.writer.transport.abort()
    for i in range(10):
        await service.event("test.model", "custom", {"i": i}, check=False)
    await service.wait_gateway_subscribed(f"conn.{cid}.x", present=False, timeout=2.0)
