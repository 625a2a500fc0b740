"""Catalog §5.31 (resgate 31http_meta_test.go): ``meta`` status and headers in auth/access/call replies
over HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from tests.catalog.test_14_http_get import (
    JSON_CT,
    HttpResponse,
    assert_empty,
    assert_error_body,
    assert_header_values,
    assert_json_body,
    start,
)
from tests.conftest import GatewayFactory
from tests.support import fixtures
from tests.support.fakeservice import FakeService
from tests.support.fixtures import (
    E_ACCESS,
    E_BADREQ,
    E_CUSTOM,
    E_FORBIDDEN,
    E_INTERNAL,
    E_METHODNA,
    E_NOTFOUND,
    E_NOTIMPL,
    E_TIMEOUT,
    E_UNAVAIL,
)
from tests.support.logguard import ErrorLog

ORIGIN = "http://example.com"
H = "http://example.com/test/ref"
CE = '{"code":"system.custom","message":"Custom"}'
GET_TRUE = '{"result":{"get":true}}'
CM = '{"result":{"call":"method"}}'
MODEL = fixtures.MODELS["test.model"]
#: get reply column: the fixture, or "(any)" (the Go test answers with an empty payload).
GM, ANY = "GM", "ANY"
#: Expected body: the test.model fixture, the custom error, or empty.
B_MODEL, B_CE, B_EMPTY = "model", "CE", "empty"
SC_FOO = "id=foo; Max-Age=86400"
SC_BAR = "id=bar; Max-Age=43200"
SC_BAZ = "id=baz; Max-Age=21600"
PROTECTED = (
    '{"Sec-Websocket-Extensions":["foo"],"Sec-Websocket-Protocol":["foo"],'
    '"Access-Control-Allow-Credentials":["foo"],"Access-Control-Allow-Origin":["foo"],'
    '"Content-Type":["text/html; charset=utf-8"]}'
)


def header_meta(header: str, status: int | None = None) -> str:
    status_part = f'"status":{status},' if status is not None else ""
    return f'"meta":{{{status_part}"header":{header}}}'


def null_with(header: str) -> str:
    """``{"result":null,"meta":{"header":<header>}}``"""
    return "{" + f'"result":null,{header_meta(header)}' + "}"


Headers = dict[str, list[str] | None]

#: (auth reply, access reply, get reply, status, headers, body, errors logged); None = not sent.
HMETA_01_ROWS: list[tuple[str | None, str | None, str | None, int, Headers, str, int]] = [
    (null_with('{"Test-Header":["foo"]}'), GET_TRUE, GM, 200, {"Test-Header": ["foo"]}, B_MODEL, 0),
    (null_with('{"test-header":["foo"]}'), GET_TRUE, GM, 200, {"Test-Header": ["foo"]}, B_MODEL, 0),
    (null_with('{"Test-Header":["foo","bar"]}'), GET_TRUE, GM, 200, {"Test-Header": ["foo", "bar"]}, B_MODEL, 0),
    (null_with(f'{{"Set-Cookie":["{SC_FOO}"]}}'), GET_TRUE, GM, 200, {"Set-Cookie": [SC_FOO]}, B_MODEL, 0),
    (f'{{"result":null,"meta":{{"status":307,"header":{{"Location":["{H}"]}}}}}}', None, None, 307,
     {"Location": [H]}, B_EMPTY, 0),
    ('{"resource":{"rid":"test.redirect"},"meta":{"status":307}}', None, None, 307,
     {"Location": ["/api/test/redirect"]}, B_EMPTY, 0),
    (f'{{"error":{CE},"meta":{{"status":407}}}}', None, None, 407, {}, B_CE, 0),
    (f'{{"error":{CE},"meta":{{"status":507}}}}', None, None, 507, {}, B_CE, 0),
    (f'{{"error":{CE},"meta":{{"status":407,"header":{{"Test-Header":["foo"]}}}}}}', None, None, 407,
     {"Test-Header": ["foo"]}, B_CE, 0),
    (None, '{"result":{"get":true},' + header_meta('{"Test-Header":["foo"]}') + "}", GM, 200,
     {"Test-Header": ["foo"]}, B_MODEL, 0),
    (None, '{"result":{"get":true},' + header_meta('{"test-header":["foo"]}') + "}", GM, 200,
     {"Test-Header": ["foo"]}, B_MODEL, 0),
    (None, '{"result":{"get":true},' + header_meta('{"Test-Header":["foo","bar"]}') + "}", GM, 200,
     {"Test-Header": ["foo", "bar"]}, B_MODEL, 0),
    (None, '{"result":{"get":true},' + header_meta(f'{{"Set-Cookie":["{SC_FOO}"]}}') + "}", GM, 200,
     {"Set-Cookie": [SC_FOO]}, B_MODEL, 0),
    (null_with('{"Test-Header":["foo"]}'), '{"result":{"get":true},' + header_meta('{"Test-Header":["bar"]}') + "}",
     GM, 200, {"Test-Header": ["bar"]}, B_MODEL, 0),
    (null_with('{"Test-Auth":["foo"]}'), '{"result":{"get":true},' + header_meta('{"Test-Access":["bar"]}') + "}",
     GM, 200, {"Test-Auth": ["foo"], "Test-Access": ["bar"]}, B_MODEL, 0),
    (null_with(f'{{"Set-Cookie":["{SC_FOO}"]}}'),
     '{"result":{"get":true},' + header_meta(f'{{"Set-Cookie":["{SC_BAR}"]}}') + "}",
     GM, 200, {"Set-Cookie": [SC_FOO, SC_BAR]}, B_MODEL, 0),
    (None, f'{{"result":{{"get":true}},"meta":{{"status":307,"header":{{"Location":["{H}"]}}}}}}', ANY, 307,
     {"Location": [H]}, B_EMPTY, 0),
    ('{"resource":{"rid":"test.redirect"}}', '{"result":{"get":true},"meta":{"status":307}}', ANY, 307,
     {"Location": None}, B_EMPTY, 0),
    (None, f'{{"error":{CE},"meta":{{"status":407}}}}', ANY, 407, {}, B_CE, 0),
    (None, f'{{"error":{CE},"meta":{{"status":507}}}}', ANY, 507, {}, B_CE, 0),
    (None, f'{{"error":{CE},"meta":{{"status":407,"header":{{"Test-Header":["foo"]}}}}}}', ANY, 407,
     {"Test-Header": ["foo"]}, B_CE, 0),
    (null_with('{"Test-Header":["foo"]}'), f'{{"error":{CE},"meta":{{"status":407}}}}', ANY, 407,
     {"Test-Header": ["foo"]}, B_CE, 0),
    (null_with(PROTECTED), GET_TRUE, GM, 200,
     {"Sec-Websocket-Extensions": None, "Sec-Websocket-Protocol": None, "Access-Control-Allow-Credentials": ["true"],
      "Access-Control-Allow-Origin": [ORIGIN], "Content-Type": [JSON_CT]}, B_MODEL, 0),
    ('{"result":null,"meta":{"status":206}}', GET_TRUE, GM, 200, {}, B_MODEL, 1),
    ('{"result":null,"meta":{"status":601}}', GET_TRUE, GM, 200, {}, B_MODEL, 1),
    ('{"result":null}', '{"result":{"get":true},"meta":{"status":206}}', GM, 200, {}, B_MODEL, 1),
    ('{"result":null}', '{"result":{"get":true},"meta":{"status":601}}', GM, 200, {}, B_MODEL, 1),
]  # fmt: skip


def assert_outcome(resp: HttpResponse, status: int, headers: Headers, body: str) -> None:
    if body == B_MODEL:
        assert_json_body(resp, status, MODEL)
    elif body == B_CE:
        assert_error_body(resp, status, E_CUSTOM)
    else:
        assert_empty(resp, status)
    for name, values in headers.items():
        assert_header_values(resp, name, values)


async def reply_auth(service: FakeService, auth: str | None) -> None:
    if auth is not None:
        req = await service.expect_request("auth.vault.method")
        req.assert_path("isHttp", True)
        await req.respond_raw(auth.encode())


def config(auth: str | None) -> dict[str, Any]:
    return {"allow_origin": ORIGIN, "header_auth": "vault.method" if auth is not None else None}


# Test meta headers and statuses of auth and access replies on a GET: merged headers (auth < access,
# Set-Cookie accumulates, protected ones dropped), redirects, error statuses and invalid statuses.
@pytest.mark.parametrize(
    ("auth", "access", "get", "status", "headers", "body", "errs"),
    HMETA_01_ROWS,
    ids=[f"HMETA-01.{i:02d}" for i in range(1, len(HMETA_01_ROWS) + 1)],
)
async def test_hmeta_01_get_with_meta(
    gateway_factory: GatewayFactory,
    service: FakeService,
    errors: ErrorLog,
    auth: str | None,
    access: str | None,
    get: str | None,
    status: int,
    headers: Headers,
    body: str,
    errs: int,
) -> None:
    gw = await gateway_factory(**config(auth))
    task = start(gw, "GET", "/api/test/model", headers={"Origin": ORIGIN})
    await reply_auth(service, auth)
    if access is not None:
        reqs = await service.requests(2)
        acc = reqs.get("access.test.model").assert_path("isHttp", True)
        await acc.respond_raw(access.encode())
        get_req = reqs.get("get.test.model")
        if get == GM:
            await get_req.json(fixtures.get_reply("test.model"))
        resp = await task
        if get == ANY:
            await get_req.respond_raw(b"")
    else:
        resp = await task
    assert_outcome(resp, status, headers, body)
    await service.expect_no_request(0.1)
    await errors.expect(errs)


def call_with(result: str, header: str) -> str:
    return "{" + f'"result":{result},{header_meta(header)}' + "}"


CALL_NULL = '{"result":null}'

#: (auth reply, access reply, call reply, status, headers, body, errors logged); None = not sent.
HMETA_02_ROWS: list[tuple[str | None, str, str | None, int, Headers, str, int]] = [
    (None, CM, null_with('{"Test-Header":["foo"]}'), 204, {"Test-Header": ["foo"]}, B_EMPTY, 0),
    (None, CM, null_with('{"test-header":["foo"]}'), 204, {"Test-Header": ["foo"]}, B_EMPTY, 0),
    (None, CM, null_with('{"Test-Header":["foo","bar"]}'), 204, {"Test-Header": ["foo", "bar"]}, B_EMPTY, 0),
    (None, CM, null_with(f'{{"Set-Cookie":["{SC_FOO}"]}}'), 204, {"Set-Cookie": [SC_FOO]}, B_EMPTY, 0),
    (None, CM, f'{{"result":null,"meta":{{"status":307,"header":{{"Location":["{H}"]}}}}}}', 307,
     {"Location": [H]}, B_EMPTY, 0),
    (None, CM, '{"resource":{"rid":"test.redirect"},"meta":{"status":307}}', 307,
     {"Location": ["/api/test/redirect"]}, B_EMPTY, 0),
    (None, CM, f'{{"error":{CE},"meta":{{"status":407}}}}', 407, {}, B_CE, 0),
    (None, CM, f'{{"error":{CE},"meta":{{"status":507}}}}', 507, {}, B_CE, 0),
    (None, CM, f'{{"error":{CE},"meta":{{"status":407,"header":{{"Test-Header":["foo"]}}}}}}', 407,
     {"Test-Header": ["foo"]}, B_CE, 0),
    (None, call_with('{"call":"method"}', '{"Test-Header":["foo"]}'), CALL_NULL, 204,
     {"Test-Header": ["foo"]}, B_EMPTY, 0),
    (None, call_with('{"call":"method"}', '{"test-header":["foo"]}'), CALL_NULL, 204,
     {"Test-Header": ["foo"]}, B_EMPTY, 0),
    (None, call_with('{"call":"method"}', '{"Test-Header":["foo","bar"]}'), CALL_NULL, 204,
     {"Test-Header": ["foo", "bar"]}, B_EMPTY, 0),
    (None, call_with('{"call":"method"}', f'{{"Set-Cookie":["{SC_FOO}"]}}'), CALL_NULL, 204,
     {"Set-Cookie": [SC_FOO]}, B_EMPTY, 0),
    (None, call_with('{"call":"method"}', '{"Test-Header":["bar"]}'), null_with('{"Test-Header":["foo"]}'), 204,
     {"Test-Header": ["foo"]}, B_EMPTY, 0),
    (None, call_with('{"call":"method"}', '{"Test-Access":["bar"]}'), null_with('{"Test-Call":["baz"]}'), 204,
     {"Test-Access": ["bar"], "Test-Call": ["baz"]}, B_EMPTY, 0),
    (null_with('{"Test-Auth":["foo"]}'), call_with('{"call":"method"}', '{"Test-Access":["bar"]}'),
     null_with('{"Test-Call":["baz"]}'), 204,
     {"Test-Auth": ["foo"], "Test-Access": ["bar"], "Test-Call": ["baz"]}, B_EMPTY, 0),
    (null_with('{"Test-Auth":["foo"]}'), CM, null_with('{"Test-Call":["baz"]}'), 204,
     {"Test-Auth": ["foo"], "Test-Call": ["baz"]}, B_EMPTY, 0),
    (None, call_with('{"call":"method"}', f'{{"Set-Cookie":["{SC_BAR}"]}}'), null_with(f'{{"Set-Cookie":["{SC_BAZ}"]}}'),
     204, {"Set-Cookie": [SC_BAR, SC_BAZ]}, B_EMPTY, 0),
    (null_with(f'{{"Set-Cookie":["{SC_FOO}"]}}'), CM, null_with(f'{{"Set-Cookie":["{SC_BAZ}"]}}'), 204,
     {"Set-Cookie": [SC_FOO, SC_BAZ]}, B_EMPTY, 0),
    (null_with(f'{{"Set-Cookie":["{SC_FOO}"]}}'), call_with('{"call":"method"}', f'{{"Set-Cookie":["{SC_BAR}"]}}'),
     null_with(f'{{"Set-Cookie":["{SC_BAZ}"]}}'), 204, {"Set-Cookie": [SC_FOO, SC_BAR, SC_BAZ]}, B_EMPTY, 0),
    (None, f'{{"result":{{"call":"method"}},"meta":{{"status":307,"header":{{"Location":["{H}"]}}}}}}', None, 307,
     {"Location": [H]}, B_EMPTY, 0),
    ('{"resource":{"rid":"test.redirect"}}', '{"result":{"call":"method"},"meta":{"status":307}}', None, 307,
     {"Location": None}, B_EMPTY, 0),
    (None, f'{{"error":{CE},"meta":{{"status":407}}}}', None, 407, {}, B_CE, 0),
    (None, f'{{"error":{CE},"meta":{{"status":507}}}}', None, 507, {}, B_CE, 0),
    (None, f'{{"error":{CE},"meta":{{"status":407,"header":{{"Test-Header":["foo"]}}}}}}', None, 407,
     {"Test-Header": ["foo"]}, B_CE, 0),
    (null_with('{"Test-Header":["foo"]}'), f'{{"error":{CE},"meta":{{"status":407}}}}', None, 407,
     {"Test-Header": ["foo"]}, B_CE, 0),
    (None, CM, null_with(PROTECTED), 204,
     {"Sec-Websocket-Extensions": None, "Sec-Websocket-Protocol": None, "Access-Control-Allow-Credentials": None,
      "Access-Control-Allow-Origin": [ORIGIN], "Content-Type": None}, B_EMPTY, 0),
    (None, CM, '{"result":null,"meta":{"status":206}}', 204, {}, B_EMPTY, 1),
    (None, CM, '{"result":null,"meta":{"status":601}}', 204, {}, B_EMPTY, 1),
    (None, '{"result":{"call":"method"},"meta":{"status":206}}', CALL_NULL, 204, {}, B_EMPTY, 1),
    (None, '{"result":{"call":"method"},"meta":{"status":601}}', CALL_NULL, 204, {}, B_EMPTY, 1),
]  # fmt: skip


# Test meta headers and statuses of auth, access and call replies on a POST: merge priority
# call > access > auth, Set-Cookie accumulation, redirects, error statuses and invalid statuses.
@pytest.mark.parametrize(
    ("auth", "access", "call", "status", "headers", "body", "errs"),
    HMETA_02_ROWS,
    ids=[f"HMETA-02.{i:02d}" for i in range(1, len(HMETA_02_ROWS) + 1)],
)
async def test_hmeta_02_post_with_meta(
    gateway_factory: GatewayFactory,
    service: FakeService,
    errors: ErrorLog,
    auth: str | None,
    access: str,
    call: str | None,
    status: int,
    headers: Headers,
    body: str,
    errs: int,
) -> None:
    gw = await gateway_factory(**config(auth))
    task = start(gw, "POST", "/api/test/model/method", headers={"Origin": ORIGIN})
    await reply_auth(service, auth)
    req = await service.expect_request("access.test.model")
    await req.assert_path("isHttp", True).respond_raw(access.encode())
    if call is not None:
        req = await service.expect_request("call.test.model.method")
        await req.assert_path("isHttp", True).respond_raw(call.encode())
    resp = await task
    assert_outcome(resp, status, headers, body)
    await service.expect_no_request(0.1)
    await errors.expect(errs)


#: (meta status of the auth reply, expected error body)
HMETA_03_ROWS: list[tuple[int, dict[str, str]]] = [
    (401, E_ACCESS),
    (402, E_ACCESS),
    (407, E_ACCESS),
    (403, E_FORBIDDEN),
    (451, E_FORBIDDEN),
    (410, E_NOTFOUND),
    (404, E_NOTFOUND),
    (405, E_METHODNA),
    (408, E_TIMEOUT),
    (400, E_BADREQ),
    (406, E_BADREQ),
    (409, E_BADREQ),
    (411, E_BADREQ),
    (501, E_NOTIMPL),
    (503, E_UNAVAIL),
    (504, E_TIMEOUT),
    (500, E_INTERNAL),
    (505, E_INTERNAL),
    (506, E_INTERNAL),
    (507, E_INTERNAL),
    (508, E_INTERNAL),
    (511, E_INTERNAL),
]


# Test that a 4xx/5xx meta status without an error answers with that status and the derived error,
# and that no access or get request follows.
@pytest.mark.parametrize(
    ("status", "err"),
    HMETA_03_ROWS,
    ids=[f"HMETA-03.{i:02d}" for i in range(1, len(HMETA_03_ROWS) + 1)],
)
async def test_hmeta_03_get_meta_error_status(
    gateway_factory: GatewayFactory, service: FakeService, status: int, err: dict[str, str]
) -> None:
    gw = await gateway_factory(header_auth="vault.method")
    task = start(gw, "GET", "/api/test/model")
    req = await service.expect_request("auth.vault.method")
    await req.assert_path("isHttp", True).respond_raw(b'{"result":null,"meta":{"status":%d}}' % status)
    assert_error_body(await task, status, err)
    await service.expect_no_request(0.1)
