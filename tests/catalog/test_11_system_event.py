"""Catalog §5.11 (resgate 11system_event_test.go): system.reset and system.tokenReset, resetThrottle; plus
checklist items 124-135."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import GatewayFactory
from tests.support.fakeservice import EMPTY, FakeService, Request
from tests.support.fixtures import (
    CUSTOM_PAYLOAD,
    E_ACCESS,
    E_INTERNAL,
    E_NOTFOUND,
    UNSUB_ACCESS,
    UNSUB_DELETED,
    get_result,
)
from tests.support.gatewayrunner import GatewayHandle
from tests.support.logguard import ErrorLog
from tests.support.macros import (
    connect,
    custom,
    get_cid,
    no_event,
    no_nats,
    subscribe,
    subscribe_parent,
    subscribe_q,
)
from tests.support.tokenevent_helpers import set_token
from tests.support.wsclient import WSClient, assert_result

RESET_ALL = {"resources": ["test.>"]}
TOKEN_RENEW = "token.renew"


async def _reset(service: FakeService, payload: Any) -> None:
    await service.system_event("reset", payload)


async def _token_reset(service: FakeService, payload: Any) -> None:
    await service.system_event("tokenReset", payload)


async def _custom_delivered(client: WSClient, service: FakeService, rid: str) -> None:
    await custom(service, rid)
    await client.expect_event(f"{rid}.custom", CUSTOM_PAYLOAD)


async def _custom_not_delivered(client: WSClient, service: FakeService, rid: str, **kw: Any) -> None:
    await service.event(rid, "custom", CUSTOM_PAYLOAD, **kw)
    await no_event(client, service, rid)


# Test that a system.reset with no clients does nothing (and the gateway is subscribed to system events).
async def test_sys_01_system_reset_event(gateway: GatewayHandle, service: FakeService) -> None:
    await _reset(service, RESET_ALL)
    await service.expect_no_request(0.1)


# Test that system.reset re-fetches a subscribed model; an identical reply yields no event.
async def test_sys_02_system_reset_triggers_get_request_on_model(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client = await connect(gateway)
    await subscribe(client, service, "test.model")
    await _reset(service, RESET_ALL)
    await (await service.expect_request("get.test.model")).assert_payload({}).ok(get_result("test.model"))
    await no_event(client, service)


# Test that system.reset re-fetches a subscribed collection; an identical reply yields no event.
async def test_sys_03_system_reset_triggers_get_request_on_collection(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client = await connect(gateway)
    await subscribe(client, service, "test.collection")
    await _reset(service, RESET_ALL)
    await (await service.expect_request("get.test.collection")).ok(get_result("test.collection"))
    await no_event(client, service)


SYS_04_ROWS: list[tuple[str, Any, list[tuple[str, Any]]]] = [
    ("test.model", {"model": {"string": "foo", "int": 42, "bool": True, "null": None}}, []),
    (
        "test.model",
        {"model": {"string": "bar", "int": 42, "bool": True}},
        [("change", {"values": {"string": "bar", "null": {"action": "delete"}}})],
    ),
    (
        "test.model",
        {
            "model": {
                "string": "foo",
                "int": 42,
                "bool": True,
                "null": None,
                "child": {"rid": "test.model", "soft": True},
            }
        },
        [("change", {"values": {"child": {"rid": "test.model", "soft": True}}})],
    ),
    (
        "test.model.soft",
        {"model": {"name": "soft", "child": None}},
        [("change", {"values": {"child": None}})],
    ),
    ("test.collection", {"collection": ["foo", 42, True, None]}, []),
    (
        "test.collection",
        {"collection": [42, "new", True, None]},
        [("remove", {"idx": 0}), ("add", {"idx": 1, "value": "new"})],
    ),
    (
        "test.collection",
        {"collection": ["foo", 42, True, None, {"rid": "test.model", "soft": True}]},
        [("add", {"idx": 4, "value": {"rid": "test.model", "soft": True}})],
    ),
    ("test.collection.soft", {"collection": ["soft"]}, [("remove", {"idx": 1})]),
]


async def _reset_diff(
    gateway: GatewayHandle, service: FakeService, rid: str, reply: Any, events: list[tuple[str, Any]]
) -> None:
    client = await connect(gateway)
    await subscribe(client, service, rid)
    await _reset(service, RESET_ALL)
    await (await service.expect_request(f"get.{rid}")).ok(reply)
    for name, data in events:
        await client.expect_event(f"{rid}.{name}", data)
    await no_event(client, service, rid)


# Test that a reset reply differing from the cache produces the diff events, in order.
@pytest.mark.parametrize(
    ("rid", "reply", "events"), SYS_04_ROWS, ids=[f"SYS-04.{i:02d}" for i in range(1, len(SYS_04_ROWS) + 1)]
)
async def test_sys_04_system_reset_with_updated_resource_generates_events(
    gateway: GatewayHandle, service: FakeService, rid: str, reply: Any, events: list[tuple[str, Any]]
) -> None:
    await _reset_diff(gateway, service, rid, reply, events)


async def _sub_parent_and_collection_then_access_reset(client: WSClient, service: FakeService) -> Request:
    await subscribe_parent(client, service)
    await subscribe(client, service, "test.collection")
    await _reset(service, {"access": ["test.model.>"]})
    return await service.expect_request("access.test.model.parent")


# Test that an access reset re-checks only matching direct subscriptions.
async def test_sys_05_system_access_event_triggers_access_call_on_subscribed_resources(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client = await connect(gateway)
    access = await _sub_parent_and_collection_then_access_reset(client, service)
    await access.ok({"get": True})
    await no_event(client, service, "test.model.parent")
    for rid in ("test.model", "test.model.parent", "test.collection"):
        await _custom_delivered(client, service, rid)


# Test that denied access on an access reset unsubscribes the matching subscription only.
async def test_sys_06_system_reset_event_triggers_unsubscribe_on_denied_access_call(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client = await connect(gateway)
    access = await _sub_parent_and_collection_then_access_reset(client, service)
    await access.ok({"get": False})
    await client.expect_event("test.model.parent.unsubscribe", UNSUB_ACCESS)
    await _custom_not_delivered(client, service, "test.model")
    await _custom_not_delivered(client, service, "test.model.parent")
    await _custom_delivered(client, service, "test.collection")


SYS_07_ROWS = [("foo=bar", "foo=bar"), ("a=b&foo=bar", "foo=bar"), ("", "foo=bar")]


# Test that a reset re-fetches a query resource with its normalized query, once.
@pytest.mark.parametrize(
    ("q", "nq"), SYS_07_ROWS, ids=[f"SYS-07.{i:02d}" for i in range(1, len(SYS_07_ROWS) + 1)]
)
async def test_sys_07_system_reset_triggers_get_request_on_query_model(
    gateway: GatewayHandle, service: FakeService, q: str, nq: str
) -> None:
    client = await connect(gateway)
    await subscribe_q(client, service, "test.model", q, nq)
    await _reset(service, RESET_ALL)
    get = await service.expect_request("get.test.model")
    get.assert_payload({"query": nq})
    await get.ok({**get_result("test.model"), "query": nq})
    await no_nats(client, service)
    await no_event(client, service)


async def _reset_not_found(gateway: GatewayHandle, service: FakeService, rid: str) -> None:
    client = await connect(gateway)
    await subscribe(client, service, rid)
    await _reset(service, RESET_ALL)
    await (await service.expect_request(f"get.{rid}")).error(E_NOTFOUND)
    ev = await client.expect_event(f"{rid}.delete")
    assert ev.data is None, f"delete event carries data: {ev.msg!r}"
    await client.expect_event(f"{rid}.unsubscribe", UNSUB_DELETED)
    # As in resgate's mock, publishing also asserts the gateway still listens (entry awaiting eviction).
    await _custom_not_delivered(client, service, rid)


# Test that system.notFound on a reset get deletes the model.
async def test_sys_08_system_reset_not_found_response_on_model_generates_delete_event(
    gateway: GatewayHandle, service: FakeService
) -> None:
    await _reset_not_found(gateway, service, "test.model")


# Test that system.notFound on a reset get deletes the collection.
async def test_sys_09_system_reset_not_found_response_on_collection_generates_delete_event(
    gateway: GatewayHandle, service: FakeService
) -> None:
    await _reset_not_found(gateway, service, "test.collection")


async def _reset_bad_reply(
    gateway: GatewayHandle, service: FakeService, errors: ErrorLog, rid: str, reply: dict[str, Any]
) -> None:
    client = await connect(gateway)
    await subscribe(client, service, rid)
    await _reset(service, RESET_ALL)
    await (await service.expect_request(f"get.{rid}")).json(reply)
    await errors.expect(1, timeout=2.0)
    await no_event(client, service)
    await _custom_delivered(client, service, rid)


# Test that an internal error on a reset get of a model is logged and the resource kept.
async def test_sys_10_system_reset_internal_error_response_on_model_logs_error(
    gateway: GatewayHandle, service: FakeService, errors: ErrorLog
) -> None:
    await _reset_bad_reply(gateway, service, errors, "test.model", {"error": E_INTERNAL})


# Test that an internal error on a reset get of a collection is logged and the resource kept.
async def test_sys_11_system_reset_internal_error_response_on_collection_logs_error(
    gateway: GatewayHandle, service: FakeService, errors: ErrorLog
) -> None:
    await _reset_bad_reply(gateway, service, errors, "test.collection", {"error": E_INTERNAL})


# Test that a collection reply on a reset get of a model is logged and the resource kept.
async def test_sys_12_system_reset_mismatching_resource_type_response_on_model_logs_error(
    gateway: GatewayHandle, service: FakeService, errors: ErrorLog
) -> None:
    await _reset_bad_reply(
        gateway, service, errors, "test.model", {"result": {"collection": ["foo", 42, True, None]}}
    )


# Test that a model reply on a reset get of a collection is logged and the resource kept.
async def test_sys_13_system_reset_mismatching_resource_type_response_on_collection_logs_error(
    gateway: GatewayHandle, service: FakeService, errors: ErrorLog
) -> None:
    await _reset_bad_reply(
        gateway,
        service,
        errors,
        "test.collection",
        {"result": {"model": {"string": "foo", "int": 42, "bool": True, "null": None}}},
    )


N_MODELS = 10


def _model_rid(n: int) -> str:
    return f"test.model.{n}"


async def _subscribe_models(client: WSClient, service: FakeService) -> None:
    for n in range(1, N_MODELS + 1):
        await subscribe(client, service, _model_rid(n), {"model": {"id": n}})


async def _answer(req: Request) -> None:
    """Reply a reset request: access → get:true, get → the same {"id":N} model as subscribed."""
    if req.subject.startswith("access."):
        await req.ok({"get": True})
    else:
        await req.ok({"model": {"id": int(req.subject.rsplit(".", 1)[1])}})


async def _run_throttled(client: WSClient, service: FakeService, expected: list[str], limit: int) -> None:
    """Exactly ``min(limit, len(expected))`` requests outstanding; each reply releases exactly one more
    until every expected subject was requested once; nothing afterwards."""
    outstanding = list(await service.requests(min(limit, len(expected))))
    seen = [r.subject for r in outstanding]
    await no_nats(client, service)
    while outstanding:
        await _answer(outstanding.pop(0))
        if len(seen) < len(expected):
            req = await service.next_request()
            seen.append(req.subject)
            outstanding.append(req)
        await no_nats(client, service)
    assert sorted(seen) == sorted(expected), f"reset requests {sorted(seen)} != {sorted(expected)}"


GETS = [f"get.{_model_rid(n)}" for n in range(1, N_MODELS + 1)]
ACCESSES = [f"access.{_model_rid(n)}" for n in range(1, N_MODELS + 1)]


# Test that resetThrottle limits the concurrent get requests of a resource reset.
async def test_sys_14_system_reset_with_throttle_throttles_requests(
    gateway_factory: GatewayFactory, service: FakeService
) -> None:
    client = await connect(await gateway_factory(reset_throttle=3))
    await _subscribe_models(client, service)
    await _reset(service, RESET_ALL)
    await _run_throttled(client, service, GETS, 3)


# Test that resetThrottle limits the concurrent access requests of an access reset.
async def test_sys_15_system_reset_with_access_and_with_throttle_throttles_access_requests(
    gateway_factory: GatewayFactory, service: FakeService
) -> None:
    client = await connect(await gateway_factory(reset_throttle=3))
    await _subscribe_models(client, service)
    await _reset(service, {"access": ["test.>"]})
    await _run_throttled(client, service, ACCESSES, 3)


# Test that resetThrottle is shared by the get and access requests of one reset.
async def test_sys_16_system_reset_with_resources_and_access_and_with_throttle_throttles_access_requests(
    gateway_factory: GatewayFactory, service: FakeService
) -> None:
    client = await connect(await gateway_factory(reset_throttle=3))
    await _subscribe_models(client, service)
    await _reset(service, {"resources": ["test.>"], "access": ["test.>"]})
    await _run_throttled(client, service, GETS + ACCESSES, 3)


# Test that a throttle above the amount of work lets every request out at once.
async def test_sys_17_system_reset_with_throttle_not_reaching_limit_no_throttle(
    gateway_factory: GatewayFactory, service: FakeService
) -> None:
    client = await connect(await gateway_factory(reset_throttle=40))
    await _subscribe_models(client, service)
    await _reset(service, {"resources": ["test.>"], "access": ["test.>"]})
    reqs = await service.requests(20)
    assert reqs.subjects() == sorted(GETS + ACCESSES)
    await no_nats(client, service)
    for req in reqs:
        await _answer(req)
    await no_nats(client, service)


# Test that indirectly subscribed children are re-fetched but get no access request of their own.
async def test_sys_18_system_reset_with_indirect_access_and_with_throttle_throttles_access_requests(
    gateway_factory: GatewayFactory, service: FakeService
) -> None:
    client = await connect(await gateway_factory(reset_throttle=64))
    for n in range(1, N_MODELS + 1):
        rid = _model_rid(n)
        pending = await client.send(f"subscribe.{rid}")
        reqs = await service.requests(2)
        await reqs.get(f"access.{rid}").ok({"get": True})
        await reqs.get(f"get.{rid}").ok({"model": {"id": n, "child": {"rid": f"{rid}.child"}}})
        await (await service.expect_request(f"get.{rid}.child")).ok({"model": {"chidlId": n}})
        await pending.response()
    await _reset(service, {"resources": ["test", "test.>"], "access": ["test", "test.>"]})
    reqs = await service.requests(30)
    children = [f"get.{_model_rid(n)}.child" for n in range(1, N_MODELS + 1)]
    assert reqs.subjects() == sorted(GETS + ACCESSES + children)
    await no_nats(client, service)
    for req in reqs:
        if req.subject.endswith(".child"):
            n = int(req.subject.split(".")[3])
            await req.ok({"model": {"childId": n}})
        elif req.subject.startswith("access."):
            await req.ok({"get": True})
        else:
            n = int(req.subject.split(".")[3])
            await req.ok({"model": {"id": n, "child": {"rid": f"{_model_rid(n)}.child"}}})
    await no_nats(client, service)


# Test that an access reset under throttle re-checks the resource once per connection.
async def test_sys_19_system_reset_with_access_for_two_subscribers_with_throttle_throttles_access_requests(
    gateway_factory: GatewayFactory, service: FakeService
) -> None:
    gw = await gateway_factory(reset_throttle=3)
    c1 = await connect(gw)
    c2 = await connect(gw)
    cid1 = await subscribe(c1, service, "test.model")
    pending = await c2.send("subscribe.test.model")
    access = await service.expect_request("access.test.model")
    cid2 = access.path("cid")
    await access.ok({"get": True})
    await pending.response()
    await _reset(service, {"access": ["test.>"]})
    reqs = await service.requests(2)
    assert reqs.subjects() == ["access.test.model", "access.test.model"]
    assert sorted(r.path("cid") for r in reqs) == sorted([cid1, cid2])
    for req in reqs:
        await req.ok({"get": True})
    await no_nats(c1, service, "test.model")


# Test that an access reset under throttle re-checks each query subscription of a resource once.
async def test_sys_20_system_reset_with_access_for_multiple_queries_with_throttle_throttles_access_requests(
    gateway_factory: GatewayFactory, service: FakeService
) -> None:
    client = await connect(await gateway_factory(reset_throttle=3))
    await subscribe_q(client, service, "test.model", "q=foo&f=1", "q=foo&f=1")
    await subscribe_q(client, service, "test.model", "q=foo&f=2", "q=foo&f=2")
    await _reset(service, {"access": ["test.>"]})
    reqs = await service.requests(2)
    assert reqs.subjects() == ["access.test.model", "access.test.model"]
    assert sorted(r.path("query") for r in reqs) == ["q=foo&f=1", "q=foo&f=2"]
    for req in reqs:
        await req.ok({"get": True})
    await no_nats(client, service)


async def _no_token_request(client: WSClient, service: FakeService) -> None:
    await no_nats(client, service, "token")
    await service.expect_no_request(0.1)


# Test that a tokenReset sends nothing for a connection without a token id.
async def test_sys_21_system_token_reset_with_no_matching_token_id_sends_no_auth_request(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client = await connect(gateway)
    await subscribe(client, service, "test.model")
    await _token_reset(service, {"tids": ["42"], "subject": "auth.token.renew"})
    await _no_token_request(client, service)


async def _client_with_tid(
    gateway: GatewayHandle, service: FakeService, tid: str = "foo", rid: str = "test.model"
) -> tuple[WSClient, str]:
    client = await connect(gateway)
    await subscribe(client, service, rid)
    cid = await get_cid(client, service)
    await set_token(client, service, cid, {"token": {"user": "foo"}, "tid": tid})
    return client, cid


# Test that a tokenReset with other token ids sends nothing.
async def test_sys_22_system_token_reset_with_mismatching_token_ids_sends_no_auth_request(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client, _ = await _client_with_tid(gateway, service)
    await _token_reset(service, {"tids": ["bar", "baz"], "subject": "auth.token.renew"})
    await _no_token_request(client, service)


async def _matching_token_reset(gateway: GatewayHandle, service: FakeService) -> Request:
    await service.add_subject(TOKEN_RENEW)
    _, cid = await _client_with_tid(gateway, service)
    await _token_reset(service, {"tids": ["bar", "foo"], "subject": TOKEN_RENEW})
    req = await service.expect_request(TOKEN_RENEW)
    req.assert_path_type("cid", str).assert_path("cid", cid).assert_path("token", {"user": "foo"})
    return req


# Test that a tokenReset listing the connection's token id sends an auth request to the given subject.
async def test_sys_23_system_token_reset_with_matching_token_id_sends_auth_request(
    gateway: GatewayHandle, service: FakeService
) -> None:
    req = await _matching_token_reset(gateway, service)
    await req.ok(None)


# Test that a tokenReset whose tids is not an array is logged as an error.
async def test_sys_24_system_token_reset_with_broken_event_logs_error(
    gateway: GatewayHandle, service: FakeService, errors: ErrorLog
) -> None:
    await _token_reset(service, {"tids": "foo", "subject": TOKEN_RENEW})
    await errors.expect(1, timeout=2.0)


# Test that a tokenReset without subject is logged as an error.
async def test_sys_25_system_token_reset_with_missing_subject_logs_error(
    gateway: GatewayHandle, service: FakeService, errors: ErrorLog
) -> None:
    await _token_reset(service, {"tids": ["foo"]})
    await errors.expect(1, timeout=2.0)


# Test that a tokenReset with empty tids logs nothing (a following broken event is the sentinel: exactly
# its one error is logged) and sends nothing.
async def test_sys_26_system_token_reset_with_no_tids_logs_no_error(
    gateway: GatewayHandle, service: FakeService, errors: ErrorLog
) -> None:
    await _token_reset(service, {"tids": [], "subject": "test"})
    await _token_reset(service, {"tids": "sentinel", "subject": "test"})
    await errors.expect(1, timeout=2.0)
    service.assert_no_pending()


# Test that an error reply to a token-reset auth request is not logged.
async def test_sys_27_system_token_reset_with_auth_custom_error_response_logs_no_error(
    gateway: GatewayHandle, service: FakeService, errors: ErrorLog
) -> None:
    req = await _matching_token_reset(gateway, service)
    await req.error(E_ACCESS)
    # Sentinel: a broken tokenReset published after the reply logs exactly one error.
    await _token_reset(service, {"tids": "sentinel", "subject": TOKEN_RENEW})
    await errors.expect(1, timeout=2.0)


# Test that a timed-out token-reset auth request is logged as an error.
async def test_sys_28_system_token_reset_with_timeout_on_auth_request_logs_error(
    gateway_factory: GatewayFactory, service: FakeService, errors: ErrorLog
) -> None:
    gw = await gateway_factory(request_timeout=200)
    await _matching_token_reset(gw, service)
    await errors.expect(1, timeout=2.0)


# Checklist 124: a cached resource without subscribers (awaiting eviction) is refreshed by a reset too; the
# new data is what a later subscriber gets (served from cache: access request only). A non-matching
# pattern sends nothing.
async def test_chk_124_reset_refreshes_cached_unsubscribed_resource(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client = await connect(gateway)
    await subscribe(client, service, "test.model")
    assert_result(await client.request("unsubscribe.test.model"))
    await _reset(service, {"resources": ["other.>", "test.model.>"]})
    await no_nats(client, service)
    await _reset(service, {"resources": ["test.model"]})
    new = {"string": "bar", "int": 42, "bool": True, "null": None}
    await (await service.expect_request("get.test.model")).ok({"model": new})
    await no_event(client, service)
    pending = await client.send("subscribe.test.model")
    await (await service.expect_request("access.test.model")).ok({"get": True})
    assert_result(await pending.response(), {"models": {"test.model": new}})


# Checklist 124 (§3.8): a reset with invalid JSON is logged as an error; an empty payload is a no-op.
async def test_chk_124_reset_bad_or_empty_payload(
    gateway: GatewayHandle, service: FakeService, errors: ErrorLog
) -> None:
    client = await connect(gateway)
    await subscribe(client, service, "test.model")
    await _reset(service, EMPTY)
    await _reset(service, b"{not json")
    await errors.expect(1, timeout=2.0)
    await no_nats(client, service)
    await no_event(client, service)


CHK_126_ROWS = [
    (
        ["foo", 42, True, None],
        ["foo", "bar", 42, True],
        [("remove", {"idx": 3}), ("add", {"idx": 1, "value": "bar"})],
    ),
    (["a", "b"], ["b", "a"], [("remove", {"idx": 0}), ("add", {"idx": 1, "value": "a"})]),
]


# Checklist 126: collection reset diffs follow the §5.8 remove/add sequence (its worked examples).
@pytest.mark.parametrize(("old", "new", "events"), CHK_126_ROWS, ids=["insert-and-drop-last", "swap"])
async def test_chk_126_reset_collection_diff_examples(
    gateway: GatewayHandle,
    service: FakeService,
    old: list[Any],
    new: list[Any],
    events: list[tuple[str, Any]],
) -> None:
    client = await connect(gateway)
    await subscribe(client, service, "test.collection.x", {"collection": old})
    await _reset(service, RESET_ALL)
    await (await service.expect_request("get.test.collection.x")).ok({"collection": new})
    for name, data in events:
        await client.expect_event(f"test.collection.x.{name}", data)
    await no_event(client, service)


# Checklist 132: a reset racing an add event that makes a client reference the reset resource leaves the
# client consistent: either the old snapshot in the add's resource set followed by a change, or the new
# snapshot and no change.
async def test_chk_132_reset_concurrent_with_add_referencing_resource(
    gateway: GatewayHandle, service: FakeService
) -> None:
    c1 = await connect(gateway)
    c2 = await connect(gateway)
    await subscribe(c1, service, "test.collection.p", {"collection": ["p"]})
    await subscribe(c2, service, "test.model")
    await _reset(service, {"resources": ["test.model"]})
    get = await service.expect_request("get.test.model")
    await service.event("test.collection.p", "add", {"idx": 1, "value": {"rid": "test.model"}})
    early = None
    try:
        early = await c1.get_event(timeout=0.2)
    except AssertionError:
        pass  # the gateway holds the add until the reset completes
    new = {"string": "bar", "int": 42, "bool": True, "null": None}
    await get.ok({"model": new})
    await c2.expect_event("test.model.change", {"values": {"string": "bar"}})
    add = early if early is not None else await c1.get_event()
    assert add.name == "test.collection.p.add", f"unexpected event {add!r}"
    assert add.data["idx"] == 1 and add.data["value"] == {"rid": "test.model"}, add.data
    model = dict(add.data["models"]["test.model"])
    if model != new:
        await c1.expect_event("test.model.change", {"values": {"string": "bar"}})
        model.update({"string": "bar"})
    assert model == new, f"client view {model} != {new}"
    await no_event(c1, service)
    await no_event(c2, service)


# Checklist 133: the token-reset request is auth-shaped (cid, token, header, host, uri, remoteAddr; no
# params, query or isHttp) and goes only to connections whose tid is listed.
async def test_chk_133_token_reset_request_shape_and_selection(
    gateway: GatewayHandle, service: FakeService
) -> None:
    await service.add_subject(TOKEN_RENEW)
    c1, cid1 = await _client_with_tid(gateway, service, "a")
    await _client_with_tid(gateway, service, "b", "test.collection")
    c3 = await connect(gateway)
    await _token_reset(service, {"tids": ["a", "c"], "subject": TOKEN_RENEW})
    req = await service.expect_request(TOKEN_RENEW)
    req.assert_path("cid", cid1).assert_path("token", {"user": "foo"})
    req.assert_path_type("header", dict).assert_path_type("host", str)
    req.assert_path_type("uri", str).assert_path_type("remoteAddr", str)
    for key in ("params", "query", "isHttp"):
        req.assert_missing(key)
    await req.ok(None)
    await no_nats(c3, service, "token")
    await service.expect_no_request(0.1)
    await no_event(c1, service)


# Checklist 124: a reset re-fetches the base resource and each cached query variant of a name (with the
# normalized query), one get each.
async def test_chk_124_reset_refetches_base_and_query_variants(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client = await connect(gateway)
    await subscribe(client, service, "test.model")
    await subscribe_q(client, service, "test.model", "b=2&a=1", "a=1&b=2")
    await _reset(service, RESET_ALL)
    reqs = await service.requests(2)
    payloads = sorted((r.data or {}).get("query", "") for r in reqs.get_all("get.test.model"))
    assert payloads == ["", "a=1&b=2"], f"reset gets {[r.data for r in reqs]}"
    for req in reqs:
        query = (req.data or {}).get("query")
        req.assert_payload({"query": query} if query else {})
        await req.ok({**get_result("test.model"), **({"query": query} if query else {})})
    await no_nats(client, service)
    await no_event(client, service)
