"""res-protocol.md §7 checklist items 136–157 (T. query resources, U. cache, V. indirect/sent tracking)
that the catalog rows of §5.12, §5.13 and §5.30 do not already assert.

Covered elsewhere: 136–142 by QSUB-01…09 (test_12_query_subscribe.py); 143–147, 149–152 by QEV-01…34
(test_13_query_event.py); 157 by IND-01…04 (test_30_indirect_sent.py). The tests here add the missing
halves: the ``unsubscribe`` after a notFound query response (148), query resource drop on last unsubscribe
(153), cache hits (154), eviction (155), failed gets not cached (156), and events still flowing to a
resource re-sent by a delayed parent (157).
"""

from __future__ import annotations

from tests.conftest import GatewayFactory
from tests.support.fakeservice import FakeService
from tests.support.fixtures import CUSTOM_PAYLOAD, E_DELETED, E_NOTFOUND, MODELS, get_result
from tests.support.gatewayrunner import GatewayHandle
from tests.support.macros import connect, custom, no_event, no_nats, subscribe, subscribe_cached, subscribe_q
from tests.support.wsclient import assert_result

QUIET = 0.1
Q1 = "q=foo&f=bar"


# Test that a notFound query response sends delete then unsubscribe (reason system.deleted) to the client.
async def test_chk_148_query_not_found_sends_delete_and_unsubscribe(
    gateway: GatewayHandle, service: FakeService
) -> None:
    c = await connect(gateway)
    await subscribe_q(c, service, "test.model", Q1, Q1)
    await service.add_subject("_EVENT_01_")
    await service.event("test.model", "query", {"subject": "_EVENT_01_"})
    req = await service.expect_request("_EVENT_01_")
    req.assert_payload({"query": Q1})
    await req.error(E_NOTFOUND)
    ev = await c.expect_event(f"test.model?{Q1}.delete")
    assert ev.data is None, f"delete event carries data {ev.data!r}"
    await c.expect_event(f"test.model?{Q1}.unsubscribe", {"reason": E_DELETED})
    await no_event(c, service, window=QUIET)


# Test that unsubscribing the last client of a query resource drops it at once: a re-subscribe sends a get.
async def test_chk_153_query_resource_dropped_on_last_unsubscribe(
    gateway: GatewayHandle, service: FakeService
) -> None:
    c = await connect(gateway)
    await subscribe_q(c, service, "test.model", Q1, Q1)
    assert_result(await c.request(f"unsubscribe.test.model?{Q1}"))
    # Default eviction delay (5 s) applies to the name, not to the query resource: get + access again.
    await subscribe_q(c, service, "test.model", Q1, Q1)
    await no_nats(c, service)


# Test that a cached resource is served with only an access request, to another client and after unsubscribe.
async def test_chk_154_cached_resource_served_without_get(
    gateway: GatewayHandle, service: FakeService
) -> None:
    c = await connect(gateway)
    await subscribe(c, service, "test.model")
    c2 = await connect(gateway)
    await subscribe_cached(c2, service, "test.model")
    assert_result(await c.request("unsubscribe.test.model"))
    assert_result(await c2.request("unsubscribe.test.model"))
    pending = await c.send("subscribe.test.model")
    await (await service.expect_request("access.test.model")).ok({"get": True})
    assert_result(await pending.response(), {"models": {"test.model": MODELS["test.model"]}})
    await no_nats(c, service)


# Test that an evicted resource (no users, eviction delay passed) needs a new get.
async def test_chk_155_evicted_resource_requires_new_get(
    gateway_factory: GatewayFactory, service: FakeService
) -> None:
    gw = await gateway_factory(cache_eviction_delay=0)
    c = await connect(gw)
    await subscribe(c, service, "test.model")
    assert_result(await c.request("unsubscribe.test.model"))
    await service.wait_gateway_subscribed("event.test.model.probe", present=False)
    pending = await c.send("subscribe.test.model")
    reqs = await service.requests(2)
    await reqs.get("access.test.model").ok({"get": True})
    await reqs.get("get.test.model").ok(get_result("test.model"))
    assert_result(await pending.response(), {"models": {"test.model": MODELS["test.model"]}})


# Test that a failed get is not cached: the next demand (another client) sends a new get.
async def test_chk_156_failed_get_not_cached(gateway: GatewayHandle, service: FakeService) -> None:
    c = await connect(gateway)
    pending = await c.send("subscribe.test.model")
    reqs = await service.requests(2)
    await reqs.get("access.test.model").ok({"get": True})
    await reqs.get("get.test.model").error(E_NOTFOUND)
    await pending.error(E_NOTFOUND)
    c2 = await connect(gateway)
    pending = await c2.send("subscribe.test.model")
    reqs = await service.requests(2)
    await reqs.get("access.test.model").ok({"get": True})
    await reqs.get("get.test.model").ok(get_result("test.model"))
    assert_result(await pending.response(), {"models": {"test.model": MODELS["test.model"]}})


# Test that a resource re-sent in a delayed parent's response keeps receiving its events (issue #241).
async def test_chk_157_resent_resource_events_keep_flowing(
    gateway: GatewayHandle, service: FakeService
) -> None:
    c = await connect(gateway)
    await subscribe(c, service, "test.model")
    dp = {"name": "delayedparent", "child": {"rid": "test.model"}, "delayed": {"rid": "test.model.delayed"}}
    pending = await c.send("subscribe.test.model.delayedparent")
    reqs = await service.requests(2)
    await reqs.get("access.test.model.delayedparent").ok({"get": True})
    await reqs.get("get.test.model.delayedparent").ok({"model": dp})
    delayed = await service.expect_request("get.test.model.delayed")
    assert_result(await c.request("unsubscribe.test.model"))
    await delayed.ok({"model": {"name": "delayed"}})
    assert_result(
        await pending.response(),
        {
            "models": {
                "test.model": MODELS["test.model"],
                "test.model.delayedparent": dp,
                "test.model.delayed": {"name": "delayed"},
            }
        },
    )
    await custom(service, "test.model")
    await c.expect_event("test.model.custom", CUSTOM_PAYLOAD)
    change = {"values": {"string": "bar"}}
    await service.event("test.model", "change", change)
    await c.expect_event("test.model.change", change)
    await no_event(c, service, window=QUIET)
