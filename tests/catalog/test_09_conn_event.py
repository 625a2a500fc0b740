"""Catalog §5.09 (resgate 09conn_event_test.go): connection token events, plus checklist items 121-123."""

from __future__ import annotations

from typing import Any

from tests.support.fakeservice import NULL, FakeService
from tests.support.fixtures import CUSTOM_PAYLOAD, E_ACCESS, E_CUSTOMERR, UNSUB_ACCESS
from tests.support.gatewayrunner import GatewayHandle
from tests.support.logguard import ErrorLog
from tests.support.macros import connect, custom, get_cid, no_event, no_nats, subscribe, subscribe_parent
from tests.support.tokenevent_helpers import set_token
from tests.support.wsclient import WSClient, assert_error

USER_FOO = {"user": "foo"}


async def _call_denied(client: WSClient, service: FakeService, rid: str, token: Any) -> None:
    """``call.<rid>.method``: the access request carries ``token``; reply get:false → access denied."""
    pending = await client.send(f"call.{rid}.method")
    access = await service.expect_request(f"access.{rid}")
    access.assert_path("token", token)
    await access.ok({"get": False})
    assert_error(await pending.response(), E_ACCESS)


async def _subscribe_parent_and_collection(client: WSClient, service: FakeService) -> str:
    """CONNEV-04/05 setup: first token, SUB_PARENT(false), SUB(test.collection); returns the cid."""
    cid = await get_cid(client, service)
    await set_token(client, service, cid, {"token": USER_FOO})
    await subscribe_parent(client, service)
    await subscribe(client, service, "test.collection")
    return cid


# Test that the gateway is subscribed to the connection's token events and accepts one without error.
async def test_connev_01_connection_event(gateway: GatewayHandle, service: FakeService) -> None:
    client = await connect(gateway)
    cid = await get_cid(client, service)
    await service.conn_event(cid, "token", {"token": USER_FOO})
    await no_event(client, service)


# Test that the token is sent in access requests for subscribe and call after a token event.
async def test_connev_02_token_on_access_call(gateway: GatewayHandle, service: FakeService) -> None:
    client = await connect(gateway)
    cid = await get_cid(client, service)
    await set_token(client, service, cid, {"token": USER_FOO})

    pending = await client.send("subscribe.test.model")
    reqs = await service.requests(2)
    access = reqs.get("access.test.model")
    access.assert_path("token", USER_FOO).assert_path("cid", cid)
    await access.ok({"get": True})
    await reqs.get("get.test.model").ok({"model": {"string": "foo", "int": 42, "bool": True, "null": None}})
    await pending.response()

    await _call_denied(client, service, "test.callmodel", USER_FOO)


# Test that the latest token wins, and a null token event clears it.
async def test_connev_03_last_token_on_access_call(gateway: GatewayHandle, service: FakeService) -> None:
    client = await connect(gateway)
    cid = await get_cid(client, service)
    token1 = {"user": "foo", "token": 1}
    await set_token(client, service, cid, {"token": token1})
    await _call_denied(client, service, "test.model1", token1)
    token2 = {"user": "bar", "token": 2}
    await set_token(client, service, cid, {"token": token2})
    await _call_denied(client, service, "test.model2", token2)
    await set_token(client, service, cid, NULL)
    await _call_denied(client, service, "test.model3", None)


# Test that a token event on a connection that already has a token re-checks access of direct subscriptions.
async def test_connev_04_token_event_triggers_access_call_on_subscribed_resources(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client = await connect(gateway)
    cid = await _subscribe_parent_and_collection(client, service)
    await set_token(client, service, cid, {"token": USER_FOO})
    reqs = await service.requests(2)
    assert reqs.subjects() == ["access.test.collection", "access.test.model.parent"]
    for req in reqs:
        req.assert_path("cid", cid).assert_path("token", USER_FOO)
        await req.ok({"get": True})
    await no_nats(client, service)
    for rid in ("test.model", "test.model.parent", "test.collection"):
        await custom(service, rid)
        await client.expect_event(f"{rid}.custom", CUSTOM_PAYLOAD)


# Test that denied access after a token change unsubscribes the direct subscriptions.
async def test_connev_05_token_event_triggers_unsubscribe_on_denied_access_call(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client = await connect(gateway)
    cid = await _subscribe_parent_and_collection(client, service)
    await set_token(client, service, cid, {"token": USER_FOO})
    reqs = await service.requests(2)
    await reqs.get("access.test.model.parent").ok({"get": False})
    await reqs.get("access.test.collection").error(E_ACCESS)
    events = await client.get_events(2)
    assert sorted(ev.name for ev in events) == [
        "test.collection.unsubscribe",
        "test.model.parent.unsubscribe",
    ]
    for ev in events:
        assert ev.data == UNSUB_ACCESS, f"unexpected unsubscribe data {ev!r}"
    for rid in ("test.model", "test.model.parent", "test.collection"):
        await custom(service, rid)
        await no_event(client, service, rid)


# Checklist 121: a {"token":null} payload clears the token (as the bare null payload does), and the
# token is carried by call requests too.
async def test_chk_121_token_null_clears_token_and_call_carries_token(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client = await connect(gateway)
    cid = await get_cid(client, service)
    await set_token(client, service, cid, {"token": USER_FOO})
    pending = await client.send("call.test.model.method", {"a": 1})
    await (
        (await service.expect_request("access.test.model"))
        .assert_path("token", USER_FOO)
        .ok({"get": True, "call": "*"})
    )
    call = await service.expect_request("call.test.model.method")
    call.assert_path("token", USER_FOO).assert_path("cid", cid).assert_path("params", {"a": 1})
    await call.ok(None)
    await pending.response()
    await set_token(client, service, cid, {"token": None})
    await _call_denied(client, service, "test.other", None)


# Checklist 122: a denied re-check with a non-access error unsubscribes with that error as reason, and
# the first token on a token-less connection triggers no access request.
async def test_chk_122_token_change_error_reason_and_first_token_no_recheck(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client = await connect(gateway)
    cid = await get_cid(client, service)
    await subscribe(client, service, "test.model")
    await set_token(client, service, cid, {"token": USER_FOO})
    await no_nats(client, service)  # first token: no re-check
    await set_token(client, service, cid, {"token": {"user": "bar"}})
    access = await service.expect_request("access.test.model")
    access.assert_path("token", {"user": "bar"})
    await access.error(E_CUSTOMERR)
    await client.expect_event("test.model.unsubscribe", {"reason": E_CUSTOMERR})
    await custom(service, "test.model")
    await no_event(client, service)


# Checklist 123: a malformed token event is logged as an error and leaves the token unchanged.
async def test_chk_123_malformed_token_event_logs_error(
    gateway: GatewayHandle, service: FakeService, errors: ErrorLog
) -> None:
    client = await connect(gateway)
    cid = await get_cid(client, service)
    await set_token(client, service, cid, {"token": USER_FOO})
    await service.conn_event(cid, "token", b"{not json")
    await errors.expect(1)
    await _call_denied(client, service, "test.model", USER_FOO)
