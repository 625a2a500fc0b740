"""Load shedding on the admin port: ``GET /connections`` and ``POST /shed`` (issue 11, rebalancing).

Real WebSocket clients on an in-process gateway: ``POST /shed {"target": N, "rate": R}`` closes the
oldest WebSockets beyond N with 1001 at most R per second, a second call replaces the first, bad
bodies get 400 with a JSON error, the client port knows nothing of it, and the closes are counted
in ``pyresgate_shed_connections_total``.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.web.admin import BadShedRequest, parse_shed
from tests.conftest import GatewayFactory
from tests.support.gatewayrunner import GatewayHandle
from tests.support.natsserver import free_port
from tests.support.wsclient import WSClient

GOING_AWAY = 1001
#: ``GET /connections`` of an idle gateway.
EMPTY = {"connections": 0, "shedding": False, "target": None, "rate": None, "shedTotal": 0, "draining": False}


async def _admin_gateway(gateway_factory: GatewayFactory, **overrides: Any) -> tuple[GatewayHandle, str]:
    port = free_port()
    gw = await gateway_factory(admin_port=port, **overrides)
    return gw, f"http://127.0.0.1:{port}"


async def _clients(gw: GatewayHandle, n: int) -> list[WSClient]:
    """``n`` clients connected one after another, each registered before the next (oldest first)."""
    clients = []
    for i in range(n):
        clients.append(await gw.connect())
        deadline = time.monotonic() + 2
        while len(gw.gateway.sockets) < i + 1:
            assert time.monotonic() < deadline, "the gateway did not register the WebSocket"
            await asyncio.sleep(0.005)
    return clients


async def _get(url: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        return resp.status, await resp.json(content_type=None)


async def _post(url: str, body: Any) -> tuple[int, Any]:
    data = body if isinstance(body, bytes) else None
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=data, json=None if data is not None else body) as resp,
    ):
        return resp.status, await resp.json(content_type=None)


async def _wait_closed(clients: list[WSClient], timeout: float = 5.0) -> list[float]:
    """Monotonic times at which each client saw its connection closed."""

    async def one(c: WSClient) -> float:
        await c.wait_closed(timeout)
        return time.monotonic()

    return list(await asyncio.gather(*(one(c) for c in clients)))


async def _wait_not_shedding(admin: str, timeout: float = 5.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status, body = await _get(admin + "/connections")
        assert status == 200, body
        if not body["shedding"]:
            return dict(body)
        assert time.monotonic() < deadline, f"still shedding after {timeout}s: {body}"
        await asyncio.sleep(0.02)


def _shed_metric(text: str) -> float:
    for line in text.splitlines():
        if line.startswith("pyresgate_shed_connections_total "):
            return float(line.split()[1])
    raise AssertionError("pyresgate_shed_connections_total missing from /metrics")


async def test_connections_reports_open_websockets(gateway_factory: GatewayFactory) -> None:
    gw, admin = await _admin_gateway(gateway_factory)
    status, body = await _get(admin + "/connections")
    assert status == 200
    assert body == EMPTY
    await _clients(gw, 3)
    assert (await _get(admin + "/connections"))[1]["connections"] == 3


async def test_shed_closes_the_oldest_beyond_target_with_1001_and_counts_them(
    gateway_factory: GatewayFactory,
) -> None:
    gw, admin = await _admin_gateway(gateway_factory)
    clients = await _clients(gw, 5)
    status, body = await _post(admin + "/shed", {"target": 2, "rate": 1000})
    assert status == 200, body
    assert body["target"] == 2 and body["rate"] == 1000.0

    await _wait_closed(clients[:3])
    assert [c.close_code for c in clients[:3]] == [GOING_AWAY] * 3
    final = await _wait_not_shedding(admin)
    assert final["connections"] == 2 and final["shedTotal"] == 3 and final["target"] is None
    for c in clients[3:]:  # the two newest stay open and served
        assert not c.closed
        assert "result" in await c.request("version", {"protocol": "1.2.3"})
    async with aiohttp.ClientSession() as session, session.get(admin + "/metrics") as resp:
        assert _shed_metric(await resp.text()) == 3


async def test_shed_respects_the_rate(gateway_factory: GatewayFactory) -> None:
    gw, admin = await _admin_gateway(gateway_factory)
    clients = await _clients(gw, 8)
    t0 = time.monotonic()
    assert (await _post(admin + "/shed", {"target": 0, "rate": 10}))[0] == 200
    times = sorted(await _wait_closed(clients, timeout=5))
    # 8 closes at 10/s: one every 100 ms, the first at once, the last 0.7 s after it. A stall of
    # the loop can make two look simultaneous, but the next is still spaced from the later one.
    assert times[0] - t0 < 1.0, times[0] - t0
    assert times[-1] - times[0] >= 0.6, f"8 closes at 10/s took only {times[-1] - times[0]:.3f}s"
    for i in range(len(times) - 2):
        assert times[i + 2] - times[i] >= 0.09, f"3 closes within {times[i + 2] - times[i]:.3f}s"
    assert all(c.close_code == GOING_AWAY for c in clients)


async def test_shed_at_a_higher_rate_goes_in_batches_at_that_rate(gateway_factory: GatewayFactory) -> None:
    gw, admin = await _admin_gateway(gateway_factory)
    clients = await _clients(gw, 30)
    assert (await _post(admin + "/shed", {"target": 0, "rate": 40}))[0] == 200
    times = sorted(await _wait_closed(clients, timeout=5))
    # Batches of 2 every 50 ms: 30 closes span 14 intervals, 0.7 s.
    assert times[-1] - times[0] >= 0.6, f"30 closes at 40/s took only {times[-1] - times[0]:.3f}s"


async def test_a_second_shed_replaces_the_first(gateway_factory: GatewayFactory) -> None:
    gw, admin = await _admin_gateway(gateway_factory)
    clients = await _clients(gw, 6)
    # A slow shed towards 0: the first close goes at once, the next only after 2 s...
    assert (await _post(admin + "/shed", {"target": 0, "rate": 0.5}))[0] == 200
    await _wait_closed(clients[:1])
    # ... replaced by a fast one towards 4: one more close (6 -> 4), not 6 + 2 and not at 0.5/s.
    status, body = await _post(admin + "/shed", {"target": 4, "rate": 50})
    assert status == 200 and body["target"] == 4 and body["rate"] == 50.0, body
    await _wait_closed(clients[1:2], timeout=1.5)
    final = await _wait_not_shedding(admin, timeout=2)
    assert final["connections"] == 4 and final["shedTotal"] == 2
    await asyncio.sleep(0.3)
    assert not any(c.closed for c in clients[2:])


async def test_delete_stops_a_shed_where_it_is(gateway_factory: GatewayFactory) -> None:
    gw, admin = await _admin_gateway(gateway_factory)
    clients = await _clients(gw, 4)
    assert (await _post(admin + "/shed", {"target": 0, "rate": 0.5}))[0] == 200
    await _wait_closed(clients[:1])
    async with aiohttp.ClientSession() as session, session.delete(admin + "/shed") as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body["shedding"] is False and body["connections"] == 3 and body["shedTotal"] == 1, body
    await asyncio.sleep(2.2)  # past the next close the 0.5/s shed would have made
    assert not any(c.closed for c in clients[1:])
    async with aiohttp.ClientSession() as session, session.delete(admin + "/shed") as resp:
        assert resp.status == 200  # nothing to stop: still fine


async def test_the_same_shed_twice_closes_once(gateway_factory: GatewayFactory) -> None:
    gw, admin = await _admin_gateway(gateway_factory)
    clients = await _clients(gw, 4)
    for _ in range(2):
        assert (await _post(admin + "/shed", {"target": 3, "rate": 100}))[0] == 200
    await _wait_closed(clients[:1])
    final = await _wait_not_shedding(admin)
    assert final["connections"] == 3 and final["shedTotal"] == 1
    # At or above the current count nothing happens.
    status, body = await _post(admin + "/shed", {"target": 3, "rate": 100})
    assert status == 200 and body["shedding"] is False
    await asyncio.sleep(0.1)
    assert (await _get(admin + "/connections"))[1]["connections"] == 3


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "not JSON"),
        (b"", "not JSON"),
        ([1, 2], "JSON object"),
        ({"rate": 5}, "target"),
        ({"target": 1}, "rate"),
        ({"target": -1, "rate": 5}, "target"),
        ({"target": 1.5, "rate": 5}, "target"),
        ({"target": True, "rate": 5}, "target"),
        ({"target": "3", "rate": 5}, "target"),
        ({"target": 1, "rate": 0}, "rate"),
        ({"target": 1, "rate": -2}, "rate"),
        ({"target": 1, "rate": "fast"}, "rate"),
        ({"target": 1, "rate": None}, "rate"),
        (b'{"target": 1, "rate": NaN}', "not JSON"),
        ({"target": 1, "rate": 5, "tagret": 2}, "unknown keys: tagret"),
    ],
)
async def test_bad_shed_bodies_get_400_and_shed_nothing(
    gateway_factory: GatewayFactory, body: Any, message: str
) -> None:
    gw, admin = await _admin_gateway(gateway_factory)
    clients = await _clients(gw, 1)
    status, reply = await _post(admin + "/shed", body)
    assert status == 400, reply
    assert message in reply["error"], reply
    await asyncio.sleep(0.05)
    assert not clients[0].closed
    assert (await _get(admin + "/connections"))[1]["shedTotal"] == 0


async def test_a_huge_shed_body_gets_413_and_sheds_nothing(gateway_factory: GatewayFactory) -> None:
    gw, admin = await _admin_gateway(gateway_factory)
    clients = await _clients(gw, 1)
    status, reply = await _post(admin + "/shed", b'{"target": 0, "rate": 1, "pad": "' + b"x" * 10_000 + b'"}')
    assert status == 413 and "larger than" in reply["error"], reply
    assert not clients[0].closed and (await _get(admin + "/connections"))[1]["shedTotal"] == 0


async def test_shed_is_not_on_the_client_port(gateway_factory: GatewayFactory) -> None:
    gw, admin = await _admin_gateway(gateway_factory)
    clients = await _clients(gw, 2)
    async with aiohttp.ClientSession() as session:
        async with session.post(gw.http_url + "/shed", json={"target": 0, "rate": 100}) as resp:
            assert resp.status in (404, 405), resp.status
        async with session.get(gw.http_url + "/connections") as resp:
            assert resp.status == 404, resp.status
    await asyncio.sleep(0.1)
    assert not any(c.closed for c in clients)
    assert (await _get(admin + "/connections"))[1] == {**EMPTY, "connections": 2}


async def test_shed_while_draining_is_refused(gateway_factory: GatewayFactory) -> None:
    gw, admin = await _admin_gateway(gateway_factory, drain_period=1000)
    clients = await _clients(gw, 2)
    shutdown = asyncio.ensure_future(gw.gateway.shutdown())
    try:
        await asyncio.sleep(0.05)
        status, body = await _post(admin + "/shed", {"target": 0, "rate": 100})
        assert status == 409 and "draining" in body["error"], body
        assert (await _get(admin + "/connections"))[1]["draining"] is True
        assert not any(c.closed for c in clients)
    finally:
        await asyncio.wait_for(shutdown, 10)
    assert all(c.close_code == GOING_AWAY for c in clients)


async def test_shutdown_during_a_shed_still_closes_everyone_once(gateway_factory: GatewayFactory) -> None:
    gw, admin = await _admin_gateway(gateway_factory, ws_close_rate=0)
    clients = await _clients(gw, 5)
    assert (await _post(admin + "/shed", {"target": 0, "rate": 1}))[0] == 200
    await _wait_closed(clients[:1])
    await asyncio.wait_for(gw.gateway.shutdown(), 10)
    await _wait_closed(clients)
    assert all(c.close_code == GOING_AWAY for c in clients)
    assert gw.gateway.closer.shed_total == 1  # the drain's closes are not counted as shed


@given(st.one_of(st.binary(max_size=64), st.text(max_size=64).map(str.encode)))
def test_parse_shed_accepts_only_target_and_rate(body: bytes) -> None:
    try:
        target, rate = parse_shed(body)
    except BadShedRequest as exc:
        assert str(exc)
    else:
        assert target >= 0 and rate > 0


@given(
    st.dictionaries(
        st.sampled_from(["target", "rate", "x"]),
        st.one_of(st.none(), st.booleans(), st.integers(-5, 10**20), st.floats(), st.text(max_size=3)),
    )
)
def test_parse_shed_on_json_objects(payload: dict[str, Any]) -> None:
    body = json.dumps(payload).encode()
    valid = (
        set(payload) == {"target", "rate"}
        and type(payload["target"]) is int
        and payload["target"] >= 0
        and type(payload["rate"]) in (int, float)
        and 0 < payload["rate"] < float("inf")
    )
    try:
        target, rate = parse_shed(body)
    except BadShedRequest:
        assert not valid or payload["target"] >= 2**64, payload
    else:
        assert valid and (target, rate) == (payload["target"], payload["rate"])
