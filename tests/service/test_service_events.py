"""Events and tokens published by the library, as clients of the real gateway see them: custom,
reaccess, reset, delete, token events with a tid, and ``system.tokenReset`` answered by an auth handler.
"""

from __future__ import annotations

from typing import Any

from pyresgate.service import AccessRequest, AuthRequest, CallRequest, Resource, Service
from tests.service.conftest import ServiceStarter
from tests.support.gatewayrunner import GatewayHandle
from tests.support.macros import connect


def notes_service(state: dict[str, Any]) -> Service:
    """``notes.board`` (a model whose access follows ``state["open"]``), a ``whoami`` call echoing the
    token, and auth methods ``login`` (token with a tid) and ``renew`` (the tokenReset target)."""
    svc = Service("notes")

    async def access(r: AccessRequest) -> None:
        await r.access(state["open"], "*")

    def whoami(r: CallRequest) -> Any:
        return r.token

    async def login(r: AuthRequest) -> None:
        await r.token_event({"user": "ann", "generation": 1}, tid="ann")

    async def renew(r: AuthRequest) -> None:
        assert isinstance(r.token, dict)
        await r.token_event({**r.token, "generation": r.token["generation"] + 1}, tid="ann")

    svc.handle("board", access=access, get_model=lambda r: dict(state["board"]), call={"whoami": whoami})
    svc.handle("", auth={"login": login, "renew": renew})
    return svc


async def test_custom_event_reaches_subscribers(gw: GatewayHandle, start_service: ServiceStarter) -> None:
    svc = await start_service(notes_service({"open": True, "board": {"text": "hi"}}))
    client = await connect(gw)
    await client.request("subscribe.notes.board")

    async def shout(res: Resource) -> None:
        await res.event("pinned", {"by": "ann", "tags": ["a", "b"]})

    await svc.with_resource("notes.board", shout)
    await client.expect_event("notes.board.pinned", {"by": "ann", "tags": ["a", "b"]})


async def test_reaccess_event_unsubscribes_when_access_is_withdrawn(
    gw: GatewayHandle, start_service: ServiceStarter
) -> None:
    state = {"open": True, "board": {"text": "hi"}}
    svc = await start_service(notes_service(state))
    client = await connect(gw)
    await client.request("subscribe.notes.board")
    state["open"] = False
    await svc.resource("notes.board").reaccess_event()
    ev = await client.expect_event("notes.board.unsubscribe")
    assert ev.data == {"reason": {"code": "system.accessDenied", "message": "Access denied"}}


async def test_reset_makes_the_gateway_refetch(gw: GatewayHandle, start_service: ServiceStarter) -> None:
    state = {"open": True, "board": {"text": "hi"}}
    svc = await start_service(notes_service(state))
    client = await connect(gw)
    await client.request("subscribe.notes.board")
    state["board"] = {"text": "changed behind the gateway's back", "pinned": True}
    await svc.reset(["notes.>"])
    await client.expect_event(
        "notes.board.change", {"values": {"text": "changed behind the gateway's back", "pinned": True}}
    )


async def test_delete_event(gw: GatewayHandle, start_service: ServiceStarter) -> None:
    svc = await start_service(notes_service({"open": True, "board": {"text": "hi"}}))
    client = await connect(gw)
    await client.request("subscribe.notes.board")
    await svc.with_resource("notes.board", lambda res: res.delete_event())
    await client.expect_event("notes.board.delete")
    ev = await client.expect_event("notes.board.unsubscribe")
    assert ev.data["reason"]["code"] == "system.deleted"


async def test_token_with_tid_and_token_reset(gw: GatewayHandle, start_service: ServiceStarter) -> None:
    svc = await start_service(notes_service({"open": True, "board": {}}))
    client = await connect(gw)
    assert (await client.request("call.notes.board.whoami"))["result"] == {"payload": None}
    await client.request("auth.notes.login")
    assert (await client.request("call.notes.board.whoami"))["result"] == {
        "payload": {"user": "ann", "generation": 1}
    }
    # The gateway sends an auth request to the subject for every connection whose token has tid "ann".
    await svc.token_reset("auth.notes.renew", ["ann"])
    for _ in range(50):
        payload = (await client.request("call.notes.board.whoami"))["result"]["payload"]
        if payload["generation"] == 2:
            break
    assert payload == {"user": "ann", "generation": 2}


async def test_token_event_from_the_service(gw: GatewayHandle, start_service: ServiceStarter) -> None:
    svc = notes_service({"open": True, "board": {}})

    async def cid_of_caller(r: CallRequest) -> str:
        return r.cid

    svc.handle("probe", access=lambda r: r.access(True, "*"), call={"cid": cid_of_caller})
    await start_service(svc)
    client = await connect(gw)
    cid = (await client.request("call.notes.probe.cid"))["result"]["payload"]
    await svc.token_event(cid, {"user": "bob", "generation": 7})
    token = None
    for _ in range(50):  # the token event and the next call travel different NATS subjects
        token = (await client.request("call.notes.board.whoami"))["result"]["payload"]
        if token is not None:
            break
    assert token == {"user": "bob", "generation": 7}
