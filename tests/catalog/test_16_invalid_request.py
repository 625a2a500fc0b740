"""Catalog §5.16 (resgate 16invalid_request_test.go): malformed client methods."""

from __future__ import annotations

import pytest

from tests.support.fakeservice import FakeService
from tests.support.fixtures import E_INVREQ, INVALID_METHODS
from tests.support.gatewayrunner import GatewayHandle
from tests.support.macros import connect, no_nats
from tests.support.wsclient import assert_error


# Test that an invalid method gets system.invalidRequest and sends nothing to NATS.
@pytest.mark.parametrize(
    "method", INVALID_METHODS, ids=[f"INV-01.{i:02d}" for i in range(1, len(INVALID_METHODS) + 1)]
)
async def test_inv_01_response_on_invalid_requests(
    gateway: GatewayHandle, service: FakeService, method: str
) -> None:
    client = await connect(gateway)
    assert_error(await client.request(method), E_INVREQ)
    await no_nats(client, service)
