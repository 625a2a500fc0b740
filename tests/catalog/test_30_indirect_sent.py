"""Catalog §5.30 (resgate 30indirectsent_test.go): resources the client dropped while still cached, then
referenced again by a parent that is still loading (resgate issue #241)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.support.fakeservice import FakeService
from tests.support.fixtures import CUSTOM_PAYLOAD, MODELS, get_result
from tests.support.gatewayrunner import GatewayHandle
from tests.support.macros import connect, custom, subscribe, subscribe_parent
from tests.support.wsclient import WSClient, assert_result

DP = {"name": "delayedparent", "child": {"rid": "test.model"}, "delayed": {"rid": "test.model.delayed"}}
DL = {"name": "delayed"}
PARENT_NO_CHILD = {"model": {"name": "parent", "child": None}}
CHILD_REF = {"values": {"child": {"rid": "test.model"}}}
CHILD_NULL = {"values": {"child": None}}

Step = Callable[[WSClient, FakeService], Awaitable[None]]


async def _unsubscribe(c: WSClient, rid: str) -> None:
    assert_result(await c.request(f"unsubscribe.{rid}"))


async def _change_parent_child(c: WSClient, svc: FakeService, values: dict[str, Any]) -> None:
    """``P> event.test.model.parent.change values`` and consume the client's change event."""
    await svc.event("test.model.parent", "change", values)
    await c.expect_event("test.model.parent.change", values)


# T1 "directly unsubscribed"
async def _t1_sub(c: WSClient, svc: FakeService) -> None:
    await subscribe(c, svc, "test.model")


async def _t1_unsub(c: WSClient, svc: FakeService) -> None:
    await _unsubscribe(c, "test.model")


# T2 "indirectly unsubscribed"
async def _t2_sub(c: WSClient, svc: FakeService) -> None:
    await subscribe_parent(c, svc, child_sent=False)


async def _t2_unsub(c: WSClient, svc: FakeService) -> None:
    await _unsubscribe(c, "test.model.parent")


# T3 "change event indirectly unsubscribed"
async def _t3_unsub(c: WSClient, svc: FakeService) -> None:
    await _change_parent_child(c, svc, CHILD_NULL)


# T4 "direct + indirect via change, then both removed"
async def _t4_sub(c: WSClient, svc: FakeService) -> None:
    await subscribe(c, svc, "test.model")
    await subscribe(c, svc, "test.model.parent", PARENT_NO_CHILD)
    await _change_parent_child(c, svc, CHILD_REF)


async def _t4_unsub(c: WSClient, svc: FakeService) -> None:
    await _unsubscribe(c, "test.model")
    await _change_parent_child(c, svc, CHILD_NULL)


# T5 "change event subscribe/unsubscribe"
async def _t5_sub(c: WSClient, svc: FakeService) -> None:
    await subscribe(c, svc, "test.model.parent", PARENT_NO_CHILD)
    await svc.event("test.model.parent", "change", CHILD_REF)
    await (await svc.expect_request("get.test.model")).ok(get_result("test.model"))
    await c.expect_event(
        "test.model.parent.change", {**CHILD_REF, "models": {"test.model": MODELS["test.model"]}}
    )


# T6 "direct unsubscribe after removing indirect reference"
async def _t6_sub(c: WSClient, svc: FakeService) -> None:
    await subscribe(c, svc, "test.model")
    await subscribe_parent(c, svc, child_sent=True)


async def _t6_unsub(c: WSClient, svc: FakeService) -> None:
    await _change_parent_child(c, svc, CHILD_NULL)
    await _unsubscribe(c, "test.model")


TYPES: list[tuple[Step, Step]] = [
    (_t1_sub, _t1_unsub),
    (_t2_sub, _t2_unsub),
    (_t2_sub, _t3_unsub),
    (_t4_sub, _t4_unsub),
    (_t5_sub, _t3_unsub),
    (_t6_sub, _t6_unsub),
]
TYPE_IDS = [f"T{i}" for i in range(1, 7)]

#: What the client must receive with the delayed parent: test.model again, plus the new resources.
DELAYED_SET = {"test.model": MODELS["test.model"], "test.model.delayedparent": DP, "test.model.delayed": DL}


async def _load_delayedparent_holding_delayed(c: WSClient, svc: FakeService) -> Any:
    """``N> get.test.model.delayedparent`` → DP → ``N> get.test.model.delayed`` (returned, unanswered);
    no get for the cached test.model."""
    await (await svc.expect_request("get.test.model.delayedparent")).ok({"model": DP})
    return await svc.expect_request("get.test.model.delayed")


# Test that a subscribe response re-includes a resource the client dropped while the response was loading.
@pytest.mark.parametrize(("sub", "unsub"), TYPES, ids=[f"IND-01.{t}" for t in TYPE_IDS])
async def test_ind_01_subscription_reference_contains_resource(
    gateway: GatewayHandle, service: FakeService, sub: Step, unsub: Step
) -> None:
    c = await connect(gateway)
    await sub(c, service)
    pending = await c.send("subscribe.test.model.delayedparent")
    reqs = await service.requests(2)
    await reqs.get("access.test.model.delayedparent").ok({"get": True})
    await reqs.get("get.test.model.delayedparent").ok({"model": DP})
    delayed = await service.expect_request("get.test.model.delayed")
    await unsub(c, service)
    await delayed.ok({"model": DL})
    assert_result(await pending.response(), {"models": DELAYED_SET})


async def _subscribe_delayedgrandparent(c: WSClient, svc: FakeService, rid: str, data: Any) -> None:
    key = "models" if isinstance(data, dict) else "collections"
    pending = await c.send(f"subscribe.{rid}")
    reqs = await svc.requests(2)
    await reqs.get(f"access.{rid}").ok({"get": True})
    await reqs.get(f"get.{rid}").ok({"model" if key == "models" else "collection": data})
    assert_result(await pending.response(), {key: {rid: data}})


# Test that a change event re-includes a resource the client dropped while the event's references loaded.
@pytest.mark.parametrize(("sub", "unsub"), TYPES, ids=[f"IND-02.{t}" for t in TYPE_IDS])
async def test_ind_02_change_event_reference_contains_resource(
    gateway: GatewayHandle, service: FakeService, sub: Step, unsub: Step
) -> None:
    c = await connect(gateway)
    await sub(c, service)
    rid = "test.model.delayedgrandparent"
    await _subscribe_delayedgrandparent(c, service, rid, {"name": "delayedgrandparent", "parent": None})
    values = {"parent": {"rid": "test.model.delayedparent"}}
    await service.event(rid, "change", {"values": values})
    delayed = await _load_delayedparent_holding_delayed(c, service)
    await unsub(c, service)
    await delayed.ok({"model": DL})
    await c.expect_event(f"{rid}.change", {"values": values, "models": DELAYED_SET})
    await custom(service, "test.model.delayedparent")
    await c.expect_event("test.model.delayedparent.custom", CUSTOM_PAYLOAD)


# Test that an add event re-includes a resource the client dropped while the event's references loaded.
@pytest.mark.parametrize(("sub", "unsub"), TYPES, ids=[f"IND-03.{t}" for t in TYPE_IDS])
async def test_ind_03_add_event_reference_contains_resource(
    gateway: GatewayHandle, service: FakeService, sub: Step, unsub: Step
) -> None:
    c = await connect(gateway)
    await sub(c, service)
    rid = "test.collection.delayedgrandparent"
    await _subscribe_delayedgrandparent(c, service, rid, ["delayedgrandparent"])
    add = {"idx": 1, "value": {"rid": "test.model.delayedparent"}}
    await service.event(rid, "add", add)
    delayed = await _load_delayedparent_holding_delayed(c, service)
    await unsub(c, service)
    await delayed.ok({"model": DL})
    await c.expect_event(f"{rid}.add", {**add, "models": DELAYED_SET})
    await custom(service, "test.model.delayedparent")
    await c.expect_event("test.model.delayedparent.custom", CUSTOM_PAYLOAD)


# Test that a subscribe response re-includes a nested resource tree the client dropped meanwhile.
async def test_ind_04_subscription_reference_to_nested_resource_contains_resource(
    gateway: GatewayHandle, service: FakeService
) -> None:
    c = await connect(gateway)
    await subscribe_parent(c, service, child_sent=False)
    rid = "test.model.delayedGrandparent"
    data = {
        "name": "delayedGrandparent",
        "child": {"rid": "test.model.parent"},
        "delayed": {"rid": "test.model.delayed"},
    }
    pending = await c.send(f"subscribe.{rid}")
    reqs = await service.requests(2)
    await reqs.get(f"access.{rid}").ok({"get": True})
    await reqs.get(f"get.{rid}").ok({"model": data})
    delayed = await service.expect_request("get.test.model.delayed")
    await _unsubscribe(c, "test.model.parent")
    await delayed.ok({"model": DL})
    assert_result(
        await pending.response(),
        {
            "models": {
                "test.model": MODELS["test.model"],
                "test.model.parent": MODELS["test.model.parent"],
                rid: data,
                "test.model.delayed": DL,
            }
        },
    )
