"""Catalog §5.20 (resgate 20version_test.go): the version handshake."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.fixtures import E_INVPARAMS, E_UNSUPP, PROTOCOL
from tests.support.gatewayrunner import GatewayHandle
from tests.support.macros import connect
from tests.support.wsclient import MISSING, assert_error, assert_result

RESULT = {"protocol": PROTOCOL}

VER_01_ROWS: list[tuple[Any, Any, dict[str, str] | None]] = [
    # (params, expected result, expected error)
    (MISSING, RESULT, None),
    ({}, RESULT, None),
    ({"foo": "bar"}, RESULT, None),
    ({"protocol": ""}, RESULT, None),
    ({"protocol": None}, RESULT, None),
    ({"protocol": "1.0.0"}, RESULT, None),
    ({"protocol": "1.1.0"}, RESULT, None),
    ({"protocol": "1.0.1"}, RESULT, None),
    ({"protocol": "1.999.999"}, RESULT, None),
    ("", None, E_INVPARAMS),
    ("1.0.0", None, E_INVPARAMS),
    (["1.0.0"], None, E_INVPARAMS),
    ({"protocol": 1.0}, None, E_INVPARAMS),
    ({"protocol": "1.0"}, None, E_INVPARAMS),
    ({"protocol": "1.2.3.4"}, None, E_INVPARAMS),
    ({"protocol": "v1.0.0"}, None, E_INVPARAMS),
    ({"protocol": "1.0.1000"}, None, E_INVPARAMS),
    ({"protocol": "1.1000.0"}, None, E_INVPARAMS),
    ({"protocol": "v1.0.0"}, None, E_INVPARAMS),
    ({"protocol": "0.0.0"}, None, E_UNSUPP),
    ({"protocol": "2.0.0"}, None, E_UNSUPP),
    ({"protocol": "0.999.999"}, None, E_UNSUPP),
    ({"protocol": "3.2.1"}, None, E_UNSUPP),
]


# Test that a version request (after the one CONNECT makes) gets the expected result or error.
@pytest.mark.parametrize(
    ("params", "result", "error"),
    VER_01_ROWS,
    ids=[f"VER-01.{i:02d}" for i in range(1, len(VER_01_ROWS) + 1)],
)
async def test_ver_01_version_request_returns_expected_response(
    gateway: GatewayHandle, params: Any, result: Any, error: dict[str, str] | None
) -> None:
    client = await connect(gateway)
    resp = await client.request("version", params)
    if error is None:
        assert_result(resp, result)
    else:
        assert_error(resp, error)
