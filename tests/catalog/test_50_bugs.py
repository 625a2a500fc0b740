"""Catalog §5.50 (resgate 50bug_test.go): regression tests for issues #194 and #217."""

from __future__ import annotations

from tests.conftest import GatewayFactory
from tests.support.fakeservice import FakeService
from tests.support.jsoncmp import assert_json_equal
from tests.support.macros import connect, no_event, no_nats, subscribe, subscribe_cached
from tests.support.wsclient import WSClient

#: BUG-01 attempts (each with a fresh gateway), as in resgate.
BUG_01_ATTEMPTS = 100
#: BUG-02 connections and reset throttle.
BUG_02_CONNECTIONS = 32
BUG_02_THROTTLE = 3
#: Quiet window (s) in which no extra throttled access request may arrive.
THROTTLE_WINDOW = 0.01


async def _bug_01_attempt(gateway_factory: GatewayFactory, service: FakeService, attempt: int) -> None:
    gw = await gateway_factory()
    c1 = await connect(gw)
    await subscribe(c1, service, "test.collection", {"collection": [1, 2, 3]})
    c2 = await connect(gw)
    await subscribe(c2, service, "test.model")
    await service.system_event("reset", {"resources": ["test.collection"]})
    await service.event("test.model", "change", {"values": {"ref": {"rid": "test.collection"}}})
    get = await service.expect_request("get.test.collection")
    await get.ok({"collection": [1, 2, 3, 4]})

    ev = await c2.expect_event("test.model.change")
    values = {"values": {"ref": {"rid": "test.collection"}}}
    sent = ev.data.get("collections", {}).get("test.collection") if isinstance(ev.data, dict) else None
    where = f"attempt {attempt}: c2 test.model.change"
    if sent == [1, 2, 3]:
        # Delivered in the state before the reset's get: the add event must follow.
        assert_json_equal(ev.data, {**values, "collections": {"test.collection": [1, 2, 3]}}, where)
        await c2.expect_event("test.collection.add", {"value": 4, "idx": 3})
    else:
        # Delivered already updated: no add event may follow.
        assert_json_equal(ev.data, {**values, "collections": {"test.collection": [1, 2, 3, 4]}}, where)
    await no_event(c2, service)
    await c1.expect_event("test.collection.add", {"idx": 3, "value": 4})
    await no_event(c1, service)
    await gw.close_clients()
    await gw.stop()


# Test that a client referencing a collection while a reset reloads it gets a consistent state: either
# the old collection plus the add event, or the new collection and no add event (issue #194).
async def test_bug_01_possible_client_resource_inconsistency(
    gateway_factory: GatewayFactory, service: FakeService
) -> None:
    for attempt in range(1, BUG_01_ATTEMPTS + 1):
        await _bug_01_attempt(gateway_factory, service, attempt)


# Test that throttled access requests after a system.reset for one resource held by many connections
# are released one per reply and do not deadlock (issue #217).
async def test_bug_02_deadlock_on_throttled_access_requests_to_same_resource(
    gateway_factory: GatewayFactory, service: FakeService
) -> None:
    gw = await gateway_factory(reset_throttle=BUG_02_THROTTLE)
    clients: list[WSClient] = []
    cids: list[str] = []
    for i in range(BUG_02_CONNECTIONS):
        client = await connect(gw)
        clients.append(client)
        cids.append(
            await (
                subscribe(client, service, "test.model")
                if i == 0
                else subscribe_cached(client, service, "test.model")
            )
        )
    assert len(set(cids)) == BUG_02_CONNECTIONS, f"connection ids not distinct: {cids}"

    await service.system_event("reset", {"resources": None, "access": ["test.>"]})
    in_flight = list((await service.requests(BUG_02_THROTTLE)).requests)
    await service.expect_no_request(THROTTLE_WINDOW * 10)
    seen: list[str] = []
    sent = BUG_02_THROTTLE
    while in_flight:
        req = in_flight.pop(0)
        req.assert_subject("access.test.model")
        seen.append(str(req.path("cid")))
        await req.ok({"get": True})
        if sent < BUG_02_CONNECTIONS:
            nxt = await service.next_request()
            nxt.assert_subject("access.test.model")
            in_flight.append(nxt)
            sent += 1
            # Exactly one more request per reply: nothing else may be in flight beyond the throttle.
            await service.expect_no_request(THROTTLE_WINDOW)
    assert sorted(seen) == sorted(cids), "the reset's access requests do not cover every connection once"
    for client in clients:
        await no_nats(client, service)
    for client in clients:
        await client.assert_no_event()
