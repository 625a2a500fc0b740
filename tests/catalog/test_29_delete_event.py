"""Catalog §5.29 (resgate 29delete_event_test.go): delete events.

Also res-protocol.md §7 checklist items 102–106 not covered by the catalog rows (``test_chk_*``).
"""

from __future__ import annotations

import pytest

from tests.support.fakeservice import NULL, FakeService
from tests.support.fixtures import CUSTOM_PAYLOAD, MODELS, UNSUB_DELETED, get_reply
from tests.support.gatewayrunner import GatewayHandle
from tests.support.macros import connect, custom, no_event, subscribe, subscribe_parent
from tests.support.wsclient import WSClient, assert_result

#: Quiet window after the NO_EVENT barrier (catalog §7.1 item 8).
QUIET = 0.1


async def _expect_deleted(client: WSClient, rid: str) -> None:
    """``<rid>.delete`` without data (absent or null), then ``<rid>.unsubscribe`` with E_DELETED."""
    ev = await client.expect_event(f"{rid}.delete")
    assert ev.data is None, f"delete event carries data {ev.data!r}"
    await client.expect_event(f"{rid}.unsubscribe", UNSUB_DELETED)


# Test that a delete event is sent to the client, followed by an unsubscribe event (DEL-01 model,
# DEL-02 collection).
@pytest.mark.parametrize("rid", ["test.model", "test.collection"], ids=["DEL-01", "DEL-02"])
async def test_del_01_delete_event_sent_to_client(
    gateway: GatewayHandle, service: FakeService, rid: str
) -> None:
    client = await connect(gateway)
    await subscribe(client, service, rid)
    await service.event(rid, "delete", NULL)
    await _expect_deleted(client, rid)


# Test that custom events after a delete are not sent to the client (DEL-03 model, DEL-04 collection).
@pytest.mark.parametrize("rid", ["test.model", "test.collection"], ids=["DEL-03", "DEL-04"])
async def test_del_03_delete_event_and_custom_event_not_sent(
    gateway: GatewayHandle, service: FakeService, rid: str
) -> None:
    client = await connect(gateway)
    await subscribe(client, service, rid)
    await service.event(rid, "delete", NULL)
    await _expect_deleted(client, rid)
    await service.event(rid, "custom", CUSTOM_PAYLOAD)
    await no_event(client, service, rid, QUIET)


# Test that a delete event arriving before the get response is discarded.
async def test_del_05_delete_event_prior_to_get_response_is_discarded(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client = await connect(gateway)
    pending = await client.send("subscribe.test.model")
    reqs = await service.requests(2)
    await service.event("test.model", "delete", NULL)
    await reqs.get("get.test.model").json(get_reply("test.model"))
    await reqs.get("access.test.model").ok({"get": True})
    assert_result(await pending.response(), {"models": {"test.model": MODELS["test.model"]}})
    await no_event(client, service, "test.model", QUIET)
    await custom(service, "test.model")
    await client.expect_event("test.model.custom", CUSTOM_PAYLOAD)


# Test that a deleted resource is not served from the cache to another client.
async def test_del_06_delete_event_followed_by_subscribe_is_not_cached(
    gateway: GatewayHandle, service: FakeService
) -> None:
    c1 = await connect(gateway)
    c2 = await connect(gateway)
    await subscribe(c1, service, "test.model")
    await service.event("test.model", "delete", NULL)
    await _expect_deleted(c1, "test.model")
    await subscribe(c2, service, "test.model")  # access and get again
    await custom(service, "test.model")
    await c2.expect_event("test.model.custom", CUSTOM_PAYLOAD)
    await no_event(c1, service, "test.model", QUIET)


# Test that a deleted resource is fetched again when the same client re-subscribes.
async def test_del_07_delete_event_followed_by_resubscribe_is_not_cached(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client = await connect(gateway)
    await subscribe(client, service, "test.model")
    await service.event("test.model", "delete", NULL)
    await _expect_deleted(client, "test.model")
    await service.event("test.model", "custom", CUSTOM_PAYLOAD)
    await no_event(client, service, "test.model", QUIET)
    await subscribe(client, service, "test.model")  # access and get again
    await custom(service, "test.model")
    await client.expect_event("test.model.custom", CUSTOM_PAYLOAD)


# Test that a delete event on a resource only awaiting eviction sends nothing (DEL-08 model,
# DEL-09 collection).
@pytest.mark.parametrize("rid", ["test.model", "test.collection"], ids=["DEL-08", "DEL-09"])
async def test_del_08_delete_event_on_resource_queued_for_eviction_does_nothing(
    gateway: GatewayHandle, service: FakeService, rid: str
) -> None:
    client = await connect(gateway)
    await subscribe(client, service, rid)
    assert_result(await client.request(f"unsubscribe.{rid}"))
    await service.event(rid, "delete", NULL)
    await no_event(client, service, rid, QUIET)


# Checklist 105: a delete on a resource awaiting eviction still drops it from the cache: a new
# subscription triggers a fresh get.
async def test_chk_105_delete_on_resource_awaiting_eviction_drops_cache_entry(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client = await connect(gateway)
    await subscribe(client, service, "test.model")
    assert_result(await client.request("unsubscribe.test.model"))
    await service.event("test.model", "delete", NULL)
    await no_event(client, service, "test.model", QUIET)
    pending = await client.send("subscribe.test.model")
    reqs = await service.requests(2)
    await reqs.get("access.test.model").ok({"get": True})
    await reqs.get("get.test.model").json(get_reply("test.model"))
    assert_result(await pending.response(), {"models": {"test.model": MODELS["test.model"]}})


# Checklist 102: a delete of an indirectly subscribed resource sends the delete event but no unsubscribe
# event (the client has no direct subscription to it); the parent stays subscribed.
async def test_chk_102_delete_of_indirect_resource_has_no_unsubscribe_event(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client = await connect(gateway)
    await subscribe_parent(client, service)
    await service.event("test.model", "delete", NULL)
    ev = await client.expect_event("test.model.delete")
    assert ev.data is None, f"delete event carries data {ev.data!r}"
    await no_event(client, service, "test.model", QUIET)
    await custom(service, "test.model.parent")
    await client.expect_event("test.model.parent.custom", CUSTOM_PAYLOAD)


# Checklist 102: later change events on a deleted resource are not forwarded either.
async def test_chk_102_change_after_delete_not_forwarded(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client = await connect(gateway)
    await subscribe(client, service, "test.model")
    await service.event("test.model", "delete", NULL)
    await _expect_deleted(client, "test.model")
    await service.event("test.model", "change", {"values": {"string": "bar"}})
    await no_event(client, service, "test.model", QUIET)


# Checklist 106: reaccess and query events are never forwarded to clients.
async def test_chk_106_reaccess_and_query_events_not_forwarded(
    gateway: GatewayHandle, service: FakeService
) -> None:
    await service.add_subject("_EVENT_01_")  # a wrongly sent query request would then be seen
    client = await connect(gateway)
    await subscribe(client, service, "test.model")
    await service.event("test.model", "reaccess", NULL)
    await (await service.expect_request("access.test.model")).ok({"get": True})
    await service.event("test.model", "query", {"subject": "_EVENT_01_"})
    await no_event(client, service, "test.model", QUIET)
    await custom(service, "test.model")
    await client.expect_event("test.model.custom", CUSTOM_PAYLOAD)
