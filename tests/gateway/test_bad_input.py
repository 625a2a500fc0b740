"""Bad input from clients and services: a clear error or silence, never a crash, hang or leak.

Drives the real gateway (real nats-server, real WebSocket clients). After every abuse the same
connection and an untouched second connection must still be served.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import orjson
import websockets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import GatewayFactory
from tests.support.fakeservice import FakeService
from tests.support.gatewayrunner import GatewayHandle
from tests.support.macros import connect
from tests.support.wsclient import WSClient, assert_error, assert_result

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)
methods = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["version", "subscribe.", "call.", "auth.", "unsubscribe.", "get.", "new."]).flatmap(
        lambda p: st.text(max_size=30).map(lambda t: p + t)
    ),
)
frames = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200),
    st.builds(lambda i, m, p: {"id": i, "method": m, "params": p}, json_values, methods, json_values).map(
        json.dumps
    ),
    st.builds(lambda m, p: {"method": m, "params": p}, methods, json_values).map(json.dumps),
)


async def _still_served(client: WSClient) -> None:
    resp = await client.request("version", {"protocol": "1.2.3"})
    assert_result(resp, {"protocol": "1.2.3"})


async def _drain_requests(service: FakeService) -> None:
    """Answer whatever the fuzzed frames made the gateway ask, so nothing waits for a timeout."""
    for req in service.pending():
        if not req.answered:
            await req.error({"code": "system.notFound", "message": "Not found"})


async def _raw_still_served(ws: Any, marker: int) -> None:
    """Send a version request with a unique id on a raw socket and wait for its answer."""
    await ws.send(orjson.dumps({"id": marker, "method": "version", "params": {"protocol": "1.2.3"}}))
    async with asyncio.timeout(2.0):
        while True:
            msg = orjson.loads(await ws.recv())
            if msg.get("id") == marker:
                assert msg["result"] == {"protocol": "1.2.3"}
                return


async def test_fuzzed_client_frames_never_break_the_gateway(
    gateway_factory: GatewayFactory, service: FakeService
) -> None:
    gw = await gateway_factory(request_timeout=200)
    bystander = await connect(gw)
    batches: list[list[Any]] = []

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(batch=st.lists(frames, min_size=1, max_size=5))
    def collect(batch: list[Any]) -> None:
        batches.append(batch)

    collect()  # hypothesis as a generator of varied frames; each batch is then sent for real
    # The victim is a raw socket: fuzzed ids may collide, which the harness client would reject.
    async with websockets.connect(gw.ws_url, max_size=None) as victim:
        for n, batch in enumerate(batches):
            for frame in batch:
                await victim.send(frame)
            await _raw_still_served(victim, 2**63 + n)
            await _drain_requests(service)
        # Whatever the fuzzed frames asked for is answered or timed out; both clients are still served.
        await asyncio.sleep(0.3)
        await _drain_requests(service)
        await _raw_still_served(victim, 2**63 + len(batches))
    await _still_served(bystander)
    await bystander.close()


async def test_huge_message_is_answered_and_connection_survives(
    gateway_factory: GatewayFactory, service: FakeService
) -> None:
    """A call whose params exceed NATS' max payload fails at once with an error, not a hang."""
    gw = await gateway_factory()
    client = await connect(gw)
    pending = await client.send("call.test.model.method", {"blob": "x" * (3 * 1024 * 1024)})
    access = await service.expect_request("access.test.model")
    await access.ok({"get": True, "call": "*"})
    resp = await pending.response(timeout=3.0)
    assert_error(resp, "system.internalError")
    await _still_served(client)


async def test_huge_invalid_frame_is_ignored(gateway: GatewayHandle) -> None:
    client = await connect(gateway)
    await client.send_raw("[" * 100_000)
    await client.send_raw(b"\xff\xfe" * 100_000)
    await _still_served(client)


async def test_binary_frames_are_accepted(gateway: GatewayHandle) -> None:
    async with websockets.connect(gateway.ws_url) as ws:
        await ws.send(orjson.dumps({"id": 7, "method": "version", "params": {"protocol": "1.2.3"}}))
        reply = await asyncio.wait_for(ws.recv(), 1.0)
        assert isinstance(reply, str), "the gateway answers with text frames"
        assert orjson.loads(reply) == {"result": {"protocol": "1.2.3"}, "id": 7}


async def test_closed_connections_leave_nothing_behind(
    gateway_factory: GatewayFactory, service: FakeService
) -> None:
    """Subscriptions of closed clients are released: no connection, cache entry or NATS subscription."""
    gw = await gateway_factory(cache_eviction_delay=0)
    clients = [await connect(gw) for _ in range(5)]
    for i, client in enumerate(clients):
        pending = await client.send(f"subscribe.test.leak.{i}")
        reqs = await service.requests(2)
        await reqs.get(f"access.test.leak.{i}").ok({"get": True})
        await reqs.get(f"get.test.leak.{i}").ok({"model": {"n": i, "ref": {"rid": "test.leak.shared"}}})
        if i == 0:
            await (await service.expect_request("get.test.leak.shared")).ok({"collection": [1]})
        await pending.response()
    assert gw.gateway.cache.sizes() == (6, 10)
    for client in clients:
        await client.close()
    for _ in range(100):
        if not gw.gateway.connections and gw.gateway.cache.sizes() == (0, 0):
            break
        await asyncio.sleep(0.02)
    assert gw.gateway.connections == {}
    assert gw.gateway.cache.sizes() == (0, 0)
    await service.wait_gateway_subscribed("event.test.leak.shared.x", present=False)


async def test_oversized_http_body_gets_413_with_json_error(
    gateway: GatewayHandle, service: FakeService, monkeypatch: Any
) -> None:
    """A body over the limit is refused with 413 and a JSON error, and nothing reaches services."""
    import aiohttp

    from gateway import constants

    monkeypatch.setattr(constants, "HTTP_MAX_BODY_BYTES", 1024)
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{gateway.http_url}/api/test/model/method", data=b"[" + b"1," * 2000 + b"1]"
        ) as r:
            assert r.status == 413
            assert r.headers["Content-Type"] == "application/json; charset=utf-8"
            body = await r.json()
            assert body["code"] == "system.badRequest"
        async with session.post(f"{gateway.http_url}/api/test/model/method", data=b"not json") as r:
            assert r.status == 400
            assert (await r.json())["code"] == "system.badRequest"
    await service.expect_no_request(0.1)
