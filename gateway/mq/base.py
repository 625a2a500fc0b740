"""The message-queue interface the cache and connections use (resgate's ``mq.Client``).

Only ``gateway.mq.natsclient`` implements it against NATS; tests of the cache may fake it.
Callbacks are called synchronously, in the order messages arrived on the wire, so that a service's
reply and the events it published around it are seen in the order it sent them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from gateway.protocol.errors import ResError

#: Called with (reply payload, None) or (None, error) exactly once per request.
ReplyCallback = Callable[[bytes | None, ResError | None], None]
#: Called with (subject, payload) for every message on a subscription.
MessageCallback = Callable[[str, bytes], None]


class MQ(Protocol):
    """What the gateway needs from a message queue."""

    def request(
        self,
        subject: str,
        payload: bytes,
        callback: ReplyCallback,
        *,
        timeout: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Send a request; ``callback`` gets the final reply, a timeout or a send error."""

    def subscribe(self, subject: str) -> Any:
        """Start receiving messages on ``subject``; returns a handle for ``unsubscribe``."""

    def unsubscribe(self, handle: Any) -> None:
        """Stop a subscription made with ``subscribe``."""

    def publish(self, subject: str, payload: bytes) -> None:
        """Publish a message (no reply expected)."""
