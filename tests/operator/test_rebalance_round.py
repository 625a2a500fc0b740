"""The operator's rebalancing round: which pods it compares (pure), and one round against real
in-process gateways addressed as the operator addresses pods (pod IP + the pod's admin port)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
from pyresgate_operator import rebalance
from pyresgate_operator import spec as specs

from tests.conftest import GatewayFactory
from tests.support.natsserver import free_port

SCALING = {"maxReplicas": 4, "targetConnectionsPerPod": 100, "rebalance": {"enabled": True, "tolerance": 0.2,
                                                                          "maxShedPerSecond": 40}}  # fmt: skip


def pod(
    name: str, port: int, *, ready: bool = True, ip: str = "127.0.0.1", terminating: bool = False
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if terminating:
        meta["deletionTimestamp"] = "2026-12-07T10:00:00Z"
    return {
        "metadata": meta,
        "spec": {"containers": [{"name": "gateway", "ports": [{"name": "http", "containerPort": 8080},
                                                             {"name": "admin", "containerPort": port}]}]},
        "status": {"podIP": ip, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }  # fmt: skip


def cluster(replicas: int, **autoscaling: Any) -> specs.ClusterSpec:
    body = {
        "replicas": replicas,
        "nats": {"urls": ["nats://nats:4222"]},
        "autoscaling": {**SCALING, **autoscaling},
    }
    return specs.parse(body, namespace="apps", default_image="img:1")


def test_endpoints_are_pod_ip_and_the_pods_own_admin_port() -> None:
    pods = [pod("a", 9090, ip="10.0.0.5"), pod("b", 9191, ip="fd00::7")]
    assert rebalance.pod_endpoints(pods, desired=2) == {
        "a": "http://10.0.0.5:9090",
        "b": "http://[fd00::7]:9191",
    }


def test_no_round_while_pods_come_and_go() -> None:
    assert rebalance.pod_endpoints([pod("a", 1), pod("b", 2, ready=False)], desired=2) is None
    assert (
        rebalance.pod_endpoints([pod("a", 1), pod("b", 2, terminating=True), pod("c", 3)], desired=2) is None
    )
    assert rebalance.pod_endpoints([pod("a", 1)], desired=2) is None  # a scale-out still starting pods
    assert rebalance.pod_endpoints([pod("a", 1), pod("b", 2, ip="")], desired=2) is None


async def test_round_for_asks_the_busiest_real_gateway_to_shed(gateway_factory: GatewayFactory) -> None:
    ports = [free_port(), free_port()]
    busy = await gateway_factory(admin_port=ports[0])
    idle = await gateway_factory(admin_port=ports[1])
    for _ in range(8):
        await busy.connect()
    deadline = time.monotonic() + 5
    while len(busy.gateway.sockets) < 8:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)
    pods = [pod("gw-0", ports[0]), pod("gw-1", ports[1])]
    async with aiohttp.ClientSession() as session:
        off = await rebalance.round_for(cluster(2, rebalance={"enabled": False}), pods, session)
        result = await rebalance.round_for(cluster(2), pods, session)
    assert off is None
    assert result is not None
    assert result.counts == {"gw-0": 8, "gw-1": 0} and result.targets == {"gw-0": 5}  # ceil(4 * 1.1)
    assert result.rates == {"gw-0": 40}
    message = rebalance.describe(result, max_shed_per_second=40)
    assert "gw-0 8→5" in message and "3 connections" in message
    deadline = time.monotonic() + 5
    while sum(not client.closed for client in busy.clients) > 5:
        assert time.monotonic() < deadline, "the busy gateway did not shed"
        await asyncio.sleep(0.02)
    assert all(client.close_code == 1001 for client in busy.clients[:3])
    assert idle.clients == []
