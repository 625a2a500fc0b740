"""Garbage from the NATS side: the service answers with a clear error, logs it, and keeps serving.

Requests are sent with a plain nats-py connection (as a confused or hostile peer would) to a running
``Library`` service; afterwards the real gateway must still get the model.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import nats
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nats.aio.client import Client as NatsClient

from tests.service.conftest import ServiceStarter
from tests.service.library import Library
from tests.support.gatewayrunner import GatewayHandle
from tests.support.macros import connect
from tests.support.natsserver import NatsServer


@pytest.fixture
async def peer(nats_server: NatsServer) -> AsyncIterator[NatsClient]:
    nc = await nats.connect(nats_server.url)
    try:
        yield nc
    finally:
        await nc.close()


async def ask(nc: NatsClient, subject: str, payload: bytes) -> dict[str, object]:
    msg = await nc.request(subject, payload, timeout=2)
    reply = orjson.loads(msg.data)
    assert isinstance(reply, dict)
    return reply


@pytest.mark.parametrize(
    ("subject", "payload", "message"),
    [
        ("get.library.book.1", b"not json", "Invalid request: payload is not JSON"),
        ("get.library.book.1", b"[1, 2]", "Invalid request: payload must be a JSON object"),
        ("get.library.book.1", b'{"query": 5}', "Invalid request: query must be a string"),
        ("get.library.book.\u00e9", b"{}", "Invalid request: bad subject 'get.library.book.\u00e9'"),
        ("access.library.book.1", b"\xff\xfe", "Invalid request: payload is not JSON"),
    ],
)
async def test_malformed_request_gets_invalid_request(
    gw: GatewayHandle,
    start_service: ServiceStarter,
    peer: NatsClient,
    service_log: pytest.LogCaptureFixture,
    subject: str,
    payload: bytes,
    message: str,
) -> None:
    await start_service(Library().svc)
    reply = await ask(peer, subject, payload)
    error = reply["error"]
    assert isinstance(error, dict) and error["code"] == "system.invalidRequest"
    assert str(error["message"]).startswith(message)
    assert any("bad request" in r.getMessage() for r in service_log.records)
    client = await connect(gw)
    assert "result" in await client.request("get.library.book.1")


async def test_params_of_the_wrong_type_are_invalid_params(
    start_service: ServiceStarter, peer: NatsClient
) -> None:
    await start_service(Library().svc)
    reply = await ask(peer, "call.library.book.1.set", b'{"params": "title", "cid": 7, "token": null}')
    assert reply == {"error": {"code": "system.invalidParams", "message": "Invalid parameters"}}


async def test_handler_crash_is_internal_error_and_service_lives_on(
    gw: GatewayHandle, start_service: ServiceStarter, service_log: pytest.LogCaptureFixture
) -> None:
    lib = Library()

    async def explode(r: object) -> None:
        raise RuntimeError("disk on fire")

    lib.svc.handle("books", call={"explode": explode})
    await start_service(lib.svc)
    client = await connect(gw)
    err = (await client.request("call.library.books.explode"))["error"]
    assert err == {"code": "system.internalError", "message": "Internal error: disk on fire"}
    assert any("handler failed" in r.getMessage() for r in service_log.records)
    assert "result" in await client.request("get.library.book.2")


async def test_request_without_reply_subject_is_ignored(
    start_service: ServiceStarter, peer: NatsClient, service_log: pytest.LogCaptureFixture
) -> None:
    await start_service(Library().svc)
    await peer.publish("get.library.book.1", b"{}")
    await peer.flush()
    reply = await ask(peer, "get.library.book.1", b"{}")  # served after the reply-less one was dropped
    assert reply == {"result": {"model": {"id": 1, "title": "Animal Farm", "author": "George Orwell"}}}
    assert any("without a reply subject" in r.getMessage() for r in service_log.records)


@pytest.fixture
async def running_library(start_service: ServiceStarter) -> Library:
    """One service for all the examples of a Hypothesis test (function fixtures are shared by them)."""
    lib = Library()
    await start_service(lib.svc)
    return lib


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=st.binary(max_size=64) | st.text(max_size=40).map(str.encode))
async def test_any_payload_gets_one_json_reply(
    running_library: Library, peer: NatsClient, payload: bytes
) -> None:
    for subject in ("get.library.book.1", "call.library.book.1.set", "access.library.books"):
        reply = await ask(peer, subject, payload)
        assert set(reply) <= {"result", "error"} and len(reply) == 1
    assert running_library.books["1"]["id"] == 1  # whatever came in, the data is intact
