"""Catalog §5.04 (resgate 04call_test.go): call requests."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.conftest import GatewayFactory
from tests.support.calls_helpers import (
    ERR,
    OK,
    RAW,
    SHORT_TIMEOUT_MS,
    TO,
    TO_WAIT,
    Reply,
    assert_client_request_payload,
    timeout_config,
)
from tests.support.fakeservice import FakeService
from tests.support.fixtures import (
    E_ACCESS,
    E_CUSTOMERR,
    E_INTERNAL,
    E_INVPARAMS,
    E_NOSUB,
    E_NOTFOUND,
    E_TIMEOUT,
    E_TOOLONG,
    MODELS,
    get_result,
)
from tests.support.gatewayrunner import GatewayHandle
from tests.support.jsoncmp import assert_json_equal
from tests.support.macros import connect, connect_nover, get_cid, no_nats, subscribe, subscribe_parent
from tests.support.wsclient import MISSING, assert_error, assert_result

P = {"value": 42}
S = OK({"foo": "bar"})
PAYLOAD = {"payload": {"foo": "bar"}}

A_ALL = OK({"get": True, "call": "*"})
A_M = OK({"get": True, "call": "method"})
A_FM = OK({"get": True, "call": "foo,method"})
A_FB = OK({"get": True, "call": "foo,bar"})
A_G = OK({"get": True})

BOTH = b'{"result":{"foo":"bar"},"error":{"code":"system.custom","message":"Custom"}}'
INT_CODE = b'{"error":{"code":12,"message":"integer code"}}'
NO_CODE = b'{"error":{"message":"missing code"}}'
BAD_RID = b'{"resource":{"rid":"test..model"}}'
IE = ("code", "system.internalError")
WS_ACCESS = b'{"result":\r\n\t {"get":\r\n\t true,"call":"*"}\r\n\t }'


# (sub, params, access reply, call reply or None, expected: ("result", R) | ("error", E) | ("code", c))
CALL_01_ROWS: list[tuple[bool, Any, Reply, Reply | None, tuple[str, Any]]] = [
    (True, MISSING, A_ALL, S, ("result", PAYLOAD)),  # 01
    (False, MISSING, A_ALL, S, ("result", PAYLOAD)),  # 02
    (True, P, A_ALL, S, ("result", PAYLOAD)),  # 03
    (False, P, A_ALL, S, ("result", PAYLOAD)),  # 04
    (True, MISSING, A_M, S, ("result", PAYLOAD)),  # 05
    (False, MISSING, A_M, S, ("result", PAYLOAD)),  # 06
    (True, MISSING, A_FM, S, ("result", PAYLOAD)),  # 07
    (False, MISSING, A_FM, S, ("result", PAYLOAD)),  # 08
    (False, MISSING, A_FB, None, ("error", E_ACCESS)),  # 09
    (False, MISSING, A_G, None, ("error", E_ACCESS)),  # 10
    (False, MISSING, TO, None, ("error", E_TIMEOUT)),  # 11
    (True, MISSING, A_ALL, ERR(E_INVPARAMS), ("error", E_INVPARAMS)),  # 12
    (False, MISSING, A_ALL, ERR(E_INVPARAMS), ("error", E_INVPARAMS)),  # 13
    (True, MISSING, A_ALL, OK(None), ("result", {"payload": None})),  # 14
    (False, MISSING, A_ALL, OK(None), ("result", {"payload": None})),  # 15
    (True, MISSING, A_ALL, OK(42), ("result", {"payload": 42})),  # 16
    (False, MISSING, A_ALL, OK(42), ("result", {"payload": 42})),  # 17
    (False, MISSING, OK({"get": "invalid"}), None, IE),  # 18
    (False, MISSING, RAW(b'{"broken":JSON}'), None, IE),  # 19
    (False, MISSING, A_M, RAW(b'{"broken":JSON}'), IE),  # 20
    (False, MISSING, A_M, RAW(b"{}"), IE),  # 21
    (False, MISSING, RAW(WS_ACCESS), S, ("result", PAYLOAD)),  # 22
    (True, MISSING, A_M, RAW(BOTH), ("code", "system.custom")),  # 23
    (False, MISSING, A_M, RAW(BOTH), ("code", "system.custom")),  # 24
    (True, MISSING, A_ALL, RAW(b'{"error":[]}'), IE),  # 25
    (False, MISSING, A_ALL, RAW(b'{"error":[]}'), IE),  # 26
    (True, MISSING, A_ALL, RAW(NO_CODE), ("code", "")),  # 27
    (False, MISSING, A_ALL, RAW(NO_CODE), ("code", "")),  # 28
    (True, MISSING, A_ALL, RAW(INT_CODE), IE),  # 29
    (False, MISSING, A_ALL, RAW(INT_CODE), IE),  # 30
    (True, MISSING, A_ALL, RAW(b'{"resource":"test.model"}'), IE),  # 31
    (False, MISSING, A_ALL, RAW(b'{"resource":"test.model"}'), IE),  # 32
    (True, MISSING, A_ALL, RAW(b'{"resource":{}}'), IE),  # 33
    (False, MISSING, A_ALL, RAW(b'{"resource":{}}'), IE),  # 34
    (True, MISSING, A_ALL, RAW(b'{"resource":{"rid":42}}'), IE),  # 35
    (False, MISSING, A_ALL, RAW(b'{"resource":{"rid":42}}'), IE),  # 36
    (True, MISSING, A_ALL, RAW(BAD_RID), IE),  # 37
    (False, MISSING, A_ALL, RAW(BAD_RID), IE),  # 38
]


def _check(resp: dict[str, Any], expected: tuple[str, Any]) -> None:
    kind, value = expected
    if kind == "result":
        assert_result(resp, value)
    elif kind == "error":
        assert_error(resp, value)
    else:
        assert_error(resp, value)


# Test call on a resource, with and without a prior subscription, for access/call reply variants.
@pytest.mark.parametrize(
    ("sub", "params", "access_reply", "call_reply", "expected"),
    CALL_01_ROWS,
    ids=[f"CALL-01.{i:02d}" for i in range(1, len(CALL_01_ROWS) + 1)],
)
async def test_call_01_call_on_resource(
    gateway_factory: GatewayFactory,
    service: FakeService,
    sub: bool,
    params: Any,
    access_reply: Reply,
    call_reply: Reply | None,
    expected: tuple[str, Any],
) -> None:
    gw = await gateway_factory(**timeout_config(access_reply, call_reply))
    client = await connect(gw)
    if sub:
        pending = await client.send("subscribe.test.model")
        reqs = await service.requests(2)
        access = reqs.get("access.test.model")
        access.assert_missing("isHttp")
        await access_reply.send(access)
        await reqs.get("get.test.model").ok(get_result("test.model"))
        await pending.response()
    pending = await client.send("call.test.model.method", params)
    if not sub:
        access = await service.expect_request("access.test.model")
        access.assert_path_type("cid", str).assert_path("token", None).assert_missing("isHttp")
        await access_reply.send(access)
    if call_reply is not None:
        # With "sub": the very next request must be the call (no new access request).
        call = await service.expect_request("call.test.model.method")
        assert_client_request_payload(call, None if params is MISSING else params)
        await call_reply.send(call)
    _check(await pending.response(TO_WAIT), expected)
    await no_nats(client, service)


CALL_02_ROWS = [
    (OK(get_result("test.model")), OK({"get": True}), {"models": {"test.model": MODELS["test.model"]}}),
    (ERR(E_INVPARAMS), OK({"get": True}), {"errors": {"test.model": E_INVPARAMS}}),
    (TO, OK({"get": True}), {"errors": {"test.model": E_TIMEOUT}}),
    (OK(get_result("test.model")), OK({"get": False}), {"errors": {"test.model": E_ACCESS}}),
    (OK(get_result("test.model")), ERR(E_INVPARAMS), {"errors": {"test.model": E_INVPARAMS}}),
    (OK(get_result("test.model")), ERR(E_ACCESS), {"errors": {"test.model": E_ACCESS}}),
    (OK(get_result("test.model")), TO, {"errors": {"test.model": E_TIMEOUT}}),
]


async def _call_with_resource_response(
    gateway_factory: GatewayFactory,
    service: FakeService,
    method: str,
    get_reply: Reply,
    access_reply: Reply,
    expected: dict[str, Any],
) -> None:
    gw = await gateway_factory(**timeout_config(get_reply, access_reply))
    client = await connect(gw)
    pending = await client.send(f"call.test.collection.{method}", P)
    await (await service.expect_request("access.test.collection")).ok({"get": True, "call": "*"})
    call = await service.expect_request(f"call.test.collection.{method}")
    assert_client_request_payload(call, P)
    await call.resource("test.model")
    reqs = await service.requests(2)
    reqs.get("access.test.model").assert_path_type("cid", str).assert_path("token", None)
    reqs.get("get.test.model").assert_payload({})
    await get_reply.send(reqs.get("get.test.model"))
    await access_reply.send(reqs.get("access.test.model"))
    assert_result(await pending.response(TO_WAIT), {"rid": "test.model", **expected})
    await no_nats(client, service)


# Test a call answered with a resource response: the resource is subscribed and returned (or its error).
@pytest.mark.parametrize(
    ("get_reply", "access_reply", "expected"),
    CALL_02_ROWS,
    ids=[f"CALL-02.{i:02d}" for i in range(1, len(CALL_02_ROWS) + 1)],
)
async def test_call_02_with_primitive_model_resource_response(
    gateway_factory: GatewayFactory,
    service: FakeService,
    get_reply: Reply,
    access_reply: Reply,
    expected: dict[str, Any],
) -> None:
    await _call_with_resource_response(gateway_factory, service, "method", get_reply, access_reply, expected)


CALL_03_ROWS: list[tuple[Reply, tuple[str, Any]]] = [
    (OK({"foo": "bar"}), ("result", {"foo": "bar"})),
    (OK({"rid": "test.model"}), ("result", {"rid": "test.model"})),
    (OK(None), ("result", None)),
    (RAW(b'{"resource":{"rid":"test.model"}}'), ("result", {"rid": "test.model"})),
    (RAW(b'{"resource":"test.model"}'), ("code", "system.internalError")),
    (RAW(b'{"resource":"test.model"}'), ("code", "system.internalError")),
    (RAW(b'{"resource":{}}'), ("code", "system.internalError")),
    (RAW(b'{"resource":{}}'), ("code", "system.internalError")),
    (RAW(b'{"resource":{"rid":42}}'), ("code", "system.internalError")),
    (RAW(b'{"resource":{"rid":42}}'), ("code", "system.internalError")),
    (RAW(b'{"resource":{"rid":"test..model"}}'), ("code", "system.internalError")),
    (RAW(b'{"resource":{"rid":"test..model"}}'), ("code", "system.internalError")),
]


# Test that a legacy (no version handshake) client gets the unwrapped call result.
@pytest.mark.parametrize(
    ("call_reply", "expected"),
    CALL_03_ROWS,
    ids=[f"CALL-03.{i:02d}" for i in range(1, len(CALL_03_ROWS) + 1)],
)
async def test_call_03_legacy_call_on_resource(
    gateway: GatewayHandle, service: FakeService, call_reply: Reply, expected: tuple[str, Any]
) -> None:
    client = await connect_nover(gateway)
    pending = await client.send("call.test.model.method", P)
    await (await service.expect_request("access.test.model")).ok({"get": True, "call": "*"})
    call = await service.expect_request("call.test.model.method")
    assert_client_request_payload(call, P)
    await call_reply.send(call)
    resp = await pending.response()
    if expected[0] == "result":
        assert "result" in resp, f"expected a result, got {resp}"
    _check(resp, expected)
    # Legacy resource responses neither subscribe nor fetch the resource.
    await no_nats(client, service)


CALL_04_ROWS: list[tuple[Reply, tuple[str, Any], Reply | None, tuple[str, Any]]] = [
    (A_ALL, ("result", PAYLOAD), None, ("result", PAYLOAD)),  # 01
    (A_G, ("error", E_ACCESS), None, ("error", E_ACCESS)),  # 02
    (ERR(E_ACCESS), ("error", E_ACCESS), None, ("error", E_ACCESS)),  # 03
    (TO, ("error", E_TIMEOUT), A_ALL, ("result", PAYLOAD)),  # 04
    (TO, ("error", E_TIMEOUT), TO, ("error", E_TIMEOUT)),  # 05
    (TO, ("error", E_TIMEOUT), ERR(E_ACCESS), ("error", E_ACCESS)),  # 06
    (ERR(E_INTERNAL), ("error", E_INTERNAL), A_ALL, ("result", PAYLOAD)),  # 07
    (ERR(E_INTERNAL), ("error", E_INTERNAL), TO, ("error", E_TIMEOUT)),  # 08
    (ERR(E_INTERNAL), ("error", E_INTERNAL), ERR(E_ACCESS), ("error", E_ACCESS)),  # 09
]


async def _call_round(
    client: Any, service: FakeService, access_reply: Reply | None, cached: Reply, expected: tuple[str, Any]
) -> None:
    """One CALL-04 round; ``access_reply`` None = the access result must be reused (no access request)."""
    pending = await client.send("call.test.model.method", P)
    effective = cached
    if access_reply is not None:
        await access_reply.send(await service.expect_request("access.test.model"))
        effective = access_reply
    if effective == A_ALL:
        call = await service.expect_request("call.test.model.method")
        assert_client_request_payload(call, P)
        await call.ok({"foo": "bar"})
    _check(await pending.response(TO_WAIT), expected)


# Test which access outcomes are cached on an (indirect) subscription for later calls.
@pytest.mark.parametrize(
    ("access1", "expected1", "access2", "expected2"),
    CALL_04_ROWS,
    ids=[f"CALL-04.{i:02d}" for i in range(1, len(CALL_04_ROWS) + 1)],
)
async def test_call_04_call_on_resource_after_access_error(
    gateway_factory: GatewayFactory,
    service: FakeService,
    access1: Reply,
    expected1: tuple[str, Any],
    access2: Reply | None,
    expected2: tuple[str, Any],
) -> None:
    gw = await gateway_factory(**timeout_config(access1, access2))
    client = await connect(gw)
    await subscribe_parent(client, service)
    await _call_round(client, service, access1, access1, expected1)
    await _call_round(client, service, access2, access1, expected2)
    await no_nats(client, service)


CALL_05_ROWS = [
    (OK(get_result("test.model")), A_ALL, {"models": {"test.model": MODELS["test.model"]}}),
    (ERR(E_CUSTOMERR), A_ALL, {"errors": {"test.model": E_CUSTOMERR}}),
    (TO, A_ALL, {"errors": {"test.model": E_TIMEOUT}}),
    (OK(get_result("test.model")), OK({"get": False}), {"errors": {"test.model": E_ACCESS}}),
    (OK(get_result("test.model")), ERR(E_CUSTOMERR), {"errors": {"test.model": E_CUSTOMERR}}),
    (OK(get_result("test.model")), ERR(E_ACCESS), {"errors": {"test.model": E_ACCESS}}),
    (OK(get_result("test.model")), TO, {"errors": {"test.model": E_TIMEOUT}}),
]


# Test a call (method create) answered with a resource response.
@pytest.mark.parametrize(
    ("get_reply", "access_reply", "expected"),
    CALL_05_ROWS,
    ids=[f"CALL-05.{i:02d}" for i in range(1, len(CALL_05_ROWS) + 1)],
)
async def test_call_05_with_resource_response(
    gateway_factory: GatewayFactory,
    service: FakeService,
    get_reply: Reply,
    access_reply: Reply,
    expected: dict[str, Any],
) -> None:
    await _call_with_resource_response(gateway_factory, service, "create", get_reply, access_reply, expected)


# Test that {cid} in a call rid is replaced by the connection id in the NATS subjects.
async def test_call_06_with_cid_placeholder_replaces_cid(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client = await connect(gateway)
    cid = await get_cid(client, service)
    pending = await client.send("call.test.{cid}.model.method", {"foo": "bar"})
    await (await service.expect_request(f"access.test.{cid}.model")).ok({"get": True, "call": "*"})
    call = await service.expect_request(f"call.test.{cid}.model.method")
    call.assert_path("params", {"foo": "bar"}).assert_path("cid", cid)
    await call.ok("zoo")
    assert_result(await pending.response(), {"payload": "zoo"})


# Test that a call whose method makes the subject too long gets system.subjectTooLong after access.
async def test_call_07_long_resource_method_returns_err_subject_too_long(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client = await connect(gateway)
    pending = await client.send("call.test." + "a" * 10000)
    await (await service.expect_request("access.test")).ok({"get": True, "call": "*"})
    assert_error(await pending.response(), E_TOOLONG)
    await no_nats(client, service)


# Test that a call on a too long rid gets system.subjectTooLong without any NATS request.
async def test_call_08_long_resource_id_returns_err_subject_too_long(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client = await connect(gateway)
    assert_error(await client.request("call.test." + "a" * 10000 + ".method"), E_TOOLONG)
    await no_nats(client, service)


# ---------------------------------------------------------------------------------------------------
# res-protocol.md §7 checklist items (G. Call, J. Service request payloads, K. Request mechanics) not
# already covered by the catalog rows above.


# §7 item 60: a service error passes through unchanged, including its data.
async def test_chk_60_service_error_passes_through_with_data(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client = await connect(gateway)
    err = {"code": "custom.error", "message": "Custom error", "data": {"foo": ["bar", 42]}}
    pending = await client.send("call.test.model.method")
    await (await service.expect_request("access.test.model")).ok({"get": True, "call": "*"})
    await (await service.expect_request("call.test.model.method")).error(err)
    resp = await pending.response()
    assert "error" in resp, f"expected an error, got {resp}"
    assert_json_equal(resp["error"], err, "error")


# §7 item 65: a resource response for a rid already subscribed and sent returns only the rid (no access or
# get request, no resource set) and adds a direct subscription (a later {"count":2} unsubscribe succeeds).
async def test_chk_65_resource_response_for_subscribed_rid(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client = await connect(gateway)
    await subscribe(client, service, "test.model")
    pending = await client.send("call.test.collection.method")
    await (await service.expect_request("access.test.collection")).ok({"get": True, "call": "*"})
    await (await service.expect_request("call.test.collection.method")).resource("test.model")
    assert_result(await pending.response(), {"rid": "test.model"})
    await no_nats(client, service)
    assert_result(await client.request("unsubscribe.test.model", {"count": 2}))
    assert_error(await client.request("unsubscribe.test.model"), E_NOSUB)


# §7 item 66 (and §5.6): calls on a rid the client does not subscribe send a fresh access request every
# time, even after a granted access (catalog §7.4: CALL-04 without a prior subscription).
async def test_chk_66_call_without_subscription_requests_access_each_time(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client = await connect(gateway)
    for _ in range(2):
        pending = await client.send("call.test.model.method")
        await (await service.expect_request("access.test.model")).ok({"get": True, "call": "*"})
        await (await service.expect_request("call.test.model.method")).ok("x")
        assert_result(await pending.response(), {"payload": "x"})


# §7 items 68/79/80/81: a call on a query rid uses only the name in the subjects; access and call payloads
# carry the query; payloads have exactly the specified members.
async def test_chk_68_call_on_query_rid_carries_query(gateway: GatewayHandle, service: FakeService) -> None:
    client = await connect(gateway)
    cid = await get_cid(client, service)
    pending = await client.send("call.test.model?q=foo.method")
    access = await service.expect_request("access.test.model")
    access.assert_payload({"cid": cid, "token": None, "query": "q=foo"})
    await access.ok({"get": True, "call": "*"})
    call = await service.expect_request("call.test.model.method")
    call.assert_payload({"cid": cid, "token": None, "params": None, "query": "q=foo"})
    await call.ok(None)
    assert_result(await pending.response(), {"payload": None})


# §7 items 78/79/80: exact payloads without query: get {}, access {cid, token:null}, call {cid, token, params}.
async def test_chk_78_80_exact_request_payloads(gateway: GatewayHandle, service: FakeService) -> None:
    client = await connect(gateway)
    cid = await get_cid(client, service)
    pending = await client.send("subscribe.test.model")
    reqs = await service.requests(2)
    reqs.get("get.test.model").assert_payload({})
    reqs.get("access.test.model").assert_payload({"cid": cid, "token": None})
    await reqs.get("access.test.model").ok({"get": True, "call": "*"})
    await reqs.get("get.test.model").ok(get_result("test.model"))
    await pending.response()
    pending = await client.send("call.test.model.method", {"a": [1, None]})
    call = await service.expect_request("call.test.model.method")
    call.assert_payload({"cid": cid, "token": None, "params": {"a": [1, None]}})
    await call.ok(None)
    await pending.response()


# §7 items 78/81: a subscribe on a query rid sends get {"query": q} exactly and access with query.
async def test_chk_81_subscribe_query_rid_payloads(gateway: GatewayHandle, service: FakeService) -> None:
    client = await connect(gateway)
    cid = await get_cid(client, service)
    pending = await client.send("subscribe.test.model?q=foo&f=bar")
    reqs = await service.requests(2)
    reqs.get("get.test.model").assert_payload({"query": "q=foo&f=bar"})
    reqs.get("access.test.model").assert_payload({"cid": cid, "token": None, "query": "q=foo&f=bar"})
    await reqs.get("access.test.model").ok({"get": True})
    await reqs.get("get.test.model").ok({**get_result("test.model"), "query": "f=bar&q=foo"})
    assert_result(await pending.response(), {"models": {"test.model?q=foo&f=bar": MODELS["test.model"]}})


# §7 item 82 (+ catalog §7.4): no reply within requestTimeout → system.timeout; a late reply is ignored
# (no second response, no error, the connection keeps working).
async def test_chk_82_timeout_then_late_reply_ignored(
    gateway_factory: GatewayFactory, service: FakeService
) -> None:
    gw = await gateway_factory(request_timeout=SHORT_TIMEOUT_MS)
    client = await connect(gw)
    pending = await client.send("auth.test.model.method")
    req = await service.expect_request("auth.test.model.method")
    assert_error(await pending.response(TO_WAIT), E_TIMEOUT)
    await req.ok({"late": True})
    await no_nats(client, service)
    await client.assert_no_event(0.1)


# §7 item 83: a pre-response timeout:"N" extends the deadline to N ms after its receipt; the final response
# arriving after the original request timeout then succeeds.
async def test_chk_83_pre_response_extends_timeout(
    gateway_factory: GatewayFactory, service: FakeService
) -> None:
    gw = await gateway_factory(request_timeout=200)
    client = await connect(gw)
    pending = await client.send("call.test.model.method")
    await (await service.expect_request("access.test.model")).ok({"get": True, "call": "*"})
    call = await service.expect_request("call.test.model.method")
    await service.publish(call.reply, b'timeout:"2000"')
    # Deliberate wait past the original 200 ms deadline (the behaviour under test is the extension).
    await asyncio.sleep(0.4)
    assert not pending.done, "gateway answered before the extended deadline"
    await call.ok({"foo": "bar"})
    assert_result(await pending.response(), {"payload": {"foo": "bar"}})


# §7 item 83: the pre-response restarts the timer N ms after its receipt, so it can also shorten the wait.
async def test_chk_83_pre_response_restarts_timer(
    gateway_factory: GatewayFactory, service: FakeService
) -> None:
    gw = await gateway_factory(request_timeout=10000)
    client = await connect(gw)
    pending = await client.send("auth.test.model.method")
    req = await service.expect_request("auth.test.model.method")
    await service.publish(req.reply, b'timeout:"200"')
    assert_error(await pending.response(2.0), E_TIMEOUT)


# §7 item 84: a NATS no-responders reply maps to system.notFound at once (not after the request timeout).
async def test_chk_84_no_responders_not_found(gateway_factory: GatewayFactory, service: FakeService) -> None:
    gw = await gateway_factory(request_timeout=10000)
    client = await connect(gw)
    assert service.nc is not None
    await service.leave("auth.test.model.method")  # nobody subscribes to auth.> any more
    assert_error(await client.request("auth.test.model.method", timeout=2.0), E_NOTFOUND)


# §7 item 85: the subject-length limit is subject + inbox > 4096: a 4000-byte subject is published, a
# 4096-byte one is refused with system.subjectTooLong and nothing is published.
async def test_chk_85_subject_length_limit(gateway: GatewayHandle, service: FakeService) -> None:
    client = await connect(gateway)
    ok_subject = "auth.test." + "a" * (4000 - len("auth.test."))
    pending = await client.send(ok_subject)
    await (await service.expect_request(ok_subject)).ok(None)
    assert_result(await pending.response(), {"payload": None})
    long_method = "auth.test." + "a" * (4096 - len("auth.test."))
    assert_error(await client.request(long_method), E_TOOLONG)
    await no_nats(client, service)
