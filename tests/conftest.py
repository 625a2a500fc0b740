"""Shared fixtures: a real nats-server per session, a fake RES service and fresh in-process gateways per test.

Teardown mirrors resgate's test harness (catalog §2): every client opened through a gateway handle is
closed and must not be broken, each gateway must stop within 3 s, and the test fails if the gateway logged
ERROR records the test did not consume through the ``errors`` fixture.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest

from tests.support.fakeservice import FakeService
from tests.support.gatewayrunner import GatewayHandle, start_gateway, tear_down
from tests.support.logguard import ErrorLog
from tests.support.natsserver import NatsServer

GatewayFactory = Callable[..., Awaitable[GatewayHandle]]


@pytest.fixture(scope="session")
def nats_server() -> Iterator[NatsServer]:
    """One nats-server for the session (free client and monitoring ports), stopped by PID at the end."""
    server = NatsServer.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def service(nats_server: NatsServer) -> AsyncIterator[FakeService]:
    """The fake RES service; event publishes assert the gateway holds a covering subscription."""
    svc = FakeService(nats_server.url, nats_server.monitor_url, check_subscriptions=True)
    await svc.start()
    try:
        yield svc
    finally:
        await svc.close()


@pytest.fixture
def errors() -> Iterator[ErrorLog]:
    """The gateway's ERROR log records; the test fails at teardown if any remain unconsumed."""
    log = ErrorLog().install()
    try:
        yield log
    finally:
        log.uninstall()
    log.assert_none()


@pytest.fixture
async def gateway_factory(
    nats_server: NatsServer, service: FakeService, errors: ErrorLog
) -> AsyncIterator[GatewayFactory]:
    """``await gateway_factory(**config_overrides)`` starts a fresh gateway (TEST_DEFAULTS + overrides).

    Depends on ``service`` so the fake service is subscribed before any gateway talks to NATS, and on
    ``errors`` so the log check runs after the gateways stopped.
    """
    handles: list[GatewayHandle] = []

    async def factory(**overrides: Any) -> GatewayHandle:
        handle = await start_gateway(nats_server.url, **overrides)
        handles.append(handle)
        return handle

    try:
        yield factory
    finally:
        await tear_down(handles)


@pytest.fixture
async def gateway(gateway_factory: GatewayFactory) -> GatewayHandle:
    """A gateway with the test defaults."""
    return await gateway_factory()


@pytest.fixture
def collector_off() -> Iterator[None]:
    """No automatic garbage collection while the test runs: what a reference cycle holds stays for
    ``tests.support.garbage.cyclic_garbage`` to find."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@pytest.fixture(scope="session", autouse=True)
def predefined_errors_never_raised() -> Iterator[None]:
    """After the run: no predefined error (``gateway.protocol.errors.ERR_*``) carries a traceback,
    so no code path the tests reached raised a shared instance itself, which keeps the frames of
    every such raise alive (tests/gateway/protocol/test_errors.py says why)."""
    yield
    try:
        from gateway.protocol import errors
    except ImportError:  # (the harness self-tests run without the gateway package)
        return
    raised = sorted(
        name
        for name, value in vars(errors).items()
        if isinstance(value, errors.ResError) and value.__traceback__ is not None
    )
    assert not raised, f"predefined errors raised themselves (raise a ResError.copy()): {raised}"
