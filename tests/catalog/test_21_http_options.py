"""Catalog §5.21 (resgate 21http_options_test.go): CORS preflight (OPTIONS) on web resources."""

from __future__ import annotations

import pytest

from tests.catalog.test_14_http_get import assert_empty, assert_header, http
from tests.conftest import GatewayFactory
from tests.support.fakeservice import FakeService
from tests.support.gatewayrunner import GatewayHandle

#: (Origin, allowOrigin, headers present, headers absent)
HOPT_01_ROWS: list[tuple[str, str, dict[str, str], list[str]]] = [
    ("http://localhost", "*", {"Access-Control-Allow-Origin": "*"}, ["Vary"]),
    (
        "http://localhost",
        "http://localhost",
        {"Access-Control-Allow-Origin": "http://localhost", "Vary": "Origin"},
        [],
    ),
    (
        "https://resgate.io",
        "http://localhost;https://resgate.io",
        {"Access-Control-Allow-Origin": "https://resgate.io", "Vary": "Origin"},
        [],
    ),
    (
        "http://example.com",
        "http://localhost;https://resgate.io",
        {"Access-Control-Allow-Origin": "http://localhost", "Vary": "Origin"},
        [],
    ),
    ("", "*", {"Access-Control-Allow-Origin": "*"}, ["Vary"]),
    ("", "http://localhost", {}, ["Access-Control-Allow-Origin", "Vary"]),
]


# Test the CORS headers of a preflight: always 200 with an empty body, also for a refused origin.
@pytest.mark.parametrize(
    ("origin", "allow_origin", "present", "absent"),
    HOPT_01_ROWS,
    ids=[f"HOPT-01.{i:02d}" for i in range(1, len(HOPT_01_ROWS) + 1)],
)
async def test_hopt_01_allow_origin(
    gateway_factory: GatewayFactory,
    service: FakeService,
    origin: str,
    allow_origin: str,
    present: dict[str, str],
    absent: list[str],
) -> None:
    gw = await gateway_factory(allow_origin=allow_origin)
    resp = await http(gw, "OPTIONS", "/api/test/model", headers={"Origin": origin} if origin else None)
    assert_empty(resp, 200)
    for name, value in present.items():
        assert_header(resp, name, value)
    for name in absent:
        assert_header(resp, name, None)
    assert_header(resp, "Access-Control-Allow-Methods", "GET, HEAD, OPTIONS, POST")
    await service.expect_no_request(0.1)


#: (Access-Control-Request-Headers values sent as separate headers, expected Allow-Headers)
HOPT_02_ROWS: list[tuple[list[str], str | None]] = [
    (["Content-Type"], "Content-Type"),
    (["X-PINGOTHER", "Content-Type"], "X-PINGOTHER, Content-Type"),
    (["X-PINGOTHER", "Content-Type", "Authorization"], "X-PINGOTHER, Content-Type, Authorization"),
    ([], None),
]


# Test that the requested headers are echoed in Access-Control-Allow-Headers, joined with ", ".
@pytest.mark.parametrize(
    ("values", "expected"),
    HOPT_02_ROWS,
    ids=[f"HOPT-02.{i:02d}" for i in range(1, len(HOPT_02_ROWS) + 1)],
)
async def test_hopt_02_request_headers(
    gateway: GatewayHandle, values: list[str], expected: str | None
) -> None:
    headers = [("Access-Control-Request-Headers", v) for v in values]
    resp = await http(gateway, "OPTIONS", "/api/test/model", headers=headers)
    assert_empty(resp, 200)
    assert_header(resp, "Access-Control-Allow-Headers", expected)
    assert_header(resp, "Access-Control-Allow-Credentials", None)


# Test that with headerAuth a preflight has Access-Control-Allow-Credentials and sends no auth request.
async def test_hopt_03_header_auth(gateway_factory: GatewayFactory, service: FakeService) -> None:
    gw = await gateway_factory(header_auth="vault.method")
    resp = await http(gw, "OPTIONS", "/api/test/model")
    assert_empty(resp, 200)
    assert_header(resp, "Access-Control-Allow-Credentials", "true")
    await service.expect_no_request(0.1)
