"""Reply specs for table-driven call/auth/new catalog rows (§5.04–§5.06).

A row's service reply is written as one of ``OK(x)``, ``ERR(e)``, ``RES(rid)``, ``RAW(bytes)`` or ``TO``
(the catalog's ``N<`` notation, §1). ``await spec.send(req)`` answers the request; ``TO`` leaves it
unanswered so the gateway times out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.support.fakeservice import Request


@dataclass(frozen=True)
class Reply:
    kind: str
    value: Any = None

    @property
    def is_timeout(self) -> bool:
        return self.kind == "to"

    async def send(self, req: Request) -> None:
        if self.kind == "ok":
            await req.ok(self.value)
        elif self.kind == "err":
            await req.error(self.value)
        elif self.kind == "res":
            await req.resource(self.value)
        elif self.kind == "raw":
            await req.respond_raw(self.value)
        elif self.kind != "to":
            raise ValueError(self.kind)

    def __repr__(self) -> str:
        return "TO" if self.kind == "to" else f"{self.kind.upper()}({self.value!r})"


def OK(value: Any) -> Reply:
    return Reply("ok", value)


def ERR(err: Any) -> Reply:
    return Reply("err", err)


def RES(rid: str) -> Reply:
    return Reply("res", rid)


def RAW(data: bytes) -> Reply:
    return Reply("raw", data)


#: Never reply: the gateway must answer the client with system.timeout after its request timeout.
TO = Reply("to")

#: Request timeout (ms) used by gateways in rows with a TO reply, to keep them fast.
SHORT_TIMEOUT_MS = 250
#: Seconds a client waits for a response that follows a TO reply.
TO_WAIT = 2.0


def timeout_config(*replies: Reply | None) -> dict[str, Any]:
    """Gateway overrides for a row: a short request timeout if any of ``replies`` is TO."""
    return (
        {"request_timeout": SHORT_TIMEOUT_MS} if any(r is not None and r.is_timeout for r in replies) else {}
    )


def assert_client_request_payload(req: Request, params: Any) -> None:
    """The call/auth payload members common to WebSocket-originated requests: ``cid`` a string, ``token``
    present as null, ``params`` as the client sent them (null when omitted), no ``isHttp``."""
    req.assert_path_type("cid", str)
    req.assert_path("token", None)
    req.assert_path("params", params)
    req.assert_missing("isHttp")


__all__ = [
    "ERR",
    "OK",
    "RAW",
    "RES",
    "SHORT_TIMEOUT_MS",
    "TO",
    "TO_WAIT",
    "Reply",
    "assert_client_request_payload",
    "timeout_config",
]
