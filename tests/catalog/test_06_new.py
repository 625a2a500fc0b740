"""Catalog §5.06 (resgate 06new_test.go): legacy ``new`` requests."""

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
from tests.support.fixtures import E_ACCESS, E_INVPARAMS, E_TIMEOUT, MODELS, get_result
from tests.support.gatewayrunner import GatewayHandle
from tests.support.logguard import ErrorLog
from tests.support.macros import connect, no_nats
from tests.support.wsclient import MISSING, assert_error, assert_result

P = {"value": 42}
A_ALL = OK({"get": True, "call": "*"})
A_N = OK({"get": True, "call": "new"})
A_FN = OK({"get": True, "call": "foo,new"})
A_FB = OK({"get": True, "call": "foo,bar"})
A_G = OK({"get": True})
LR = OK({"rid": "test.model"})
GM = OK(get_result("test.model"))
IE = ("code", "system.internalError")
RM = ("result", {"rid": "test.model", "models": {"test.model": MODELS["test.model"]}})
BOTH = b'{"result":{"foo":"bar"},"error":{"code":"system.custom","message":"Custom"}}'


def RE(err: dict[str, str]) -> tuple[str, Any]:
    return ("result", {"rid": "test.model", "errors": {"test.model": err}})


# (params, access.test.collection, call.test.collection.new, get.test.model, access.test.model,
#  expected, errors logged)
Row = tuple[Any, Reply, Reply | None, Reply | None, Reply | None, tuple[str, Any], int]
NEW_01_ROWS: list[Row] = [
    (P, A_ALL, LR, GM, A_ALL, RM, 1),  # 01
    (MISSING, A_ALL, LR, GM, A_ALL, RM, 1),  # 02
    (P, A_N, LR, GM, A_ALL, RM, 1),  # 03
    (P, A_FN, LR, GM, A_ALL, RM, 1),  # 04
    (P, A_FB, None, None, None, ("error", E_ACCESS), 0),  # 05
    (P, A_G, None, None, None, ("error", E_ACCESS), 0),  # 06
    (P, TO, None, None, None, ("error", E_TIMEOUT), 0),  # 07
    (P, A_ALL, ERR(E_INVPARAMS), None, None, ("error", E_INVPARAMS), 0),  # 08
    (P, A_ALL, TO, None, None, ("error", E_TIMEOUT), 0),  # 09
    (P, A_ALL, LR, ERR(E_INVPARAMS), A_ALL, RE(E_INVPARAMS), 1),  # 10
    (P, A_ALL, LR, TO, A_ALL, RE(E_TIMEOUT), 1),  # 11
    (P, A_ALL, LR, GM, OK({"get": False}), RE(E_ACCESS), 1),  # 12
    (P, A_ALL, LR, GM, ERR(E_INVPARAMS), RE(E_INVPARAMS), 1),  # 13
    (P, A_ALL, LR, GM, ERR(E_ACCESS), RE(E_ACCESS), 1),  # 14
    (P, A_ALL, LR, GM, TO, RE(E_TIMEOUT), 1),  # 15
    (MISSING, A_ALL, RAW(b'{"broken":JSON}'), None, None, IE, 0),  # 16
    (MISSING, A_ALL, RAW(b"42"), None, None, IE, 0),  # 17
    (MISSING, A_ALL, RAW(b"{}"), None, None, IE, 0),  # 18
    (MISSING, A_ALL, RAW(BOTH), None, None, ("code", "system.custom"), 0),  # 19
    (MISSING, A_ALL, OK({}), None, None, IE, 0),  # 20
    (MISSING, A_ALL, OK({"rid": ""}), None, None, IE, 1),  # 21
    (MISSING, A_ALL, OK({"rid": "?q=foo"}), None, None, IE, 1),  # 22
    (MISSING, A_ALL, OK({"rid": "test\tmodel"}), None, None, IE, 1),  # 23
    (MISSING, A_ALL, OK({"rid": "test\nmodel"}), None, None, IE, 1),  # 24
    (MISSING, A_ALL, OK({"rid": "test\rmodel"}), None, None, IE, 1),  # 25
    (MISSING, A_ALL, OK({"rid": "test model"}), None, None, IE, 1),  # 26
    (MISSING, A_ALL, OK({"rid": "test\ufffdmodel"}), None, None, IE, 1),  # 27
    (MISSING, A_ALL, OK({"rid": 42}), None, None, IE, 0),  # 28
    (MISSING, A_ALL, OK({"rid": "test.model", "foo": 42}), None, None, IE, 0),  # 29
    (MISSING, A_ALL, RAW(b'{"error":[]}'), None, None, IE, 0),  # 30
    (MISSING, A_ALL, RAW(b'{"error":{"message":"missing code"}}'), None, None, ("code", ""), 0),  # 31
    (MISSING, A_ALL, RAW(b'{"error":{"code":12,"message":"integer code"}}'), None, None, IE, 0),  # 32
]


NEW_01_PARAMS = [pytest.param(*row, id=f"NEW-01.{i:02d}") for i, row in enumerate(NEW_01_ROWS, 1)]


# Test the legacy new request: access needs "new", call.<rid>.new, then the new resource is subscribed.
@pytest.mark.parametrize(
    ("params", "access_reply", "call_reply", "get_reply", "model_access_reply", "expected", "logged"),
    NEW_01_PARAMS,
)
async def test_new_01_legacy_new_on_resource(
    gateway_factory: GatewayFactory,
    service: FakeService,
    errors: ErrorLog,
    params: Any,
    access_reply: Reply,
    call_reply: Reply | None,
    get_reply: Reply | None,
    model_access_reply: Reply | None,
    expected: tuple[str, Any],
    logged: int,
) -> None:
    gw = await gateway_factory(**timeout_config(access_reply, call_reply, get_reply, model_access_reply))
    client = await connect(gw)
    pending = await client.send("new.test.collection", params)
    access = await service.expect_request("access.test.collection")
    access.assert_path_type("cid", str).assert_path("token", None).assert_missing("isHttp")
    await access_reply.send(access)
    if call_reply is not None:
        call = await service.expect_request("call.test.collection.new")
        assert_client_request_payload(call, None if params is MISSING else params)
        await call_reply.send(call)
    if get_reply is not None and model_access_reply is not None:
        reqs = await service.requests(2)
        reqs.get("get.test.model").assert_payload({})
        await get_reply.send(reqs.get("get.test.model"))
        await model_access_reply.send(reqs.get("access.test.model"))
    resp = await pending.response(TO_WAIT)
    kind, value = expected
    if kind == "result":
        assert_result(resp, value)
    else:
        assert_error(resp, value)
    await no_nats(client, service)
    await errors.expect(logged)


# ---------------------------------------------------------------------------------------------------
# res-protocol.md §7 checklist items (I. New) not already covered by the catalog rows above.


# §7 item 75: a {"resource":{"rid":…}} reply to new subscribes the rid like the legacy form, but logs no
# deprecation error; the new resource is directly subscribed (events flow, unsubscribe succeeds).
async def test_chk_75_new_with_resource_response(
    gateway: GatewayHandle, service: FakeService, errors: ErrorLog
) -> None:
    client = await connect(gateway)
    pending = await client.send("new.test.collection", P)
    await (await service.expect_request("access.test.collection")).ok({"get": True, "call": "new"})
    call = await service.expect_request("call.test.collection.new")
    assert_client_request_payload(call, P)
    await call.resource("test.model")
    reqs = await service.requests(2)
    await reqs.get("access.test.model").ok({"get": True})
    await reqs.get("get.test.model").ok(get_result("test.model"))
    assert_result(await pending.response(), RM[1])
    await service.event("test.model", "custom", {"foo": "bar"})
    await client.expect_event("test.model.custom", {"foo": "bar"})
    assert_result(await client.request("unsubscribe.test.model"))
    await errors.expect(0)


# §7 item 75 (§5.11): the legacy deprecation error is logged once per service name, not once per request.
async def test_chk_75_legacy_new_deprecation_logged_once(
    gateway: GatewayHandle, service: FakeService, errors: ErrorLog
) -> None:
    client = await connect(gateway)
    for n, rid in enumerate(("test.model", "test.collection")):
        pending = await client.send("new.test.collection")
        await (await service.expect_request("access.test.collection")).ok({"get": True, "call": "*"})
        await (await service.expect_request("call.test.collection.new")).ok({"rid": rid})
        reqs = await service.requests(2)
        await reqs.get(f"access.{rid}").ok({"get": True})
        await reqs.get(f"get.{rid}").ok(get_result(rid))
        assert assert_result(await pending.response())["rid"] == rid
        await errors.expect(1 if n == 0 else 0)
