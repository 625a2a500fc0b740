"""Catalog §5.40 (resgate 40legacy_1.2.0_test.go): protocol 1.2.0 clients and change/add events.

Also res-protocol.md §7 checklist items 158–160 (legacy client behaviour) not covered by the catalog rows
(``test_chk_*``). Item 160 is exactly L120-02.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.fakeservice import FakeService
from tests.support.fixtures import (
    CUSTOM_PAYLOAD,
    LEGACY_120_COLLECTIONS,
    LEGACY_120_MODELS,
    MODELS,
    get_reply,
)
from tests.support.gatewayrunner import GatewayHandle
from tests.support.macros import connect, connect_nover, custom, no_event, no_nats, subscribe
from tests.support.wsclient import WSClient, assert_result

#: Quiet window after the NO_EVENT barrier (catalog §7.1 item 8).
QUIET = 0.1

V120 = "1.2.0"


async def _resubscribe_cached(client: WSClient, svc: FakeService, rid: str, expected: Any) -> None:
    """Unsubscribe ``rid`` then subscribe it again: only an access request, result from the cache."""
    assert_result(await client.request(f"unsubscribe.{rid}"))
    pending = await client.send(f"subscribe.{rid}")
    await (await svc.expect_request(f"access.{rid}")).ok({"get": True})
    assert_result(await pending.response(), expected)


L120_01_ROWS: list[tuple[str, Any, Any, Any]] = [
    # (rid, change payload, client event data (None = no event), model after in 1.2.0 form)
    ("test.model", {"values": {"soft": {"rid": "test.model.soft", "soft": True}}},
     {"values": {"soft": "test.model.soft"}},
     {"string": "foo", "int": 42, "bool": True, "null": None, "soft": "test.model.soft"}),
    ("test.model.soft", {"values": {"child": None}}, {"values": {"child": None}}, {"name": "soft", "child": None}),
    ("test.model.soft", {"values": {"child": {"action": "delete"}}}, {"values": {"child": {"action": "delete"}}},
     {"name": "soft"}),
    ("test.model.soft", {"values": {"child": {"rid": "test.model", "soft": True}}}, None,
     {"name": "soft", "child": "test.model"}),
]  # fmt: skip


# Test that change events on a cached model are rendered in 1.2.0 form, in events and later results.
@pytest.mark.parametrize(
    ("rid", "payload", "client_data", "after"),
    L120_01_ROWS,
    ids=[f"L120-01.{i:02d}" for i in range(1, len(L120_01_ROWS) + 1)],
)
async def test_l120_01_legacy120_change_event_on_cached_model(
    gateway: GatewayHandle, service: FakeService, rid: str, payload: Any, client_data: Any, after: Any
) -> None:
    client = await connect(gateway, V120)
    await subscribe(client, service, rid)
    await service.event(rid, "change", payload)
    if client_data is None:
        await no_event(client, service, f"{rid}.change", QUIET)
    else:
        await client.expect_event(f"{rid}.change", client_data)
    await _resubscribe_cached(client, service, rid, {"models": {rid: after}})


# Test that a 1.2.0 client gets a soft→hard reference change as received, with the resource set, and
# the child becomes subscribed (also checklist 160).
async def test_l120_02_legacy120_change_event_soft_replaced_by_reference_subscribes(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client = await connect(gateway, V120)
    await subscribe(client, service, "test.model.soft")
    values = {"values": {"child": {"rid": "test.model", "soft": False}}}
    await service.event("test.model.soft", "change", values)
    await (await service.expect_request("get.test.model")).json(get_reply("test.model"))
    await client.expect_event(
        "test.model.soft.change", {**values, "models": {"test.model": MODELS["test.model"]}}
    )
    await custom(service, "test.model")
    await client.expect_event("test.model.custom", CUSTOM_PAYLOAD)


L120_03_ROWS: list[tuple[str, str, Any, Any, Any]] = [
    ("test.collection", "add", {"idx": 0, "value": {"rid": "test.collection.soft", "soft": True}},
     {"idx": 0, "value": "test.collection.soft"}, ["test.collection.soft", "foo", 42, True, None]),
    ("test.collection.soft", "remove", {"idx": 1}, {"idx": 1}, ["soft"]),
]  # fmt: skip


# Test that add/remove events on a cached collection are rendered in 1.2.0 form.
@pytest.mark.parametrize(
    ("rid", "event", "payload", "client_data", "after"),
    L120_03_ROWS,
    ids=[f"L120-03.{i:02d}" for i in range(1, len(L120_03_ROWS) + 1)],
)
async def test_l120_03_legacy120_add_remove_events_on_cached_collection(
    gateway: GatewayHandle,
    service: FakeService,
    rid: str,
    event: str,
    payload: Any,
    client_data: Any,
    after: Any,
) -> None:
    client = await connect(gateway, V120)
    await subscribe(client, service, rid)
    await service.event(rid, event, payload)
    await client.expect_event(f"{rid}.{event}", client_data)
    await _resubscribe_cached(client, service, rid, {"collections": {rid: after}})


# --- Checklist 158: client without a version handshake (protocol 1.1.1) ---------------------------------

CHK_158_ROWS: list[tuple[bytes, Any]] = [
    (b'{"result":{"foo":"bar"}}', {"foo": "bar"}),
    (b'{"result":{"rid":"test.model"}}', {"rid": "test.model"}),
    (b'{"result":null}', None),
    (b'{"result":42}', 42),
    (b'{"resource":{"rid":"test.model"}}', {"rid": "test.model"}),
]


# Checklist 158: a legacy client gets call and auth results raw, and a resource response as a bare
# {"rid":…} without any subscription (no access/get request for the resource).
@pytest.mark.parametrize("kind", ["call", "auth"])
@pytest.mark.parametrize(
    ("reply", "expected"), CHK_158_ROWS, ids=["object", "rid-object", "null", "number", "resource"]
)
async def test_chk_158_legacy_client_call_result_raw(
    gateway: GatewayHandle, service: FakeService, kind: str, reply: bytes, expected: Any
) -> None:
    client = await connect_nover(gateway)
    pending = await client.send(f"{kind}.test.model.method", {"a": 1})
    if kind == "call":
        await (await service.expect_request("access.test.model")).ok({"get": True, "call": "*"})
    req = await service.expect_request(f"{kind}.test.model.method")
    req.assert_path("params", {"a": 1})
    await req.respond_raw(reply)
    assert_result(await pending.response(), expected)
    await no_nats(client, service)


# --- Checklist 159: 1.2.0 rendering of soft references and data values ------------------------------------

CHK_159_SUB_ROWS = [
    ("test.model.soft", "models", LEGACY_120_MODELS["test.model.soft"]),
    ("test.model.data", "models", LEGACY_120_MODELS["test.model.data"]),
    ("test.collection.soft", "collections", LEGACY_120_COLLECTIONS["test.collection.soft"]),
    ("test.collection.data", "collections", LEGACY_120_COLLECTIONS["test.collection.data"]),
]


# Checklist 159: resource sets in subscribe responses use the 1.2.0 rendering.
@pytest.mark.parametrize(("rid", "key", "data"), CHK_159_SUB_ROWS, ids=[r[0] for r in CHK_159_SUB_ROWS])
async def test_chk_159_legacy120_resource_set_rendering(
    gateway: GatewayHandle, service: FakeService, rid: str, key: str, data: Any
) -> None:
    client = await connect(gateway, V120)
    pending = await client.send(f"subscribe.{rid}")
    reqs = await service.requests(2)
    await reqs.get(f"access.{rid}").ok({"get": True})
    await reqs.get(f"get.{rid}").json(get_reply(rid))
    assert_result(await pending.response(), {key: {rid: data}})


CHK_159_EVENT_ROWS: list[tuple[str, str, Any, Any]] = [
    ("test.model", "change", {"values": {"string": {"data": {"foo": "bar"}}}}, {"values": {"string": "[Data]"}}),
    ("test.model", "change", {"values": {"string": {"data": [1, 2]}}}, {"values": {"string": "[Data]"}}),
    ("test.model", "change", {"values": {"string": {"data": "bar"}}}, {"values": {"string": "bar"}}),
    ("test.collection", "add", {"idx": 0, "value": {"data": {"foo": "bar"}}}, {"idx": 0, "value": "[Data]"}),
    ("test.collection", "add", {"idx": 0, "value": {"data": [1]}}, {"idx": 0, "value": "[Data]"}),
    ("test.collection", "add", {"idx": 0, "value": {"data": 12}}, {"idx": 0, "value": 12}),
]  # fmt: skip


# Checklist 159: change and add events carry data values in the 1.2.0 rendering.
@pytest.mark.parametrize(
    ("rid", "event", "payload", "client_data"),
    CHK_159_EVENT_ROWS,
    ids=["change-object", "change-array", "change-primitive", "add-object", "add-array", "add-primitive"],
)
async def test_chk_159_legacy120_event_data_rendering(
    gateway: GatewayHandle, service: FakeService, rid: str, event: str, payload: Any, client_data: Any
) -> None:
    client = await connect(gateway, V120)
    await subscribe(client, service, rid)
    await service.event(rid, event, payload)
    await client.expect_event(f"{rid}.{event}", client_data)


# Checklist 159: resources in an event's resource set use the 1.2.0 rendering too.
async def test_chk_159_legacy120_event_resource_set_rendering(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client = await connect(gateway, V120)
    await subscribe(client, service, "test.collection")
    await service.event("test.collection", "add", {"idx": 0, "value": {"rid": "test.model.data"}})
    await (await service.expect_request("get.test.model.data")).json(get_reply("test.model.data"))
    await client.expect_event(
        "test.collection.add",
        {
            "idx": 0,
            "value": {"rid": "test.model.data"},
            "models": {"test.model.data": LEGACY_120_MODELS["test.model.data"]},
        },
    )


# Checklist 159: a call resource response to a 1.2.0 client subscribes the resource and renders its
# resource set in the 1.2.0 form.
async def test_chk_159_legacy120_call_resource_response_rendering(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client = await connect(gateway, V120)
    pending = await client.send("call.test.model.method")
    await (await service.expect_request("access.test.model")).ok({"get": True, "call": "*"})
    await (await service.expect_request("call.test.model.method")).resource("test.model.soft")
    reqs = await service.requests(2)
    await reqs.get("access.test.model.soft").ok({"get": True})
    await reqs.get("get.test.model.soft").json(get_reply("test.model.soft"))
    assert_result(
        await pending.response(),
        {"rid": "test.model.soft", "models": {"test.model.soft": LEGACY_120_MODELS["test.model.soft"]}},
    )
