"""Catalog §5.32 (resgate 32meta_test.go): meta in the wsHeaderAuth reply shapes the upgrade response."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from tests.conftest import GatewayFactory
from tests.support.fakeservice import FakeService
from tests.support.fixtures import E_CUSTOMERR, PROTOCOL

CE = E_CUSTOMERR
PROTECTED = [
    "Sec-Websocket-Extensions",
    "Sec-Websocket-Protocol",
    "Access-Control-Allow-Credentials",
    "Access-Control-Allow-Origin",
    "Content-Type",
]

WSMETA_ROWS: list[Any] = [
    pytest.param(
        {"result": None, "meta": {"header": {"Test-Header": ["foo"]}}},
        101,
        {"Test-Header": ["foo"]},
        0,
        id="WSMETA-01",
    ),
    pytest.param(
        {"result": None, "meta": {"header": {"Set-Cookie": ["id=foo; Max-Age=86400"]}}},
        101,
        {"Set-Cookie": ["id=foo; Max-Age=86400"]},
        0,
        id="WSMETA-02",
    ),
    pytest.param({"error": CE, "meta": {"status": 407}}, 407, {}, 0, id="WSMETA-03"),
    pytest.param({"error": CE, "meta": {"status": 507}}, 507, {}, 0, id="WSMETA-04"),
    pytest.param(
        {"result": None, "meta": {"header": {h: ["foo"] for h in PROTECTED}}},
        101,
        {h: [] for h in PROTECTED if h != "Sec-Websocket-Extensions"},
        0,
        id="WSMETA-05",
    ),
    pytest.param({"result": None, "meta": {"status": 206}}, 101, {}, 1, id="WSMETA-06"),
    pytest.param({"result": None, "meta": {"status": 601}}, 101, {}, 1, id="WSMETA-07"),
]


async def _upgrade(gateway_factory: GatewayFactory, service: FakeService, reply: Any) -> tuple[Any, int, Any]:
    gw = await gateway_factory(ws_header_auth="vault.method", allow_origin="http://example.com")
    attempt = asyncio.ensure_future(gw.try_connect())
    req = await service.expect_request("auth.vault.method")
    req.assert_path("isHttp", True).assert_missing("params")
    await req.json(reply)
    return await attempt


@pytest.mark.parametrize(("reply", "status", "headers", "errs"), WSMETA_ROWS)
async def test_wsmeta_ws_header_auth_with_meta(
    gateway_factory: GatewayFactory,
    service: FakeService,
    errors: Any,
    reply: Any,
    status: int,
    headers: dict[str, list[str]],
    errs: int,
) -> None:
    client, got_status, got_headers = await _upgrade(gateway_factory, service, reply)
    assert got_status == status
    for key, values in headers.items():
        assert (
            got_headers.get_all(key) == values
            if values
            else key not in got_headers
            or (
                # the WebSocket library may negotiate its own extensions header; a meta value must not appear
                "foo" not in got_headers.get_all(key)
            )
        )
    if client is not None:
        resp = await client.request("version", {"protocol": "1.999.999"})
        assert resp["result"] == {"protocol": PROTOCOL}
    if errs:
        await errors.expect(errs)


async def test_wsmeta_extra_407_with_header_and_error_body(
    gateway_factory: GatewayFactory, service: FakeService
) -> None:
    """Commented-out resgate row: 407 keeps the meta header (the client library does not expose the body)."""
    client, status, headers = await _upgrade(
        gateway_factory, service, {"error": CE, "meta": {"status": 407, "header": {"Test-Header": ["foo"]}}}
    )
    assert client is None and status == 407
    assert headers.get_all("Test-Header") == ["foo"]


async def test_wsmeta_extra_token_from_header_auth_applies_to_connection(
    gateway_factory: GatewayFactory, service: FakeService
) -> None:
    """A token event sent during wsHeaderAuth is used by the upgraded connection's access requests."""
    gw = await gateway_factory(ws_header_auth="vault.method")
    attempt = asyncio.ensure_future(gw.try_connect())
    req = await service.expect_request("auth.vault.method")
    await service.conn_event(req.path("cid"), "token", {"token": {"user": "foo"}})
    await req.ok(None)
    client, status, _ = await attempt
    assert status == 101 and client is not None
    pending = await client.send("subscribe.test.model")
    reqs = await service.requests(2)
    access = reqs.get("access.test.model")
    access.assert_path("token", {"user": "foo"}).assert_missing("isHttp")
    await access.ok({"get": False})
    await reqs.get("get.test.model").ok({"model": {"a": 1}})
    await pending.error("system.accessDenied")


async def _raw_upgrade(
    gateway_factory: GatewayFactory, service: FakeService, reply: Any
) -> tuple[int, Any, bytes]:
    """The upgrade request sent with a plain HTTP client, so a refused upgrade's headers and body
    can be read (WebSocket client libraries hide them or follow redirects)."""
    import aiohttp

    gw = await gateway_factory(ws_header_auth="vault.method")
    headers = {
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    }
    async with aiohttp.ClientSession() as session:
        pending = asyncio.ensure_future(
            session.get(gw.http_url + "/", headers=headers, allow_redirects=False)
        )
        await (await service.expect_request("auth.vault.method")).json(reply)
        async with await pending as resp:
            return resp.status, resp.headers, await resp.read()


async def test_wsmeta_extra_307_with_location_header(
    gateway_factory: GatewayFactory, service: FakeService
) -> None:
    status, headers, body = await _raw_upgrade(
        gateway_factory,
        service,
        {"result": None, "meta": {"status": 307, "header": {"Location": ["/login"]}}},
    )
    assert status == 307 and headers["Location"] == "/login" and body == b""


async def test_wsmeta_extra_307_with_resource_location(
    gateway_factory: GatewayFactory, service: FakeService
) -> None:
    status, headers, _ = await _raw_upgrade(
        gateway_factory, service, {"resource": {"rid": "test.redirect"}, "meta": {"status": 307}}
    )
    assert status == 307 and headers["Location"] == "/api/test/redirect"


async def test_wsmeta_extra_407_body_is_the_error(
    gateway_factory: GatewayFactory, service: FakeService
) -> None:
    status, headers, body = await _raw_upgrade(
        gateway_factory, service, {"error": CE, "meta": {"status": 407, "header": {"Test-Header": ["foo"]}}}
    )
    assert status == 407 and headers["Test-Header"] == "foo"
    assert headers["Content-Type"].startswith("application/json")
    assert json.loads(body) == CE
