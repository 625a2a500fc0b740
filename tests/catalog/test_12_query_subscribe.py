"""Catalog §5.12 (resgate 12query_subscribe_test.go): query resources on subscribe."""

from __future__ import annotations

from typing import Any

from tests.support.fakeservice import FakeService
from tests.support.fixtures import CUSTOM_PAYLOAD, MODELS, get_result
from tests.support.gatewayrunner import GatewayHandle
from tests.support.macros import connect, custom, no_event, no_nats, subscribe_q
from tests.support.wsclient import WSClient, assert_result

#: Quiet window of the NO_EVENT checks (catalog §7.1 item 8).
QUIET = 0.1


async def _subscribe_query(
    client: WSClient, svc: FakeService, rid: str, q: str, get_reply_result: dict[str, Any], expected: Any
) -> None:
    """``C> subscribe.rid[?q]`` → access FA ∥ get (``query`` asserted when q is set) → ``expected`` result."""
    full = f"{rid}?{q}" if q else rid
    pending = await client.send(f"subscribe.{full}")
    reqs = await svc.requests(2)
    access = reqs.get(f"access.{rid}")
    get = reqs.get(f"get.{rid}")
    if q:
        access.assert_path("query", q)
        get.assert_payload({"query": q})
    else:
        get.assert_missing("query")
        access.assert_missing("query")
    await get.ok(get_reply_result)
    await access.ok({"get": True})
    assert_result(await pending.response(), expected)


async def _subscribe_access_only(client: WSClient, svc: FakeService, rid: str, q: str, expected: Any) -> None:
    """``C> subscribe.rid?q`` served from cache: only ``access.rid`` (with the client's raw query)."""
    pending = await client.send(f"subscribe.{rid}?{q}")
    access = await svc.expect_request(f"access.{rid}")
    access.assert_path("query", q)
    await access.ok({"get": True})
    assert_result(await pending.response(), expected)


# Test that a query sent to a non-query model treats the resource as the plain model.
async def test_qsub_01_sending_query_to_non_query_model(gateway: GatewayHandle, service: FakeService) -> None:
    c = await connect(gateway)
    rid = "test.model?q=foo&f=bar"
    await _subscribe_query(
        c,
        service,
        "test.model",
        "q=foo&f=bar",
        get_result("test.model"),
        {"models": {rid: MODELS["test.model"]}},
    )
    await custom(service, "test.model")
    await c.expect_event(f"{rid}.custom", CUSTOM_PAYLOAD)
    await no_nats(c, service)


# Test that a get result with a query for a rid without query makes it a query resource (no base events).
async def test_qsub_02_sending_non_query_to_query_model(gateway: GatewayHandle, service: FakeService) -> None:
    c = await connect(gateway)
    await _subscribe_query(
        c,
        service,
        "test.model",
        "",
        {**get_result("test.model"), "query": "q=foo&f=bar"},
        {"models": {"test.model": MODELS["test.model"]}},
    )
    await custom(service, "test.model")
    await no_event(c, service, window=QUIET)
    await no_nats(c, service)


# Test that base resource events are not forwarded to a query model subscription.
async def test_qsub_03_subscribing_to_query_model(gateway: GatewayHandle, service: FakeService) -> None:
    c = await connect(gateway)
    await subscribe_q(c, service, "test.model", "q=foo&f=bar", "q=foo&f=bar")
    await custom(service, "test.model")
    await no_event(c, service, window=QUIET)
    await no_nats(c, service)


# Test that a query model whose query is normalized by the service gets no base events.
async def test_qsub_04_subscribing_to_query_model_with_normalization(
    gateway: GatewayHandle, service: FakeService
) -> None:
    c = await connect(gateway)
    await subscribe_q(c, service, "test.model", "q=foo&f=bar&ignore=true", "q=foo&f=bar")
    await custom(service, "test.model")
    await no_event(c, service, window=QUIET)
    await no_nats(c, service)


# Test that a second client subscribing to the same query model is served from the cache.
async def test_qsub_05_query_model_is_fetched_from_cache(
    gateway: GatewayHandle, service: FakeService
) -> None:
    c = await connect(gateway)
    rid = "test.model?q=foo&f=bar"
    await _subscribe_query(
        c,
        service,
        "test.model",
        "q=foo&f=bar",
        {**get_result("test.model"), "query": "q=foo&f=bar"},
        {"models": {rid: MODELS["test.model"]}},
    )
    c2 = await connect(gateway)
    await _subscribe_access_only(
        c2, service, "test.model", "q=foo&f=bar", {"models": {rid: MODELS["test.model"]}}
    )
    await custom(service, "test.model")
    await no_event(c2, service, window=QUIET)
    await no_nats(c2, service)


# Test that both the normalized query and the original spelling are served from the cache.
async def test_qsub_06_query_model_is_fetched_from_cache_after_query_normalization(
    gateway: GatewayHandle, service: FakeService
) -> None:
    c = await connect(gateway)
    q1 = "q=foo&f=bar&ignore=true"
    await _subscribe_query(
        c,
        service,
        "test.model",
        q1,
        {**get_result("test.model"), "query": "f=bar&q=foo"},
        {"models": {f"test.model?{q1}": MODELS["test.model"]}},
    )
    c2 = await connect(gateway)
    await _subscribe_access_only(
        c2, service, "test.model", "f=bar&q=foo", {"models": {"test.model?f=bar&q=foo": MODELS["test.model"]}}
    )
    c3 = await connect(gateway)
    await _subscribe_access_only(
        c3, service, "test.model", q1, {"models": {f"test.model?{q1}": MODELS["test.model"]}}
    )
    await custom(service, "test.model")
    for client in (c2, c3):
        await no_event(client, service, window=QUIET)
        await no_nats(client, service)


# Test that different queries each trigger their own get and access requests.
async def test_qsub_07_different_queries_triggers_get_and_access_requests(
    gateway: GatewayHandle, service: FakeService
) -> None:
    c = await connect(gateway)
    await subscribe_q(c, service, "test.model", "q=foo&f=bar", "q=foo&f=bar")
    await subscribe_q(c, service, "test.model", "q=foo&f=baz", "q=foo&f=baz")
    service.assert_no_pending()


# Test that a 10 000 character query works (the query travels in the payload, not the subject).
async def test_qsub_08_subscribing_to_query_long_query_return_model(
    gateway: GatewayHandle, service: FakeService
) -> None:
    c = await connect(gateway)
    q = "q=" + "a" * 10000
    await subscribe_q(c, service, "test.model", q, q)
    await custom(service, "test.model")
    await no_event(c, service, window=QUIET)
    await no_nats(c, service)


# Test that a reference to a query rid is followed with the query in the get payload and keyed by that rid.
async def test_qsub_09_subscribing_model_with_ref_to_query_model(
    gateway: GatewayHandle, service: FakeService
) -> None:
    c = await connect(gateway)
    pending = await c.send("subscribe.test.model.query.parent")
    reqs = await service.requests(2)
    await reqs.get("get.test.model.query.parent").ok(get_result("test.model.query.parent"))
    await reqs.get("access.test.model.query.parent").ok({"get": True})
    get = await service.expect_request("get.test.model")
    get.assert_payload({"query": "foo=bar"})
    await get.ok({**get_result("test.model"), "query": "foo=bar"})
    assert_result(
        await pending.response(),
        {
            "models": {
                "test.model?foo=bar": MODELS["test.model"],
                "test.model.query.parent": MODELS["test.model.query.parent"],
            }
        },
    )
