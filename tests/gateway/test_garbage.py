"""What a client leaves behind is freed by reference counting, not by the cyclic garbage collector.

A reference cycle per connection, request or subscription keeps its memory until a collection of
the generation it has reached, which on a busy gateway is rare (gateway/cli.py tunes the collector
to run seldom), and every young collection before that walks it again. So after WebSocket clients
(subscribe, call, unsubscribe, references, a query, an event, a denied subscription, a timed-out
request, compression through aiohttp, close) and HTTP clients (GET on the fast path, keep-alive and
not; a POST call through aiohttp) are gone and their resources evicted, a collection must find no
gateway object in a cycle.

A real gateway, nats-server, fake service, WebSocket and HTTP clients, in this process.
"""

from __future__ import annotations

import asyncio
import gc
import weakref

import aiohttp

from gateway.protocol import errors
from gateway.protocol.errors import ResError
from tests.conftest import GatewayFactory
from tests.support.fakeservice import FakeService
from tests.support.garbage import cyclic_garbage
from tests.support.gatewayrunner import GatewayHandle
from tests.support.macros import connect
from tests.support.until import until
from tests.support.wsclient import assert_error, assert_result

#: Types whose instances must never be left in a cycle: the gateway's own, and the HTTP head
#: parser a front connection holds.
WATCHED_MODULES = ("gateway.", "httptools.")


async def load(service: FakeService, rid: str, n: int) -> None:
    """Answer the access and get requests of a resource not yet cached (any order)."""
    reqs = await service.requests(2)
    await reqs.get(f"access.{rid}").ok({"get": True, "call": "*"})
    await reqs.get(f"get.{rid}").ok({"model": {"n": n}})


async def released(gw: GatewayHandle) -> None:
    """Until the gateway holds no client connection and no cached resource (bounded)."""
    held = gw.gateway
    await until(
        lambda: not held.connections and not held.sockets and not len(held.cache),
        what="the gateway letting go of every connection and cached resource",
    )


async def test_closed_clients_and_evicted_resources_leave_no_reference_cycles(
    gateway_factory: GatewayFactory, service: FakeService, collector_off: None
) -> None:
    gw = await gateway_factory(cache_eviction_delay=0, ws_compression=True)
    assert not cyclic_garbage(*WATCHED_MODULES), "cycles before any client came"

    for i in range(3):  # WebSocket: subscribe, call, unsubscribe, close (the last one through aiohttp)
        client = await connect(gw, compression=i == 2)
        rid = f"test.model{i}"
        pending = await client.send(f"subscribe.{rid}")
        await load(service, rid, i)
        assert_result(await pending.response(), {"models": {rid: {"n": i}}})
        pending = await client.send(f"call.{rid}.set", {"n": i + 1})
        await (await service.expect_request(f"call.{rid}.set")).ok(None)
        assert_result(await pending.response(), {"payload": None})
        assert_result(await client.request(f"unsubscribe.{rid}"))
        await client.close()

    # References, a query resource, an event, a denied subscription and a request that times out.
    client = await connect(gw)
    pending = await client.send("subscribe.test.list")
    reqs = await service.requests(2)
    await reqs.get("access.test.list").ok({"get": True})
    await reqs.get("get.test.list").ok({"collection": [{"rid": "test.item"}]})
    await (await service.expect_request("get.test.item")).ok({"model": {"name": "item"}})
    assert_result(await pending.response())
    await service.event("test.item", "change", {"values": {"name": "changed"}})
    await client.expect_event("test.item.change", {"values": {"name": "changed"}})
    pending = await client.send("subscribe.test.page?limit=2")
    reqs = await service.requests(2)
    await reqs.get("access.test.page").ok({"get": True})
    await reqs.get("get.test.page").ok({"model": {"n": 2}, "query": "limit=2"})
    assert_result(await pending.response())
    pending = await client.send("subscribe.test.secret")
    reqs = await service.requests(2)  # (access and get go out together)
    await reqs.get("access.test.secret").ok({"get": False})
    await reqs.get("get.test.secret").ok({"model": {"n": 0}})
    assert "error" in await pending.response()
    pending = await client.send("get.test.slow")
    await service.requests(2)  # access and get, never answered: system.timeout
    assert "error" in await pending.response(timeout=2)
    await client.close()

    async with aiohttp.ClientSession() as session:  # a call over HTTP (POST: aiohttp's path)
        post = asyncio.ensure_future(session.post(gw.http_url + "/api/test/model/set", json={"n": 1}))
        await (await service.expect_request("access.test.model")).ok({"get": True, "call": "*"})
        await (await service.expect_request("call.test.model.set")).ok({"done": True})
        async with await post as resp:
            assert resp.status == 200 and await resp.json() == {"done": True}

    for keep_alive in (True, False):  # HTTP: two GETs per client connection (or one each)
        connector = aiohttp.TCPConnector(force_close=not keep_alive)
        async with aiohttp.ClientSession(connector=connector) as session:
            for j in range(2):
                rid = f"test.http{int(keep_alive)}{j}"
                get = asyncio.ensure_future(session.get(gw.http_url + "/api/" + rid.replace(".", "/")))
                await load(service, rid, j)
                async with await get as resp:
                    assert resp.status == 200, await resp.text()
                    assert await resp.json() == {"n": j}

    await released(gw)
    left = cyclic_garbage(*WATCHED_MODULES)
    assert not left, f"objects a client left in reference cycles: {dict(left)}"


async def test_requests_failing_with_predefined_errors_do_not_keep_their_connection_alive(
    gateway_factory: GatewayFactory, service: FakeService
) -> None:
    """The predefined errors (``errors.ERR_*``) are shared instances. Raising one itself chains the
    raise's traceback onto the instance's last one, so every request that ever failed with it, frames,
    connection and all, would stay in memory for as long as the gateway runs (2,000 entries after
    1,000 raises), a leak any client could drive with bad requests."""
    gw = await gateway_factory(ws_max_subscriptions=1, cache_eviction_delay=0)
    client = await connect(gw)
    (cid,) = gw.gateway.connections
    conn = weakref.ref(gw.gateway.connections[cid])
    pending = await client.send("subscribe.test.one")
    await load(service, "test.one", 1)
    assert_result(await pending.response())
    for _ in range(3):
        assert_error(await client.request("subscribe.test.two"), "system.subscriptionLimitExceeded")
        assert_error(await client.request("unsubscribe.test.none"), "system.noSubscription")
        assert_error(await client.request("version", {"protocol": 12}), "system.invalidParams")
        assert_error(await client.request("version", {"protocol": "2.0.0"}), "system.unsupportedProtocol")
        assert_error(await client.request("unsubscribe.test.none", {"count": 0}), "system.invalidParams")
    pending = await client.send("call.test.one.set", {"n": 2})  # not answered: system.timeout
    await service.expect_request("call.test.one.set")
    assert_error(await pending.response(timeout=2), "system.timeout")
    await client.close()
    await released(gw)
    kept = {
        name: err for name, err in vars(errors).items() if isinstance(err, ResError) and err.__traceback__
    }
    assert not kept, f"predefined errors carrying the traceback of a raise: {sorted(kept)}"
    gc.collect()
    assert conn() is None, "the closed client's connection is still referenced"


async def test_live_objects_do_not_grow_with_failing_requests(
    gateway_factory: GatewayFactory, service: FakeService
) -> None:
    """Rounds of requests the gateway refuses by itself (bad JSON, bad methods and rids, bad params,
    nothing to unsubscribe, over the subscription limit, unsupported protocol; HTTP: bad paths and
    methods) leave the number of live objects where it was: nothing a refusal makes is kept."""
    gw = await gateway_factory(ws_max_subscriptions=1, cache_eviction_delay=0)
    client = await connect(gw)
    pending = await client.send("subscribe.test.one")
    await load(service, "test.one", 1)
    assert_result(await pending.response())

    async def failing_round(http: aiohttp.ClientSession) -> None:
        await client.send_raw("{not json")
        for method, params in [
            ("nonsense.test.one", None),
            ("subscribe.test..two", None),
            ("subscribe.test.two", None),
            ("unsubscribe.test.none", None),
            ("unsubscribe.test.one", {"count": -1}),
            ("version", {"protocol": "9.0.0"}),
            ("version", {"protocol": []}),
            ("get.test.two?q=a\x00", None),
        ]:
            assert_error(await client.request(method, params))
        for method, path in [("GET", "/api/test..two"), ("GET", "/api/"), ("DELETE", "/api/test/one")]:
            async with http.request(method, gw.http_url + path) as resp:
                assert resp.status >= 400
                await resp.read()

    async with aiohttp.ClientSession() as http:
        await failing_round(http)  # warm-up: lazily made things (metric children, caches) exist now
        gc.collect()
        before = len(gc.get_objects())
        for _ in range(40):
            await failing_round(http)
        gc.collect()
        grown = len(gc.get_objects()) - before
    # (a few dozen objects come and go: timers, weak references; the leak this found: 2,082 per 20 rounds)
    assert grown < 300, f"{grown} more live objects after 40 rounds of failing requests"
