"""Catalog §5.02 (resgate 02get_test.go): client ``get`` (no subscription); plus res-protocol.md §7
checklist items of section F not covered by a row."""

from __future__ import annotations

import asyncio

from tests.support.fakeservice import FakeService
from tests.support.fixtures import CUSTOM_PAYLOAD, E_TOOLONG, MODELS, get_result
from tests.support.gatewayrunner import GatewayHandle
from tests.support.macros import connect, custom, get_cid, no_event, no_nats, subscribe
from tests.support.wsclient import assert_error, assert_result


# Test that a get returns the model and does not subscribe the client to its events.
async def test_get_01_no_events_on_primitive_model_get(gateway: GatewayHandle, service: FakeService) -> None:
    client = await connect(gateway)
    pending = await client.send("get.test.model")
    reqs = await service.requests(2)
    access = reqs.get("access.test.model").assert_missing("isHttp")
    get = reqs.get("get.test.model").assert_missing("isHttp")
    await access.ok({"get": True})
    await get.ok(get_result("test.model"))
    assert_result(await pending.response(), {"models": {"test.model": MODELS["test.model"]}})
    await custom(service, "test.model")
    await no_event(client, service, "test.model", window=0.1)


# Test that neither a got resource nor its references become subscribed.
async def test_get_02_no_event_on_linked_model_get(gateway: GatewayHandle, service: FakeService) -> None:
    client = await connect(gateway)
    pending = await client.send("get.test.model.parent")
    reqs = await service.requests(2)
    await reqs.get("get.test.model.parent").ok(get_result("test.model.parent"))
    await reqs.get("access.test.model.parent").ok({"get": True})
    await (await service.expect_request("get.test.model")).ok(get_result("test.model"))
    assert_result(
        await pending.response(),
        {"models": {"test.model": MODELS["test.model"], "test.model.parent": MODELS["test.model.parent"]}},
    )
    await custom(service, "test.model")
    await custom(service, "test.model.parent")
    await no_event(client, service, "test.model", window=0.1)
    await no_event(client, service, "test.model.parent")


# Test that {cid} in a got rid is replaced by the real cid in the NATS subjects.
async def test_get_03_get_with_cid_placeholder_replaces_cid(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client = await connect(gateway)
    cid = await get_cid(client, service)
    pending = await client.send("get.test.{cid}.model")
    reqs = await service.requests(2)
    await reqs.get(f"access.test.{cid}.model").ok({"get": True})
    await reqs.get(f"get.test.{cid}.model").ok(get_result("test.model"))
    assert_result(await pending.response(), {"models": {"test.{cid}.model": MODELS["test.model"]}})
    await service.event(f"test.{cid}.model", "custom", CUSTOM_PAYLOAD)
    await no_event(client, service, window=0.1)


# Test that a get of a rid too long for a NATS subject gives system.subjectTooLong and no request.
async def test_get_04_long_resource_id_returns_err_subject_too_long(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client = await connect(gateway)
    assert_error(await client.request("get.test." + "a" * 10000), E_TOOLONG)
    await no_nats(client, service)


# Checklist 54: a get of a rid the client already subscribes returns {} and keeps the subscription.
async def test_chk_54_get_of_subscribed_rid_returns_empty_set(
    gateway: GatewayHandle, service: FakeService
) -> None:
    client = await connect(gateway)
    await subscribe(client, service, "test.model")
    pending = await client.send("get.test.model")
    # An access request may or may not be sent (the subscription's access result may be reused).
    resp_task = asyncio.ensure_future(pending.response())
    req_task = asyncio.ensure_future(service.next_request())
    done, _ = await asyncio.wait({resp_task, req_task}, timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
    assert done, "neither a response nor a NATS request after get of a subscribed rid"
    if req_task in done:
        (await req_task).assert_subject("access.test.model")
        await req_task.result().ok({"get": True})
    else:
        req_task.cancel()
    assert_result(await resp_task, {})
    await custom(service, "test.model")
    await client.expect_event("test.model.custom", CUSTOM_PAYLOAD)
    await no_nats(client, service)
