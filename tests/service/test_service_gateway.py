"""The service library against the real gateway: WebSocket and HTTP clients, real nats-server.

Each test starts the ``Library`` service (tests/service/library.py) and drives it through a fresh
in-process gateway, checking what clients see: get, subscribe, calls, events, access, auth, query
events, pre-responses and errors.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from tests.service.conftest import ServiceStarter
from tests.service.library import PASSWORD, Library
from tests.support.gatewayrunner import GatewayHandle
from tests.support.macros import connect

BOOK1 = {"id": 1, "title": "Animal Farm", "author": "George Orwell"}
BOOK2 = {"id": 2, "title": "Brave New World", "author": "Aldous Huxley"}


async def started(start_service: ServiceStarter, **kwargs: Any) -> Library:
    lib = Library(**kwargs)
    await start_service(lib.svc)
    return lib


async def test_get_model_over_websocket_and_http(gw: GatewayHandle, start_service: ServiceStarter) -> None:
    await started(start_service)
    client = await connect(gw)
    result = (await client.request("get.library.book.1"))["result"]
    assert result == {"models": {"library.book.1": BOOK1}}
    async with aiohttp.ClientSession() as http, http.get(f"{gw.http_url}/api/library/book/2") as resp:
        assert resp.status == 200
        assert await resp.json() == BOOK2


async def test_subscribe_collection_sends_referenced_models(
    gw: GatewayHandle, start_service: ServiceStarter
) -> None:
    await started(start_service)
    client = await connect(gw)
    result = (await client.request("subscribe.library.books"))["result"]
    assert result["collections"] == {"library.books": [{"rid": "library.book.1"}, {"rid": "library.book.2"}]}
    assert result["models"] == {"library.book.1": BOOK1, "library.book.2": BOOK2}


async def test_set_call_reaches_second_client_as_change_event(
    gw: GatewayHandle, start_service: ServiceStarter
) -> None:
    lib = await started(start_service)
    editor, watcher = await connect(gw), await connect(gw)
    await watcher.request("subscribe.library.book.1")
    resp = await editor.request("call.library.book.1.set", {"title": "1984"})
    assert resp == {"id": resp["id"], "result": {"payload": None}}
    await watcher.expect_event("library.book.1.change", {"values": {"title": "1984"}})
    assert lib.books["1"]["title"] == "1984"


async def test_invalid_params_and_custom_error_codes(
    gw: GatewayHandle, start_service: ServiceStarter
) -> None:
    await started(start_service)
    client = await connect(gw)
    err = (await client.request("call.library.book.1.set", {"title": ""}))["error"]
    assert err == {"code": "system.invalidParams", "message": "Title must be a non-empty string"}
    err = (await client.request("call.library.books.new", {"title": "x"}))["error"]
    assert err == {"code": "system.invalidParams", "message": "Must provide both title and author"}
    err = (await client.request("call.library.books.fail"))["error"]
    assert err == {"code": "library.shelfFull", "message": "The shelf is full", "data": {"max": 3}}


async def test_not_found_and_method_not_found(gw: GatewayHandle, start_service: ServiceStarter) -> None:
    await started(start_service)
    client = await connect(gw)
    assert (await client.request("get.library.book.99"))["error"]["code"] == "system.notFound"
    assert (await client.request("call.library.book.99.set", {}))["error"]["code"] == "system.notFound"
    assert (await client.request("call.library.book.1.burn"))["error"]["code"] == "system.methodNotFound"
    assert (await client.request("get.library.nothing.here"))["error"]["code"] == "system.notFound"


async def test_new_and_delete_are_add_and_remove_events(
    gw: GatewayHandle, start_service: ServiceStarter
) -> None:
    await started(start_service)
    actor, watcher = await connect(gw), await connect(gw)
    await watcher.request("subscribe.library.books")
    resp = await actor.request("call.library.books.new", {"title": "Dune", "author": "Frank Herbert"})
    new_book = {"id": 3, "title": "Dune", "author": "Frank Herbert"}
    assert resp["result"] == {"rid": "library.book.3", "models": {"library.book.3": new_book}}
    ev = await watcher.expect_event("library.books.add")
    assert ev.data == {"idx": 2, "value": {"rid": "library.book.3"}, "models": {"library.book.3": new_book}}
    await actor.request("call.library.books.delete", {"id": 1})
    await watcher.expect_event("library.books.remove", {"idx": 0})
    err = (await actor.request("call.library.books.delete", {"id": "one"}))["error"]
    assert err == {"code": "system.invalidParams", "message": "Book ID must be a number"}


async def test_access_denied_until_login_then_logout_revokes(
    gw: GatewayHandle, start_service: ServiceStarter
) -> None:
    await started(start_service)
    client = await connect(gw)
    assert (await client.request("subscribe.library.secret"))["error"]["code"] == "system.accessDenied"
    wrong = (await client.request("auth.library.login", {"password": "guess"}))["error"]
    assert wrong == {"code": "library.wrongPassword", "message": "Wrong password"}
    ok = await client.request("auth.library.login", {"password": PASSWORD})
    assert ok["result"] == {"payload": {"user": "admin"}}
    result = (await client.request("subscribe.library.secret"))["result"]
    assert result == {"models": {"library.secret": {"treasure": "gold"}}}
    await client.request("auth.library.logout")
    # The token changed from a set one: the gateway re-checks access and drops the subscription.
    ev = await client.expect_event("library.secret.unsubscribe")
    assert ev.data["reason"]["code"] == "system.accessDenied"


async def test_access_denied_over_http(gw: GatewayHandle, start_service: ServiceStarter) -> None:
    await started(start_service)
    async with aiohttp.ClientSession() as http, http.get(f"{gw.http_url}/api/library/secret") as resp:
        assert resp.status == 401
        assert (await resp.json())["code"] == "system.accessDenied"


async def test_query_collection_gets_query_events(gw: GatewayHandle, start_service: ServiceStarter) -> None:
    await started(start_service)
    actor, watcher = await connect(gw), await connect(gw)
    rid = "library.search?limit=5&author=George+Orwell"
    result = (await watcher.request(f"subscribe.{rid}"))["result"]
    assert result["collections"] == {rid: [{"rid": "library.book.1"}]}
    await actor.request("call.library.books.new", {"title": "1984", "author": "George Orwell"})
    ev = await watcher.expect_event(f"{rid}.add", timeout=3)
    assert ev.data["idx"] == 1 and ev.data["value"] == {"rid": "library.book.3"}
    await actor.request("call.library.books.new", {"title": "Emma", "author": "Jane Austen"})
    await actor.request("call.library.books.delete", {"id": 1})
    # The book's own delete event and the query's remove (after the query round trip) both arrive.
    events = {ev.name: ev.data for ev in await watcher.get_events(2, timeout=3)}
    assert events == {f"{rid}.remove": {"idx": 0}, "library.book.1.delete": None}


async def test_invalid_query_is_reported(gw: GatewayHandle, start_service: ServiceStarter) -> None:
    await started(start_service)
    client = await connect(gw)
    err = (await client.request("get.library.search?colour=red"))["error"]
    assert err["code"] == "system.invalidQuery"
    err = (await client.request("get.library.search?limit=500"))["error"]
    assert err == {"code": "system.invalidQuery", "message": "Invalid query: limit must be between 1 and 50"}


async def test_pre_response_extends_the_gateway_timeout(
    gw: GatewayHandle, start_service: ServiceStarter
) -> None:
    # The test gateway times out after 500 ms; the call takes 1 s and says so with a pre-response.
    await started(start_service, slow_seconds=1.0)
    client = await connect(gw)
    resp = await client.request("call.library.books.slow", timeout=5)
    assert resp["result"] == {"payload": "done"}


async def test_with_resource_keeps_event_order(gw: GatewayHandle, start_service: ServiceStarter) -> None:
    lib = await started(start_service)
    client = await connect(gw)
    await client.request("subscribe.library.book.2")

    async def bump(n: int) -> None:
        async def change(res: Any) -> None:
            lib.books["2"]["title"] = f"v{n}"
            await asyncio.sleep(0.001 * (n % 3))  # uneven work must not reorder the events
            await res.change_event({"title": f"v{n}"})

        await lib.svc.with_resource("library.book.2", change)

    await asyncio.gather(*(bump(n) for n in range(30)))
    events = await client.get_events(30, timeout=5)
    assert [ev.data["values"]["title"] for ev in events] == [f"v{n}" for n in range(30)]


async def test_stop_drains_in_flight_requests(gw: GatewayHandle, start_service: ServiceStarter) -> None:
    lib = await started(start_service, slow_seconds=0.5)
    client = await connect(gw)
    pending = await client.send("call.library.books.slow")
    await asyncio.wait_for(lib.slow_started.wait(), 5)  # the call is in the handler now
    await lib.svc.stop()
    assert (await pending.response(timeout=5)) == {"id": pending.id, "result": {"payload": "done"}}
    # Stopped: nobody answers any more.
    err = (await client.request("get.library.book.1", timeout=5))["error"]
    assert err["code"] in ("system.notFound", "system.timeout")


async def test_handlers_are_registered_before_start(start_service: ServiceStarter) -> None:
    lib = await started(start_service)
    with pytest.raises(RuntimeError, match=r"before start\(\)"):
        lib.svc.handle("late", get=lambda r: {})
