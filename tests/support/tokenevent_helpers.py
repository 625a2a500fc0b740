"""Helpers for token / reaccess / system event catalog tests (§5.09-§5.11)."""

from __future__ import annotations

from typing import Any

from tests.support.fakeservice import FakeService
from tests.support.wsclient import WSClient


async def set_token(client: WSClient, service: FakeService, cid: str, payload: Any) -> None:
    """Publish ``conn.<cid>.token`` while answering a client auth request, so the event is ordered before
    the auth response (the only ordering RES guarantees for token events, res-protocol §3.4.4: a NATS
    event and an unrelated WebSocket request otherwise race inside the gateway)."""
    pending = await client.send("auth.test.login")
    req = await service.expect_request("auth.test.login")
    await service.conn_event(cid, "token", payload)
    await req.ok(None)
    await pending.response()
