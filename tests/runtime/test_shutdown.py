"""Graceful shutdown of a real ``pyresgate`` process on SIGTERM / SIGINT.

The checklist (gateway.app.Gateway.shutdown): /readyz turns 503 at once; the gateway keeps serving for
``--drainperiod`` ms; then it stops accepting connections, closes every WebSocket with 1001 (going away)
at ``--wscloserate`` per second, lets in-flight requests finish, drains NATS and exits 0 within
``--shutdowntimeout``.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time

from tests.runtime.conftest import GatewayStarter, ServiceStarter
from tests.runtime.helpers import AutoService
from tests.support.natsserver import NatsServer
from tests.support.wsclient import WSClient

MODEL = {"string": "foo", "int": 42}
OTHER = {"other": True}
CLIENTS = 50
DRAIN_MS = 500
SHUTDOWN_MS = 5000
CLOSE_RATE = 100  # 50 clients at 100/s: the closes spread over about half a second
GOING_AWAY = 1001


async def open_subscribed_clients(url: str, n: int) -> list[WSClient]:
    clients = list(await asyncio.gather(*(WSClient.connect(url) for _ in range(n))))
    responses = await asyncio.gather(*(c.request("subscribe.test.model", timeout=5) for c in clients))
    for resp in responses:
        assert resp.get("result", {}).get("models", {}).get("test.model") == MODEL, resp
    return clients


async def close_times(clients: list[WSClient], t0: float, timeout: float) -> list[float]:
    """Seconds after ``t0`` at which each client's connection was closed by the gateway."""

    async def one(c: WSClient) -> float:
        await c.wait_closed(timeout)
        return time.monotonic() - t0

    return list(await asyncio.gather(*(one(c) for c in clients)))


async def close_all(clients: list[WSClient]) -> None:
    await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)


async def test_sigterm_drains_then_closes_50_clients_with_1001_and_exits_0(
    nats_server: NatsServer, start_gateway: GatewayStarter, auto_service: ServiceStarter
) -> None:
    svc: AutoService = await auto_service(nats_server.url, {"test.model": MODEL, "test.other": OTHER})
    gw = await start_gateway(
        nats_server.url,
        "--drainperiod",
        str(DRAIN_MS),
        "--shutdowntimeout",
        str(SHUTDOWN_MS),
        "--wscloserate",
        str(CLOSE_RATE),
    )
    clients = await open_subscribed_clients(gw.ws_url, CLIENTS)
    assert svc.count("get.test.model") == 1
    try:
        t0 = time.monotonic()
        gw.send_signal(signal.SIGTERM)
        closed = asyncio.ensure_future(close_times(clients, t0, (DRAIN_MS + SHUTDOWN_MS) / 1000 + 2))

        # 1. Unready at once (well inside the drain period).
        unready_after = await gw.wait_ready(timeout=DRAIN_MS / 1000, status=503)
        assert unready_after < 0.3, f"/readyz turned 503 only after {unready_after:.3f}s"
        status, body, _ = await gw.admin("/readyz")
        assert status == 503 and "draining" in json.loads(body).get("reasons", []), body
        assert (await gw.admin("/healthz"))[0] == 200  # alive, just not ready

        # 2. Still serving during the drain period: open clients get answers, nobody is closed yet.
        resp = await clients[0].request("get.test.other", timeout=1)
        assert resp.get("result", {}).get("models", {}).get("test.other") == OTHER, resp
        assert time.monotonic() - t0 < DRAIN_MS / 1000, "drain check came too late to be meaningful"
        assert not any(c.closed for c in clients), "a client was closed during the drain period"

        # 3./4. Every client is closed with 1001, not before the drain period ended.
        times = await closed
        codes = [c.close_code for c in clients]
        assert codes == [GOING_AWAY] * CLIENTS, f"close codes: {sorted(set(codes), key=str)}"
        assert min(times) >= DRAIN_MS / 1000 - 0.05, (
            f"first close at {min(times):.3f}s, before the drain ended"
        )
        spread = max(times) - min(times)
        expected = (CLIENTS - 1) / CLOSE_RATE
        assert spread >= 0.5 * expected, f"{CLIENTS} closes at {CLOSE_RATE}/s took only {spread:.3f}s"

        # New connections are refused once the drain is over.
        refused, status, _ = await WSClient.try_connect(gw.ws_url)
        if refused is not None:
            await refused.close()
        assert refused is None, "a new WebSocket was accepted after the drain period"
        assert status == 0, f"expected the connection to be refused, got HTTP status {status}"

        # 5. The process exits 0 within the shutdown timeout.
        code = await gw.wait_exit(SHUTDOWN_MS / 1000 + 1 - (time.monotonic() - t0))
        assert code == 0, gw.log()
        assert time.monotonic() - t0 < (DRAIN_MS + SHUTDOWN_MS) / 1000
        assert not [c.broken for c in clients if c.broken]
    finally:
        await close_all(clients)


async def test_sigint_closes_the_client_with_1001_and_exits_0(
    nats_server: NatsServer, start_gateway: GatewayStarter
) -> None:
    gw = await start_gateway(nats_server.url)
    client = await WSClient.connect(gw.ws_url)
    try:
        resp = await client.request("version", {"protocol": "1.2.3"})
        assert "result" in resp, resp
        t0 = time.monotonic()
        gw.send_signal(signal.SIGINT)
        await client.wait_closed(3)
        assert client.close_code == GOING_AWAY
        assert await gw.wait_exit(5) == 0, gw.log()
        assert time.monotonic() - t0 < 5
        assert "Traceback" not in gw.log()
    finally:
        await close_all([client])


async def test_shutdown_after_nats_traffic_is_prompt_and_clean(
    nats_server: NatsServer, start_gateway: GatewayStarter, auto_service: ServiceStarter
) -> None:
    await auto_service(nats_server.url, {"test.model": MODEL, "test.other": OTHER})
    gw = await start_gateway(nats_server.url)
    clients = await open_subscribed_clients(gw.ws_url, 1)
    try:
        t0 = time.monotonic()
        gw.send_signal(signal.SIGTERM)
        await clients[0].wait_closed(3)
        # Nothing is in flight and nothing is queued: draining NATS has nothing to wait for.
        code = await gw.wait_exit(2)
        assert code == 0
        log = gw.log()
        assert "Traceback" not in log and "[ERR]" not in log, log
        assert time.monotonic() - t0 < 2
    finally:
        await close_all(clients)
