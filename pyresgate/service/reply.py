"""One reply per request: encodes response envelopes and pre-responses onto the request's reply subject.

Used by every request object (access, get, call, auth, query). It guarantees at most one final
response per request (a second one raises, it would confuse the gateway) and encodes the envelopes
of res-protocol.md §3.2: ``result``, ``resource`` or ``error``, and ``timeout:"ms"`` pre-responses.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from gateway.protocol.errors import ResError

Publish = Callable[[str, bytes], Awaitable[None]]


class AlreadyReplied(RuntimeError):
    """A request got a second final response."""


class Replier:
    """The reply channel of one request."""

    def __init__(self, publish: Publish, subject: str) -> None:
        self._publish = publish
        self.subject = subject
        self.replied = False

    async def result(self, result: Any) -> None:
        await self._send({"result": result})

    async def resource(self, rid: str) -> None:
        await self._send({"resource": {"rid": rid}})

    async def error(self, err: ResError) -> None:
        await self._send({"error": err.to_dict()})

    async def timeout(self, seconds: float) -> None:
        """A pre-response: the gateway waits ``seconds`` more from now for the final response."""
        if self.replied:
            raise AlreadyReplied("pre-response after the final response")
        if not seconds > 0:
            raise ValueError("timeout must be positive")
        await self._publish(self.subject, f'timeout:"{round(seconds * 1000)}"'.encode())

    async def _send(self, envelope: dict[str, Any]) -> None:
        if self.replied:
            raise AlreadyReplied("the request already has its response")
        body = orjson.dumps(envelope)  # encode first: unencodable data must not count as a reply
        self.replied = True
        await self._publish(self.subject, body)
