"""pyresgate's own metrics on the admin port: NATS requests by type and outcome with latency,
events and their fan-out, HTTP responses by status, slow-consumer disconnects."""

from __future__ import annotations

import aiohttp

from tests.conftest import GatewayFactory
from tests.support.fakeservice import FakeService
from tests.support.macros import connect, subscribe
from tests.support.natsserver import free_port


def _values(text: str) -> dict[str, float]:
    """Sample lines of an OpenMetrics exposition: 'name{labels}' -> value."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


async def _scrape(port: int) -> dict[str, float]:
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/metrics") as resp:
        assert resp.status == 200
        return _values(await resp.text())


async def test_requests_events_and_http_statuses_are_counted(
    gateway_factory: GatewayFactory, service: FakeService
) -> None:
    admin = free_port()
    gw = await gateway_factory(admin_port=admin, request_timeout=200)
    c1, c2 = await connect(gw), await connect(gw)
    await subscribe(c1, service, "test.model")
    pending = await c2.send("subscribe.test.model")
    await (await service.expect_request("access.test.model")).ok({"get": True})
    await pending.response()
    await service.event("test.model", "custom", {"foo": "bar"})
    await c1.get_event()
    await c2.get_event()
    call = await c1.send("call.test.other.slow")
    await (await service.expect_request("access.test.other")).ok({"get": True, "call": "*"})
    await service.expect_request("call.test.other.slow")  # never answered: times out
    await call.error("system.timeout", timeout=2.0)
    async with aiohttp.ClientSession() as session, session.get(f"{gw.http_url}/api/nothing/here/") as resp:
        assert resp.status == 404

    m = await _scrape(admin)
    assert m['pyresgate_nats_requests_total{outcome="reply",type="access"}'] == 3
    assert m['pyresgate_nats_requests_total{outcome="reply",type="get"}'] == 1
    assert m['pyresgate_nats_requests_total{outcome="timeout",type="call"}'] == 1
    assert m['pyresgate_nats_request_duration_seconds_count{type="access"}'] == 3
    assert m['pyresgate_nats_request_duration_seconds_bucket{le="10.0",type="call"}'] == 1
    assert m["pyresgate_events_total"] == 1
    assert m["pyresgate_event_deliveries_total"] == 2
    assert m['pyresgate_http_responses_total{status="404"}'] == 1
    assert m["pyresgate_slow_consumer_disconnects_total"] == 0
    assert m["resgate_ws_current_connections"] == 2
