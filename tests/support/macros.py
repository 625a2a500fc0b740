"""The catalog's helper macros (§1) over ``FakeService`` and ``WSClient``.

Each function is one macro: CONNECT, CONNECT_V, CONNECT_NOVER/CONNECT_H, GETCID, SUB, SUB_CACHED,
SUB_PARENT, SUB_PARENT_DELAYED, SUB_CPARENT, SUB_Q, CUSTOM, NO_EVENT, NO_NATS. ``gw`` is the
``GatewayHandle`` returned by the ``gateway`` / ``gateway_factory`` fixtures.
"""

from __future__ import annotations

from typing import Any

from tests.support.fakeservice import FakeService
from tests.support.fixtures import COLLECTIONS, CUSTOM_PAYLOAD, MODELS, PROTOCOL, get_reply, get_result
from tests.support.gatewayrunner import GatewayHandle
from tests.support.wsclient import WSClient, assert_result

#: Protocol version CONNECT announces (treated as the latest behaviour).
LATEST_CLIENT = "1.999.999"


async def connect(gw: GatewayHandle, version: str = LATEST_CLIENT, **kwargs: Any) -> WSClient:
    """CONNECT / CONNECT_V(version): open a WebSocket and do the version handshake."""
    client = await gw.connect(**kwargs)
    resp = await client.request("version", {"protocol": version})
    assert_result(resp, {"protocol": PROTOCOL})
    return client


async def connect_nover(gw: GatewayHandle, headers: dict[str, str] | None = None, **kwargs: Any) -> WSClient:
    """CONNECT_NOVER / CONNECT_H(headers): open a WebSocket without a version request (legacy 1.1.1)."""
    return await gw.connect(headers, **kwargs)


async def get_cid(client: WSClient, svc: FakeService) -> str:
    """GETCID: the connection id, read from an ``auth.test.method`` request."""
    pending = await client.send("auth.test.method")
    req = await svc.expect_request("auth.test.method")
    cid = req.path("cid")
    assert isinstance(cid, str) and cid, f"auth request has no cid: {req!r}"
    await req.ok(None)
    await pending.response()
    return cid


async def subscribe(client: WSClient, svc: FakeService, rid: str, data: Any = None) -> str:
    """SUB(c, rid): answer ``access.rid`` with get:true and ``get.rid`` with the fixture (or ``data``, the
    whole get ``result``). Returns the cid seen in the access request; the response is not checked."""
    pending = await client.send(f"subscribe.{rid}")
    reqs = await svc.requests(2)
    access = reqs.get(f"access.{rid}")
    cid = access.path("cid")
    await access.ok({"get": True})
    get = reqs.get(f"get.{rid}")
    await (get.ok(data) if data is not None else get.json(get_reply(rid)))
    await pending.response()
    return str(cid)


async def subscribe_cached(client: WSClient, svc: FakeService, rid: str) -> str:
    """SUB_CACHED(c, rid): only ``access.rid`` is expected (the resource is already cached)."""
    pending = await client.send(f"subscribe.{rid}")
    access = await svc.expect_request(f"access.{rid}")
    cid = access.path("cid")
    await access.ok({"get": True})
    await pending.response()
    return str(cid)


async def _subscribe_parent(
    client: WSClient, svc: FakeService, parent: str, child: str, key: str, child_sent: bool, delayed: bool
) -> str:
    pending = await client.send(f"subscribe.{parent}")
    reqs = await svc.requests(2)
    access = reqs.get(f"access.{parent}")
    cid = str(access.path("cid"))
    await reqs.get(f"get.{parent}").ok(get_result(parent))
    if not delayed:
        await access.ok({"get": True})
    if not child_sent:
        await (await svc.expect_request(f"get.{child}")).ok(get_result(child))
    if delayed:
        await access.ok({"get": True})
    fixtures = MODELS if key == "models" else COLLECTIONS
    expected = (
        {parent: fixtures[parent]} if child_sent else {child: fixtures[child], parent: fixtures[parent]}
    )
    assert_result(await pending.response(), {key: expected})
    return cid


async def subscribe_parent(client: WSClient, svc: FakeService, child_sent: bool = False) -> str:
    """SUB_PARENT(c, childSent): subscribe ``test.model.parent`` (and load ``test.model`` unless sent)."""
    return await _subscribe_parent(
        client, svc, "test.model.parent", "test.model", "models", child_sent, delayed=False
    )


async def subscribe_parent_delayed(client: WSClient, svc: FakeService) -> str:
    """SUB_PARENT_DELAYED: as SUB_PARENT(false) but access is answered after the child's get (GH-84)."""
    return await _subscribe_parent(
        client, svc, "test.model.parent", "test.model", "models", child_sent=False, delayed=True
    )


async def subscribe_cparent(client: WSClient, svc: FakeService, child_sent: bool = False) -> str:
    """SUB_CPARENT(c, childSent): the collection analogue of SUB_PARENT."""
    return await _subscribe_parent(
        client, svc, "test.collection.parent", "test.collection", "collections", child_sent, delayed=False
    )


async def subscribe_q(client: WSClient, svc: FakeService, rid: str, q: str, nq: str) -> str:
    """SUB_Q(c, rid, q, nq): subscribe ``rid?q``; the get reply carries the normalized query ``nq``."""
    full = f"{rid}?{q}" if q else rid
    pending = await client.send(f"subscribe.{full}")
    reqs = await svc.requests(2)
    access = reqs.get(f"access.{rid}")
    get = reqs.get(f"get.{rid}")
    if q:
        access.assert_path("query", q)
        get.assert_path("query", q)
    cid = str(access.path("cid"))
    await access.ok({"get": True})
    result = get_result(rid)
    await get.ok({**result, "query": nq})
    key = "models" if "model" in result else "collections"
    assert_result(await pending.response(), {key: {full: MODELS.get(rid, COLLECTIONS.get(rid))}})
    return cid


async def custom(svc: FakeService, rid: str) -> None:
    """CUSTOM(rid): publish ``event.rid.custom {"foo":"bar"}``."""
    await svc.event(rid, "custom", CUSTOM_PAYLOAD)


async def no_nats(client: WSClient, svc: FakeService, x: str = "test") -> None:
    """NO_NATS(c, x): the very next NATS request must be the barrier ``auth.x.foo``."""
    pending = await client.send(f"auth.{x}.foo")
    req = await svc.next_request()
    assert req.subject == f"auth.{x}.foo", f"unexpected NATS request {req!r} (before barrier auth.{x}.foo)"
    await req.ok(None)
    await pending.response()


async def no_event(client: WSClient, svc: FakeService, x: str = "test", window: float = 0.0) -> None:
    """NO_EVENT(c, x): no event queued, then the NO_NATS barrier, then still no event.

    ``window`` adds a quiet period after the barrier (catalog §7.1 item 8) for gateways that do not
    order a connection's events and responses.
    """
    await client.assert_no_event()
    await no_nats(client, svc, x)
    await client.assert_no_event(window)
