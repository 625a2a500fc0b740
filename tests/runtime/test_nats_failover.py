"""Losing the NATS connection, with a real ``pyresgate`` process and real nats-servers.

By default the gateway reconnects (to any server of its ``--nats`` list or learned from the cluster), is
unready while disconnected, answers client requests meanwhile at once with ``system.serviceUnavailable``,
and after reconnecting re-fetches every cached resource (as after ``system.reset``), so clients get the
changes whose events were lost. ``--exitonnatsloss`` restores resgate's behaviour: exit code 1.
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
from typing import Any

import pytest

from tests.runtime.conftest import GatewayStarter, ServiceStarter
from tests.runtime.helpers import AutoService, http_get
from tests.support.cluster import NatsCluster, NatsNode
from tests.support.wsclient import Event, WSClient

#: The gateway's NATS connection name.
GATEWAY_NAME = "pyresgate"
#: Request timeout of the gateways here (ms): an answer well before it is "prompt", not a timeout.
REQ_TIMEOUT_MS = 3000
#: Seconds within which a request during an outage must be answered.
PROMPT = 0.5


async def subscribed_clients(gw_url: str, n: int, rid: str, expected: dict[str, Any]) -> list[WSClient]:
    clients = [await WSClient.connect(gw_url) for _ in range(n)]
    for c in clients:
        resp = await c.request(f"subscribe.{rid}", timeout=3)
        assert resp.get("result", {}).get("models", {}).get(rid) == expected, resp
    return clients


async def close_all(clients: list[WSClient]) -> None:
    await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)


def apply_events(state: dict[str, Any], events: list[Event]) -> None:
    """Apply model change and collection add/remove events to ``state`` (rid → model dict or list)."""
    for ev in events:
        rid, _, name = ev.name.rpartition(".")
        if name == "change":
            values = ev.data["values"]
            same = {k: v for k, v in values.items() if state[rid].get(k) == v}
            assert not same, f"change event {ev.data} carries unchanged values {same}: not a difference"
            state[rid] = {**state[rid], **values}
        elif name == "add":
            state[rid].insert(ev.data["idx"], ev.data["value"])
        elif name == "remove":
            del state[rid][ev.data["idx"]]
        else:
            raise AssertionError(f"unexpected event {ev!r}")


async def converge(client: WSClient, state: dict[str, Any], expected: dict[str, Any], timeout: float) -> None:
    """Apply the client's events until ``state`` equals ``expected`` (bounded)."""
    deadline = time.monotonic() + timeout
    while state != expected:
        left = deadline - time.monotonic()
        assert left > 0, f"client state {state} did not become {expected} within {timeout}s"
        apply_events(state, [await client.get_event(left)])


@pytest.mark.parametrize("servers", ["listed", "learned"])
async def test_failover_to_another_cluster_node_keeps_clients_and_refetches_lost_changes(
    servers: str, cluster: NatsCluster, start_gateway: GatewayStarter, auto_service: ServiceStarter
) -> None:
    a, b, c = cluster.nodes
    models: dict[str, Any] = {
        "test.model": {"value": 1, "keep": "k"},
        "test.coll": [1, 2, 3],
        "test.other": {"o": 1},
    }
    svc: AutoService = await auto_service(b.url, copy.deepcopy(models))
    # "listed": A and C are in --nats (the client may pick either); "learned": only A is, and the gateway
    # must find B and C through the cluster's INFO (connect_urls).
    urls = cluster.urls(a, c) if servers == "listed" else a.url
    gw = await start_gateway(urls, "-r", str(REQ_TIMEOUT_MS))
    home = await cluster.wait_node_with_client(GATEWAY_NAME)
    assert home is not b, f"gateway connected to {home.name}, expected A or C"

    clients = await subscribed_clients(gw.ws_url, 2, "test.model", models["test.model"])
    try:
        for client in clients:
            resp = await client.request("subscribe.test.coll", timeout=3)
            assert resp.get("result", {}).get("collections", {}).get("test.coll") == [1, 2, 3], resp
        await b.wait_interest("event.test.model.change")
        await b.wait_interest("event.test.coll.add")
        assert svc.count("get.test.model") == 1 and svc.count("get.test.coll") == 1

        # The service changes its data while the gateway is cut off: the events are lost.
        svc.models["test.model"] = {"value": 2, "keep": "k"}
        svc.models["test.coll"] = [1, 3, 4]
        home.kill()

        # The gateway reconnects to another node and is ready again ...
        new_home = await cluster.wait_node_with_client(GATEWAY_NAME, not_on=home)
        assert new_home.running
        await gw.wait_ready(timeout=5, status=200)
        # ... re-fetches the cached resources, and the clients get the differences.
        await svc.wait_count("get.test.model", 2, timeout=5)
        await svc.wait_count("get.test.coll", 2, timeout=5)
        for client in clients:
            state = {"test.model": {"value": 1, "keep": "k"}, "test.coll": [1, 2, 3]}
            await converge(
                client, state, {"test.model": {"value": 2, "keep": "k"}, "test.coll": [1, 3, 4]}, 5
            )

        # Same WebSockets, same subscriptions: an event published after the failover reaches them.
        await b.wait_interest("event.test.model.change")
        svc.models["test.model"] = {"value": 3, "keep": "k"}
        await svc.event("test.model", "change", {"values": {"value": 3}})
        for client in clients:
            await client.expect_event("test.model.change", {"values": {"value": 3}}, timeout=3)
            assert not client.closed

        # And new requests are served through the new server.
        resp = await clients[0].request("get.test.other", timeout=3)
        assert resp.get("result", {}).get("models", {}).get("test.other") == {"o": 1}, resp
        for client in clients:
            await client.assert_no_event(0.1)
            assert not client.broken, client.broken
        assert svc.count("get.test.model") == 2 and svc.count("get.test.coll") == 2
    finally:
        await close_all(clients)


async def test_requests_during_an_outage_are_answered_at_once_with_service_unavailable(
    nats_node: NatsNode, start_gateway: GatewayStarter, auto_service: ServiceStarter
) -> None:
    svc: AutoService = await auto_service(nats_node.url, {"test.model": {"value": 1}, "test.other": {"o": 1}})
    svc.hold.add("call.test.model.slow")
    gw = await start_gateway(nats_node.url, "-r", str(REQ_TIMEOUT_MS))
    [client] = await subscribed_clients(gw.ws_url, 1, "test.model", {"value": 1})
    try:
        # A call in flight when the connection drops fails at once instead of waiting for the timeout.
        in_flight = await client.send("call.test.model.slow", {})
        await svc.wait_count("call.test.model.slow", 1, timeout=2)
        t0 = time.monotonic()
        nats_node.kill()
        err = await in_flight.error(timeout=2)
        assert err["code"] == "system.serviceUnavailable", err
        assert time.monotonic() - t0 < PROMPT + 0.5

        await gw.wait_ready(timeout=2, status=503)
        # New requests that need a service are refused promptly while disconnected.
        for method, params in [("get.test.other", None), ("call.test.model.set", {"value": 2}),
                               ("subscribe.test.other", None)]:  # fmt: skip
            t = time.monotonic()
            pending = await (client.send(method, params) if params is not None else client.send(method))
            err = await pending.error(timeout=REQ_TIMEOUT_MS / 1000 + 1)
            took = time.monotonic() - t
            assert err["code"] == "system.serviceUnavailable", (method, err)
            assert took < PROMPT, f"{method} answered after {took:.3f}s, not promptly"
        t = time.monotonic()
        status, body, _ = await http_get(f"{gw.http_url}/api/test/other", timeout=REQ_TIMEOUT_MS / 1000 + 1)
        took = time.monotonic() - t
        assert took < PROMPT, f"HTTP GET answered after {took:.3f}s"
        assert status >= 500, (status, body)
        assert json.loads(body).get("code") == "system.serviceUnavailable", body
        assert not client.closed

        # NATS back (same port): ready again and serving.
        nats_node.start()
        svc2: AutoService = await auto_service(
            nats_node.url, {"test.other": {"o": 2}, "test.model": {"value": 1}}
        )
        await gw.wait_ready(timeout=5, status=200)
        resp = await client.request("get.test.other", timeout=3)
        assert resp.get("result", {}).get("models", {}).get("test.other") == {"o": 2}, resp
        assert svc2.count("get.test.other") == 1
        assert not client.broken, client.broken
    finally:
        await close_all([client])


async def test_exit_on_nats_loss_exits_1_when_the_only_server_dies(
    nats_node: NatsNode, start_gateway: GatewayStarter
) -> None:
    gw = await start_gateway(nats_node.url, "--exitonnatsloss")
    client = await WSClient.connect(gw.ws_url)
    try:
        t0 = time.monotonic()
        nats_node.kill()
        code = await gw.wait_exit(5)
        assert code == 1, gw.log()
        assert time.monotonic() - t0 < 5
        await client.wait_closed(2)
        assert "Lost NATS connection" in gw.log()
    finally:
        await close_all([client])


CLEAN_EXIT_CLIENTS = 20


async def test_exit_on_nats_loss_stops_cleanly_with_a_client_connected(
    nats_node: NatsNode, start_gateway: GatewayStarter
) -> None:
    gw = await start_gateway(nats_node.url, "--exitonnatsloss")
    # Several open WebSockets, so the shutdown race is lost every time, not just most of the time.
    clients = list(await asyncio.gather(*(WSClient.connect(gw.ws_url) for _ in range(CLEAN_EXIT_CLIENTS))))
    try:
        nats_node.kill()
        assert await gw.wait_exit(5) == 1
        for client in clients:
            await client.wait_closed(2)
        log = gw.log()
        assert "Traceback" not in log and "Unhandled exception" not in log, log
    finally:
        await close_all(clients)
