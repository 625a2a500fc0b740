"""Catalog §5.14 (resgate 14http_get_test.go): HTTP GET of web resources.

Also home of the small HTTP client helpers (``http``, ``HttpResponse``, ``assert_*``) shared by the
other HTTP catalog files (15, 21, 22, 23, 31).
"""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from collections import Counter
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from tests.conftest import GatewayFactory
from tests.support import fixtures
from tests.support.fakeservice import FakeService, Request
from tests.support.fixtures import E_FORBIDDEN_ORIGIN, E_NOTFOUND, E_TOOLONG, HTTP_GET_BODIES
from tests.support.gatewayrunner import GatewayHandle
from tests.support.jsoncmp import assert_json_equal

#: Content-Type of every JSON body the API sends (catalog §3.5).
JSON_CT = "application/json; charset=utf-8"
#: Both values of apiEncoding the catalog runs (``jsonFlat`` is accepted case-insensitively).
ENCODINGS = ["json", "jsonFlat"]

# ---------------------------------------------------------------------------------------------
# HTTP helpers (shared with the other HTTP catalog files)


@dataclass
class HttpResponse:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    def json(self) -> Any:
        assert self.body, "empty body, expected JSON"
        return json.loads(self.body)


async def http(
    gw: GatewayHandle,
    method: str,
    path: str,
    *,
    headers: list[tuple[str, str]] | dict[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 5.0,
) -> HttpResponse:
    """One request to the gateway; ``path`` is sent as given (non-ASCII is UTF-8 percent-encoded), no
    redirects are followed and the whole body is read."""
    raw = urllib.parse.quote(path, safe="/?&=%:;+,@!$'()*[]~-._")
    url = URL(gw.http_url + raw, encoded=True)
    hdrs: CIMultiDict[str] = CIMultiDict(headers or {})
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
        session.request(method, url, headers=hdrs, data=body, allow_redirects=False) as resp,
    ):
        data = await resp.read()
        return HttpResponse(resp.status, resp.headers, data)


def start(gw: GatewayHandle, method: str, path: str, **kwargs: Any) -> asyncio.Task[HttpResponse]:
    """``http`` as a task, so the test can answer the gateway's NATS requests meanwhile."""
    return asyncio.create_task(http(gw, method, path, **kwargs))


def assert_json_body(resp: HttpResponse, status: int, body: Any) -> None:
    assert resp.status == status, f"status {resp.status}, expected {status}; body {resp.body[:300]!r}"
    assert resp.headers.get("Content-Type") == JSON_CT, f"Content-Type {resp.headers.get('Content-Type')!r}"
    assert_json_equal(resp.json(), body, "HTTP body")


def assert_error_body(resp: HttpResponse, status: int, err: Any) -> None:
    """An error response: ``status``, JSON content type and the error object (``err`` may be a code
    string: then only the code is compared)."""
    if isinstance(err, str):
        assert resp.status == status, f"status {resp.status}, expected {status}; body {resp.body[:300]!r}"
        assert resp.headers.get("Content-Type") == JSON_CT
        assert resp.json().get("code") == err, f"error {resp.json()!r}, expected code {err}"
        return
    assert_json_body(resp, status, err)


def assert_empty(resp: HttpResponse, status: int) -> None:
    assert resp.status == status, f"status {resp.status}, expected {status}; body {resp.body[:300]!r}"
    assert resp.body == b"", f"expected an empty body, got {resp.body[:300]!r}"


def assert_header(resp: HttpResponse, name: str, value: str | None) -> None:
    """Header ``name`` has exactly the single ``value``, or (``None``) is absent."""
    got = resp.headers.getall(name, [])
    if value is None:
        assert not got, f"header {name} should be absent, got {got}"
    else:
        assert got == [value], f"header {name} is {got}, expected [{value!r}]"


def assert_header_values(resp: HttpResponse, name: str, values: list[str] | None) -> None:
    """Multi-valued header compared as a sorted list; ``None`` means absent."""
    got = resp.headers.getall(name, [])
    if values is None:
        assert not got, f"header {name} should be absent, got {got}"
    else:
        assert sorted(got) == sorted(values), f"header {name} is {got}, expected {values}"


def api_path(rid: str) -> str:
    """``/api/<rid with . as />`` for the plain fixture rids used in tests."""
    return "/api/" + rid.replace(".", "/")


async def answer_access_get(service: FakeService, rid: str, access: Any = None, timeout: float = 1.0) -> None:
    """Take the access and get request of ``rid`` (order-free) and answer them (access ``{"get":true}``
    unless given; get with the fixture). Asserts the access request is an HTTP one."""
    reqs = await service.requests(2, timeout)
    name = rid.split("?")[0]
    acc = reqs.get("access." + name)
    acc.assert_path("isHttp", True)
    await acc.ok({"get": True} if access is None else access)
    await reqs.get("get." + name).json(fixtures.get_reply(name))


async def reply_kind(req: Request, kind: str, value: Any = None) -> None:
    """Answer per catalog shorthand: ``OK`` value, ``ERR`` error, ``RAW`` bytes, ``TO`` no reply."""
    if kind == "OK":
        await req.ok(value)
    elif kind == "ERR":
        await req.error(value)
    elif kind == "RAW":
        await req.respond_raw(value)
    elif kind == "TO":
        pass
    else:
        raise ValueError(kind)


# ---------------------------------------------------------------------------------------------
# HGET-01

HGET_01_URLS = [
    "/wrong_prefix/test/model",
    "/api/",
    "/api/test.model",
    "/api/test/model/",
    "/api/test//model",
    "/api/test/mådel/action",
]


# Test that invalid URLs get 404 system.notFound and send nothing to NATS.
@pytest.mark.parametrize(
    ("url", "encoding"),
    [
        pytest.param(url, enc, id=f"HGET-01.{i:02d}.{enc}")
        for i, url in enumerate(HGET_01_URLS, 1)
        for enc in ENCODINGS
    ],
)
async def test_hget_01_invalid_urls(
    gateway_factory: GatewayFactory, service: FakeService, url: str, encoding: str
) -> None:
    gw = await gateway_factory(api_encoding=encoding)
    resp = await http(gw, "GET", url)
    assert_error_body(resp, 404, E_NOTFOUND)
    await service.expect_no_request(0.1)


# ---------------------------------------------------------------------------------------------
# HGET-02


#: Sequence rows L01-L30 of SUB-03 as run over HTTP (catalog §5.14 HGET-02): the GET targets (the
#: first one's body is checked) and the gets the gateway must send until that first response.
_M, _C = "test.model", "test.collection"
HGET_02_ROWS: dict[str, tuple[list[str], list[str]]] = {
    "L01": ([_M], [_M]),
    "L02": ([f"{_M}.parent"], [f"{_M}.parent", _M]),
    "L03": ([f"{_M}.grandparent"], [f"{_M}.grandparent", f"{_M}.parent", _M]),
    "L04": ([f"{_M}.parent"], [f"{_M}.parent", _M]),
    "L05": ([f"{_M}.brokenchild"], [f"{_M}.brokenchild", "test.err.notFound"]),
    "L06": ([f"{_M}.soft"], [f"{_M}.soft"]),
    "L07": ([f"{_M}.soft.parent"], [f"{_M}.soft.parent", f"{_M}.soft"]),
    "L08": ([f"{_M}.data"], [f"{_M}.data"]),
    "L09": ([f"{_M}.data.parent"], [f"{_M}.data.parent", f"{_M}.data"]),
    "L10": (["test.m.a"], ["test.m.a"]),
    "L11": (["test.m.b"], ["test.m.b", "test.m.c"]),
    "L12": (["test.m.d"], ["test.m.d", "test.m.e", "test.m.f"]),
    "L13": (["test.m.g"], ["test.m.g", "test.m.e", "test.m.f", "test.m.d"]),
    "L14": (["test.m.d", "test.m.h"], ["test.m.d", "test.m.e", "test.m.h", "test.m.f"]),
    "L15": ([_C], [_C]),
    "L16": ([f"{_C}.parent"], [f"{_C}.parent", _C]),
    "L17": ([f"{_C}.grandparent"], [f"{_C}.grandparent", f"{_C}.parent", _C]),
    "L18": ([f"{_C}.parent"], [f"{_C}.parent", _C]),
    "L19": ([f"{_C}.brokenchild"], [f"{_C}.brokenchild", "test.err.notFound"]),
    "L20": ([f"{_C}.soft"], [f"{_C}.soft"]),
    "L21": ([f"{_C}.soft.parent"], [f"{_C}.soft.parent", f"{_C}.soft"]),
    "L22": ([f"{_C}.data"], [f"{_C}.data"]),
    "L23": ([f"{_C}.data.parent"], [f"{_C}.data.parent", f"{_C}.data"]),
    "L24": (["test.c.a"], ["test.c.a"]),
    "L25": (["test.c.b"], ["test.c.b", "test.c.c"]),
    "L26": (["test.c.d"], ["test.c.d", "test.c.e", "test.c.f"]),
    "L27": (["test.c.g"], ["test.c.g", "test.c.e", "test.c.f", "test.c.d"]),
    "L28": (["test.c.d", "test.c.h"], ["test.c.d", "test.c.e", "test.c.h", "test.c.f"]),
    "L29": ([f"{_M}.parent"], [f"{_M}.parent", _M]),
    "L30": ([f"{_M}.parent"], [f"{_M}.parent", _M]),
}


# Test GET of each sequence row's resource: access (isHttp) and gets answered as they arrive, then the
# encoded body of the first target (json / jsonFlat).
@pytest.mark.parametrize(
    ("row", "encoding"),
    [pytest.param(row, enc, id=f"HGET-02.{row}.{enc}") for row in HGET_02_ROWS for enc in ENCODINGS],
)
async def test_hget_02_get_sequences(
    gateway_factory: GatewayFactory, service: FakeService, row: str, encoding: str
) -> None:
    gw = await gateway_factory(api_encoding=encoding)
    targets, gets = HGET_02_ROWS[row]
    tasks = [start(gw, "GET", api_path(t)) for t in targets]
    expected = Counter(["access." + t for t in targets] + ["get." + g for g in gets])
    while any(expected.values()):
        req = await service.next_request()
        assert expected[req.subject] > 0, f"unexpected request {req!r}; still expected {dict(expected)}"
        expected[req.subject] -= 1
        if req.subject.startswith("access."):
            req.assert_path("isHttp", True).assert_path("token", None)
            await req.ok({"get": True})
        else:
            req.assert_payload({})
            await req.json(fixtures.get_reply(req.subject[4:]))
    resp = await tasks[0]
    json_body, flat_body = HTTP_GET_BODIES[targets[0]]
    assert_json_body(resp, 200, json.loads(json_body if encoding == "json" else flat_body))
    for task in tasks[1:]:
        assert (await task).status == 200
    await service.expect_no_request(0.1)


# ---------------------------------------------------------------------------------------------
# HGET-03, HGET-04


# Test GET of a query model/collection: access and get carry the raw query.
@pytest.mark.parametrize(
    ("rid", "kind", "encoding"),
    [
        pytest.param(rid, kind, enc, id=f"{rowid}.{enc}")
        for rowid, rid, kind in [
            ("HGET-03", "test.model", "model"),
            ("HGET-04", "test.collection", "collection"),
        ]
        for enc in ENCODINGS
    ],
)
async def test_hget_03_04_query_resource(
    gateway_factory: GatewayFactory, service: FakeService, rid: str, kind: str, encoding: str
) -> None:
    gw = await gateway_factory(api_encoding=encoding)
    task = start(gw, "GET", api_path(rid) + "?q=foo&f=bar")
    reqs = await service.requests(2)
    access = reqs.get("access." + rid)
    access.assert_path("token", None).assert_path("query", "q=foo&f=bar").assert_path("isHttp", True)
    await access.ok({"get": True})
    get = reqs.get("get." + rid).assert_payload({"query": "q=foo&f=bar"})
    data = fixtures.MODELS[rid] if kind == "model" else fixtures.COLLECTIONS[rid]
    await get.ok({kind: data, "query": "q=foo&f=bar"})
    assert_json_body(await task, 200, data)


# ---------------------------------------------------------------------------------------------
# HGET-05

#: (Origin, allowOrigin, status, headers present, headers absent)
HGET_05_ROWS: list[tuple[str, str, int, dict[str, str], list[str]]] = [
    (
        "http://localhost",
        "*",
        200,
        {"Access-Control-Allow-Origin": "*"},
        ["Vary", "Access-Control-Allow-Credentials"],
    ),
    (
        "http://localhost",
        "http://localhost",
        200,
        {"Access-Control-Allow-Origin": "http://localhost", "Vary": "Origin"},
        ["Access-Control-Allow-Credentials"],
    ),
    (
        "https://resgate.io",
        "http://localhost;https://resgate.io",
        200,
        {"Access-Control-Allow-Origin": "https://resgate.io", "Vary": "Origin"},
        ["Access-Control-Allow-Credentials"],
    ),
    (
        "http://example.com",
        "http://localhost;https://resgate.io",
        403,
        {"Access-Control-Allow-Origin": "http://localhost", "Vary": "Origin"},
        ["Access-Control-Allow-Credentials"],
    ),
    ("", "*", 200, {"Access-Control-Allow-Origin": "*"}, ["Vary"]),
    ("", "http://localhost", 200, {}, ["Access-Control-Allow-Origin", "Vary"]),
]


# Test the CORS headers of a GET, and the 403 for an origin not allowed.
@pytest.mark.parametrize(
    ("origin", "allow_origin", "status", "present", "absent"),
    HGET_05_ROWS,
    ids=[f"HGET-05.{i:02d}" for i in range(1, len(HGET_05_ROWS) + 1)],
)
async def test_hget_05_allow_origin(
    gateway_factory: GatewayFactory,
    service: FakeService,
    origin: str,
    allow_origin: str,
    status: int,
    present: dict[str, str],
    absent: list[str],
) -> None:
    gw = await gateway_factory(allow_origin=allow_origin)
    task = start(gw, "GET", "/api/test/model", headers={"Origin": origin} if origin else None)
    if status == 200:
        await answer_access_get(service, "test.model")
        resp = await task
        assert_json_body(resp, 200, fixtures.MODELS["test.model"])
    else:
        resp = await task
        assert_error_body(resp, status, E_FORBIDDEN_ORIGIN)
        await service.expect_no_request(0.1)
    for name, value in present.items():
        assert_header(resp, name, value)
    for name in absent:
        assert_header(resp, name, None)


# ---------------------------------------------------------------------------------------------
# HGET-06

#: (auth reply kind, auth reply value, token event: absent (False) or the token)
HGET_06_AUTH: list[tuple[str, Any]] = [
    ("TO", None),
    ("ERR", E_NOTFOUND),
    ("RAW", b"{]"),
    ("OK", None),
]
_NO_TOKEN = object()
HGET_06_ROWS: list[tuple[str, Any, Any]] = [
    (kind, value, token) for token in (_NO_TOKEN, {"user": "foo"}, None) for kind, value in HGET_06_AUTH
]


async def header_auth_step(service: FakeService, kind: str, value: Any, token: Any) -> Any:
    """The headerAuth request of HGET-06/HPOST-06: assert it, send the token event (if any) before the
    reply, reply; returns the token the following access request must carry."""
    auth = await service.expect_request("auth.vault.method")
    auth.assert_path("header.Origin", ["example.com"]).assert_path("isHttp", True).assert_missing("params")
    expected = None
    if token is not _NO_TOKEN:
        await service.conn_event(auth.data["cid"], "token", {"token": token})
        expected = token
    await reply_kind(auth, kind, value)
    return expected


# Test that headerAuth is sent first; a token event during it is used by the access request, and auth
# failures do not block the request.
@pytest.mark.parametrize(
    ("kind", "value", "token"),
    HGET_06_ROWS,
    ids=[f"HGET-06.{i:02d}" for i in range(1, len(HGET_06_ROWS) + 1)],
)
async def test_hget_06_header_auth(
    gateway_factory: GatewayFactory, service: FakeService, kind: str, value: Any, token: Any
) -> None:
    gw = await gateway_factory(header_auth="vault.method")
    task = start(gw, "GET", "/api/test/model", headers={"Origin": "example.com"})
    expected_token = await header_auth_step(service, kind, value, token)
    reqs = await service.requests(2, timeout=2.0)
    reqs.get("access.test.model").assert_path("token", expected_token).assert_path("isHttp", True)
    await reqs.get("access.test.model").ok({"get": True})
    await reqs.get("get.test.model").json(fixtures.get_reply("test.model"))
    resp = await task
    assert_json_body(resp, 200, fixtures.MODELS["test.model"])
    assert_header(resp, "Access-Control-Allow-Credentials", "true")


# ---------------------------------------------------------------------------------------------
# HGET-07, HGET-08


# Test that a GET of an overlong rid gets 414 system.subjectTooLong without NATS requests.
async def test_hget_07_long_resource_id(gateway: GatewayHandle, service: FakeService) -> None:
    resp = await http(gateway, "GET", "/api/test/" + "a" * 10000)
    assert_error_body(resp, 414, E_TOOLONG)
    await service.expect_no_request(0.1)


# Test that a GET with a 10 000 character query succeeds (long request line accepted).
async def test_hget_08_long_model_query(gateway: GatewayHandle, service: FakeService) -> None:
    q = "q=" + "a" * 10000
    task = start(gateway, "GET", "/api/test/model?" + q)
    reqs = await service.requests(2)
    reqs.get("access.test.model").assert_path("token", None).assert_path("query", q)
    await reqs.get("access.test.model").ok({"get": True})
    await (
        reqs.get("get.test.model")
        .assert_payload({"query": q})
        .ok({"model": fixtures.MODELS["test.model"], "query": q})
    )
    assert_json_body(await task, 200, fixtures.MODELS["test.model"])
