"""Catalog §5.00 (resgate 00connect_test.go): startup, WebSocket connect, CORS on the upgrade."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import GatewayFactory
from tests.support.fixtures import PROTOCOL
from tests.support.gatewayrunner import GatewayHandle
from tests.support.macros import connect
from tests.support.natsserver import free_port
from tests.support.wsclient import assert_result


async def _http_status(host: str, port: int, request: bytes, timeout: float = 1.0) -> int:
    """Send raw request bytes and return the status code of the response's status line."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        writer.write(request)
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), timeout)
    finally:
        writer.close()
    parts = line.decode("latin-1").split()
    assert len(parts) >= 2 and parts[0].startswith("HTTP/"), f"no HTTP status line: {line!r}"
    return int(parts[1])


async def _accepts(port: int, timeout: float = 1.0) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
    except OSError:
        return False
    writer.close()
    return True


# Test that the gateway starts and stops without errors.
async def test_conn_01_start(gateway_factory: GatewayFactory) -> None:
    gw = await gateway_factory()
    await gw.stop()


# Test that a client can connect and do the version handshake.
async def test_conn_02_connect_client(gateway: GatewayHandle) -> None:
    client = await connect(gateway)
    assert_result(await client.request("version", {"protocol": "1.999.999"}), {"protocol": PROTOCOL})


CONN_03_ROWS = [
    ("http://localhost", "*", True),
    ("http://localhost", "http://localhost", True),
    ("http://localhost:8080", "http://localhost:8080", True),
    ("http://localhost", "http://localhost;https://resgate.io", True),
    ("https://resgate.io", "http://localhost;https://resgate.io", True),
    ("", "*", True),
    ("", "https://resgate.io", True),
    ("http://resgate.io", "https://resgate.io", False),
    ("https://resgate.io", "https://api.resgate.io", False),
    ("https://resgate.io:8080", "https://resgate.io", False),
    ("https://resgate.io", "https://resgate.io:8080", False),
]


# Test that the Origin header of the upgrade request is checked against allowOrigin.
@pytest.mark.parametrize(
    ("origin", "allow_origin", "connects"),
    CONN_03_ROWS,
    ids=[f"CONN-03.{i:02d}" for i in range(1, len(CONN_03_ROWS) + 1)],
)
async def test_conn_03_allow_origin_connects(
    gateway_factory: GatewayFactory, origin: str, allow_origin: str, connects: bool
) -> None:
    gw = await gateway_factory(allow_origin=allow_origin)
    client, status, _ = await gw.try_connect({"Origin": origin} if origin else None)
    if not connects:
        assert client is None, f"upgrade with Origin {origin!r} accepted for allowOrigin {allow_origin!r}"
        assert status != 101
        return
    assert client is not None, f"upgrade with Origin {origin!r} rejected (status {status})"
    await client.request("version", {"protocol": "1.999.999"})


# Test that a request with the request-target "*" gets 400 Bad Request.
async def test_conn_04_asterisk_request_uri_bad_request(gateway: GatewayHandle) -> None:
    request = b"GET * HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    assert await _http_status("127.0.0.1", gateway.port, request) == 400


# Test that the gateway starts and stops with its HTTP listener and the metrics listener on real ports.
async def test_conn_05_start_with_http_server_no_errors(gateway_factory: GatewayFactory) -> None:
    metrics_port = free_port()
    gw = await gateway_factory(metrics_port=metrics_port)
    assert await _accepts(gw.port), "HTTP listener not accepting"
    assert await _accepts(metrics_port), "metrics listener not accepting"
    await gw.stop()
