"""Fixtures of the runtime tests: gateway child processes, killable nats-servers and a NATS cluster.

Everything started here is stopped at teardown by PID (gateways: SIGKILL if still running; nats-servers:
SIGTERM, then SIGKILL).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest

from tests.runtime.helpers import AutoService, GatewayProcess
from tests.support.cluster import NatsCluster, NatsNode

GatewayStarter = Callable[..., Awaitable[GatewayProcess]]
ServiceStarter = Callable[..., Awaitable[AutoService]]


@pytest.fixture
async def gateways() -> AsyncIterator[list[GatewayProcess]]:
    """Gateway processes a test registers (``gateways.append``); killed at teardown if still running."""
    procs: list[GatewayProcess] = []
    try:
        yield procs
    finally:
        for proc in procs:
            await proc.kill()


@pytest.fixture
async def start_gateway(gateways: list[GatewayProcess]) -> GatewayStarter:
    """``await start_gateway(nats_url, *flags, **spawn_kwargs)``: a ready gateway process."""

    async def start(nats_url: str | None, *args: str, **kwargs: Any) -> GatewayProcess:
        gw = await GatewayProcess.start(nats_url, *args, **kwargs)
        gateways.append(gw)
        return gw

    return start


@pytest.fixture
def nats_node() -> Iterator[NatsNode]:
    """A dedicated nats-server the test may kill and restart (same ports)."""
    node = NatsNode.create("solo").start()
    try:
        yield node
    finally:
        node.close()


@pytest.fixture
def cluster() -> Iterator[NatsCluster]:
    """A 3-node NATS cluster on loopback with all routes up."""
    c = NatsCluster.start(3)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
async def auto_service() -> AsyncIterator[ServiceStarter]:
    """``await auto_service(nats_url, models)``: an AutoService, closed at teardown."""
    started: list[AutoService] = []

    async def make(nats_url: str, models: dict[str, Any] | None = None) -> AutoService:
        svc = await AutoService(nats_url, models).start()
        started.append(svc)
        return svc

    try:
        yield make
    finally:
        for svc in started:
            await svc.close()
