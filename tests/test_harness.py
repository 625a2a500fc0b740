"""Self-tests of the test harness (tests/support); none of them needs the gateway."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import nats
import pytest
from aiohttp import web
from nats.aio.client import Client as NATS
from websockets.exceptions import ConnectionClosed

from tests.support.fakeservice import EMPTY, NULL, FakeService, subject_matches
from tests.support.fixtures import E_INVREQ, get_reply, resource_set
from tests.support.jsoncmp import json_equal
from tests.support.logguard import ErrorLog
from tests.support.natsserver import NatsServer, free_port
from tests.support.tasks import stop_tasks
from tests.support.wsclient import MISSING, WSClient, assert_error, assert_result

# NATS side


def test_nats_server_accepts_connections(nats_server: NatsServer) -> None:
    assert nats_server.process.poll() is None
    with socket.create_connection(("127.0.0.1", nats_server.port), timeout=1) as sock:
        assert sock.recv(4).startswith(b"INFO")


@pytest.fixture
async def nc(nats_server: NatsServer) -> AsyncIterator[NATS]:
    """A plain client standing in for the gateway (its name is not a harness name)."""
    client = await nats.connect(nats_server.url, name="stand-in-gateway")
    try:
        yield client
    finally:
        await client.close()


async def test_service_receives_request_and_replies_ok(service: FakeService, nc: NATS) -> None:
    reply = asyncio.ensure_future(nc.request("get.test.model", b"{}", timeout=1))
    req = await service.next_request()
    req.assert_subject("get.test.model").assert_payload({})
    await req.ok({"model": {"a": 1}})
    assert json.loads((await reply).data) == {"result": {"model": {"a": 1}}}


async def test_service_reply_kinds(service: FakeService, nc: NATS) -> None:
    payload = {"cid": "abc", "token": None, "params": {"x": [1, 2]}}
    replies = [
        asyncio.ensure_future(nc.request(f"call.test.m{i}", json.dumps(payload).encode(), timeout=1))
        for i in range(6)
    ]
    reqs = await service.requests(6)
    assert reqs.subjects() == [f"call.test.m{i}" for i in range(6)]
    first = reqs.get("call.test.m0")
    first.assert_path("token", None).assert_path("params.x.1", 2).assert_missing("isHttp")
    with pytest.raises(AssertionError):
        first.assert_path("isHttp", None)
    with pytest.raises(AssertionError):
        first.assert_missing("token")
    await first.raw(b"not json")
    await reqs.get("call.test.m1").raw(b"")
    await reqs.get("call.test.m2").error(E_INVREQ)
    await reqs.get("call.test.m3").resource("test.model")
    await reqs.get("call.test.m4").json(get_reply("test.err.notFound"))
    await reqs.get("call.test.m5").ok(None)
    with pytest.raises(AssertionError, match="answered twice"):
        await first.ok(None)
    got = [(await r).data for r in replies]
    assert got[:2] == [b"not json", b""]
    assert json.loads(got[2]) == {"error": E_INVREQ}
    assert json.loads(got[3]) == {"resource": {"rid": "test.model"}}
    assert json.loads(got[4]) == {"error": {"code": "system.notFound", "message": "Not found"}}
    assert got[5] == b'{"result": null}'


async def test_service_ad_hoc_subject_and_no_request(service: FakeService, nc: NATS) -> None:
    await service.expect_no_request(0.05)
    await service.add_subject("_EVENT_01_")
    reply = asyncio.ensure_future(nc.request("_EVENT_01_", b'{"query":"a=b"}', timeout=1))
    (await service.expect_request("_EVENT_01_")).assert_payload({"query": "a=b"})
    await nc.publish("get.test.model", b"{}")  # no reply subject: not a request
    await nc.flush()
    await service.expect_no_request(0.05)
    with pytest.raises(AssertionError, match="no NATS request"):
        await service.next_request(timeout=0.05)
    assert reply.done() is False
    reply.cancel()


async def test_service_publishes_events(service: FakeService, nc: NATS) -> None:
    received: asyncio.Queue[Any] = asyncio.Queue()

    async def on_msg(msg: Any) -> None:
        received.put_nowait((msg.subject, msg.data))

    for subject in ("event.test.model.*", "conn.abc.*", "system.*"):
        await nc.subscribe(subject, cb=on_msg)
    await nc.flush()
    await service.wait_gateway_subscribed("event.test.model.change")
    await service.event("test.model", "change", {"values": {"a": 1}})
    await service.event("test.model", "delete", NULL)
    await service.event("test.model", "custom", EMPTY)
    await service.conn_event("abc", "token", {"token": None})
    await service.system_event("reset", b'{"resources":["test.>"]}')
    got = [await asyncio.wait_for(received.get(), 1) for _ in range(5)]
    assert got == [
        ("event.test.model.change", b'{"values": {"a": 1}}'),
        ("event.test.model.delete", b"null"),
        ("event.test.model.custom", b""),
        ("conn.abc.token", b'{"token": null}'),
        ("system.reset", b'{"resources":["test.>"]}'),
    ]


async def test_service_sees_gateway_subscriptions(service: FakeService, nc: NATS) -> None:
    assert not await service.gateway_subscribed("event.test.other.change")
    with pytest.raises(AssertionError, match="gateway not subscribed"):
        await service.event("test.other", "change", {"values": {}})
    sub = await nc.subscribe("event.test.other.*")
    await nc.flush()
    await service.wait_gateway_subscribed("event.test.other.change")
    assert "event.test.other.*" in await service.gateway_subscriptions()
    await service.assert_gateway_subscribed("event.test.other.x")
    # the fake service's own subscriptions are not the gateway's
    assert not await service.gateway_subscribed("get.test.model")
    await sub.unsubscribe()
    await nc.flush()
    await service.wait_gateway_subscribed("event.test.other.change", present=False)
    await service.assert_gateway_not_subscribed("event.test.other.change")


@pytest.mark.parametrize(
    ("pattern", "subject", "match"),
    [
        ("event.a.*", "event.a.b", True),
        ("event.a.*", "event.a.b.c", False),
        ("event.a.*", "event.a", False),
        ("event.>", "event.a.b", True),
        ("event.>", "event", False),
        (">", "x", True),
        ("event.a.b", "event.a.b", True),
        ("event.*.b", "event.x.c", False),
    ],
)
def test_subject_matches(pattern: str, subject: str, match: bool) -> None:
    assert subject_matches(pattern, subject) is match


# JSON comparison and fixtures


def test_json_equal_is_strict_about_bools() -> None:
    assert json_equal({"a": [1, 2.0, None]}, {"a": [1.0, 2, None]})
    assert not json_equal({"a": True}, {"a": 1})
    assert not json_equal(0, False)
    assert not json_equal({"a": None}, {})
    assert not json_equal([1], [1, 2])
    assert not json_equal("1", 1)


def test_fixture_helpers() -> None:
    assert get_reply("test.model") == {
        "result": {"model": {"string": "foo", "int": 42, "bool": True, "null": None}}
    }
    assert get_reply("test.collection") == {"result": {"collection": ["foo", 42, True, None]}}
    assert resource_set("test.model.data", "test.collection.data", "test.err.notFound") == {
        "models": {
            "test.model.data": {
                "name": "data",
                "primitive": 12,
                "object": {"data": {"foo": ["bar"]}},
                "array": {"data": [{"foo": "bar"}]},
            }
        },
        "collections": {
            "test.collection.data": ["data", 12, {"data": {"foo": ["bar"]}}, {"data": [{"foo": "bar"}]}]
        },
        "errors": {"test.err.notFound": {"code": "system.notFound", "message": "Not found"}},
    }


# Error-log capture


async def test_error_log_expect_and_take(errors: ErrorLog) -> None:
    log = logging.getLogger("gateway.harness.selftest")
    log.warning("not an error")
    await errors.expect(0)
    log.error("first")
    asyncio.get_running_loop().call_later(0.02, log.error, "second")
    taken = await errors.expect(2)
    assert [r.getMessage() for r in taken] == ["first", "second"]
    log.error("third")
    assert [r.getMessage() for r in errors.take()] == ["third"]
    log.error("fourth")
    with pytest.raises(AssertionError, match="expected 0 gateway errors"):
        await errors.expect(0)


def test_error_log_guard_fails_on_unconsumed() -> None:
    guard = ErrorLog().install()
    try:
        logging.getLogger("gateway.harness.selftest").error("boom")
    finally:
        guard.uninstall()
    with pytest.raises(AssertionError, match="boom"):
        guard.assert_none()
    logging.getLogger("gateway.harness.selftest").error("after uninstall")
    guard.assert_none()


# WebSocket client, against a small aiohttp server


async def _ws_handler(request: web.Request) -> web.StreamResponse:
    if request.headers.get("Origin") == "http://evil":
        return web.json_response({"code": "system.forbidden"}, status=403, headers={"X-Why": "origin"})
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for msg in ws:
        req = json.loads(msg.data)
        method = req["method"]
        if method == "echo":
            await ws.send_json({"id": req["id"], "result": {"params": req.get("params", "absent")}})
        elif method == "fail":
            await ws.send_json(
                {"id": req["id"], "error": {"code": "system.invalidRequest", "message": "Invalid request"}}
            )
        elif method == "events":
            await ws.send_json({"event": "test.model.change", "data": {"values": {"a": 1}}})
            await ws.send_json({"event": "test.model.delete"})
            await ws.send_json({"id": req["id"], "result": None})
        elif method == "garbage":
            await ws.send_str("not json")
            await ws.send_json({"id": 9999, "result": None})
        elif method == "close":
            await ws.close(code=4000)
    return ws


@pytest.fixture
async def ws_server() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/", _ws_handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"ws://127.0.0.1:{port}/"
    finally:
        await runner.cleanup()


async def test_wsclient_requests_and_events(ws_server: str) -> None:
    client = await WSClient.connect(ws_server, {"Origin": "http://localhost"})
    assert client.status == 101
    assert client.headers["Upgrade"].lower() == "websocket"
    first = await client.send("echo")
    second = await client.send("echo", {"x": 1})
    assert (first.id, second.id) == (1, 2)
    assert_result(await first.response(), {"params": "absent"})
    assert await second.result() == {"params": {"x": 1}}
    assert_result(await client.request("echo", None), {"params": None})
    resp = await client.request("fail")
    assert_error(resp, E_INVREQ)
    assert_error(resp, "system.invalidRequest")
    with pytest.raises(AssertionError):
        assert_error(resp, "system.other")
    with pytest.raises(AssertionError):
        assert_result(resp)
    resp = await client.request("events")
    assert "result" in resp and resp["result"] is None
    with pytest.raises(AssertionError, match="unexpected events"):
        await client.assert_no_event()
    name, data = await client.get_event()
    assert (name, data) == ("test.model.change", {"values": {"a": 1}})
    ev = await client.expect_event("test.model.delete", None)
    assert not ev.has_data
    await client.assert_no_event(0.02)
    with pytest.raises(AssertionError, match="no client event"):
        await client.get_event(timeout=0.05)
    await client.send_raw(json.dumps({"id": 100, "method": "echo"}))
    await client.request("echo")  # answered after the unknown id
    await client.close()
    assert client.closed
    assert len(client.broken) == 1 and client.broken[0].startswith("response with unknown id")


async def test_wsclient_marks_broken_and_sees_server_close(ws_server: str) -> None:
    client = await WSClient.connect(ws_server)
    await client.send("garbage")
    await client.send("close")
    await client.wait_closed()
    assert client.close_code == 4000
    assert len(client.broken) == 2
    with pytest.raises(AssertionError, match="broken"):
        client.assert_not_broken()
    with pytest.raises(ConnectionClosed):
        await client.send("echo")


async def test_wsclient_rejected_upgrade(ws_server: str) -> None:
    client, status, headers = await WSClient.try_connect(ws_server, {"Origin": "http://evil"})
    assert client is None
    assert status == 403
    assert headers["X-Why"] == "origin"
    with pytest.raises(AssertionError, match="rejected"):
        await WSClient.connect(ws_server, {"Origin": "http://evil"})


async def test_wsclient_connection_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client, status, _ = await WSClient.try_connect(f"ws://127.0.0.1:{port}/")
    assert (client, status) == (None, 0)


async def test_wsclient_compression(ws_server: str) -> None:
    client = await WSClient.connect(ws_server, compression=True)
    assert "permessage-deflate" in client.headers.get("Sec-WebSocket-Extensions", "")
    assert await client.send("echo", MISSING) is not None
    await client.close()


async def test_monitor_endpoint_reachable(nats_server: NatsServer) -> None:
    async with aiohttp.ClientSession() as http, http.get(f"{nats_server.monitor_url}/varz") as resp:
        assert resp.status == 200


# Teardown of background tasks


async def test_stop_tasks_stops_a_loop_whose_wait_for_swallowed_the_cancel() -> None:
    """The CI hang of a fake service's teardown: the reply and the cancel land in one loop turn."""
    replies: asyncio.Queue[asyncio.Future[None]] = asyncio.Queue()

    async def answer_loop() -> None:
        while True:
            reply = await replies.get()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(reply, 2)

    task = asyncio.create_task(answer_loop())
    reply: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    replies.put_nowait(reply)
    await asyncio.sleep(0.01)  # the loop now waits in wait_for
    reply.set_exception(RuntimeError("no responders"))
    task.cancel()  # in the same loop turn as the reply
    await asyncio.sleep(0.01)
    if sys.version_info < (3, 12):
        assert not task.done(), "Python 3.11's wait_for swallows that cancel: the loop goes on"
    await stop_tasks(task, timeout=2)
    assert task.cancelled()


async def test_stop_tasks_names_a_task_that_ignores_cancellation() -> None:
    release = asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(0.01)

    task = asyncio.create_task(stubborn(), name="stubborn-task")
    await asyncio.sleep(0.02)  # started: a task cancelled before its first step just ends
    t0 = time.monotonic()
    with pytest.raises(AssertionError, match="stubborn-task"):
        await stop_tasks(task, timeout=0.3)
    assert time.monotonic() - t0 < 2
    release.set()
    await task


def test_free_port_is_below_the_ephemeral_range_and_bindable() -> None:
    """Ports of the kernel's ephemeral range can be taken by any outgoing connection meanwhile."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    if low <= 11000:
        pytest.skip(f"the ephemeral range starts at {low}: free_port falls back to port 0")
    ports = {free_port() for _ in range(20)}
    assert len(ports) > 1
    for port in ports:
        assert 10000 <= port < low
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))
