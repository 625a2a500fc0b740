"""Catalog §5.16 (resgate 16invalid_request_test.go): malformed client methods."""

from __future__ import annotations

import pytest

from tests.support.fakeservice import FakeService
from tests.support.fixtures import E_INVREQ
from tests.support.gatewayrunner import GatewayHandle
from tests.support.macros import connect, no_nats
from tests.support.wsclient import assert_error

INV_01_METHODS = [
    "",
    "test",
    "new",
    "unknown.test",
    "call.test",
    "call.test",
    "call.test.methöd",
    "call.test?foo",
    "call.test.method?foo",
    "auth.test",
    "subscribe..test.model",
    "subscribe.test..model",
    "subscribe.test.model.",
    ".subscribe.test.model",
    "subscribe?foo=bar",
    "subscribe.test\tmodel",
    "subscribe.test\nmodel",
    "subscribe.test\rmodel",
    "subscribe.test model",
    "subscribe.test\ufffdmodel",
    "subscribe.täst.model",
    "subscribe.test.*.model",
    "subscribe.test.>.model",
    "subscribe.test.model.>",
]


# Test that an invalid method gets system.invalidRequest and sends nothing to NATS.
@pytest.mark.parametrize(
    "method", INV_01_METHODS, ids=[f"INV-01.{i:02d}" for i in range(1, len(INV_01_METHODS) + 1)]
)
async def test_inv_01_response_on_invalid_requests(
    gateway: GatewayHandle, service: FakeService, method: str
) -> None:
    client = await connect(gateway)
    assert_error(await client.request(method), E_INVREQ)
    await no_nats(client, service)
