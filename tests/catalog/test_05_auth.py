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
from tests.support.fixtures import E_INVPARAMS, E_TIMEOUT, E_TOOLONG, MODELS, get_result
from tests.support.gatewayrunner import GatewayHandle
from tests.support.macros import connect, connect_nover, get_cid, no_nats
from tests.support.wsclient import MISSING, WSClient, assert_error, assert_result

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


# ---------------------------------------------------------------------------------------------------
# res-protocol.md §7 checklist items (H. Auth) not already covered by the catalog rows above.


# §7 item 70 (+ §3.3): the auth payload's header/host/uri/remoteAddr come from the WebSocket upgrade request;
# header names are canonicalised and the Host header is not among them; there is no access request.
async def test_chk_70_auth_payload_from_upgrade_request(gateway: GatewayHandle, service: FakeService) -> None:
    client = await WSClient.connect(gateway.ws_url + "?foo=bar", {"x-test-header": "foo"})
    gateway.clients.append(client)
    assert_result(await client.request("version", {"protocol": "1.999.999"}))
    pending = await client.send("auth.test.model.method", {"a": 1})
    req = await service.expect_request("auth.test.model.method")
    req.assert_path("params", {"a": 1}).assert_path("token", None).assert_missing("isHttp")
    req.assert_path("host", f"127.0.0.1:{gateway.port}").assert_path("uri", "/?foo=bar")
    remote = req.path("remoteAddr")
    assert isinstance(remote, str) and remote.startswith("127.0.0.1:"), f"remoteAddr {remote!r}"
    header = req.path("header")
    assert isinstance(header, dict)
    assert header.get("X-Test-Header") == ["foo"], f"header {header}"
    assert "Host" not in header and "host" not in header, f"Host in header {header}"
    await req.ok(None)
    assert_result(await pending.response(), {"payload": None})


# §7 item 71: an auth resource response subscribes the rid like a call does (access + get, resource set).
async def test_chk_71_auth_resource_response(gateway: GatewayHandle, service: FakeService) -> None:
    client = await connect(gateway)
    pending = await client.send("auth.test.model.login")
    await (await service.expect_request("auth.test.model.login")).resource("test.model")
    reqs = await service.requests(2)
    await reqs.get("access.test.model").ok({"get": True})
    await reqs.get("get.test.model").ok(get_result("test.model"))
    assert_result(
        await pending.response(), {"rid": "test.model", "models": {"test.model": MODELS["test.model"]}}
    )
    await service.event("test.model", "custom", {"foo": "bar"})
    await client.expect_event("test.model.custom", {"foo": "bar"})


# §7 item 71 (§2.6): a legacy client gets the raw auth result, and {"rid":…} for a resource response
# without the resource being fetched.
async def test_chk_71_legacy_auth_results(gateway: GatewayHandle, service: FakeService) -> None:
    client = await connect_nover(gateway)
    pending = await client.send("auth.test.model.method")
    await (await service.expect_request("auth.test.model.method")).ok({"foo": "bar"})
    assert_result(await pending.response(), {"foo": "bar"})
    pending = await client.send("auth.test.model.method")
    await (await service.expect_request("auth.test.model.method")).resource("test.model")
    assert_result(await pending.response(), {"rid": "test.model"})
    await no_nats(client, service)


# §7 item 72: a token event the service publishes before its auth response is in effect when the client
# receives the response (the next access request carries the token).
async def test_chk_72_token_event_before_auth_response(gateway: GatewayHandle, service: FakeService) -> None:
    client = await connect(gateway)
    token = {"user": "foo", "n": 1}
    pending = await client.send("auth.test.model.login")
    req = await service.expect_request("auth.test.model.login")
    cid = req.path("cid")
    await service.conn_event(cid, "token", {"token": token})
    await req.ok(None)
    await pending.response()
    call = await client.send("call.test.model.method")
    access = await service.expect_request("access.test.model")
    access.assert_path("token", token)
    await access.ok({"get": True, "call": "*"})
    call_req = await service.expect_request("call.test.model.method")
    call_req.assert_path("token", token)
    await call_req.ok(None)
    assert_result(await call.response(), {"payload": None})
