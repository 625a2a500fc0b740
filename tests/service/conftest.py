"""Fixtures for the service-library tests: a real gateway over the session's real nats-server, and a
``pyresgate.service.Service`` started against the same server.

The shared ``gateway`` fixture of tests/conftest.py is not used because it brings the fake service,
which answers every request subject; here the library's service must be the only responder.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from pyresgate.service import Service
from tests.support.gatewayrunner import GatewayHandle, start_gateway
from tests.support.logguard import ErrorLog
from tests.support.natsserver import NatsServer

ServiceStarter = Callable[[Service], Awaitable[Service]]


@pytest.fixture
async def gw(nats_server: NatsServer, errors: ErrorLog) -> AsyncIterator[GatewayHandle]:
    """A fresh in-process gateway (test defaults: 500 ms request timeout); clients checked at teardown."""
    handle = await start_gateway(nats_server.url)
    try:
        yield handle
    finally:
        await handle.close_clients()
        await handle.stop()


@pytest.fixture
async def start_service(nats_server: NatsServer) -> AsyncIterator[ServiceStarter]:
    """``await start_service(svc)`` starts ``svc`` on the session's NATS; stopped (drained) at teardown."""
    started: list[Service] = []

    async def start(svc: Service) -> Service:
        await svc.start(nats_server.url)
        started.append(svc)
        return svc

    try:
        yield start
    finally:
        for svc in started:
            await svc.stop()


@pytest.fixture
def service_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """The library's log records (warnings and up)."""
    caplog.set_level(logging.WARNING, logger="pyresgate.service")
    return caplog
