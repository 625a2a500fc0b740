"""Catalog §5.15 (resgate 15http_post_test.go): HTTP POST calls (and legacy new) on web resources."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.catalog.test_14_http_get import (
    _NO_TOKEN,
    ENCODINGS,
    HGET_05_ROWS,
    HGET_06_ROWS,
    assert_empty,
    assert_error_body,
    assert_header,
    assert_json_body,
    header_auth_step,
    http,
    reply_kind,
    start,
)
from tests.conftest import GatewayFactory
from tests.support.fakeservice import FakeService
from tests.support.fixtures import (
    E_ACCESS,
    E_FORBIDDEN_ORIGIN,
    E_INVPARAMS,
    E_METHODNF,
    E_NOTFOUND,
    E_TIMEOUT,
    E_TOOLONG,
)
from tests.support.gatewayrunner import GatewayHandle
from tests.support.logguard import ErrorLog

# Access shorthands (catalog CALL-01 / NEW-01).
A_ALL = {"get": True, "call": "*"}
A_M = {"get": True, "call": "method"}
A_FM = {"get": True, "call": "foo,method"}
A_FB = {"get": True, "call": "foo,bar"}
A_G = {"get": True}
A_N = {"get": True, "call": "new"}
A_FN = {"get": True, "call": "foo,new"}
P = {"value": 42}
FOO = {"foo": "bar"}


# Test POST with a query: access and call carry the raw query and isHttp; the result is sent unwrapped.
@pytest.mark.parametrize("encoding", ENCODINGS, ids=[f"HPOST-01.{e}" for e in ENCODINGS])
async def test_hpost_01_query_model(
    gateway_factory: GatewayFactory, service: FakeService, encoding: str
) -> None:
    gw = await gateway_factory(api_encoding=encoding)
    task = start(gw, "POST", "/api/test/model/method?q=foo&f=bar")
    access = await service.expect_request("access.test.model")
    access.assert_path("token", None).assert_path("query", "q=foo&f=bar").assert_path("isHttp", True)
    await access.ok({"call": "method"})
    call = await service.expect_request("call.test.model.method")
    call.assert_path("query", "q=foo&f=bar").assert_path("isHttp", True)
    await call.ok(FOO)
    assert_json_body(await task, 200, FOO)


#: (body, access reply, call reply (None: no call request), status, expected body, Location)
#: expected body: a JSON value, an error code string (code only compared) or None (empty body).
HPOST_02_ROWS: list[tuple[Any, tuple[str, Any], tuple[str, Any] | None, int, Any, str | None]] = [
    (None, ("OK", A_ALL), ("OK", FOO), 200, FOO, None),
    (P, ("OK", A_ALL), ("OK", FOO), 200, FOO, None),
    (None, ("OK", A_M), ("OK", FOO), 200, FOO, None),
    (None, ("OK", A_FM), ("OK", FOO), 200, FOO, None),
    (None, ("OK", A_FB), None, 401, E_ACCESS, None),
    (None, ("OK", A_G), None, 401, E_ACCESS, None),
    (None, ("TO", None), None, 404, E_TIMEOUT, None),
    (None, ("OK", A_ALL), ("ERR", E_INVPARAMS), 400, E_INVPARAMS, None),
    (None, ("OK", A_ALL), ("ERR", E_METHODNF), 404, E_METHODNF, None),
    (None, ("OK", A_ALL), ("OK", None), 204, None, None),
    (None, ("OK", A_ALL), ("RAW", b'{"resource":{"rid":"test.model"}}'), 200, None, "/api/test/model"),
    (None, ("OK", A_ALL), ("RAW", b'{"resource":"test.model"}'), 500, "system.internalError", None),
    (None, ("OK", A_ALL), ("RAW", b'{"resource":"test.model"}'), 500, "system.internalError", None),
    (None, ("OK", A_ALL), ("RAW", b'{"resource":{}}'), 500, "system.internalError", None),
    (None, ("OK", A_ALL), ("RAW", b'{"resource":{}}'), 500, "system.internalError", None),
    (None, ("OK", A_ALL), ("RAW", b'{"resource":{"rid":42}}'), 500, "system.internalError", None),
    (None, ("OK", A_ALL), ("RAW", b'{"resource":{"rid":42}}'), 500, "system.internalError", None),
    (None, ("OK", A_ALL), ("RAW", b'{"resource":{"rid":"test..model"}}'), 500, "system.internalError", None),
    (None, ("OK", A_ALL), ("RAW", b'{"resource":{"rid":"test..model"}}'), 500, "system.internalError", None),
]


def assert_outcome(resp: Any, status: int, body: Any, location: str | None) -> None:
    if body is None:
        assert_empty(resp, status)
    elif status >= 400:
        assert_error_body(resp, status, body)
    else:
        assert_json_body(resp, status, body)
    assert_header(resp, "Location", location)


# Test POST call outcomes: access checks, call results, errors and resource responses.
@pytest.mark.parametrize(
    ("body", "access", "call", "status", "expected", "location", "encoding"),
    [
        pytest.param(*row, enc, id=f"HPOST-02.{i:02d}.{enc}")
        for i, row in enumerate(HPOST_02_ROWS, 1)
        for enc in ENCODINGS
    ],
)
async def test_hpost_02_responses(
    gateway_factory: GatewayFactory,
    service: FakeService,
    body: Any,
    access: tuple[str, Any],
    call: tuple[str, Any] | None,
    status: int,
    expected: Any,
    location: str | None,
    encoding: str,
) -> None:
    gw = await gateway_factory(api_encoding=encoding)
    task = start(
        gw, "POST", "/api/test/model/method", body=None if body is None else json.dumps(body).encode()
    )
    req = await service.expect_request("access.test.model")
    req.assert_path("isHttp", True)
    await reply_kind(req, *access)
    if call is not None:
        req = await service.expect_request("call.test.model.method")
        req.assert_path("params", body).assert_path("isHttp", True)
        await reply_kind(req, *call)
    resp = await task
    assert_outcome(resp, status, expected, location)
    await service.expect_no_request(0.1)


#: (body, access reply, call reply (None: no call request), status, expected body, Location, errors)
HPOST_03_ROWS: list[tuple[Any, tuple[str, Any], tuple[str, Any] | None, int, Any, str | None, int]] = [
    (P, ("OK", A_ALL), ("OK", {"rid": "test.model"}), 200, None, "/api/test/model", 1),
    (None, ("OK", A_ALL), ("OK", {"rid": "test.model"}), 200, None, "/api/test/model", 1),
    (P, ("OK", A_N), ("OK", {"rid": "test.model"}), 200, None, "/api/test/model", 1),
    (P, ("OK", A_FN), ("OK", {"rid": "test.model"}), 200, None, "/api/test/model", 1),
    (P, ("OK", A_FB), None, 401, E_ACCESS, None, 0),
    (P, ("OK", A_G), None, 401, E_ACCESS, None, 0),
    (P, ("TO", None), None, 404, E_TIMEOUT, None, 0),
    (P, ("OK", A_ALL), ("ERR", E_INVPARAMS), 400, E_INVPARAMS, None, 0),
    (P, ("OK", A_ALL), ("TO", None), 404, E_TIMEOUT, None, 0),
    (P, ("OK", A_ALL), ("RAW", b'{"resource":{"rid":"test.model"}}'), 200, None, "/api/test/model", 0),
]


# Test POST of the legacy new method: a v1.1 {"rid":...} result becomes 200 + Location (deprecation
# logged), and no get/access of the new resource follows.
@pytest.mark.parametrize(
    ("body", "access", "call", "status", "expected", "location", "errs"),
    HPOST_03_ROWS,
    ids=[f"HPOST-03.{i:02d}" for i in range(1, len(HPOST_03_ROWS) + 1)],
)
async def test_hpost_03_new_responses(
    gateway_factory: GatewayFactory,
    service: FakeService,
    errors: ErrorLog,
    body: Any,
    access: tuple[str, Any],
    call: tuple[str, Any] | None,
    status: int,
    expected: Any,
    location: str | None,
    errs: int,
) -> None:
    gw = await gateway_factory()
    task = start(
        gw, "POST", "/api/test/collection/new", body=None if body is None else json.dumps(body).encode()
    )
    req = await service.expect_request("access.test.collection")
    req.assert_path("isHttp", True)
    await reply_kind(req, *access)
    if call is not None:
        req = await service.expect_request("call.test.collection.new")
        req.assert_path("params", body).assert_path("isHttp", True)
        await reply_kind(req, *call)
    resp = await task
    assert_outcome(resp, status, expected, location)
    await service.expect_no_request(0.1)
    await errors.expect(errs)


HPOST_04_URLS = [
    "/wrong_prefix/test/model/action",
    "/api/",
    "/api/action",
    "/api/test.model/action",
    "/api/test/model/action/",
    "/api/test//model/action",
    "/api/test/model/äction",
    "/api/test/mådel/action",
]


# Test that POSTs to invalid URLs get 404 system.notFound and send nothing to NATS.
@pytest.mark.parametrize(
    "url", HPOST_04_URLS, ids=[f"HPOST-04.{i:02d}" for i in range(1, len(HPOST_04_URLS) + 1)]
)
async def test_hpost_04_invalid_urls(gateway: GatewayHandle, service: FakeService, url: str) -> None:
    resp = await http(gateway, "POST", url)
    assert_error_body(resp, 404, E_NOTFOUND)
    await service.expect_no_request(0.1)


# Test the CORS headers of a POST, and the 403 for an origin not allowed.
@pytest.mark.parametrize(
    ("origin", "allow_origin", "status", "present", "absent"),
    HGET_05_ROWS,
    ids=[f"HPOST-05.{i:02d}" for i in range(1, len(HGET_05_ROWS) + 1)],
)
async def test_hpost_05_allow_origin(
    gateway_factory: GatewayFactory,
    service: FakeService,
    origin: str,
    allow_origin: str,
    status: int,
    present: dict[str, str],
    absent: list[str],
) -> None:
    gw = await gateway_factory(allow_origin=allow_origin)
    task = start(gw, "POST", "/api/test/model/method", headers={"Origin": origin} if origin else None)
    result = {"get": True, "call": "*"}
    if status == 200:
        await (await service.expect_request("access.test.model")).ok(A_ALL)
        await (await service.expect_request("call.test.model.method")).ok(result)
        resp = await task
        assert_json_body(resp, 200, result)
    else:
        resp = await task
        assert_error_body(resp, status, E_FORBIDDEN_ORIGIN)
        await service.expect_no_request(0.1)
    for name, value in present.items():
        assert_header(resp, name, value)
    for name in absent:
        assert_header(resp, name, None)


# Test that headerAuth precedes the access of a POST; its token is used and its failures ignored.
@pytest.mark.parametrize(
    ("kind", "value", "token"),
    HGET_06_ROWS,
    ids=[f"HPOST-06.{i:02d}" for i in range(1, len(HGET_06_ROWS) + 1)],
)
async def test_hpost_06_header_auth(
    gateway_factory: GatewayFactory, service: FakeService, kind: str, value: Any, token: Any
) -> None:
    gw = await gateway_factory(header_auth="vault.method")
    task = start(gw, "POST", "/api/test/model/method", headers={"Origin": "example.com"})
    expected_token = await header_auth_step(service, kind, value, token)
    access = await service.expect_request("access.test.model", timeout=2.0)
    access.assert_path("token", expected_token).assert_path("isHttp", True)
    await access.ok(A_ALL)
    call = await service.expect_request("call.test.model.method")
    call.assert_path("token", expected_token)
    await call.ok(FOO)
    resp = await task
    assert_json_body(resp, 200, FOO)
    assert_header(resp, "Access-Control-Allow-Credentials", "true")
    assert token is _NO_TOKEN or expected_token == token


# Test that a POST on an overlong rid gets 414 system.subjectTooLong without NATS requests.
async def test_hpost_07_long_resource_id(gateway: GatewayHandle, service: FakeService) -> None:
    resp = await http(gateway, "POST", "/api/test/" + "a" * 10000 + "/method")
    assert_error_body(resp, 414, E_TOOLONG)
    await service.expect_no_request(0.1)


# Test that a POST with an overlong method name gets 414 after the access request.
async def test_hpost_08_long_resource_method(gateway: GatewayHandle, service: FakeService) -> None:
    task = start(gateway, "POST", "/api/test/" + "a" * 10000)
    await (await service.expect_request("access.test")).ok(A_ALL)
    assert_error_body(await task, 414, E_TOOLONG)
    await service.expect_no_request(0.1)


# Test that a POST with a 10 000 character query succeeds; access and call carry the query.
async def test_hpost_09_long_model_query(gateway: GatewayHandle, service: FakeService) -> None:
    q = "q=" + "a" * 10000
    task = start(gateway, "POST", "/api/test/model/method?" + q)
    access = await service.expect_request("access.test.model")
    await access.assert_path("query", q).ok(A_ALL)
    call = await service.expect_request("call.test.model.method")
    await call.assert_path("query", q).ok(FOO)
    assert_json_body(await task, 200, FOO)


# Checklist 174 (not a catalog row): a body that is not JSON gets 400 system.badRequest before any
# NATS request; a whitespace-only body means params null.
async def test_hpost_extra_invalid_body(gateway: GatewayHandle, service: FakeService) -> None:
    resp = await http(gateway, "POST", "/api/test/model/method", body=b"{not json")
    assert_error_body(resp, 400, "system.badRequest")
    assert resp.json()["message"].startswith("Error decoding request body: ")
    await service.expect_no_request(0.1)


async def test_hpost_extra_blank_body_is_null_params(gateway: GatewayHandle, service: FakeService) -> None:
    task = start(gateway, "POST", "/api/test/model/method", body=b" \r\n\t ")
    await (await service.expect_request("access.test.model")).ok(A_ALL)
    call = await service.expect_request("call.test.model.method")
    await call.assert_path("params", None).ok(FOO)
    assert_json_body(await task, 200, FOO)


async def test_hpost_extra_params_forwarded_verbatim(gateway: GatewayHandle, service: FakeService) -> None:
    task = start(gateway, "POST", "/api/test/model/method", body=b' {"a": [1, 2.5, "x"], "b": null} ')
    await (await service.expect_request("access.test.model")).ok(A_ALL)
    call = await service.expect_request("call.test.model.method")
    assert b'"params":{"a": [1, 2.5, "x"], "b": null}' in bytes(call.payload)
    await call.ok(FOO)
    assert_json_body(await task, 200, FOO)


# Malformed URLs (bad escapes, invalid UTF-8) are 404s, never server errors.
@pytest.mark.parametrize("url", ["/api/test/mo%zzdel/m", "/api/test/%ff/m", "/api/test/mo%2/m", "/api/%20/m"])
async def test_hpost_extra_malformed_urls(gateway: GatewayHandle, service: FakeService, url: str) -> None:
    resp = await http(gateway, "POST", url)
    assert_error_body(resp, 404, E_NOTFOUND)
    await service.expect_no_request(0.1)
