"""WebSocket connections served without aiohttp (gateway.web.wsserver): which upgrades take that path,
what the others still get from aiohttp, and the frame rules on a live connection.

An in-process gateway on the session's nats-server; real ``websockets`` and aiohttp clients, and raw
sockets where a test needs bytes no client library sends (unmasked or reserved frames, a bad close).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
from typing import Any

import aiohttp
import pytest
import websockets

from gateway.web import wsserver
from gateway.web.fasthttp import HeadReader, Take
from gateway.web.ws import origin_allowed
from gateway.web.wshandshake import accept_key
from gateway.web.wsserver import WebSocketProtocol
from tests.conftest import GatewayFactory
from tests.gateway.test_fasthttp import _read_response
from tests.gateway.test_wsframes import frame
from tests.support.gatewayrunner import GatewayHandle
from tests.support.until import until
from tests.support.wsclient import assert_result

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
VERSION = b'{"id":1,"method":"version","params":{"protocol":"1.2.3"}}'


def _upgrade(path: str = "/", key: str = KEY, extra: str = "") -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    ).encode()


async def _raw(gw: GatewayHandle, data: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.config.port)
    writer.write(data)
    return reader, writer


async def _raw_ws(gw: GatewayHandle, after: bytes = b"") -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A raw socket past the 101 (``after`` is sent in the same write as the upgrade request)."""
    reader, writer = await _raw(gw, _upgrade() + after)
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 101 "), head
    assert f"Sec-WebSocket-Accept: {accept_key(KEY)}".encode() in head
    return reader, writer


async def _server_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """(opcode, payload) of the next server frame (servers do not mask)."""
    b0, b1 = await asyncio.wait_for(reader.readexactly(2), 5)
    n = b1 & 0x7F
    if n == 126:
        n = int.from_bytes(await reader.readexactly(2), "big")
    elif n == 127:
        n = int.from_bytes(await reader.readexactly(8), "big")
    return b0 & 0x0F, await asyncio.wait_for(reader.readexactly(n), 5)


async def _close_code(reader: asyncio.StreamReader) -> int:
    """The code of the close frame the server sends next (skipping data frames), then EOF."""
    for _ in range(20):
        opcode, payload = await _server_frame(reader)
        if opcode == 8:
            assert await asyncio.wait_for(reader.read(), 5) == b""  # and the server closes the socket
            return int.from_bytes(payload[:2], "big")
    raise AssertionError("no close frame")


def _kinds(gw: GatewayHandle) -> list[str]:
    return [type(s).__name__ for s in gw.gateway.sockets.values()]


# -- which path ----------------------------------------------------------------------------------------


async def test_plain_clients_are_served_without_aiohttp(gateway: GatewayHandle) -> None:
    client = await gateway.connect()
    assert_result(await client.request("version", {"protocol": "1.2.3"}))
    async with aiohttp.ClientSession() as session, session.ws_connect(gateway.ws_url) as ws:
        await ws.send_bytes(VERSION)  # a binary frame is a request too, as before
        assert json.loads(await asyncio.wait_for(ws.receive_str(), 5))["id"] == 1
        assert _kinds(gateway) == ["WebSocketProtocol", "WebSocketProtocol"]
    assert gateway.gateway.metrics.ws_current.value >= 1


async def test_compression_offered_and_on_goes_to_aiohttp(gateway_factory: GatewayFactory) -> None:
    gw = await gateway_factory(ws_compression=True)
    deflate = await gw.connect(compression=True)
    plain = await gw.connect()
    assert "permessage-deflate" in deflate.headers.get("Sec-WebSocket-Extensions", "")
    assert_result(await deflate.request("version", {"protocol": "1.2.3"}))
    assert_result(await plain.request("version", {"protocol": "1.2.3"}))
    assert sorted(_kinds(gw)) == ["DirectWebSocketResponse", "WebSocketProtocol"]


async def test_compression_offered_but_off_is_served_here_without_it(gateway: GatewayHandle) -> None:
    client = await gateway.connect(compression=True)
    assert "Sec-WebSocket-Extensions" not in client.headers
    assert_result(await client.request("version", {"protocol": "1.2.3"}))
    assert _kinds(gateway) == ["WebSocketProtocol"]


async def test_header_auth_goes_to_aiohttp(gateway_factory: GatewayFactory) -> None:
    """wsHeaderAuth asks a service before the 101 (its tests in the catalog pin the outcomes)."""
    gw = await gateway_factory(ws_header_auth="auth.test.header")
    assert not _served_here(gw, _upgrade())


class _NoTransport:
    def write(self, data: bytes) -> None:
        raise AssertionError("nothing is written for a request left to aiohttp")


_NO_TRANSPORT: Any = _NoTransport()


def _served_here(gw: GatewayHandle, request_bytes: bytes) -> bool:
    """Whether a request is upgraded here: the head reader's decision, then ``wsserver.upgrade`` on
    what the reader parsed (as ``FrontProtocol`` does)."""
    reader = HeadReader(gw.config.api_path.encode(), gw.config.ws_path.encode())
    if reader.read(request_bytes) is not Take.WEBSOCKET:
        return False
    target = reader.target.decode("ascii")
    return wsserver.upgrade(gw.gateway, target, reader.headers, _NO_TRANSPORT) is not None


BAD_UPGRADES = [
    ("version 8", _upgrade().replace(b"Version: 13", b"Version: 8")),
    ("version 12", _upgrade().replace(b"Version: 13", b"Version: 12")),
    ("short key", _upgrade(key=base64.b64encode(b"x" * 15).decode())),
    ("key not base64", _upgrade(key="!!!!!!!!!!!!!!!!!!!!!!!!")),
    ("no upgrade header", _upgrade().replace(b"Upgrade: websocket\r\n", b"")),
    ("upgrade to h2c", _upgrade().replace(b"Upgrade: websocket", b"Upgrade: h2c")),
    ("connection keep-alive", _upgrade().replace(b"Connection: Upgrade", b"Connection: keep-alive")),
    ("plain get", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("post", _upgrade().replace(b"GET", b"POST")),
    ("http/1.0", _upgrade().replace(b"HTTP/1.1", b"HTTP/1.0")),
    ("subprotocol", _upgrade(extra="Sec-WebSocket-Protocol: chat\r\n")),
    ("two keys", _upgrade(extra=f"Sec-WebSocket-Key: {KEY}\r\n")),
    ("escaped path", _upgrade(path="/%61")),
]


@pytest.mark.parametrize("request_bytes", [b for _, b in BAD_UPGRADES], ids=[n for n, _ in BAD_UPGRADES])
async def test_other_upgrades_get_aiohttps_answer(gateway: GatewayHandle, request_bytes: bytes) -> None:
    """The fast path takes none of these; what the client gets is aiohttp's (pinned elsewhere for the
    cases resgate answers: 400 system.badRequest for a bad upgrade)."""
    assert not _served_here(gateway, request_bytes)
    reader, writer = await _raw(gateway, request_bytes)
    status, _, body = await _read_response(reader)
    writer.close()
    assert status != 101 or b"Protocol: chat" not in body
    if status == 400 and body:
        assert json.loads(body)["code"] == "system.badRequest"
    assert not any(isinstance(s, WebSocketProtocol) for s in gateway.gateway.sockets.values())


async def test_bad_key_and_version_get_400_bad_request(gateway: GatewayHandle) -> None:
    """(aiohttp also upgrades versions 7 and 8; those go there, so they still do.)"""
    for request_bytes in (BAD_UPGRADES[1][1], BAD_UPGRADES[2][1], BAD_UPGRADES[7][1]):
        reader, writer = await _raw(gateway, request_bytes)
        status, _, body = await _read_response(reader)
        writer.close()
        assert status == 400 and json.loads(body)["code"] == "system.badRequest", (request_bytes, body)


async def test_a_refused_origin_gets_403_as_before(gateway_factory: GatewayFactory) -> None:
    gw = await gateway_factory(allow_origin="http://good.example")
    assert origin_allowed("http://good.example", gw.config.allowed_origins)
    reader, writer = await _raw(gw, _upgrade(extra="Origin: http://evil.example\r\n"))
    status, _, body = await _read_response(reader)
    writer.close()
    assert status == 403 and json.loads(body)["code"] == "system.forbidden"
    ok = await gw.connect({"Origin": "http://good.example"})
    assert_result(await ok.request("version", {"protocol": "1.2.3"}))
    assert _kinds(gw) == ["WebSocketProtocol"]


# -- frames on a live connection -----------------------------------------------------------------------


async def test_frames_sent_with_the_upgrade_request_are_read(gateway: GatewayHandle) -> None:
    reader, writer = await _raw_ws(gateway, after=frame(1, VERSION))
    opcode, payload = await _server_frame(reader)
    assert opcode == 1 and json.loads(payload)["id"] == 1
    writer.close()


async def test_fragments_with_a_ping_between_give_one_request_and_a_pong(gateway: GatewayHandle) -> None:
    reader, writer = await _raw_ws(gateway)
    half = len(VERSION) // 2
    for part in (frame(1, VERSION[:half], fin=False), frame(9, b"hello"), frame(0, VERSION[half:])):
        writer.write(part)
        await writer.drain()
        await asyncio.sleep(0.01)
    assert await _server_frame(reader) == (10, b"hello")
    opcode, payload = await _server_frame(reader)
    assert opcode == 1 and json.loads(payload)["id"] == 1
    writer.close()


async def test_close_is_echoed_with_its_code(gateway: GatewayHandle) -> None:
    reader, writer = await _raw_ws(gateway)
    writer.write(frame(8, (4000).to_bytes(2, "big") + b"bye"))
    assert await _close_code(reader) == 4000
    writer.close()
    await _until_empty(gateway)


MALFORMED = [
    ("unmasked", frame(1, VERSION, mask=b""), 1002),
    ("reserved bit", frame(1, VERSION, b0=0x40), 1002),
    ("reserved opcode", frame(5, b""), 1002),
    ("invalid utf-8", frame(1, b'{"id":1,"method":"\xff"}'), 1007),
    ("bad close code", frame(8, (1006).to_bytes(2, "big")), 1002),
    ("too big, announced", bytes((0x82, 0xFF)) + (1 << 40).to_bytes(8, "big"), 1009),
]


@pytest.mark.parametrize(
    ("data", "code"), [(d, c) for _, d, c in MALFORMED], ids=[n for n, _, _ in MALFORMED]
)
async def test_malformed_frames_close_with_the_code_and_others_go_on(
    gateway_factory: GatewayFactory, data: bytes, code: int
) -> None:
    gw = await gateway_factory(ws_max_message_size=4096)
    bystander = await gw.connect()
    reader, writer = await _raw_ws(gw)
    writer.write(data)
    assert await _close_code(reader) == code
    writer.close()
    assert_result(await bystander.request("version", {"protocol": "1.2.3"}))
    await until(lambda: len(gw.gateway.connections) == 1)


async def test_oversized_message_over_the_websockets_client_closes_1009(
    gateway_factory: GatewayFactory,
) -> None:
    gw = await gateway_factory(ws_max_message_size=2048)
    async with websockets.connect(gw.ws_url, max_size=None) as ws:
        await ws.send(os.urandom(3000))
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
        assert ws.close_code == 1009


async def test_client_gone_without_close_releases_the_connection(gateway: GatewayHandle) -> None:
    _, writer = await _raw_ws(gateway, after=frame(1, VERSION[:10], fin=False))
    await until(lambda: len(gateway.gateway.connections) == 1)
    writer.transport.abort()
    await _until_empty(gateway)
    assert gateway.gateway.metrics.ws_current.value == 0


async def test_request_info_of_the_upgrade_reaches_auth(gateway: GatewayHandle, service: Any) -> None:
    reader, writer = await _raw(
        gateway, _upgrade(path="/?x=1", extra="Cookie: a=b\r\nX-Two: 1\r\nX-Two: 2\r\n")
    )
    assert (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)).startswith(b"HTTP/1.1 101")
    writer.write(frame(1, b'{"id":2,"method":"auth.test.login","params":{}}'))
    req = await service.expect_request("auth.test.login")
    body = req.data
    assert body["header"]["Cookie"] == ["a=b"] and body["header"]["X-Two"] == ["1", "2"]
    assert "Host" not in body["header"] and body["host"] == "127.0.0.1" and body["uri"] == "/?x=1"
    assert body["remoteAddr"].startswith("127.0.0.1:")
    writer.close()


async def _until_empty(gw: GatewayHandle) -> None:
    await until(lambda: not gw.gateway.connections and not gw.gateway.sockets)


@pytest.mark.parametrize("seed", range(4))
async def test_requests_split_at_random_points_are_all_answered(gateway: GatewayHandle, seed: int) -> None:
    """Many requests (some fragmented, pings between) written in random pieces: every one is
    answered once, in order, and every ping gets its pong."""
    rng = random.Random(seed)
    stream = b""
    pings = 0
    for i in range(30):
        request = b'{"id":%d,"method":"version","params":{"protocol":"1.2.3"}}' % i
        cut = rng.randrange(len(request))
        if rng.random() < 0.5:
            stream += frame(1, request[:cut], fin=False) + frame(9, b"%d" % i) + frame(0, request[cut:])
            pings += 1
        else:
            stream += frame(rng.choice((1, 2)), request)
    reader, writer = await _raw_ws(gateway)
    pos = 0
    while pos < len(stream):
        step = rng.randrange(1, 200)
        writer.write(stream[pos : pos + step])
        pos += step
        if rng.random() < 0.2:
            await writer.drain()
            await asyncio.sleep(0.001)
    ids = []
    pongs = 0
    while len(ids) < 30:
        opcode, payload = await _server_frame(reader)
        if opcode == 10:
            pongs += 1
        else:
            ids.append(json.loads(payload)["id"])
    assert ids == list(range(30)) and pongs == pings
    writer.close()
