"""Catalog §5.01 (resgate 01subscribe_test.go): subscribe / get request fan-out, response assembly,
caching and reference throttling; plus res-protocol.md §7 checklist items of section D not covered by a row.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import GatewayFactory
from tests.support.fakeservice import FakeService, Request
from tests.support.fixtures import (
    CUSTOM_PAYLOAD,
    E_ACCESS,
    E_CUSTOMERR,
    E_DISPOSING,
    E_INTERNAL,
    E_NOTFOUND,
    E_TIMEOUT,
    E_TOOLONG,
    MODELS,
    get_reply,
    get_result,
)
from tests.support.gatewayrunner import GatewayHandle
from tests.support.macros import connect, get_cid, no_event, no_nats, subscribe, subscribe_parent_delayed
from tests.support.seq_helpers import RequestPool, expected_set
from tests.support.wsclient import WSClient, assert_error, assert_result

#: Request timeout (ms) of gateways used by rows where the service never replies.
SHORT_TIMEOUT = 200
#: Seconds to wait for a response that may follow a service timeout.
TO_WAIT = 2.0


# --- SUB-01 -------------------------------------------------------------------------------------------


# Test that subscribe sends a get request with payload {} and an access request with cid and null token.
async def test_sub_01_get_and_access_sent_on_subscribe(gateway: GatewayHandle, service: FakeService) -> None:
    client = await connect(gateway)
    await client.send("subscribe.test.model")
    reqs = await service.requests(2)
    reqs.get("get.test.model").assert_payload({})
    access = reqs.get("access.test.model")
    access.assert_path("token", None).assert_missing("isHttp").assert_path_type("cid", str)


# --- SUB-02 -------------------------------------------------------------------------------------------

TO = "TO"
GM = ("ok", {"model": MODELS["test.model"]})
BM = ("ok", {"foo": "bar"})
FA = ("ok", {"get": True})
NA = ("ok", {"get": False})
BA = ("ok", {"get": "foo"})


def ERR(e: dict[str, Any]) -> tuple[str, Any]:
    return ("err", e)


def OK(x: Any) -> tuple[str, Any]:
    return ("ok", x)


def RAW(b: bytes) -> tuple[str, Any]:
    return ("raw", b)


RES_M = {"models": {"test.resource": MODELS["test.model"]}}
INTERNAL = "system.internalError"
MODEL_JSON = json.dumps(MODELS["test.model"]).encode()

# (get reply, access reply, expected: dict result | ("error", E | code))
SUB_02_ROWS: list[tuple[Any, Any, Any]] = [
    (GM, FA, RES_M),
    (GM, NA, ("error", E_ACCESS)),
    (GM, ERR(E_ACCESS), ("error", E_ACCESS)),
    (GM, ERR(E_INTERNAL), ("error", E_INTERNAL)),
    (GM, TO, ("error", E_TIMEOUT)),
    (GM, BA, ("error", INTERNAL)),
    (ERR(E_NOTFOUND), FA, ("error", E_NOTFOUND)),
    (ERR(E_NOTFOUND), NA, ("error", E_ACCESS)),
    (ERR(E_NOTFOUND), ERR(E_ACCESS), ("error", E_ACCESS)),
    (ERR(E_NOTFOUND), ERR(E_INTERNAL), ("error", E_INTERNAL)),
    (ERR(E_NOTFOUND), TO, ("error", E_TIMEOUT)),
    (ERR(E_NOTFOUND), BA, ("error", INTERNAL)),
    (ERR(E_INTERNAL), FA, ("error", E_INTERNAL)),
    (ERR(E_INTERNAL), NA, ("error", E_ACCESS)),
    (ERR(E_INTERNAL), ERR(E_ACCESS), ("error", E_ACCESS)),
    (ERR(E_INTERNAL), ERR(E_DISPOSING), ("error", E_DISPOSING)),
    (ERR(E_INTERNAL), TO, ("error", E_TIMEOUT)),
    (ERR(E_INTERNAL), BA, ("error", INTERNAL)),
    (TO, FA, ("error", E_TIMEOUT)),
    (TO, NA, ("error", E_ACCESS)),
    (TO, ERR(E_ACCESS), ("error", E_ACCESS)),
    (TO, ERR(E_INTERNAL), ("error", E_INTERNAL)),
    (TO, TO, ("error", E_TIMEOUT)),
    (TO, BA, ("error", INTERNAL)),
    (BM, FA, ("error", INTERNAL)),
    (BM, NA, ("error", E_ACCESS)),
    (BM, ERR(E_ACCESS), ("error", E_ACCESS)),
    (BM, ERR(E_INTERNAL), ("error", E_INTERNAL)),
    (BM, TO, ("error", E_TIMEOUT)),
    (BM, BA, ("error", INTERNAL)),
    # 31/32: whitespace around the JSON, sent as raw bytes (catalog note (*), §7.4)
    (RAW(b'{"result":\r\n \t{ "model":\t \r\n' + MODEL_JSON + b"\t} \t\n}"), FA, RES_M),
    (GM, RAW(b'{"result":\r\n \t{"get":\ttrue}\n}'), RES_M),
    (RAW(b'{"invalid":JSON}'), FA, ("error", INTERNAL)),
    (RAW(b""), FA, ("error", INTERNAL)),
    (RAW(b'{"invalid":"response"}'), FA, ("error", INTERNAL)),
    (GM, RAW(b'{"invalid":JSON}'), ("error", INTERNAL)),
    (GM, RAW(b""), ("error", INTERNAL)),
    (GM, RAW(b'{"invalid":"response"}'), ("error", INTERNAL)),
    (OK({"model": ["with", "array", "data"]}), FA, ("error", INTERNAL)),
    (OK({"collection": {"with": "model data"}}), FA, ("error", INTERNAL)),
    (OK({"model": {"array": [1, 2]}}), FA, ("error", INTERNAL)),
    (OK({"model": {"prop": {"action": "delete"}}}), FA, ("error", INTERNAL)),
    (OK({"model": {"prop": {"action": "unknown"}}}), FA, ("error", INTERNAL)),
    (OK({"model": {"prop": {"unknown": "property"}}}), FA, ("error", INTERNAL)),
    (OK({"model": {"child": {"rid": False}}}), FA, ("error", INTERNAL)),
    (OK({"model": {"child": {"rid": False}}}), FA, ("error", INTERNAL)),
    (OK({"collection": ["array", [1, 2]]}), FA, ("error", INTERNAL)),
    (OK({"collection": ["prop", {"action": "delete"}]}), FA, ("error", INTERNAL)),
    (OK({"collection": ["prop", {"action": "unknown"}]}), FA, ("error", INTERNAL)),
    (OK({"collection": ["prop", {"unknown": "property"}]}), FA, ("error", INTERNAL)),
    (OK({"model": {"foo": "bar"}, "collection": [1, 2, 3]}), FA, ("error", INTERNAL)),
    (RAW(b'{"error":[]}'), FA, ("error", INTERNAL)),
    (RAW(b'{"error":{"message":"missing code"}}'), FA, ("error", "")),
    (RAW(b'{"error":{"code":12,"message":"integer code"}}'), FA, ("error", INTERNAL)),
]
SUB_02_PARAMS = [
    pytest.param(method, g, a, exp, id=f"SUB-02.{i:02d}.{method}")
    for i, (g, a, exp) in enumerate(SUB_02_ROWS, start=1)
    for method in ("get", "subscribe")
]


async def _reply(req: Request, reply: Any) -> None:
    """Answer ``req`` per a SUB-02 shorthand (TO: leave unanswered)."""
    if reply == TO:
        return
    kind, value = reply
    if kind == "ok":
        await req.ok(value)
    elif kind == "err":
        await req.error(value)
    else:
        await req.respond_raw(value)


def _check(resp: dict[str, Any], expected: Any) -> None:
    if isinstance(expected, tuple):
        assert_error(resp, expected[1])
    else:
        assert_result(resp, expected)


# Test the client response to get/subscribe for each combination of get and access replies (get first).
@pytest.mark.parametrize(("method", "get_reply_", "access_reply", "expected"), SUB_02_PARAMS)
async def test_sub_02_response_on_primitive_model_retrieval(
    gateway_factory: GatewayFactory,
    service: FakeService,
    method: str,
    get_reply_: Any,
    access_reply: Any,
    expected: Any,
) -> None:
    gw = await gateway_factory(request_timeout=SHORT_TIMEOUT)
    client = await connect(gw)
    pending = await client.send(f"{method}.test.resource")
    reqs = await service.requests(2)
    await _reply(reqs.get("get.test.resource"), get_reply_)
    await _reply(reqs.get("access.test.resource"), access_reply)
    _check(await pending.response(TO_WAIT), expected)


# Checklist 27: the outcome is the same when the access reply arrives before the get reply.
CHK_27_ROWS = [
    (GM, FA, RES_M),
    (GM, NA, ("error", E_ACCESS)),
    (ERR(E_NOTFOUND), FA, ("error", E_NOTFOUND)),
    (ERR(E_NOTFOUND), ERR(E_INTERNAL), ("error", E_INTERNAL)),
    (BM, FA, ("error", INTERNAL)),
    (BM, BA, ("error", INTERNAL)),
]


@pytest.mark.parametrize("method", ["get", "subscribe"])
@pytest.mark.parametrize(
    ("get_reply_", "access_reply", "expected"),
    CHK_27_ROWS,
    ids=["GM-FA", "GM-NA", "NF-FA", "NF-INT", "BM-FA", "BM-BA"],
)
async def test_chk_27_access_reply_before_get_reply(
    gateway: GatewayHandle,
    service: FakeService,
    method: str,
    get_reply_: Any,
    access_reply: Any,
    expected: Any,
) -> None:
    client = await connect(gateway)
    pending = await client.send(f"{method}.test.resource")
    reqs = await service.requests(2)
    await _reply(reqs.get("access.test.resource"), access_reply)
    await _reply(reqs.get("get.test.resource"), get_reply_)
    _check(await pending.response(), expected)


# Checklist 29: a custom get error is passed through unchanged.
async def test_chk_29_custom_get_error_passed_through(gateway: GatewayHandle, service: FakeService) -> None:
    client = await connect(gateway)
    pending = await client.send("subscribe.test.resource")
    reqs = await service.requests(2)
    await reqs.get("get.test.resource").error(E_CUSTOMERR)
    await reqs.get("access.test.resource").ok({"get": True})
    assert_error(await pending.response(), E_CUSTOMERR)


# --- SUB-03 sequence sets (§4.1) ----------------------------------------------------------------------


def _seq(text: str) -> list[tuple[str, str]]:
    """``"subscribe a; access a; get a"`` → ``[("subscribe","a"),…]``; ``x`` stands for ``test.``."""
    steps = []
    for part in text.split(";"):
        kind, rid = part.split()
        steps.append((kind, rid.replace("x.", "test.", 1)))
    return steps


def _simple(rid: str, gets: str = "", events: str = "", extra: str = "") -> str:
    """subscribe, access, get of rid (+ more gets), response, custom events, extra steps."""
    parts = [f"subscribe {rid}", f"access {rid}", f"get {rid}"]
    parts += [f"get {g}" for g in gets.split()]
    parts.append(f"response {rid}")
    parts += [f"event {e}" for e in events.split()]
    if extra:
        parts.append(extra)
    return "; ".join(parts)


SUB_03_LATEST = {
    "L01": _simple("x.model", events="x.model"),
    "L02": _simple("x.model.parent", "x.model", "x.model.parent x.model"),
    "L03": _simple(
        "x.model.grandparent", "x.model.parent x.model", "x.model.grandparent x.model.parent x.model"
    ),
    "L04": _simple("x.model.parent", "x.model")
    + "; subscribe x.model.secondparent; access x.model.secondparent; get x.model.secondparent;"
    " response x.model.secondparent",
    "L05": _simple("x.model.brokenchild", "x.err.notFound", "x.model.brokenchild", "noevent x.err.notFound"),
    "L06": _simple("x.model.soft", events="x.model.soft", extra="nosubscription x.model"),
    "L07": _simple(
        "x.model.soft.parent", "x.model.soft", "x.model.soft.parent x.model.soft", "nosubscription x.model"
    ),
    "L08": _simple("x.model.data", events="x.model.data"),
    "L09": _simple("x.model.data.parent", "x.model.data", "x.model.data.parent x.model.data"),
    "L10": _simple("x.m.a"),
    "L11": _simple("x.m.b", "x.m.c"),
    "L12": _simple("x.m.d", "x.m.e x.m.f"),
    "L13": _simple("x.m.g", "x.m.e x.m.f x.m.d"),
    "L14": "subscribe x.m.d; access x.m.d; get x.m.d; subscribe x.m.h; access x.m.h; get x.m.e; get x.m.h;"
    " get x.m.f; response x.m.d; response x.m.h",
    "L15": _simple("x.collection", events="x.collection"),
    "L16": _simple("x.collection.parent", "x.collection", "x.collection.parent x.collection"),
    "L17": _simple(
        "x.collection.grandparent",
        "x.collection.parent x.collection",
        "x.collection.grandparent x.collection.parent x.collection",
    ),
    "L18": _simple("x.collection.parent", "x.collection")
    + "; subscribe x.collection.secondparent; access x.collection.secondparent;"
    " get x.collection.secondparent; response x.collection.secondparent",
    "L19": _simple(
        "x.collection.brokenchild", "x.err.notFound", "x.collection.brokenchild", "noevent x.err.notFound"
    ),
    "L20": _simple("x.collection.soft", events="x.collection.soft", extra="nosubscription x.collection"),
    "L21": _simple(
        "x.collection.soft.parent",
        "x.collection.soft",
        "x.collection.soft.parent x.collection.soft",
        "nosubscription x.collection",
    ),
    "L22": _simple("x.collection.data", events="x.collection.data", extra="nosubscription x.collection"),
    "L23": _simple(
        "x.collection.data.parent", "x.collection.data", "x.collection.data.parent x.collection.data"
    ),
    "L24": _simple("x.c.a"),
    "L25": _simple("x.c.b", "x.c.c"),
    "L26": _simple("x.c.d", "x.c.e x.c.f"),
    "L27": _simple("x.c.g", "x.c.e x.c.f x.c.d"),
    "L28": "subscribe x.c.d; access x.c.d; get x.c.d; subscribe x.c.h; access x.c.h; get x.c.e; get x.c.h;"
    " get x.c.f; response x.c.d; response x.c.h",
    "L29": _simple("x.model.parent", "x.model")
    + "; subscribe x.model; access x.model; response x.model; event x.model.parent; event x.model",
    "L30": _simple("x.model.parent", "x.model")
    + "; subscribe x.model; accessDenied x.model; errorResponse x.model; event x.model.parent;"
    " event x.model",
}
SUB_03_V120 = {
    "V01": _simple("x.model.soft", events="x.model.soft", extra="nosubscription x.model"),
    "V02": _simple("x.model.soft.parent", "x.model.soft", "x.model.soft.parent x.model.soft"),
    "V03": _simple("x.model.data", events="x.model.data", extra="nosubscription x.model"),
    "V04": _simple("x.model.data.parent", "x.model.data", "x.model.data.parent x.model.data"),
    "V05": _simple("x.collection.soft", events="x.collection.soft", extra="nosubscription x.collection"),
    "V06": _simple(
        "x.collection.soft.parent", "x.collection.soft", "x.collection.soft.parent x.collection.soft"
    ),
    "V07": _simple("x.collection.data", events="x.collection.data", extra="nosubscription x.collection"),
    "V08": _simple(
        "x.collection.data.parent", "x.collection.data", "x.collection.data.parent x.collection.data"
    ),
}
SUB_03_PARAMS = [pytest.param("1.999.999", seq, id=f"SUB-03.{k}") for k, seq in SUB_03_LATEST.items()] + [
    pytest.param("1.2.0", seq, id=f"SUB-03.{k}") for k, seq in SUB_03_V120.items()
]


# Test a subscribe sequence of §4.1: requests answered as they arrive, exact resource sets, events.
@pytest.mark.parametrize(("version", "sequence"), SUB_03_PARAMS)
async def test_sub_03_subscribe_sequence(
    gateway: GatewayHandle, service: FakeService, version: str, sequence: str
) -> None:
    client = await connect(gateway, version)
    pool = RequestPool(service)
    pending: dict[str, Any] = {}
    held: set[str] = set()
    for kind, rid in _seq(sequence):
        if kind == "subscribe":
            pending[rid] = await client.send(f"subscribe.{rid}")
        elif kind == "access":
            await (await pool.take(f"access.{rid}")).ok({"get": True})
        elif kind == "accessDenied":
            await (await pool.take(f"access.{rid}")).ok({"get": False})
        elif kind == "get":
            await (await pool.take(f"get.{rid}")).json(get_reply(rid))
        elif kind == "response":
            assert_result(await pending.pop(rid).response(), expected_set(rid, held, version))
        elif kind == "errorResponse":
            assert_error(await pending.pop(rid).response(), E_ACCESS)
        elif kind == "event":
            await service.event(rid, "custom", CUSTOM_PAYLOAD)
            await client.expect_event(f"{rid}.custom", CUSTOM_PAYLOAD)
        elif kind == "noevent":
            # Whether the gateway keeps an event subscription for an errored resource is not observable
            # by clients; only check that nothing is forwarded.
            await service.event(rid, "custom", CUSTOM_PAYLOAD, check=False)
            await no_event(client, service, window=0.1)
        elif kind == "nosubscription":
            await service.assert_gateway_not_subscribed(f"event.{rid}.custom")
        else:  # pragma: no cover
            raise AssertionError(kind)
    assert not pending, f"responses not checked: {list(pending)}"
    pool.assert_empty()


# --- SUB-04 .. SUB-11 ---------------------------------------------------------------------------------


# Test GH-84: access answered only after the child's get still yields parent + child (repeated).
async def test_sub_04_response_on_linked_model_subscribe_with_delayed_access(
    gateway_factory: GatewayFactory, service: FakeService
) -> None:
    for _ in range(10):
        gw = await gateway_factory()
        client = await connect(gw)
        await subscribe_parent_delayed(client, service)
        await gw.close_clients()
        await gw.stop()


# Test that {cid} in a subscribed rid is replaced in subjects but kept in event names.
async def test_sub_05_subscribe_with_cid_placeholder_replaces_cid(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client = await connect(gateway)
    cid = await get_cid(client, service)
    pending = await client.send("subscribe.test.{cid}.model")
    reqs = await service.requests(2)
    await reqs.get(f"access.test.{cid}.model").ok({"get": True})
    await reqs.get(f"get.test.{cid}.model").ok(get_result("test.model"))
    assert_result(await pending.response(), {"models": {"test.{cid}.model": MODELS["test.model"]}})
    await service.event(f"test.{cid}.model", "custom", CUSTOM_PAYLOAD)
    await client.expect_event("test.{cid}.model.custom", CUSTOM_PAYLOAD)


# Test that a second client subscribing a cached resource causes only an access request.
@pytest.mark.parametrize(
    ("rid", "key"),
    [("test.model", "models"), ("test.collection", "collections")],
    ids=["SUB-06.01", "SUB-06.02"],
)
async def test_sub_06_multiple_clients_subscribing_resource_fetched_from_cache(
    gateway: GatewayHandle, service: FakeService, rid: str, key: str
) -> None:
    c1 = await connect(gateway)
    await subscribe(c1, service, rid)
    c2 = await connect(gateway)
    pending = await c2.send(f"subscribe.{rid}")
    await (await service.expect_request(f"access.{rid}")).ok({"get": True})
    assert_result(await pending.response(), {key: {rid: get_result(rid)[key[:-1]]}})
    await no_nats(c2, service)


# Test that a rid too long for a NATS subject gives system.subjectTooLong and no NATS request.
async def test_sub_07_long_resource_id_returns_err_subject_too_long(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client = await connect(gateway)
    assert_error(await client.request("subscribe.test." + "a" * 10000), E_TOOLONG)
    await no_nats(client, service)


async def _throttled_load(client: WSClient, service: FakeService, nested: bool) -> None:
    """SUB-08/09: at most 3 reference gets outstanding; each reply releases exactly one new request."""
    pending = await client.send("subscribe.test.collection")
    reqs = await service.requests(2)
    await reqs.get("access.test.collection").ok({"get": True})
    refs = [{"rid": f"test.model.{n}"} for n in range(1, 11)]
    await reqs.get("get.test.collection").ok({"collection": refs})
    total = 20 if nested else 10
    outstanding = list(await service.requests(3))
    requested = 3
    answered = 0
    await no_nats(client, service)
    while outstanding:
        req = outstanding.pop(0)
        name = req.subject[len("get.") :]
        n = int(name.split(".")[2])
        if name.endswith(".child"):
            await req.ok({"model": {"id": n, "isChild": True}})
        elif nested:
            await req.ok({"model": {"id": n, "child": {"rid": f"{name}.child"}}})
        else:
            await req.ok({"model": {"id": n}})
        answered += 1
        if requested < total:
            new = await service.next_request()
            assert new.subject.startswith("get.test.model."), f"unexpected request {new!r}"
            outstanding.append(new)
            requested += 1
        await no_nats(client, service)
    assert requested == total and answered == total
    await pending.response()


# Test that referenceThrottle=3 keeps at most 3 reference gets in flight.
async def test_sub_08_subscribe_with_throttle_throttles_requests(
    gateway_factory: GatewayFactory, service: FakeService
) -> None:
    gw = await gateway_factory(reference_throttle=3)
    client = await connect(gw)
    await _throttled_load(client, service, nested=False)


# Test that the reference throttle also applies to nested references.
async def test_sub_09_subscribe_with_throttle_on_nested_references_throttles_requests(
    gateway_factory: GatewayFactory, service: FakeService
) -> None:
    gw = await gateway_factory(reference_throttle=3)
    client = await connect(gw)
    await _throttled_load(client, service, nested=True)


async def _two_subscribers_on_pending(
    gateway: GatewayHandle, service: FakeService
) -> tuple[Any, Any, Request]:
    c1 = await connect(gateway)
    c2 = await connect(gateway)
    p1 = await c1.send("subscribe.test.model")
    reqs = await service.requests(2)
    await reqs.get("access.test.model").ok({"get": True})
    get = reqs.get("get.test.model")
    p2 = await c2.send("subscribe.test.model")
    await (await service.expect_request("access.test.model")).ok({"get": True})
    await no_nats(c2, service)
    return p1, p2, get


# Test that two subscribers of a pending resource share one get and both receive the model.
async def test_sub_10_multiple_subscribers_on_pending_model_model_sent_to_all_subscribers(
    gateway: GatewayHandle, service: FakeService
) -> None:
    p1, p2, get = await _two_subscribers_on_pending(gateway, service)
    await get.ok(get_result("test.model"))
    expected = {"models": {"test.model": MODELS["test.model"]}}
    assert_result(await p1.response(), expected)
    assert_result(await p2.response(), expected)


# Test that two subscribers of a pending resource both receive the get error.
async def test_sub_11_multiple_subscribers_on_pending_error_error_sent_to_all_subscribers(
    gateway: GatewayHandle, service: FakeService
) -> None:
    p1, p2, get = await _two_subscribers_on_pending(gateway, service)
    await get.error(E_NOTFOUND)
    assert_error(await p1.response(), E_NOTFOUND)
    assert_error(await p2.response(), E_NOTFOUND)


# --- Checklist items (res-protocol.md §7 D) -----------------------------------------------------------


# Checklist 41: the 257th direct subscription of one rid on one connection is refused.
async def test_chk_41_subscription_limit_exceeded(gateway: GatewayHandle, service: FakeService) -> None:
    client = await connect(gateway)
    await subscribe(client, service, "test.model")
    sends = [await client.send("subscribe.test.model") for _ in range(255)]
    for p in sends:
        assert_result(await p.response(), {})
    resp = await client.request("subscribe.test.model")
    assert_error(resp, {"code": "system.subscriptionLimitExceeded", "message": "Subscription limit exceeded"})
    await no_nats(client, service)
    # Still subscribed: events are forwarded.
    await service.event("test.model", "custom", CUSTOM_PAYLOAD)
    await client.expect_event("test.model.custom", CUSTOM_PAYLOAD)


# Checklist 42: a custom event payload reaches the client unchanged (incl. null / arbitrary JSON).
@pytest.mark.parametrize("payload", [None, 42, "str", [1, {"a": None}], {"nested": {"x": [True]}}])
async def test_chk_42_custom_event_payload_unchanged(
    gateway: GatewayHandle, service: FakeService, payload: Any
) -> None:
    client = await connect(gateway)
    await subscribe(client, service, "test.model")
    await service.event("test.model", "foo", payload)
    await client.expect_event("test.model.foo", payload)
