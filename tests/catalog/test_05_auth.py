"""Catalog §5.05 (resgate 05auth_test.go): auth requests."""

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
from tests.support.fixtures import E_INVPARAMS, E_TIMEOUT, E_TOOLONG
from tests.support.gatewayrunner import GatewayHandle
from tests.support.macros import connect, get_cid, no_nats
from tests.support.wsclient import MISSING, assert_error, assert_result

IE = ("code", "system.internalError")
BOTH = b'{"result":{"foo":"bar"},"error":{"code":"system.custom","message":"Custom"}}'

# (params, auth reply, expected: ("result", R) | ("error", E) | ("code", c))
AUTH_01_ROWS: list[tuple[Any, Reply, tuple[str, Any]]] = [
    (MISSING, OK({"foo": "bar"}), ("result", {"payload": {"foo": "bar"}})),  # 01
    (MISSING, ERR(E_INVPARAMS), ("error", E_INVPARAMS)),  # 02
    (MISSING, OK(None), ("result", {"payload": None})),  # 03
    (MISSING, TO, ("error", E_TIMEOUT)),  # 04
    ({"value": 42}, OK({"foo": "bar"}), ("result", {"payload": {"foo": "bar"}})),  # 05
    (MISSING, RAW(b'{"broken":JSON}'), IE),  # 06
    (MISSING, RAW(b"{}"), IE),  # 07
    (MISSING, RAW(BOTH), ("code", "system.custom")),  # 08
    (MISSING, RAW(b'{"error":[]}'), IE),  # 09
    (MISSING, RAW(b'{"error":{"message":"missing code"}}'), ("code", "")),  # 10
    (MISSING, RAW(b'{"error":{"code":12,"message":"integer code"}}'), IE),  # 11
]


# Test auth on a resource: no access request, the auth payload carries the upgrade request's context.
@pytest.mark.parametrize(
    ("params", "auth_reply", "expected"),
    AUTH_01_ROWS,
    ids=[f"AUTH-01.{i:02d}" for i in range(1, len(AUTH_01_ROWS) + 1)],
)
async def test_auth_01_auth_on_resource(
    gateway_factory: GatewayFactory,
    service: FakeService,
    params: Any,
    auth_reply: Reply,
    expected: tuple[str, Any],
) -> None:
    gw = await gateway_factory(**timeout_config(auth_reply))
    client = await connect(gw)
    pending = await client.send("auth.test.model.method", params)
    req = await service.expect_request("auth.test.model.method")  # no access request first
    assert_client_request_payload(req, None if params is MISSING else params)
    req.assert_path_type("header", dict).assert_path_type("host", str).assert_path_type("uri", str)
    await auth_reply.send(req)
    resp = await pending.response(TO_WAIT)
    kind, value = expected
    if kind == "result":
        assert_result(resp, value)
    else:
        assert_error(resp, value)
    await no_nats(client, service)


# Test that {cid} in an auth rid is replaced by the connection id in the NATS subject.
async def test_auth_02_with_cid_placeholder_replaces_cid(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client = await connect(gateway)
    cid = await get_cid(client, service)
    pending = await client.send("auth.test.{cid}.model.method", {"foo": "bar"})
    req = await service.expect_request(f"auth.test.{cid}.model.method")
    req.assert_path("params", {"foo": "bar"}).assert_path("cid", cid)
    await req.ok("zoo")
    assert_result(await pending.response(), {"payload": "zoo"})


# Test that an auth request with a too long method gets system.subjectTooLong and publishes nothing.
async def test_auth_03_long_resource_method_returns_err_subject_too_long(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client = await connect(gateway)
    assert_error(await client.request("auth.test." + "a" * 10000), E_TOOLONG)
    await no_nats(client, service)


# Test that an auth request on a too long rid gets system.subjectTooLong and publishes nothing.
async def test_auth_04_long_resource_id_returns_err_subject_too_long(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client = await connect(gateway)
    assert_error(await client.request("auth.test." + "a" * 10000 + ".method"), E_TOOLONG)
    await no_nats(client, service)
