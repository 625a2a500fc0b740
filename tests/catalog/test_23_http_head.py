"""Catalog §5.23 (resgate 23http_head_test.go): HEAD requests on web resources."""

from __future__ import annotations

import pytest

from tests.catalog.test_14_http_get import HGET_01_URLS, JSON_CT, answer_access_get, assert_empty, http, start
from tests.support.fakeservice import FakeService
from tests.support.fixtures import E_NOTFOUND
from tests.support.gatewayrunner import GatewayHandle


# Test that HEAD on invalid URLs gets 404 (and no body).
@pytest.mark.parametrize(
    "url", HGET_01_URLS, ids=[f"HHEAD-01.{i:02d}" for i in range(1, len(HGET_01_URLS) + 1)]
)
async def test_hhead_01_invalid_urls(gateway: GatewayHandle, service: FakeService, url: str) -> None:
    resp = await http(gateway, "HEAD", url)
    assert_empty(resp, 404)
    await service.expect_no_request(0.1)


# Test that a successful HEAD gets 200 with the GET headers and no body.
async def test_hhead_02_success_no_body(gateway: GatewayHandle, service: FakeService) -> None:
    task = start(gateway, "HEAD", "/api/test/model")
    await answer_access_get(service, "test.model")
    resp = await task
    assert_empty(resp, 200)
    assert resp.headers.get("Content-Type") == JSON_CT


# Test that a failing HEAD gets the error status and no body.
async def test_hhead_03_error_no_body(gateway: GatewayHandle, service: FakeService) -> None:
    task = start(gateway, "HEAD", "/api/test/model")
    reqs = await service.requests(2)
    await reqs.get("access.test.model").assert_path("isHttp", True).ok({"get": True})
    await reqs.get("get.test.model").error(E_NOTFOUND)
    resp = await task
    assert_empty(resp, 404)
    assert resp.headers.get("Content-Type") == JSON_CT
