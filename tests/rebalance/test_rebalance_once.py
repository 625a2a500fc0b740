"""``rebalance_once`` against real in-process gateways: it reads each admin ``/connections``, asks the
busiest pods to shed with the rate split among them, stops a pod still shedding from an earlier
round, and skips (and reports) pods it cannot reach or that answer nonsense, without raising.
"""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from pyresgate_operator.rebalance import rebalance_once

from tests.conftest import GatewayFactory
from tests.support.gatewayrunner import GatewayHandle
from tests.support.natsserver import free_port
from tests.support.until import until
from tests.support.wsclient import WSClient


async def _gateways(
    factory: GatewayFactory, clients: list[int]
) -> tuple[list[GatewayHandle], dict[str, str]]:
    gws, endpoints = [], {}
    for i, n in enumerate(clients):
        port = free_port()
        gw = await factory(admin_port=port)
        for _ in range(n):
            await gw.connect()
        gws.append(gw)
        endpoints[f"pod-{i}"] = f"http://127.0.0.1:{port}"
    for gw, n in zip(gws, clients):  # every upgrade registered before the round reads the counts
        await until(lambda gw=gw, n=n: len(gw.gateway.sockets) == n)  # type: ignore[misc]
    return gws, endpoints


def _open(clients: list[WSClient]) -> int:
    return sum(not c.closed for c in clients)


async def test_the_busiest_pods_shed_down_to_the_level_with_the_rate_split(
    gateway_factory: GatewayFactory,
) -> None:
    gws, endpoints = await _gateways(gateway_factory, [6, 6, 0, 0])
    async with aiohttp.ClientSession() as session:
        result = await rebalance_once(endpoints, 0.2, 40, session)
    assert result.counts == {"pod-0": 6, "pod-1": 6, "pod-2": 0, "pod-3": 0}
    assert result.spread == 1.0
    # avg 3: level ceil(3 * 1.1) = 4; the 40/s are split between the two shedding pods.
    assert result.targets == {"pod-0": 4, "pod-1": 4}
    assert result.rates == {"pod-0": 20.0, "pod-1": 20.0}
    assert result.errors == {} and result.stopped == [] and result.shed_requested == 4
    for gw in gws[:2]:
        await until(lambda gw=gw: _open(gw.clients) == 4)  # type: ignore[misc]
        assert [c.close_code for c in gw.clients[:2]] == [1001, 1001]  # the oldest two
    assert all(not c.closed for gw in gws for c in gw.clients[2:])


async def test_within_tolerance_nothing_is_shed(gateway_factory: GatewayFactory) -> None:
    gws, endpoints = await _gateways(gateway_factory, [3, 3, 2])
    async with aiohttp.ClientSession() as session:
        result = await rebalance_once(endpoints, 0.2, 50, session)
    assert result.balanced and result.targets == {} and result.counts == {"pod-0": 3, "pod-1": 3, "pod-2": 2}
    await asyncio.sleep(0.1)
    assert all(not c.closed for gw in gws for c in gw.clients)


async def test_unreachable_and_wrong_endpoints_are_skipped_and_reported(
    gateway_factory: GatewayFactory,
) -> None:
    gws, endpoints = await _gateways(gateway_factory, [4, 0])
    endpoints["gone"] = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    endpoints["not-admin"] = gws[0].http_url  # the client port: /connections is a 404 there
    async with aiohttp.ClientSession() as session:
        result = await rebalance_once(endpoints, 0.2, 50, session)
    assert set(result.errors) == {"gone", "not-admin"}
    assert "HTTP 404" in result.errors["not-admin"]
    assert "GET /connections" in result.errors["gone"]
    assert result.counts == {"pod-0": 4, "pod-1": 0}
    assert result.targets == {"pod-0": 3} and not result.balanced  # avg 2: level ceil(2 * 1.1) = 3
    await until(lambda: _open(gws[0].clients) == 3)


async def test_a_pod_still_shedding_but_no_longer_planned_is_stopped(gateway_factory: GatewayFactory) -> None:
    gws, endpoints = await _gateways(gateway_factory, [4, 3])
    async with aiohttp.ClientSession() as session:
        # An earlier round left pod-0 shedding slowly towards 0.
        async with session.post(endpoints["pod-0"] + "/shed", json={"target": 0, "rate": 0.5}) as resp:
            assert resp.status == 200
        await until(lambda: _open(gws[0].clients) == 3)
        result = await rebalance_once(endpoints, 0.2, 50, session)  # 3 and 3: balanced
        assert result.targets == {} and result.stopped == ["pod-0"] and result.errors == {}
        async with session.get(endpoints["pod-0"] + "/connections") as resp:
            status = await resp.json()
    assert status["shedding"] is False and status["connections"] == 3
    await asyncio.sleep(2.2)  # past the next close the old 0.5/s shed would have made
    assert _open(gws[0].clients) == 3


@pytest.mark.parametrize("rate", [0, -1, float("nan"), float("inf")])
async def test_a_bad_rate_is_a_value_error(rate: float) -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ValueError, match="max_shed_per_second"):
            await rebalance_once({}, 0.2, rate, session)
