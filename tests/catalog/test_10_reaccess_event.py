"""Catalog §5.10 (resgate 10reaccess_event_test.go): reaccess events, plus checklist items 111-120."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import GatewayFactory
from tests.support.fakeservice import NULL, FakeService
from tests.support.fixtures import (
    CUSTOM_PAYLOAD,
    E_CUSTOMERR,
    E_TIMEOUT,
    UNSUB_ACCESS,
    get_result,
    resource_set,
)
from tests.support.gatewayrunner import GatewayHandle
from tests.support.macros import connect, custom, get_cid, no_event, no_nats, subscribe, subscribe_parent
from tests.support.tokenevent_helpers import set_token
from tests.support.wsclient import WSClient, assert_result


async def _reaccess(service: FakeService, rid: str) -> None:
    await service.event(rid, "reaccess", NULL)


async def _custom_delivered(client: WSClient, service: FakeService, rid: str) -> None:
    await custom(service, rid)
    await client.expect_event(f"{rid}.custom", CUSTOM_PAYLOAD)


async def _custom_not_delivered(client: WSClient, service: FakeService, rid: str) -> None:
    await custom(service, rid)
    await no_event(client, service, rid)


# Test that a reaccess event sends a new access request with the subscriber's cid; granted → nothing.
async def test_reacc_01_reaccess_event(gateway: GatewayHandle, service: FakeService) -> None:
    client = await connect(gateway)
    cid = await subscribe(client, service, "test.model")
    await _reaccess(service, "test.model")
    access = await service.expect_request("access.test.model")
    access.assert_path("cid", cid)
    await access.ok({"get": True})
    await no_event(client, service)


# Test that reaccess on a directly subscribed parent re-checks it and granted access keeps events flowing.
async def test_reacc_02_reaccess_event_triggers_access_call_on_subscribed_resources(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client = await connect(gateway)
    await subscribe_parent(client, service)
    await _reaccess(service, "test.model.parent")
    await (await service.expect_request("access.test.model.parent")).ok({"get": True})
    await no_event(client, service, "test.model.parent")
    await _custom_delivered(client, service, "test.model")
    await _custom_delivered(client, service, "test.model.parent")


# Test that denied access on reaccess unsubscribes the parent and its exclusive child.
async def test_reacc_03_reaccess_event_triggers_unsubscribe_on_denied_access_call(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client = await connect(gateway)
    await subscribe_parent(client, service)
    await _reaccess(service, "test.model.parent")
    await (await service.expect_request("access.test.model.parent")).ok({"get": False})
    await client.expect_event("test.model.parent.unsubscribe", UNSUB_ACCESS)
    await _custom_not_delivered(client, service, "test.model")
    await _custom_not_delivered(client, service, "test.model.parent")


# Test that unsubscribing a parent leaves a directly subscribed child subscribed, without access requests.
async def test_reacc_04_unsubscribing_parent_to_presubscribed_child_does_not_trigger_access_call(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client = await connect(gateway)
    await subscribe(client, service, "test.model")
    await subscribe_parent(client, service, child_sent=True)
    assert_result(await client.request("unsubscribe.test.model.parent"))
    await no_nats(client, service)
    await _custom_delivered(client, service, "test.model")


# Test that events of a directly subscribed resource are queued while its reaccess is pending.
async def test_reacc_05_reaccess_event_queues_events(gateway: GatewayHandle, service: FakeService) -> None:
    client = await connect(gateway)
    await subscribe_parent(client, service)
    await _reaccess(service, "test.model.parent")
    access = await service.expect_request("access.test.model.parent")
    await custom(service, "test.model.parent")
    await custom(service, "test.model")
    await client.expect_event("test.model.custom", CUSTOM_PAYLOAD)
    await no_event(client, service, "test.model.parent")
    await access.ok({"get": True})
    await client.expect_event("test.model.parent.custom", CUSTOM_PAYLOAD)


async def _subscribe_with_reaccess_before_get(
    client: WSClient, service: FakeService, reaccess_events: int
) -> None:
    """subscribe.test.model, grant access, publish reaccess event(s), then reply the get."""
    pending = await client.send("subscribe.test.model")
    reqs = await service.requests(2)
    await reqs.get("access.test.model").ok({"get": True})
    for _ in range(reaccess_events):
        await _reaccess(service, "test.model")
    await reqs.get("get.test.model").ok(get_result("test.model"))
    assert_result(await pending.response(), resource_set("test.model"))


# Test that a reaccess arriving before the get response is applied afterwards; denied → unsubscribe.
async def test_reacc_06_reaccess_sent_before_get_response_denying_access(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client = await connect(gateway)
    await _subscribe_with_reaccess_before_get(client, service, 1)
    await (await service.expect_request("access.test.model")).ok({"get": False})
    await client.expect_event("test.model.unsubscribe", UNSUB_ACCESS)


# Test that a reaccess arriving before the get response is applied afterwards; granted → events flow.
async def test_reacc_07_reaccess_sent_before_get_response_granting_access(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client = await connect(gateway)
    await _subscribe_with_reaccess_before_get(client, service, 1)
    await (await service.expect_request("access.test.model")).ok({"get": True})
    await _custom_delivered(client, service, "test.model")


# Test that reaccess on a self-referencing resource sends an access request.
async def test_reacc_08_reaccess_on_cyclic_reference(gateway: GatewayHandle, service: FakeService) -> None:
    client = await connect(gateway)
    pending = await client.send("subscribe.test.m.a")
    reqs = await service.requests(2)
    await reqs.get("get.test.m.a").ok(get_result("test.m.a"))
    await reqs.get("access.test.m.a").ok({"get": True})
    assert_result(await pending.response(), {"models": {"test.m.a": {"a": {"rid": "test.m.a"}}}})
    await _reaccess(service, "test.m.a")
    await (await service.expect_request("access.test.m.a")).ok({"get": True})
    await no_event(client, service)


# Test that several reaccess events while the get is pending result in one access request.
async def test_reacc_09_multiple_reaccess_events_while_queueing(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client = await connect(gateway)
    await _subscribe_with_reaccess_before_get(client, service, 2)
    await (await service.expect_request("access.test.model")).ok({"get": True})
    await no_nats(client, service)
    await _custom_delivered(client, service, "test.model")


# Test that reaccess on an indirectly subscribed resource sends no access request; events continue.
async def test_reacc_10_reaccess_event_on_indirect_resources(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client = await connect(gateway)
    await subscribe_parent(client, service)
    await _reaccess(service, "test.model")
    await no_nats(client, service)
    await _custom_delivered(client, service, "test.model")


# Checklist 118: a reaccess answered with an error or a timeout unsubscribes with that error as reason.
@pytest.mark.parametrize(
    ("reply", "reason"), [("error", E_CUSTOMERR), ("timeout", E_TIMEOUT)], ids=["error", "timeout"]
)
async def test_chk_118_reaccess_error_or_timeout_unsubscribes_with_error(
    gateway_factory: GatewayFactory, service: FakeService, reply: str, reason: dict[str, Any]
) -> None:
    gw = await gateway_factory(request_timeout=200)
    client = await connect(gw)
    await subscribe(client, service, "test.model")
    await _reaccess(service, "test.model")
    access = await service.expect_request("access.test.model")
    if reply == "error":
        await access.error(E_CUSTOMERR)
    await client.expect_event("test.model.unsubscribe", {"reason": reason})
    await _custom_not_delivered(client, service, "test.model")


async def _call(client: WSClient, service: FakeService, rid: str, expect_access: bool) -> None:
    """call.<rid>.method; with ``expect_access`` the access request (granting call) comes first."""
    pending = await client.send(f"call.{rid}.method")
    if expect_access:
        await (await service.expect_request(f"access.{rid}")).ok({"get": True, "call": "*"})
    await (await service.expect_request(f"call.{rid}.method")).ok({"n": 1})
    assert_result(await pending.response(), {"payload": {"n": 1}})


# Checklist 120: after a reaccess event, or a token change when a token was already set, the cached access
# is gone: the next call on that (indirectly subscribed) rid sends a new access request.
async def test_chk_120_reaccess_and_token_change_clear_cached_access(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client = await connect(gateway)
    cid = await get_cid(client, service)
    await subscribe_parent(client, service)
    await _call(client, service, "test.model", expect_access=True)
    await _call(client, service, "test.model", expect_access=False)  # access cached
    await _reaccess(service, "test.model")
    await no_nats(client, service)  # indirect: no access request of its own
    await _call(client, service, "test.model", expect_access=True)
    await _call(client, service, "test.model", expect_access=False)
    await set_token(client, service, cid, {"token": {"user": "foo"}})  # first token: no re-check
    await _call(client, service, "test.model", expect_access=False)
    await set_token(client, service, cid, {"token": {"user": "bar"}})
    await (await service.expect_request("access.test.model.parent")).ok({"get": True})
    await _call(client, service, "test.model", expect_access=True)


# Checklist 113: events of a resource that is both directly and indirectly subscribed are queued during its
# reaccess; on denial the direct subscription goes (unsubscribe event) and, as the resource is still
# held through the parent, the queued event is delivered afterwards.
async def test_chk_113_denied_reaccess_delivers_queued_events_of_still_indirect_resource(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client = await connect(gateway)
    await subscribe(client, service, "test.model")
    await subscribe_parent(client, service, child_sent=True)
    await _reaccess(service, "test.model")
    access = await service.expect_request("access.test.model")
    await custom(service, "test.model")
    await no_event(client, service)
    await access.ok({"get": False})
    await client.expect_event("test.model.unsubscribe", UNSUB_ACCESS)
    await client.expect_event("test.model.custom", CUSTOM_PAYLOAD)
    await _custom_delivered(client, service, "test.model")
