"""The HTTP fast path (gateway.web.fasthttp) in a real `pyresgate` process (uvloop, as deployed):
pipelined GETs, a hand-over to aiohttp for a POST and a WebSocket upgrade on one connection."""

from __future__ import annotations

import asyncio
import json

from tests.runtime.conftest import GatewayStarter, ServiceStarter
from tests.runtime.helpers import AutoService
from tests.support.natsserver import NatsServer

MODEL = {"name": "fast"}


async def _response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return status, await asyncio.wait_for(reader.readexactly(length), 5)


async def test_fast_gets_then_hand_over_in_a_real_process(
    nats_server: NatsServer, start_gateway: GatewayStarter, auto_service: ServiceStarter
) -> None:
    svc: AutoService = await auto_service(nats_server.url, {"test.model": MODEL})
    gw = await start_gateway(nats_server.url)
    host, port = gw.http_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    get = b"GET /api/test/model HTTP/1.1\r\nHost: x\r\n\r\n"
    head = b"HEAD /api/test/model HTTP/1.1\r\nHost: x\r\n\r\n"
    writer.write(get + get + head[:20])  # the HEAD arrives in two pieces
    await writer.drain()
    assert await _response(reader) == (200, json.dumps(MODEL, separators=(",", ":")).encode())
    assert (await _response(reader))[0] == 200
    writer.write(head[20:])
    status_line = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert status_line.startswith(b"HTTP/1.1 200")
    # OPTIONS is aiohttp's: the connection is handed over and stays usable.
    writer.write(b"OPTIONS /api/test/model HTTP/1.1\r\nHost: x\r\nOrigin: http://a\r\n\r\n" + get)
    assert (await _response(reader))[0] == 200
    assert (await _response(reader))[0] == 200
    writer.close()
    assert svc is not None
