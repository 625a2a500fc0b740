"""Catalog §5.03 (resgate 03unsubscribe_test.go): unsubscribe semantics and cache eviction; plus
res-protocol.md §7 checklist items of section E not covered by a row."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import GatewayFactory
from tests.support.fakeservice import FakeService
from tests.support.fixtures import CUSTOM_PAYLOAD, E_NOSUB, MODELS, get_result
from tests.support.gatewayrunner import GatewayHandle
from tests.support.macros import (
    connect,
    custom,
    no_event,
    subscribe,
    subscribe_cparent,
    subscribe_parent,
)
from tests.support.wsclient import MISSING, WSClient, assert_error, assert_result


async def _unsubscribe(client: WSClient, rid: str, params: Any = MISSING) -> None:
    """``unsubscribe.rid`` succeeds with an empty result (no ``result`` key, or null)."""
    resp = await client.request(f"unsubscribe.{rid}", params)
    assert_result(resp)
    assert resp.get("result") is None, f"unsubscribe result not empty: {resp!r}"


async def _still_subscribed(client: WSClient, service: FakeService, rid: str) -> None:
    await custom(service, rid)
    await client.expect_event(f"{rid}.custom", CUSTOM_PAYLOAD)


# Test that no events follow an unsubscribe.
async def test_unsub_01_unsubscribe_model(gateway: GatewayHandle, service: FakeService) -> None:
    client = await connect(gateway)
    await subscribe(client, service, "test.model")
    await _unsubscribe(client, "test.model")
    await custom(service, "test.model")
    await no_event(client, service, "test.model", window=0.1)


# Test that unsubscribing a rid the client does not subscribe gives system.noSubscription.
async def test_unsub_02_unsubscribe_without_subscription(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client = await connect(gateway)
    assert_error(await client.request("unsubscribe.test.model"), E_NOSUB)


# Test that unsubscribing a parent also stops events of its child.
async def test_unsub_03_unsubscribe_linked_model(gateway: GatewayHandle, service: FakeService) -> None:
    client = await connect(gateway)
    await subscribe_parent(client, service)
    await _unsubscribe(client, "test.model.parent")
    await custom(service, "test.model")
    await custom(service, "test.model.parent")
    await no_event(client, service, "test.model", window=0.1)
    await no_event(client, service, "test.model.parent")


async def _overlapping(client: WSClient, service: FakeService, kind: str) -> None:
    parent, second = f"test.{kind}.parent", f"test.{kind}.secondparent"
    if kind == "model":
        await subscribe_parent(client, service)
    else:
        await subscribe_cparent(client, service)
    pending = await client.send(f"subscribe.{second}")
    reqs = await service.requests(2)
    await reqs.get(f"get.{second}").ok(get_result(second))
    await reqs.get(f"access.{second}").ok({"get": True})
    await pending.response()
    await _unsubscribe(client, parent)
    await custom(service, parent)
    await custom(service, second)
    await client.expect_event(f"{second}.custom", CUSTOM_PAYLOAD)
    await no_event(client, service, parent, window=0.1)


# Test that after unsubscribing one of two overlapping parents only the other forwards events.
async def test_unsub_04_unsubscribe_on_overlapping_linked_model(
    gateway: GatewayHandle, service: FakeService
) -> None:
    await _overlapping(await connect(gateway), service, "model")


# Test that no events follow an unsubscribe of a collection.
async def test_unsub_05_unsubscribe_collection(gateway: GatewayHandle, service: FakeService) -> None:
    client = await connect(gateway)
    await subscribe(client, service, "test.collection")
    await _unsubscribe(client, "test.collection")
    await custom(service, "test.collection")
    await no_event(client, service, "test.collection", window=0.1)


# Test that unsubscribing a parent collection also stops events of its child.
async def test_unsub_06_unsubscribe_linked_collection(gateway: GatewayHandle, service: FakeService) -> None:
    client = await connect(gateway)
    await subscribe_cparent(client, service)
    await _unsubscribe(client, "test.collection.parent")
    await custom(service, "test.collection")
    await custom(service, "test.collection.parent")
    await no_event(client, service, "test.collection", window=0.1)
    await no_event(client, service, "test.collection.parent")


# Test the collection analogue of UNSUB-04.
async def test_unsub_07_unsubscribe_on_overlapping_linked_collection(
    gateway: GatewayHandle, service: FakeService
) -> None:
    await _overlapping(await connect(gateway), service, "collection")


async def _call_get_model(client: WSClient, service: FakeService) -> Any:
    pending = await client.send("call.test.getModel")
    await (await service.expect_request("access.test")).ok({"get": True, "call": "*"})
    await (await service.expect_request("call.test.getModel")).resource("test.model")
    return pending


# Test that after unsubscribing both direct subscriptions a resource response re-sends the resource.
async def test_unsub_08_unsubscribe_followed_by_resource_response_includes_resource(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client = await connect(gateway)
    pending = await client.send("subscribe.test.model")
    reqs = await service.requests(2)
    await reqs.get("get.test.model").ok(get_result("test.model"))
    await reqs.get("access.test.model").ok({"get": True})
    assert_result(await pending.response(), {"models": {"test.model": MODELS["test.model"]}})
    pending = await _call_get_model(client, service)
    assert_result(await pending.response(), {"rid": "test.model"})
    await _unsubscribe(client, "test.model", {"count": 2})
    pending = await _call_get_model(client, service)
    await (await service.expect_request("access.test.model")).ok({"get": True})
    assert_result(
        await pending.response(), {"rid": "test.model", "models": {"test.model": MODELS["test.model"]}}
    )


# Test that unsubscribe with {"count":1} removes the single subscription.
async def test_unsub_09_unsubscribe_with_count_unsubscribes_model(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client = await connect(gateway)
    await subscribe(client, service, "test.model")
    await _unsubscribe(client, "test.model", {"count": 1})
    await custom(service, "test.model")
    await no_event(client, service, "test.model", window=0.1)


UNSUB_10_ROWS = [
    ([], "system.invalidParams"),
    ({"count": "foo"}, "system.invalidParams"),
    ({"count": True}, "system.invalidParams"),
    ({"count": 0}, "system.invalidParams"),
    ({"count": -1}, "system.invalidParams"),
    ({"count": 2}, "system.noSubscription"),
]


# Test that an invalid unsubscribe payload gives an error and leaves the subscription intact.
@pytest.mark.parametrize(
    ("params", "code"), UNSUB_10_ROWS, ids=[f"UNSUB-10.{i:02d}" for i in range(1, len(UNSUB_10_ROWS) + 1)]
)
async def test_unsub_10_unsubscribe_with_invalid_payload_does_not_unsubscribe_model(
    gateway: GatewayHandle, service: FakeService, params: Any, code: str
) -> None:
    client = await connect(gateway)
    await subscribe(client, service, "test.model")
    assert_error(await client.request("unsubscribe.test.model", params), code)
    await _still_subscribed(client, service, "test.model")


# Test that with no eviction delay the cache drops test.model after the unsubscribe (NATS monitor
# substitute for the internal eviction hook), and a new subscribe fetches it again.
async def test_unsub_11_unsubscribe_model_unsubscribes_from_cache(
    gateway_factory: GatewayFactory, service: FakeService
) -> None:
    gw = await gateway_factory(cache_eviction_delay=0)
    client = await connect(gw)
    await subscribe(client, service, "test.model")
    await service.assert_gateway_subscribed("event.test.model.custom")
    await _unsubscribe(client, "test.model")
    await service.wait_gateway_subscribed("event.test.model.custom", present=False, timeout=3.0)
    await subscribe(client, service, "test.model")  # get.test.model is requested again


# Test that with no eviction delay unsubscribing a parent evicts both the parent and its child.
async def test_unsub_12_linked_model_unsubscribes_from_cache(
    gateway_factory: GatewayFactory, service: FakeService
) -> None:
    gw = await gateway_factory(cache_eviction_delay=0)
    client = await connect(gw)
    await subscribe_parent(client, service)
    await _unsubscribe(client, "test.model.parent")
    await service.wait_gateway_subscribed("event.test.model.parent.custom", present=False, timeout=3.0)
    await service.wait_gateway_subscribed("event.test.model.custom", present=False, timeout=3.0)
    await subscribe_parent(client, service)  # both gets are requested again


# --- Checklist items (res-protocol.md §7 E) -----------------------------------------------------------


# Checklist 45: a child referenced by two subscribed parents stays subscribed after one is unsubscribed.
async def test_chk_45_shared_child_survives_unsubscribe_of_one_parent(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client = await connect(gateway)
    await subscribe_parent(client, service)
    pending = await client.send("subscribe.test.model.secondparent")
    reqs = await service.requests(2)
    await reqs.get("get.test.model.secondparent").ok(get_result("test.model.secondparent"))
    await reqs.get("access.test.model.secondparent").ok({"get": True})
    assert_result(
        await pending.response(), {"models": {"test.model.secondparent": MODELS["test.model.secondparent"]}}
    )
    await _unsubscribe(client, "test.model.parent")
    await _still_subscribed(client, service, "test.model")


# Checklist 46: {}, null and absent params each remove one direct subscription; {"count":2} removes two.
@pytest.mark.parametrize(
    "forms",
    [[{}, {}], [None, None], [MISSING, MISSING], [{"count": None}, {}], [{"count": 2}]],
    ids=["empty-object", "null", "absent", "count-null", "count-2"],
)
async def test_chk_46_unsubscribe_count_forms(
    gateway: GatewayHandle, service: FakeService, forms: list[Any]
) -> None:
    client = await connect(gateway)
    await subscribe(client, service, "test.model")
    assert_result(await client.request("subscribe.test.model"), {})
    for i, params in enumerate(forms):
        await _unsubscribe(client, "test.model", params)
        if i < len(forms) - 1:
            await _still_subscribed(client, service, "test.model")
    await custom(service, "test.model")
    await no_event(client, service, "test.model", window=0.1)
    assert_error(await client.request("unsubscribe.test.model"), E_NOSUB)


# Checklist 49: unsubscribing a rid held only indirectly gives system.noSubscription, events continue.
async def test_chk_49_unsubscribe_indirect_only_is_no_subscription(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client = await connect(gateway)
    await subscribe_parent(client, service)
    assert_error(await client.request("unsubscribe.test.model"), E_NOSUB)
    await _still_subscribed(client, service, "test.model")
    await _still_subscribed(client, service, "test.model.parent")


# Checklist 47 (with protocol §2.3/§5.12): non-integer counts, even integral floats, are invalid params.
@pytest.mark.parametrize(
    "params", [{"count": 1.5}, {"count": 2.0}, {"count": "1"}, "1"], ids=["1.5", "2.0", "str", "bare"]
)
async def test_chk_47_unsubscribe_non_integer_count_is_invalid(
    gateway: GatewayHandle, service: FakeService, params: Any
) -> None:
    client = await connect(gateway)
    await subscribe(client, service, "test.model")
    assert_result(await client.request("subscribe.test.model"), {})
    assert_error(await client.request("unsubscribe.test.model", params), "system.invalidParams")
    await _still_subscribed(client, service, "test.model")
