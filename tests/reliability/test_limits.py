"""Limits on what one WebSocket client can make the gateway hold: message size, direct
subscriptions, unanswered requests. Each is a setting (``wsMaxMessageSize``, ``wsMaxSubscriptions``,
``wsMaxPendingRequests``); past it the client gets the documented answer and others are unaffected.

In-process gateways on the session's real nats-server, real WebSocket clients, the fake service.
"""

from __future__ import annotations

import asyncio

import pytest
import websockets

from gateway import constants
from gateway.config import Config, ConfigError, load_config
from tests.conftest import GatewayFactory
from tests.support.fakeservice import FakeService
from tests.support.wsclient import assert_error, assert_result


async def _serve_model(service: FakeService, rid: str) -> None:
    reqs = await service.requests(2)
    await reqs.get(f"access.{rid}").ok({"get": True, "call": "*"})
    await reqs.get(f"get.{rid}").json({"result": {"model": {"v": 1}}})


async def test_a_message_over_ws_max_message_size_closes_with_1009_and_others_go_on(
    gateway_factory: GatewayFactory,
) -> None:
    gw = await gateway_factory(ws_max_message_size=4096)
    bystander = await gw.connect()
    async with websockets.connect(gw.ws_url, max_size=None) as ws:
        await ws.send('{"id":1,"method":"version","params":{"protocol":"1.2.3"}}' + " " * 3000)
        assert '"result"' in await asyncio.wait_for(ws.recv(), 2)  # under the limit: served
        await ws.send('{"id":2,"method":"version"}' + " " * 5000)
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 2)
        assert ws.close_code == 1009
    assert_result(await bystander.request("version", {"protocol": "1.2.3"}))


async def test_subscriptions_past_ws_max_subscriptions_are_refused_without_a_service_request(
    gateway_factory: GatewayFactory, service: FakeService
) -> None:
    gw = await gateway_factory(ws_max_subscriptions=3)
    client = await gw.connect()
    for i in range(3):
        pending = await client.send(f"subscribe.test.m{i}")
        await _serve_model(service, f"test.m{i}")
        assert_result(await pending.response())
    # Subscribing a held rid again counts per rid (resgate's 256), not as a new subscription.
    assert_result(await client.request("subscribe.test.m0"))
    assert_error(await client.request("subscribe.test.m3"), "system.subscriptionLimitExceeded")
    assert_error(await client.request("get.test.m3"), "system.subscriptionLimitExceeded")
    await service.expect_no_request(0.2)
    # Room again after an unsubscribe; another connection has its own allowance.
    assert_result(await client.request("unsubscribe.test.m1"))
    pending = await client.send("subscribe.test.m3")
    await _serve_model(service, "test.m3")
    assert_result(await pending.response())
    other = await gw.connect()
    pending = await other.send("subscribe.test.m4")
    await _serve_model(service, "test.m4")
    assert_result(await pending.response())


async def test_requests_past_ws_max_pending_requests_get_request_limit_exceeded(
    gateway_factory: GatewayFactory, service: FakeService
) -> None:
    gw = await gateway_factory(ws_max_pending_requests=2)
    client = await gw.connect()  # a legacy client (no version sent): call results are not wrapped
    first = await client.send("call.test.model.slow", {"n": 1})
    second = await client.send("call.test.model.slow", {"n": 2})
    third = await client.send("call.test.model.slow", {"n": 3})
    assert_error(await third.response(), "system.requestLimitExceeded")
    for access in await service.requests(2):  # not subscribed: each call asks for access
        await access.assert_subject("access.test.model").ok({"get": True, "call": "*"})
    calls = await service.requests(2)
    for req in calls:
        await req.ok({"done": True})
    assert_result(await first.response(), {"done": True})
    assert_result(await second.response(), {"done": True})
    # Answered requests free their slots; synchronous answers (errors, version) free theirs too.
    assert_error(await client.request("nonsense"), "system.invalidRequest")
    assert_error(await client.request("unsubscribe.test.none"), "system.noSubscription")
    assert_result(await client.request("version", {"protocol": "1.2.3"}))
    again = await client.send("call.test.model.slow", {"n": 4})
    await (await service.expect_request("access.test.model")).ok({"get": True, "call": "*"})
    await (await service.expect_request("call.test.model.slow")).ok(None)
    assert_result(await again.response(), {"payload": None})  # the version request made it 1.2.3


@pytest.mark.parametrize(
    ("key", "field", "env", "flag", "minimum", "default"),
    [
        (
            "clientOutboxLimit",
            "client_outbox_limit",
            "RESGATE_CLIENT_OUTBOX_LIMIT",
            "--clientoutboxlimit",
            constants.MIN_CLIENT_OUTBOX_LIMIT,
            1 << 20,
        ),
        (
            "wsMaxMessageSize",
            "ws_max_message_size",
            "RESGATE_WS_MAX_MESSAGE_SIZE",
            "--wsmaxmessagesize",
            constants.MIN_WS_MAX_MESSAGE_SIZE,
            4 << 20,
        ),
        ("wsMaxSubscriptions", "ws_max_subscriptions", "RESGATE_WS_MAX_SUBSCRIPTIONS", "--wsmaxsubscriptions", 1, 10_000),
        ("wsMaxPendingRequests", "ws_max_pending_requests", "RESGATE_WS_MAX_PENDING_REQUESTS", "--wsmaxpendingrequests", 1, 10_000),
    ],
)  # fmt: skip
def test_limit_settings_layer_validate_and_carry_their_minimum_in_the_schema(
    tmp_path: object, key: str, field: str, env: str, flag: str, minimum: int, default: int
) -> None:
    assert getattr(load_config([], {}), field) == default
    path = f"{tmp_path}/c.json"
    with open(path, "w") as f:
        f.write(f'{{"{key}": {minimum + 1}}}')
    assert getattr(load_config(["-c", path], {}), field) == minimum + 1
    assert getattr(load_config(["-c", path], {env: str(minimum + 2)}), field) == minimum + 2
    assert getattr(load_config(["-c", path, flag, str(minimum + 3)], {env: "7"}), field) == minimum + 3
    with pytest.raises(
        ConfigError, match=rf"invalid {key} setting \({minimum - 1}\): must be at least {minimum}"
    ):
        load_config([flag, str(minimum - 1)], {})
    prop = Config.model_json_schema(by_alias=True)["properties"][key]
    assert prop["minimum"] == minimum
    assert prop["default"] == default
    assert prop["description"]


class _Transport:
    """A transport whose unsent bytes the test controls (what the kernel took is 'read')."""

    def __init__(self) -> None:
        self.buffered = 0
        self.reading = False  # the client takes every write at once (nothing stays unsent)
        self.written: list[bytes] = []
        self.closed = self.aborted = False

    def write(self, data: bytes) -> None:
        self.written.append(data)
        if not self.reading:
            self.buffered += len(data)

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True


async def test_one_response_larger_than_the_limit_goes_out_and_the_events_behind_it_too() -> None:
    """The outbox bound leaves room for the largest frame since the client last caught up: a big
    resource set and the events right behind it are no slow consumer; the same client stalling
    afterwards is."""
    from gateway.protocol import wsframe
    from gateway.web.sink import SLOW_CONSUMER_CLOSE_FRAME, SinkFlusher, TransportSink

    slow: list[int] = []
    transport = _Transport()
    sink = TransportSink(
        transport,  # type: ignore[arg-type]
        cid="c1",
        flusher=SinkFlusher(on_slow_consumer=lambda: slow.append(1)),
        limit=10_000,
    )
    big, event = wsframe.text(b"r" * 50_000), wsframe.text(b"e" * 100)
    sink.send(big)
    sink.send(event)  # same turn, behind the big response
    sink.flush()
    for _ in range(20):  # later turns while the client reads the big response
        sink.send(event)
        sink.flush()
    assert not slow and not transport.closed
    transport.buffered, transport.reading = 0, True  # the client caught up
    sink.send(event)
    sink.flush()
    transport.reading = False
    for _ in range(200):  # now it stalls: 100-byte events pile up past the 10 kB limit
        sink.send(event)
        sink.flush()
        if slow:
            break
    assert slow == [1] and transport.closed
    assert transport.written[-1] == SLOW_CONSUMER_CLOSE_FRAME
    assert 10_000 < transport.buffered - len(SLOW_CONSUMER_CLOSE_FRAME) < 10_000 + 3 * len(event)
