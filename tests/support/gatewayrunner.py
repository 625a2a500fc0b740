"""In-process gateways for tests: one fresh ``Gateway`` per test, on a free port, in the test's event loop.

Used by the ``gateway_factory`` / ``gateway`` fixtures in ``tests/conftest.py``. ``GatewayHandle`` also
tracks every ``WSClient`` opened through it so the fixture can close them, and fail the test if one was
broken, before stopping the gateway (bounded, as resgate's teardown: 3 s).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from tests.support.natsserver import free_port
from tests.support.wsclient import WSClient

#: Config of every test gateway (catalog §5 "default" plus a short request timeout, §7).
TEST_DEFAULTS: dict[str, Any] = {
    "addr": "127.0.0.1",
    "request_timeout": 500,
    "cache_eviction_delay": 5000,
    "allow_origin": "*",
    "header_auth": None,
    "ws_header_auth": None,
    "api_encoding": "json",
    "put_method": None,
    "delete_method": None,
    "patch_method": None,
    "ws_compression": False,
    "reset_throttle": 0,
    "reference_throttle": 0,
    "metrics_port": 0,
    # pyresgate extension: the admin listener (health, readiness) defaults to a fixed port; keep it off.
    "admin_port": 0,
}
#: Seconds a gateway may take to stop (resgate's teardown limit).
STOP_TIMEOUT = 3.0
#: Seconds a gateway may take to start.
START_TIMEOUT = 5.0
#: Attempts at a free port (another process may grab the probed port before the gateway binds it).
PORT_ATTEMPTS = 3


class GatewayHandle:
    """A started gateway plus the clients opened through it."""

    def __init__(self, gateway: Any, config: Any, port: int) -> None:
        self.gateway = gateway
        self.config = config
        self.port = port
        self.ws_url = f"ws://127.0.0.1:{port}/"
        self.http_url = f"http://127.0.0.1:{port}"
        self.clients: list[WSClient] = []
        self.stopped = False

    async def connect(self, headers: dict[str, str] | None = None, *, compression: bool = False) -> WSClient:
        """Open a WebSocket (no version handshake); closed by the fixture at teardown."""
        client = await WSClient.connect(self.ws_url, headers, compression=compression)
        self.clients.append(client)
        return client

    async def try_connect(
        self, headers: dict[str, str] | None = None, *, compression: bool = False
    ) -> tuple[WSClient | None, int, Any]:
        """``WSClient.try_connect`` on this gateway; a successful client is tracked like ``connect``."""
        client, status, hdrs = await WSClient.try_connect(self.ws_url, headers, compression=compression)
        if client is not None:
            self.clients.append(client)
        return client, status, hdrs

    async def close_clients(self) -> None:
        """Close every tracked client; fails if one was broken or does not close."""
        problems: list[str] = []
        for client in self.clients:
            try:
                await client.close()
            except AssertionError as exc:
                problems.append(str(exc))
            problems.extend(client.broken)
        assert not problems, "client problems at teardown:\n  " + "\n  ".join(problems)

    async def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop the gateway (idempotent); fails if it takes longer than ``timeout`` seconds."""
        if self.stopped:
            return
        self.stopped = True
        try:
            await asyncio.wait_for(self.gateway.stop(), timeout)
        except TimeoutError:
            raise AssertionError(f"gateway did not stop within {timeout}s") from None


async def start_gateway(nats_url: str, **overrides: Any) -> GatewayHandle:
    """Build a ``Config`` from TEST_DEFAULTS + ``overrides`` and start a ``Gateway`` on a free port."""
    # Imported here so the harness self-tests run without the gateway package.
    from gateway import app, config

    last: OSError | None = None
    for _ in range(PORT_ATTEMPTS if "port" not in overrides else 1):
        values = {**TEST_DEFAULTS, "nats_url": nats_url, "port": free_port(), **overrides}
        cfg = config.Config(**values)
        gateway = app.Gateway(cfg)
        try:
            await asyncio.wait_for(gateway.start(), START_TIMEOUT)
        except OSError as exc:  # port taken meanwhile: stop what started and try another port
            last = exc
            with contextlib.suppress(Exception):
                await asyncio.wait_for(gateway.stop(), STOP_TIMEOUT)
            continue
        return GatewayHandle(gateway, cfg, values["port"])
    raise AssertionError(f"gateway failed to start: {last}")


async def tear_down(handles: list[GatewayHandle]) -> None:
    """Close every gateway's clients and stop it (each in its time limit); the fixtures' teardown.
    Every gateway gets its turn even when one fails; then the test fails with all the failures."""
    failures: list[str] = []
    for handle in handles:
        for step in (handle.close_clients, handle.stop):
            try:
                await step()
            except AssertionError as exc:
                failures.append(str(exc))
    if failures:
        pytest.fail("gateway teardown failed:\n" + "\n".join(failures))
