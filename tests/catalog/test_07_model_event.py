"""Catalog §5.07 (resgate 07model_event_test.go): model change events and cache effects.

Also res-protocol.md §7 checklist items 86–96 not covered by the catalog rows (``test_chk_*``).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.fakeservice import FakeService
from tests.support.fixtures import CUSTOM_PAYLOAD, MODELS, get_reply
from tests.support.gatewayrunner import GatewayHandle
from tests.support.logguard import ErrorLog
from tests.support.macros import connect, custom, no_event, subscribe, subscribe_cached, subscribe_parent
from tests.support.wsclient import WSClient, assert_result

#: Quiet window after the NO_EVENT barrier (catalog §7.1 item 8).
QUIET = 0.1

DATA_CLIENT = {
    "name": "data",
    "primitive": 12,
    "object": {"data": {"foo": ["bar"]}},
    "array": {"data": [{"foo": "bar"}]},
}
MODEL = MODELS["test.model"]


async def _resubscribe_cached(client: WSClient, svc: FakeService, rid: str, expected: Any) -> None:
    """Unsubscribe ``rid`` then subscribe it again: only an access request, result from the cache."""
    assert_result(await client.request(f"unsubscribe.{rid}"))
    pending = await client.send(f"subscribe.{rid}")
    await (await svc.expect_request(f"access.{rid}")).ok({"get": True})
    assert_result(await pending.response(), expected)


# Test that a change event on a subscribed model is forwarded to the client.
async def test_mev_01_change_event_on_subscribed_resource(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client = await connect(gateway)
    await subscribe(client, service, "test.model")
    ev = {"values": {"string": "bar", "int": -12}}
    await service.event("test.model", "change", ev)
    await client.expect_event("test.model.change", ev)


# Test that a change event arriving before the get response is discarded.
async def test_mev_02_change_event_prior_to_get_response_is_discarded(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client = await connect(gateway)
    pending = await client.send("subscribe.test.model")
    reqs = await service.requests(2)
    await service.event("test.model", "change", {"values": {"string": "bar", "int": -12}})
    await reqs.get("get.test.model").json(get_reply("test.model"))
    await reqs.get("access.test.model").ok({"get": True})
    assert_result(await pending.response(), {"models": {"test.model": MODEL}})
    await no_event(client, service, "test.model", QUIET)


MEV_03_ROWS: list[tuple[str, Any, Any, Any, int]] = [
    # (rid, change payload, client event data or None, model after, errors)
    ("test.model", {"values": {"string": "bar", "int": -12}}, "same",
     {"string": "bar", "int": -12, "bool": True, "null": None}, 0),
    ("test.model", {"values": {"string": "bar"}}, "same",
     {"string": "bar", "int": 42, "bool": True, "null": None}, 0),
    ("test.model", {"values": {"int": -12}}, "same",
     {"string": "foo", "int": -12, "bool": True, "null": None}, 0),
    ("test.model", {"values": {"new": False}}, "same",
     {"string": "foo", "int": 42, "bool": True, "null": None, "new": False}, 0),
    ("test.model", {"values": {"int": {"action": "delete"}}}, "same",
     {"string": "foo", "bool": True, "null": None}, 0),
    ("test.model", {"values": {"soft": {"rid": "test.model.soft", "soft": True}}}, "same",
     {"string": "foo", "int": 42, "bool": True, "null": None, "soft": {"rid": "test.model.soft", "soft": True}}, 0),
    ("test.model.soft", {"values": {"child": None}}, "same", {"name": "soft", "child": None}, 0),
    ("test.model.soft", {"values": {"child": {"action": "delete"}}}, "same", {"name": "soft"}, 0),
    ("test.model.data", {"values": {"primitive": {"data": 13}}}, {"values": {"primitive": 13}},
     {**DATA_CLIENT, "primitive": 13}, 0),
    ("test.model.data", {"values": {"object": {"data": {"foo": ["baz"]}}}}, "same",
     {**DATA_CLIENT, "object": {"data": {"foo": ["baz"]}}}, 0),
    ("test.model.data", {"values": {"array": {"data": [{"foo": "baz"}]}}}, "same",
     {**DATA_CLIENT, "array": {"data": [{"foo": "baz"}]}}, 0),
    ("test.model", {"values": {}}, None, MODEL, 0),
    ("test.model", {"values": {"string": "foo"}}, None, MODEL, 0),
    ("test.model", {"values": {"string": "foo", "int": 42}}, None, MODEL, 0),
    ("test.model", {"values": {"invalid": {"action": "delete"}}}, None, MODEL, 0),
    ("test.model", {"values": {"null": None, "string": "bar"}}, {"values": {"string": "bar"}},
     {"string": "bar", "int": 42, "bool": True, "null": None}, 0),
    ("test.model.soft", {"values": {"child": {"rid": "test.model", "soft": True}}}, None,
     MODELS["test.model.soft"], 0),
    ("test.model.data", {"values": {}}, None, DATA_CLIENT, 0),
    ("test.model.data",
     {"values": {"primitive": 12, "object": {"data": {"foo": ["bar"]}}, "array": {"data": [{"foo": "bar"}]}}},
     None, DATA_CLIENT, 0),
    ("test.model", {"values": {"null": {"data": None}}}, None, MODEL, 0),
    ("test.model", {"string": "bar", "int": -12}, {"values": {"string": "bar", "int": -12}},
     {"string": "bar", "int": -12, "bool": True, "null": None}, 1),
    ("test.model", {"string": "bar"}, {"values": {"string": "bar"}},
     {"string": "bar", "int": 42, "bool": True, "null": None}, 1),
]  # fmt: skip


# Test that a change event on a cached model is forwarded (or not) and updates the cache.
@pytest.mark.parametrize(
    ("rid", "payload", "client_data", "after", "n_errors"),
    MEV_03_ROWS,
    ids=[f"MEV-03.{i:02d}" for i in range(1, len(MEV_03_ROWS) + 1)],
)
async def test_mev_03_change_event_on_cached_model(
    gateway: GatewayHandle,
    service: FakeService,
    errors: ErrorLog,
    rid: str,
    payload: Any,
    client_data: Any,
    after: Any,
    n_errors: int,
) -> None:
    client = await connect(gateway)
    await subscribe(client, service, rid)
    await service.event(rid, "change", payload)
    if client_data is None:
        await no_event(client, service, f"{rid}.change", QUIET)
    else:
        await client.expect_event(f"{rid}.change", payload if client_data == "same" else client_data)
    await errors.expect(n_errors)
    await _resubscribe_cached(client, service, rid, {"models": {rid: after}})


# Test that a change adding a reference to an uncached resource loads it and sends it with the event.
async def test_mev_04_change_event_with_new_resource_reference(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client = await connect(gateway)
    await subscribe(client, service, "test.model")
    await service.event("test.model", "change", {"values": {"ref": {"rid": "test.collection"}}})
    await (await service.expect_request("get.test.collection")).json(get_reply("test.collection"))
    await client.expect_event(
        "test.model.change",
        {
            "values": {"ref": {"rid": "test.collection"}},
            "collections": {"test.collection": ["foo", 42, True, None]},
        },
    )
    await custom(service, "test.collection")
    await client.expect_event("test.collection.custom", CUSTOM_PAYLOAD)


# Test that a change removing a reference stops events of the unreferenced child.
async def test_mev_05_change_event_with_removed_resource_reference(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client = await connect(gateway)
    await subscribe_parent(client, service)
    await custom(service, "test.model")
    await client.expect_event("test.model.custom", CUSTOM_PAYLOAD)
    await service.event("test.model.parent", "change", {"values": {"child": None}})
    await client.expect_event("test.model.parent.change", {"values": {"child": None}})
    await custom(service, "test.model")
    await no_event(client, service, "test.model", QUIET)


# Test that a change replacing a reference subscribes the new child and releases the old one.
async def test_mev_06_change_event_with_changed_resource_reference(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client = await connect(gateway)
    await subscribe_parent(client, service)
    await service.event("test.model.parent", "change", {"values": {"child": {"rid": "test.collection"}}})
    await (await service.expect_request("get.test.collection")).json(get_reply("test.collection"))
    await client.expect_event(
        "test.model.parent.change",
        {
            "values": {"child": {"rid": "test.collection"}},
            "collections": {"test.collection": ["foo", 42, True, None]},
        },
    )
    await custom(service, "test.collection")
    await client.expect_event("test.collection.custom", CUSTOM_PAYLOAD)
    await custom(service, "test.model")
    await no_event(client, service, "test.model", QUIET)


# Test that replacing a reference with a soft reference unsubscribes the referenced resource.
async def test_mev_07_change_event_reference_replaced_by_soft_reference_unsubscribes(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client = await connect(gateway)
    await subscribe_parent(client, service)
    await custom(service, "test.model")
    await client.expect_event("test.model.custom", CUSTOM_PAYLOAD)
    values = {"values": {"child": {"rid": "test.model", "soft": True}}}
    await service.event("test.model.parent", "change", values)
    await client.expect_event("test.model.parent.change", values)
    await custom(service, "test.model")
    await no_event(client, service, "test.model", QUIET)


# Test that replacing a soft reference with a hard reference subscribes the referenced resource.
async def test_mev_08_change_event_soft_reference_replaced_by_reference_subscribes(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client = await connect(gateway)
    await subscribe(client, service, "test.model.soft")
    values = {"values": {"child": {"rid": "test.model", "soft": False}}}
    await service.event("test.model.soft", "change", values)
    await (await service.expect_request("get.test.model")).json(get_reply("test.model"))
    await client.expect_event("test.model.soft.change", {**values, "models": {"test.model": MODEL}})
    await custom(service, "test.model")
    await client.expect_event("test.model.custom", CUSTOM_PAYLOAD)


# Checklist 86: the cache is updated by a change event — a second client sees the new model with only
# an access request.
async def test_chk_86_change_event_updates_cache_for_other_client(
    gateway: GatewayHandle, service: FakeService
) -> None:
    c1 = await connect(gateway)
    c2 = await connect(gateway)
    await subscribe(c1, service, "test.model")
    await service.event("test.model", "change", {"values": {"string": "bar", "int": -12}})
    await c1.expect_event("test.model.change", {"values": {"string": "bar", "int": -12}})
    pending = await c2.send("subscribe.test.model")
    await (await service.expect_request("access.test.model")).ok({"get": True})
    assert_result(
        await pending.response(),
        {"models": {"test.model": {"string": "bar", "int": -12, "bool": True, "null": None}}},
    )


# Checklist 91: a change event before the get response is not applied to the cache either.
async def test_chk_91_change_event_prior_to_get_response_not_applied(
    gateway: GatewayHandle, service: FakeService
) -> None:
    c1 = await connect(gateway)
    pending = await c1.send("subscribe.test.model")
    reqs = await service.requests(2)
    await service.event("test.model", "change", {"values": {"string": "bar"}})
    await reqs.get("get.test.model").json(get_reply("test.model"))
    await reqs.get("access.test.model").ok({"get": True})
    await pending.response()
    c2 = await connect(gateway)
    await subscribe_cached(c2, service, "test.model")
    await _resubscribe_cached(c2, service, "test.model", {"models": {"test.model": MODEL}})
    await no_event(c1, service, "test.model", QUIET)


# Checklist 92: the legacy (v1.0) change payload logs the deprecation once per service, not per event.
async def test_chk_92_legacy_change_event_deprecation_logged_once(
    gateway: GatewayHandle, service: FakeService, errors: ErrorLog
) -> None:
    client = await connect(gateway)
    await subscribe(client, service, "test.model")
    await service.event("test.model", "change", {"string": "bar"})
    await client.expect_event("test.model.change", {"values": {"string": "bar"}})
    await errors.expect(1)
    await service.event("test.model", "change", {"int": 7})
    await client.expect_event("test.model.change", {"values": {"int": 7}})
    await no_event(client, service, "test.model", QUIET)
    await errors.expect(0)


# Checklist 96: a change event on a collection logs an error and sends no client event.
async def test_chk_96_change_event_on_collection_logs_error(
    gateway: GatewayHandle, service: FakeService, errors: ErrorLog
) -> None:
    client = await connect(gateway)
    await subscribe(client, service, "test.collection")
    await service.event("test.collection", "change", {"values": {"foo": "bar"}})
    await errors.expect(1)
    await no_event(client, service, "test.collection", QUIET)
    await _resubscribe_cached(
        client, service, "test.collection", {"collections": {"test.collection": ["foo", 42, True, None]}}
    )


# Checklist 93: a change adding a reference to an already-held resource carries no resource set.
async def test_chk_93_change_event_with_reference_already_held_has_no_resource_set(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client = await connect(gateway)
    await subscribe(client, service, "test.model")
    await subscribe(client, service, "test.collection")
    await service.event("test.model", "change", {"values": {"ref": {"rid": "test.collection"}}})
    await client.expect_event("test.model.change", {"values": {"ref": {"rid": "test.collection"}}})
    await no_event(client, service, "test.model", QUIET)


# Checklist 94: a reference moving between properties in one change event keeps the child subscribed.
async def test_chk_94_reference_moved_between_properties_stays_subscribed(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client = await connect(gateway)
    await subscribe_parent(client, service)
    values = {"values": {"child": None, "other": {"rid": "test.model"}}}
    await service.event("test.model.parent", "change", values)
    await client.expect_event("test.model.parent.change", values)
    await custom(service, "test.model")
    await client.expect_event("test.model.custom", CUSTOM_PAYLOAD)


# Checklist 92 (negative side): malformed change payloads (not JSON, not an object) log an error, no event.
@pytest.mark.parametrize("payload", [b"{not json", b"[1,2]", b"42"], ids=["invalid-json", "array", "number"])
async def test_chk_92_malformed_change_payload_logs_error(
    gateway: GatewayHandle, service: FakeService, errors: ErrorLog, payload: bytes
) -> None:
    client = await connect(gateway)
    await subscribe(client, service, "test.model")
    await service.event("test.model", "change", payload)
    await errors.expect(1)
    await no_event(client, service, "test.model", QUIET)
