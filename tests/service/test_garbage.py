"""The service library's requests leave no reference cycles behind (see tests/gateway/test_garbage.py
for why that matters): after a client's gets, subscriptions, calls with events, a query resource,
denied access, auth, errors and a pre-response, a collection finds no ``pyresgate`` object in a cycle.

The ``Library`` service (tests/service/library.py) and a real gateway and nats-server, in this process.
"""

from __future__ import annotations

import pytest

from pyresgate.service import (
    ERR_INVALID_PARAMS,
    ERR_NOT_FOUND,
    CallRequest,
    GetRequest,
    Service,
    access_granted,
)
from tests.service.conftest import ServiceStarter
from tests.service.library import PASSWORD, Library
from tests.support.garbage import cyclic_garbage
from tests.support.gatewayrunner import GatewayHandle
from tests.support.macros import connect
from tests.support.wsclient import assert_result


@pytest.mark.usefixtures("collector_off")
async def test_requests_a_service_answered_leave_no_reference_cycles(
    gw: GatewayHandle, start_service: ServiceStarter
) -> None:
    lib = Library(slow_seconds=0.05)
    await start_service(lib.svc)
    assert not cyclic_garbage("pyresgate."), "cycles before any request"

    client = await connect(gw)
    assert_result(await client.request("subscribe.library.books"))
    assert_result(await client.request("call.library.book.1.set", {"title": "1984"}))
    await client.expect_event("library.book.1.change", {"values": {"title": "1984"}})
    assert_result(await client.request("call.library.books.new", {"title": "Emma", "author": "Jane Austen"}))
    await client.expect_event("library.books.add")
    assert_result(await client.request("get.library.search?author=Jane Austen&limit=2"))
    assert (await client.request("subscribe.library.secret"))["error"]["code"] == "system.accessDenied"
    assert_result(await client.request("auth.library.login", {"password": PASSWORD}))
    assert (await client.request("call.library.books.fail"))["error"]["code"] == "library.shelfFull"
    assert (await client.request("call.library.book.1.set", {"title": ""}))["error"]
    assert (await client.request("get.library.book.99"))["error"]["code"] == "system.notFound"
    assert_result(await client.request("call.library.books.slow", timeout=3))  # pre-response
    await client.close()

    left = cyclic_garbage("pyresgate.")
    assert not left, f"objects a request left in reference cycles: {dict(left)}"


async def test_handlers_raising_predefined_errors_do_not_keep_their_requests_alive(
    gw: GatewayHandle, start_service: ServiceStarter
) -> None:
    """Handlers may raise the predefined errors themselves (``raise ERR_NOT_FOUND``, as the library's
    docs say). Those are shared instances, and each raise chains its traceback onto the last, which
    would keep every such request's frames alive; the service lets go of them once it replied."""
    svc = Service("shared")

    def get_thing(r: GetRequest) -> None:
        raise ERR_NOT_FOUND

    def call_bad(r: CallRequest) -> None:
        r.params_dict()  # params that are not an object: system.invalidParams

    svc.handle("thing", access=access_granted, get_model=get_thing, call={"bad": call_bad})
    await start_service(svc)
    client = await connect(gw)
    for _ in range(3):
        assert (await client.request("get.shared.thing"))["error"]["code"] == "system.notFound"
        assert (await client.request("call.shared.thing.bad", [1]))["error"]["code"] == "system.invalidParams"
    await client.close()
    assert ERR_NOT_FOUND.__traceback__ is None
    assert ERR_INVALID_PARAMS.__traceback__ is None
