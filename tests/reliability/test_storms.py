"""Connection storms against a real ``pyresgate`` process: thousands of WebSocket clients connect,
subscribe and leave (half of them closing properly, half resetting the socket), and thousands of
HTTP requests each on a new connection. Afterwards no connection is left, the cache empties, the
gateway's memory is back near its baseline, and a client is served as before.

The 10,000-idle-connections hold is a soak (``-m soak``), not part of the default run.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time

import aiohttp
import pytest

from tests.reliability.support import ModelService, RawWS, metrics, rss_bytes
from tests.runtime.conftest import GatewayStarter
from tests.runtime.helpers import GatewayProcess, parse_metrics, sample
from tests.support.cluster import NatsNode
from tests.support.wsclient import WSClient

#: WebSocket clients in the storm, and how many are in flight at once.
WS_CLIENTS = 3000
HTTP_REQUESTS = 2000
CONCURRENCY = 100
#: Memory a storm may leave behind once every client is gone, after a first storm warmed the allocator.
#: Measured: ~4 MiB after the second storm, nothing more from the fourth on (a plateau, no leak);
#: leaking 1 KB per connection would add 3 MiB per storm on top.
RSS_LEFT_MAX = 8 * 1024 * 1024
#: Idle subscribed connections held by the soak.
SOAK_CONNECTIONS = 10_000
RIDS = [f"test.storm{i}" for i in range(20)]


async def _ws_client(port: int, rid: str, reset: bool) -> None:
    ws = await RawWS.connect(port, rcvbuf=None)
    try:
        resp = await ws.request(f"subscribe.{rid}")
        assert "result" in resp, resp
        if reset:  # an abrupt end: RST instead of FIN
            ws.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    finally:
        ws.close()


async def _in_waves(n: int, make: object) -> None:
    sem = asyncio.Semaphore(CONCURRENCY)

    async def one(i: int) -> None:
        async with sem:
            await make(i)  # type: ignore[operator]

    await asyncio.gather(*(one(i) for i in range(n)))


async def _settled(gw: GatewayProcess, timeout: float = 20.0) -> dict[str, float]:
    """Wait until no WebSocket is open and the cache is empty (eviction delay 0); the samples."""
    deadline = time.monotonic() + timeout
    while True:
        samples = parse_metrics(await metrics(gw.admin_url))
        current = sample(samples, "resgate_ws_current_connections")
        cached = sample(samples, "resgate_cache_resources")
        if current == 0 and cached == 0:
            return {"connections": sample(samples, "resgate_ws_connections_total")}
        if time.monotonic() > deadline:
            raise AssertionError(f"{current} connections and {cached} resources left\n{gw.log()}")
        await asyncio.sleep(0.1)


async def test_connection_storms_leave_nothing_behind(
    nats_node: NatsNode, start_gateway: GatewayStarter
) -> None:
    models = {rid: {"v": rid} for rid in RIDS}
    async with ModelService(nats_node.url, models):
        gw = await start_gateway(nats_node.url, "--cacheevictiondelay", "0")
        connector = aiohttp.TCPConnector(force_close=True, limit=CONCURRENCY)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def get(i: int) -> None:
                async with session.get(f"{gw.http_url}/api/test/storm{i % len(RIDS)}") as resp:
                    assert resp.status == 200, await resp.text()
                    assert await resp.json() == {"v": f"test.storm{i % len(RIDS)}"}

            # Warm up with storms of the same size, WebSocket and HTTP (imports, allocator arenas and
            # free lists reach the size the storms need; the measured storms then find them), then
            # take the baseline.
            await _in_waves(WS_CLIENTS, lambda i: _ws_client(gw.port, RIDS[i % len(RIDS)], i % 2 == 1))
            await _in_waves(HTTP_REQUESTS, get)
            await _settled(gw)
            baseline = rss_bytes(gw.pid)

            started = time.monotonic()
            await _in_waves(WS_CLIENTS, lambda i: _ws_client(gw.port, RIDS[i % len(RIDS)], i % 2 == 1))
            ws_seconds = time.monotonic() - started
            counts = await _settled(gw)
            assert counts["connections"] == 2 * WS_CLIENTS

            await _in_waves(HTTP_REQUESTS, get)
        await _settled(gw)
        left = rss_bytes(gw.pid) - baseline
        assert left < RSS_LEFT_MAX, f"{left / 2**20:.1f} MiB left after the storms"

        client = await WSClient.connect(gw.ws_url)
        try:
            resp = await client.request("subscribe.test.storm0", timeout=3)
            assert resp["result"]["models"] == {"test.storm0": {"v": "test.storm0"}}
        finally:
            await client.close()
        assert gw.returncode is None
        print(f"storm: {WS_CLIENTS} WebSocket clients in {ws_seconds:.1f} s, RSS left {left / 2**20:.1f} MiB")


@pytest.mark.soak
@pytest.mark.timeout(600)
async def test_soak_10000_idle_subscribed_connections_are_held_and_released(
    nats_node: NatsNode, start_gateway: GatewayStarter
) -> None:
    async with ModelService(nats_node.url, {rid: {"v": rid} for rid in RIDS}):
        gw = await start_gateway(nats_node.url, "--cacheevictiondelay", "0")
        baseline = rss_bytes(gw.pid)
        held: list[RawWS] = []
        try:
            for i in range(SOAK_CONNECTIONS):
                ws = await RawWS.connect(gw.port, rcvbuf=None)
                held.append(ws)
                assert "result" in await ws.request(f"subscribe.{RIDS[i % len(RIDS)]}")
            per_connection = (rss_bytes(gw.pid) - baseline) / SOAK_CONNECTIONS
            samples = parse_metrics(await metrics(gw.admin_url))
            assert sample(samples, "resgate_ws_current_connections") == SOAK_CONNECTIONS
            print(f"soak: {SOAK_CONNECTIONS} idle connections, {per_connection / 1024:.1f} KB each")
        finally:
            for ws in held:
                ws.close()
        await _settled(gw, 60)
