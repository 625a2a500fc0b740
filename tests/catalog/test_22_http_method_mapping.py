"""Catalog §5.22 (resgate 22http_method_mapping_test.go): PUT/DELETE/PATCH mapped to call methods."""

from __future__ import annotations

from typing import Any

import pytest

from tests.catalog.test_14_http_get import assert_error_body, assert_json_body, http, reply_kind, start
from tests.conftest import GatewayFactory
from tests.support.fakeservice import FakeService
from tests.support.fixtures import E_ACCESS, E_INVPARAMS, E_METHODNA, E_METHODNF, E_TIMEOUT

_CONFIG_KEY = {"PUT": "put_method", "DELETE": "delete_method", "PATCH": "patch_method"}
_VERBS = ["PUT", "DELETE", "PATCH"]

#: (mapped HTTP method, requested HTTP method, call reply (None: no request), status, body)
HMAP_01_ROWS: list[tuple[str, str, tuple[str, Any] | None, int, Any]] = [
    *[(m, m, ("OK", "zoo"), 200, "zoo") for m in _VERBS],
    *[(m, m, ("ERR", E_INVPARAMS), 400, E_INVPARAMS) for m in _VERBS],
    *[(m, m, ("TO", None), 404, E_TIMEOUT) for m in _VERBS],
    *[(m, m, ("ERR", E_ACCESS), 401, E_ACCESS) for m in _VERBS],
    *[(m, m, ("ERR", E_METHODNF), 405, E_METHODNA) for m in _VERBS],
    ("DELETE", "PUT", None, 405, E_METHODNA),
    ("PATCH", "DELETE", None, 405, E_METHODNA),
    ("PUT", "PATCH", None, 405, E_METHODNA),
]


# Test that a mapped PUT/DELETE/PATCH calls the configured method (methodNotFound becomes 405), and
# an unmapped one gets 405 without NATS requests.
@pytest.mark.parametrize(
    ("mapped", "method", "call", "status", "body"),
    HMAP_01_ROWS,
    ids=[f"HMAP-01.{i:02d}" for i in range(1, len(HMAP_01_ROWS) + 1)],
)
async def test_hmap_01_mapped_method(
    gateway_factory: GatewayFactory,
    service: FakeService,
    mapped: str,
    method: str,
    call: tuple[str, Any] | None,
    status: int,
    body: Any,
) -> None:
    gw = await gateway_factory(**{_CONFIG_KEY[mapped]: "mappedMethod"})
    if call is None:
        resp = await http(gw, method, "/api/test/model", body=b'{"foo":"bar"}')
        assert_error_body(resp, status, body)
        await service.expect_no_request(0.1)
        return
    task = start(gw, method, "/api/test/model", body=b'{"foo":"bar"}')
    access = await service.expect_request("access.test.model")
    await access.assert_path("isHttp", True).ok({"get": True, "call": "*"})
    req = await service.expect_request("call.test.model.mappedMethod")
    req.assert_path("params", {"foo": "bar"}).assert_path("isHttp", True)
    await reply_kind(req, *call)
    resp = await task
    if status < 400:
        assert_json_body(resp, status, body)
    else:
        assert_error_body(resp, status, body)


# Checklist 176 (not a catalog row): any other verb is 405 without NATS requests.
@pytest.mark.parametrize("method", ["TRACE", "PROPFIND"])
async def test_hmap_extra_unknown_verb(
    gateway_factory: GatewayFactory, service: FakeService, method: str
) -> None:
    gw = await gateway_factory(put_method="m", delete_method="m", patch_method="m")
    resp = await http(gw, method, "/api/test/model")
    assert_error_body(resp, 405, E_METHODNA)
    await service.expect_no_request(0.1)
