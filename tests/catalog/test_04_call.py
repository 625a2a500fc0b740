"""Catalog §5.04 (resgate 04call_test.go): call requests."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import GatewayFactory
from tests.support.calls_helpers import (
    ERR,
    OK,
    RAW,
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
    E_TIMEOUT,
    E_TOOLONG,
    MODELS,
    get_result,
)
from tests.support.gatewayrunner import GatewayHandle
from tests.support.macros import connect, connect_nover, get_cid, no_nats, subscribe_parent
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
