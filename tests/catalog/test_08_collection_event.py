"""Catalog §5.08 (resgate 08collection_event_test.go): collection add/remove events.

Also res-protocol.md §7 checklist items 97–101 not covered by the catalog rows (``test_chk_*``).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.fakeservice import FakeService
from tests.support.fixtures import COLLECTIONS, CUSTOM_PAYLOAD, MODELS, get_reply
from tests.support.gatewayrunner import GatewayHandle
from tests.support.logguard import ErrorLog
from tests.support.macros import connect, custom, no_event, no_nats, subscribe
from tests.support.wsclient import assert_result

#: Quiet window after the NO_EVENT barrier (catalog §7.1 item 8).
QUIET = 0.1

COLL = COLLECTIONS["test.collection"]


# Test that add and remove events on a subscribed collection are forwarded in order.
async def test_cev_01_add_and_remove_event_on_subscribed_resource(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client = await connect(gateway)
    await subscribe(client, service, "test.collection")
    await service.event("test.collection", "add", {"idx": 3, "value": "bar"})
    await service.event("test.collection", "remove", {"idx": 2})
    await client.expect_event("test.collection.add", {"idx": 3, "value": "bar"})
    await client.expect_event("test.collection.remove", {"idx": 2})


CEV_02_ROWS: list[tuple[str, str, Any, Any, Any]] = [
    # (rid, event, payload, client payload ("same" = payload), collection after)
    ("test.collection", "add", {"idx": 0, "value": "bar"}, "same", ["bar", "foo", 42, True, None]),
    ("test.collection", "add", {"idx": 1, "value": "bar"}, "same", ["foo", "bar", 42, True, None]),
    ("test.collection", "add", {"idx": 4, "value": "bar"}, "same", ["foo", 42, True, None, "bar"]),
    ("test.collection", "add", {"idx": 0, "value": {"rid": "test.collection.soft", "soft": True}}, "same",
     [{"rid": "test.collection.soft", "soft": True}, "foo", 42, True, None]),
    ("test.collection", "add", {"idx": 0, "value": {"data": {"foo": ["bar"]}}}, "same",
     [{"data": {"foo": ["bar"]}}, "foo", 42, True, None]),
    ("test.collection", "add", {"idx": 0, "value": {"data": 12}}, {"idx": 0, "value": 12},
     [12, "foo", 42, True, None]),
    ("test.collection", "remove", {"idx": 0}, "same", [42, True, None]),
    ("test.collection", "remove", {"idx": 1}, "same", ["foo", True, None]),
    ("test.collection", "remove", {"idx": 3}, "same", ["foo", 42, True]),
    ("test.collection.soft", "remove", {"idx": 1}, "same", ["soft"]),
    ("test.collection.data", "remove", {"idx": 1}, "same",
     ["data", {"data": {"foo": ["bar"]}}, {"data": [{"foo": "bar"}]}]),
    ("test.collection.data", "remove", {"idx": 2}, "same", ["data", 12, {"data": [{"foo": "bar"}]}]),
    ("test.collection.data", "remove", {"idx": 3}, "same", ["data", 12, {"data": {"foo": ["bar"]}}]),
]  # fmt: skip


# Test that add/remove events on a cached collection are forwarded and update the cache.
@pytest.mark.parametrize(
    ("rid", "event", "payload", "client_payload", "after"),
    CEV_02_ROWS,
    ids=[f"CEV-02.{i:02d}" for i in range(1, len(CEV_02_ROWS) + 1)],
)
async def test_cev_02_add_remove_events_on_cached_collection(
    gateway: GatewayHandle,
    service: FakeService,
    rid: str,
    event: str,
    payload: Any,
    client_payload: Any,
    after: Any,
) -> None:
    client = await connect(gateway)
    await subscribe(client, service, rid)
    await service.event(rid, event, payload)
    await client.expect_event(f"{rid}.{event}", payload if client_payload == "same" else client_payload)
    assert_result(await client.request(f"unsubscribe.{rid}"))
    pending = await client.send(f"subscribe.{rid}")
    await (await service.expect_request(f"access.{rid}")).ok({"get": True})
    assert_result(await pending.response(), {"collections": {rid: after}})


# Test that an add event with a reference loads the resource and includes it in the event.
async def test_cev_03_add_event_with_resource_reference_includes_resource(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client = await connect(gateway)
    await subscribe(client, service, "test.collection")
    await service.event("test.collection", "add", {"idx": 3, "value": {"rid": "test.model"}})
    await (await service.expect_request("get.test.model")).json(get_reply("test.model"))
    await client.expect_event(
        "test.collection.add",
        {"idx": 3, "value": {"rid": "test.model"}, "models": {"test.model": MODELS["test.model"]}},
    )


CEV_04_ROWS: list[list[tuple[str, int]]] = [
    [("add", 0)],
    [("add", 0), ("remove", 0)],
    [("add", 0), ("remove", 0), ("add", 0)],
    [("add", 0), ("add", 0)],
    [("add", 0), ("add", 1)],
    [("add", 0), ("add", 1), ("remove", 0), ("remove", 0)],
    [("add", 0), ("add", 1), ("remove", 1), ("remove", 0), ("add", 0)],
]


# Test that sequential add/remove events of one reference carry the resource only when not held.
@pytest.mark.parametrize(
    "steps", CEV_04_ROWS, ids=[f"CEV-04.{i:02d}" for i in range(1, len(CEV_04_ROWS) + 1)]
)
async def test_cev_04_sequential_add_remove_events_with_resource_reference(
    gateway: GatewayHandle, service: FakeService, steps: list[tuple[str, int]]
) -> None:
    rid = "test.collection.empty"
    ref = {"rid": "test.model"}
    client = await connect(gateway)
    await subscribe(client, service, rid)
    held = 0
    fetched = False
    for name, idx in steps:
        if name == "add":
            await service.event(rid, "add", {"idx": idx, "value": ref})
            if not fetched:
                await (await service.expect_request("get.test.model")).json(get_reply("test.model"))
                fetched = True
            expected: dict[str, Any] = {"idx": idx, "value": ref}
            if held == 0:
                expected["models"] = {"test.model": MODELS["test.model"]}
            await client.expect_event(f"{rid}.add", expected)
            held += 1
        else:
            await service.event(rid, "remove", {"idx": idx})
            await client.expect_event(f"{rid}.remove", {"idx": idx})
            held -= 1
    await no_event(client, service, rid, QUIET)


# Checklist 98: an add with object/array data keeps it wrapped; array data as well.
async def test_chk_98_add_event_with_array_data_kept_wrapped(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client = await connect(gateway)
    await subscribe(client, service, "test.collection")
    payload = {"idx": 1, "value": {"data": [1, 2]}}
    await service.event("test.collection", "add", payload)
    await client.expect_event("test.collection.add", payload)


# Checklist 99: an add with a reference to a resource the client already holds carries no resource set,
# and no get request is sent.
async def test_chk_99_add_event_with_held_reference_has_no_resource_set(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client = await connect(gateway)
    await subscribe(client, service, "test.model")
    await subscribe(client, service, "test.collection")
    await service.event("test.collection", "add", {"idx": 0, "value": {"rid": "test.model"}})
    await client.expect_event("test.collection.add", {"idx": 0, "value": {"rid": "test.model"}})
    await no_nats(client, service)


# Checklist 97/99: a referenced resource added by an event is subscribed (its events are forwarded) and
# released again by the remove event.
async def test_chk_99_add_then_remove_reference_subscribes_and_releases(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client = await connect(gateway)
    await subscribe(client, service, "test.collection")
    await service.event("test.collection", "add", {"idx": 4, "value": {"rid": "test.model"}})
    await (await service.expect_request("get.test.model")).json(get_reply("test.model"))
    await client.expect_event("test.collection.add")
    await custom(service, "test.model")
    await client.expect_event("test.model.custom", CUSTOM_PAYLOAD)
    await service.event("test.collection", "remove", {"idx": 4})
    await client.expect_event("test.collection.remove", {"idx": 4})
    await custom(service, "test.model")
    await no_event(client, service, "test.model", QUIET)


CHK_101_ROWS: list[tuple[str, str, Any]] = [
    ("test.collection", "add", {"idx": 5, "value": "bar"}),
    ("test.collection", "add", {"idx": -1, "value": "bar"}),
    ("test.collection", "remove", {"idx": 4}),
    ("test.collection", "remove", {"idx": -1}),
    ("test.model", "add", {"idx": 0, "value": "bar"}),
    ("test.model", "remove", {"idx": 0}),
    ("test.collection", "add", {"idx": 0, "value": {"action": "delete"}}),
    ("test.collection", "add", {"idx": 0, "value": {"foo": "bar"}}),
    ("test.collection", "add", {"idx": 0, "value": [1, 2]}),
    ("test.collection", "add", b"{not json"),
]


# Checklist 101: out-of-range idx, add/remove on a model, improper add value → error logged, no event,
# cache unchanged.
@pytest.mark.parametrize(
    ("rid", "event", "payload"),
    CHK_101_ROWS,
    ids=[
        "add-idx-too-high", "add-idx-negative", "remove-idx-too-high", "remove-idx-negative",
        "add-on-model", "remove-on-model", "add-delete-action", "add-bare-object", "add-bare-array",
        "add-invalid-json",
    ],
)  # fmt: skip
async def test_chk_101_invalid_collection_events_log_error(
    gateway: GatewayHandle, service: FakeService, errors: ErrorLog, rid: str, event: str, payload: Any
) -> None:
    client = await connect(gateway)
    await subscribe(client, service, rid)
    await service.event(rid, event, payload)
    await errors.expect(1)
    await no_event(client, service, rid, QUIET)
    assert_result(await client.request(f"unsubscribe.{rid}"))
    pending = await client.send(f"subscribe.{rid}")
    await (await service.expect_request(f"access.{rid}")).ok({"get": True})
    key = "collections" if rid in COLLECTIONS else "models"
    assert_result(await pending.response(), {key: {rid: (COLLECTIONS | MODELS)[rid]}})
