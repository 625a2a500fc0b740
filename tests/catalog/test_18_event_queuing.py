"""Catalog §5.18 (resgate 18event_queuing_test.go): per-resource event ordering while references load.

Also res-protocol.md §7 checklist items 107–110 not covered by the catalog rows (``test_chk_*``).
"""

from __future__ import annotations

from tests.support.fakeservice import FakeService
from tests.support.fixtures import COLLECTIONS, CUSTOM_PAYLOAD, MODELS, get_reply
from tests.support.gatewayrunner import GatewayHandle
from tests.support.macros import connect, custom, no_event, subscribe, subscribe_cparent

#: Quiet window after the NO_EVENT barrier / for "no request yet" checks (catalog §7.1 item 8).
QUIET = 0.1

MODEL = MODELS["test.model"]


# Test that an event queued behind an event waiting for a reference is delivered after it, in order.
async def test_queue_01_event_while_queueing(gateway: GatewayHandle, service: FakeService) -> None:
    client = await connect(gateway)
    await subscribe(client, service, "test.collection")
    await service.event("test.collection", "add", {"idx": 1, "value": {"rid": "test.model"}})
    get = await service.expect_request("get.test.model")
    await service.event("test.collection", "add", {"idx": 2, "value": "newValue"})
    await no_event(client, service, "test.collection", QUIET)
    await get.json(get_reply("test.model"))
    await client.expect_event(
        "test.collection.add", {"idx": 1, "value": {"rid": "test.model"}, "models": {"test.model": MODEL}}
    )
    await client.expect_event("test.collection.add", {"idx": 2, "value": "newValue"})


# Test that a queued event with another reference loads that reference only after the earlier one.
async def test_queue_02_reference_event_while_queuing(gateway: GatewayHandle, service: FakeService) -> None:
    client = await connect(gateway)
    await subscribe(client, service, "test.collection")
    await service.event("test.collection", "add", {"idx": 1, "value": {"rid": "test.model"}})
    get1 = await service.expect_request("get.test.model")
    await service.event("test.collection", "add", {"idx": 2, "value": {"rid": "test.model2"}})
    await service.event("test.collection", "add", {"idx": 3, "value": "newValue"})
    await service.expect_no_request(QUIET)
    await get1.json(get_reply("test.model"))
    await client.expect_event(
        "test.collection.add", {"idx": 1, "value": {"rid": "test.model"}, "models": {"test.model": MODEL}}
    )
    get2 = await service.expect_request("get.test.model2")
    await no_event(client, service, "test.collection", QUIET)
    await get2.json(get_reply("test.model"))
    await client.expect_event(
        "test.collection.add",
        {"idx": 2, "value": {"rid": "test.model2"}, "models": {"test.model2": MODEL}},
    )
    await client.expect_event("test.collection.add", {"idx": 3, "value": "newValue"})


# Test that a queued event referencing a cached but no longer held resource includes it.
async def test_queue_03_cached_reference_event_while_queuing(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client = await connect(gateway)
    await subscribe_cparent(client, service)
    await service.event("test.collection.parent", "remove", {"idx": 1})
    await client.expect_event("test.collection.parent.remove", {"idx": 1})
    await service.event("test.collection.parent", "add", {"idx": 1, "value": {"rid": "test.model"}})
    get = await service.expect_request("get.test.model")
    await service.event("test.collection.parent", "add", {"idx": 2, "value": {"rid": "test.collection"}})
    await get.json(get_reply("test.model"))
    await client.expect_event(
        "test.collection.parent.add",
        {"idx": 1, "value": {"rid": "test.model"}, "models": {"test.model": MODEL}},
    )
    await client.expect_event(
        "test.collection.parent.add",
        {
            "idx": 2,
            "value": {"rid": "test.collection"},
            "collections": {"test.collection": COLLECTIONS["test.collection"]},
        },
    )
    await no_event(client, service, "test.collection.parent", QUIET)


# Test that events are unqueued once their references load, each resource sent in one event only.
async def test_queue_04_unqueue_event_with_loaded_reference_resource(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client = await connect(gateway)
    await subscribe(client, service, "test.model")
    await subscribe(client, service, "test.collection")
    values = {
        "values": {
            "a": {"rid": "test.model.a"},
            "b": {"rid": "test.model.b"},
            "c": {"rid": "test.model.c"},
        }
    }
    await service.event("test.model", "change", values)
    gets = await service.requests(3)
    await gets.get("get.test.model.a").json(get_reply("test.model"))
    await service.event("test.collection", "add", {"idx": 1, "value": {"rid": "test.model.b"}})
    await service.event("test.collection", "add", {"idx": 2, "value": {"rid": "test.model.a"}})
    await no_event(client, service, "test.collection", QUIET)
    await gets.get("get.test.model.b").json(get_reply("test.model"))
    await client.expect_event(
        "test.collection.add",
        {"idx": 1, "value": {"rid": "test.model.b"}, "models": {"test.model.b": MODEL}},
    )
    await client.expect_event(
        "test.collection.add",
        {"idx": 2, "value": {"rid": "test.model.a"}, "models": {"test.model.a": MODEL}},
    )
    await no_event(client, service, "test.model", QUIET)
    await gets.get("get.test.model.c").json(get_reply("test.model"))
    await client.expect_event("test.model.change", {**values, "models": {"test.model.c": MODEL}})


# Checklist 107/110: while a change waits for a reference, later events of the same resource are held
# (and delivered after it, in order) but events of other resources flow immediately.
async def test_chk_110_other_resources_not_blocked_by_pending_change(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client = await connect(gateway)
    await subscribe(client, service, "test.model")
    await subscribe(client, service, "test.collection")
    values = {"values": {"ref": {"rid": "test.model.x"}}}
    await service.event("test.model", "change", values)
    get = await service.expect_request("get.test.model.x")
    await custom(service, "test.model")
    await custom(service, "test.collection")
    await client.expect_event("test.collection.custom", CUSTOM_PAYLOAD)
    await no_event(client, service, "test.model", QUIET)
    await get.json(get_reply("test.model"))
    await client.expect_event("test.model.change", {**values, "models": {"test.model.x": MODEL}})
    await client.expect_event("test.model.custom", CUSTOM_PAYLOAD)


# Checklist 108: a reference that fails to load is delivered under "errors" and the queue moves on.
async def test_chk_108_failed_reference_in_queued_event_sent_as_error(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client = await connect(gateway)
    await subscribe(client, service, "test.collection")
    await service.event("test.collection", "add", {"idx": 0, "value": {"rid": "test.err.notFound"}})
    get = await service.expect_request("get.test.err.notFound")
    await service.event("test.collection", "add", {"idx": 1, "value": "next"})
    await get.json(get_reply("test.err.notFound"))
    ev = await client.expect_event("test.collection.add")
    assert ev.data["idx"] == 0 and ev.data["value"] == {"rid": "test.err.notFound"}, ev.data
    assert ev.data.get("errors") == {"test.err.notFound": {"code": "system.notFound", "message": "Not found"}}
    await client.expect_event("test.collection.add", {"idx": 1, "value": "next"})
