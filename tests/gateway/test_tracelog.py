"""Trace logging (``-V``): client and NATS messages logged at TRACE in resgate's notation, and no
traced classes at all when it is off (gateway/tracelog.py).

A real gateway, nats-server, fake service and WebSocket client; the lines are read from the log.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
import time
from collections.abc import Iterator

import pytest

from gateway import tracelog
from gateway.conn.connection import Connection
from gateway.constants import LOG_TRACE
from gateway.mq.natsclient import NatsMQ
from gateway.web.wsserver import WebSocketProtocol
from tests.conftest import GatewayFactory
from tests.support.fakeservice import FakeService
from tests.support.fixtures import get_reply
from tests.support.logguard import ErrorLog
from tests.support.macros import connect, get_cid, subscribe
from tests.support.natsserver import NatsServer, free_port
from tests.support.wsclient import assert_error, assert_result


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=LOG_TRACE)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    def matching(self, pattern: str) -> list[str]:
        return [line for line in self.lines if re.fullmatch(pattern, line)]


@pytest.fixture
def trace_lines() -> Iterator[_Lines]:
    logger = logging.getLogger("gateway.trace")
    handler, level = _Lines(), logger.level
    logger.addHandler(handler)
    logger.setLevel(LOG_TRACE)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


async def test_trace_logging_shows_client_and_nats_messages_as_resgate_does(
    gateway_factory: GatewayFactory, service: FakeService, trace_lines: _Lines
) -> None:
    gw = await gateway_factory(trace=True)
    client = await connect(gw)
    pending = await client.send("subscribe.test.model")
    reqs = await service.requests(2)
    await reqs.get("access.test.model").ok({"get": True, "call": "*"})
    await reqs.get("get.test.model").json(get_reply("test.model"))
    await pending.response()
    await service.event("test.model", "change", {"values": {"string": "bar"}})
    await client.expect_event("test.model.change", {"values": {"string": "bar"}})
    pending = await client.send("call.test.model.method", {"x": 1})
    await (await service.expect_request("call.test.model.method")).ok({"done": True})
    assert_result(await pending.response(), {"payload": {"done": True}})
    pending = await client.send("call.test.model.slow")
    await service.expect_request("call.test.model.slow")  # never answered: the gateway's timeout
    assert_error(await pending.response(), {"code": "system.timeout", "message": "Request timeout"})
    await client.close()

    cid = next(iter(trace_lines.matching(r"\[(\w+)\] Connected: 127\.0\.0\.1:\d+")))[1:21]
    lines = trace_lines.matching
    assert lines(r"S=> system\.\*")
    assert lines(rf"S=> conn\.{cid}\.\*")
    assert lines(rf'\[{cid}\] --> \{{"id": 1, "method": "version", .*')  # (as the client wrote it)
    assert lines(rf'\[{cid}\] --> \{{"id": 2, "method": "subscribe\.test\.model"\}}')
    assert lines(r"S=> event\.test\.model\.\*")
    access = lines(rf'<== \((\d+)\) access\.test\.model: \{{"cid":"{cid}".*')
    number = re.match(r"<== \((\d+)\)", access[0]).group(1)  # type: ignore[union-attr]
    assert lines(rf'==> \({number}\): \{{"result": \{{"get": true, "call": "\*"\}}\}}')
    assert lines(r"<== \(\d+\) get\.test\.model: .*")
    assert lines(rf'\[{cid}\] <-- \{{"result":\{{"models":\{{"test\.model":.*')
    assert lines(r'=>> event\.test\.model\.change: \{"values": \{"string": "bar"\}\}')
    assert lines(
        rf'\[{cid}\] <<- \{{"event":"test\.model\.change","data":\{{"values":\{{"string":"bar"\}}\}}\}}'
    )
    assert lines(r'<== \(\d+\) call\.test\.model\.method: .*"params":\{"x":1\}.*')
    assert lines(rf'\[{cid}\] <-- \{{"result":\{{"payload":\{{"done":true\}}\}},"id":\d+\}}')
    slow = lines(r"<== \((\d+)\) call\.test\.model\.slow: .*")
    number = re.match(r"<== \((\d+)\)", slow[0]).group(1)  # type: ignore[union-attr]
    assert lines(rf"x=> \({number}\) system\.timeout: Request timeout")
    await _line(trace_lines, rf"\[{cid}\] Disconnected: websocket: close 1000 \(normal\)")
    assert lines(rf"U=> conn\.{cid}\.\*")


async def _line(trace_lines: _Lines, pattern: str, timeout: float = 3.0) -> str:
    """The first trace line matching ``pattern``, waited for (a close reaches the gateway later)."""
    deadline = time.monotonic() + timeout
    while not (found := trace_lines.matching(pattern)):
        if time.monotonic() > deadline:
            raise AssertionError(
                f"no trace line {pattern!r} within {timeout}s; last: {trace_lines.lines[-8:]}"
            )
        await asyncio.sleep(0.01)
    return found[0]


@pytest.mark.parametrize("compression", [False, True], ids=["own-websocket-server", "aiohttp-compressed"])
async def test_trace_logging_says_why_a_connection_ended(
    gateway_factory: GatewayFactory, service: FakeService, trace_lines: _Lines, compression: bool
) -> None:
    """resgate's ``Disconnecting - reason`` (the gateway closes) and ``Disconnected: error`` lines,
    on both WebSocket front ends: a lost connection, a shed one, a drained one."""
    gw = await gateway_factory(trace=True, ws_compression=compression)

    lost = await connect(gw, compression=compression)
    cid = await get_cid(lost, service)
    assert isinstance(gw.gateway.sockets[cid], WebSocketProtocol) is not compression  # the front end
    lost.ws.transport.abort()  # no close frame
    await _line(
        trace_lines, rf"\[{cid}\] Disconnected: websocket: close 1006 \(abnormal closure\): unexpected EOF"
    )

    shed = await connect(gw, compression=compression)
    cid = await get_cid(shed, service)
    gw.gateway.closer.shed(0, 1000)
    await shed.wait_closed(3)
    await _line(trace_lines, rf"\[{cid}\] Disconnecting - Shedding connections \(rebalance\)")
    await _line(trace_lines, rf"\[{cid}\] Disconnected: websocket: close 1001 \(going away\).*")

    drained = await connect(gw, compression=compression)
    cid = await get_cid(drained, service)
    await gw.gateway.closer.drain(0)
    await drained.wait_closed(3)
    await _line(trace_lines, rf"\[{cid}\] Disconnecting - Server is shutting down")
    await _line(trace_lines, rf"\[{cid}\] Disconnected: websocket: close 1001 \(going away\).*")
    assert len(trace_lines.matching(r"\[\w+\] Disconnected: .*")) == 3


async def test_trace_logging_says_an_upgrade_was_refused_by_header_auth(
    gateway_factory: GatewayFactory, service: FakeService, trace_lines: _Lines
) -> None:
    gw = await gateway_factory(trace=True, ws_header_auth="vault.method")
    attempt = asyncio.ensure_future(gw.try_connect())
    req = await service.expect_request("auth.vault.method")
    cid = req.path("cid")
    await req.json(
        {"error": {"code": "system.accessDenied", "message": "Access denied"}, "meta": {"status": 401}}
    )
    client, status, _ = await attempt
    assert client is None and status == 401
    await _line(trace_lines, rf"\[{cid}\] Disconnected: upgrade refused: HTTP 401")


def test_close_reasons_are_worded_as_gorilla_words_them() -> None:
    assert tracelog.close_reason(1000) == "websocket: close 1000 (normal)"
    assert (
        tracelog.close_reason(1008, "slow consumer")
        == "websocket: close 1008 (policy violation): slow consumer"
    )
    assert tracelog.close_reason(None) == "websocket: close 1005 (no status)"
    assert tracelog.close_reason(4000, "app") == "websocket: close 4000: app"


async def test_without_trace_logging_nothing_is_wrapped(
    gateway_factory: GatewayFactory, service: FakeService, trace_lines: _Lines
) -> None:
    gw = await gateway_factory()
    client = await connect(gw)
    await subscribe(client, service, "test.model")
    assert type(gw.gateway.mq) is NatsMQ
    (conn,) = gw.gateway.connections.values()
    assert type(conn) is Connection
    assert not isinstance(conn.sink, tracelog.TracedSink)
    assert trace_lines.lines == []


async def test_invalid_utf8_from_a_service_is_logged_not_fatal(
    gateway_factory: GatewayFactory, service: FakeService, trace_lines: _Lines, errors: ErrorLog
) -> None:
    gw = await gateway_factory(trace=True)
    client = await connect(gw)
    await subscribe(client, service, "test.model")
    await service.publish("event.test.model.custom", b'{"x":"\xff"}')
    await service.event("test.model", "custom", {"y": 1})  # the gateway goes on
    await client.expect_event("test.model.custom", {"y": 1})
    assert trace_lines.matching('=>> event\\.test\\.model\\.custom: \\{"x":"\ufffd"\\}')
    (invalid,) = errors.take()  # the cache's own complaint about the payload, as without tracing
    assert "Invalid custom event payload" in invalid.getMessage()


async def test_minus_v_shows_trace_lines_on_stderr(nats_server: NatsServer) -> None:
    """The CLI's ``-V``: the process logs its NATS subscriptions at TRC level."""
    argv = [
        "--nats",
        nats_server.url,
        "--addr",
        "127.0.0.1",
        "--port",
        str(free_port()),
        "--adminport",
        "0",
        "-V",
    ]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        *argv,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    seen: list[str] = []
    try:
        assert proc.stderr is not None
        for _ in range(50):
            line = (await asyncio.wait_for(proc.stderr.readline(), 10)).decode()
            seen.append(line)
            if not line or "S=> system.*" in line:
                break
        assert any(re.search(r"\[TRC\] S=> system\.\*$", line.strip()) for line in seen), "".join(seen)
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)
