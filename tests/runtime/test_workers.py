"""Multi-process mode: ``--workers 2`` runs two full gateways on one client port (SO_REUSEPORT)."""

from __future__ import annotations

import asyncio
import json
import signal
import urllib.request

from tests.runtime.conftest import GatewayStarter, ServiceStarter
from tests.runtime.test_shutdown import GOING_AWAY, MODEL, close_all, open_subscribed_clients
from tests.support.natsserver import NatsServer

CLIENTS = 40


def _gateway_nats_connections(monitor_url: str) -> set[int]:
    """The NATS connections of pyresgate processes (the gateways name their connection)."""
    with urllib.request.urlopen(f"{monitor_url}/connz?limit=1000", timeout=2) as resp:
        conns = json.loads(resp.read())["connections"]
    return {c["cid"] for c in conns if c.get("name") == "pyresgate"}


def _gone(pid: int) -> bool:
    """The process has exited (no /proc entry, or a zombie not yet reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] == "Z"
    except FileNotFoundError:
        return True


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


async def test_two_workers_share_the_port_serve_events_and_stop_together(
    nats_server: NatsServer, start_gateway: GatewayStarter, auto_service: ServiceStarter
) -> None:
    svc = await auto_service(nats_server.url, {"test.model": MODEL})
    gw = await start_gateway(nats_server.url, "--workers", "2", "--drainperiod", "0")
    # Both workers are connected to NATS before the second one accepts clients.
    for _ in range(100):
        if len(_gateway_nats_connections(nats_server.monitor_url)) == 2:
            break
        await asyncio.sleep(0.05)
    assert len(_gateway_nats_connections(nats_server.monitor_url)) == 2
    workers = [p for p in _children(gw.pid) if p != gw.pid]
    assert len(workers) == 1, f"expected one extra worker process, got {workers}"

    clients = await open_subscribed_clients(f"ws://127.0.0.1:{gw.port}/", CLIENTS)
    try:
        # Connections were spread over both processes: both got access requests.
        await svc.wait_count("access.test.model", CLIENTS)
        assert svc.count("get.test.model") == 2, "each worker caches the model once"
        await svc.event("test.model", "custom", {"n": 1})
        for c in clients:
            assert tuple(await c.get_event(timeout=2)) == ("test.model.custom", {"n": 1})
        gw.send_signal(signal.SIGTERM)
        assert await gw.wait_exit(10) == 0
        for c in clients:
            await c.wait_closed(5)
            assert c.close_code == GOING_AWAY
        for pid in workers:
            assert _gone(pid), f"worker {pid} still running after the first one exited"
    finally:
        await close_all(clients)
