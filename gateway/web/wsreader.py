"""WebSocket responses that hand each client message straight to a callback.

Used by ``gateway.web.ws``. aiohttp queues every incoming message and wakes a reader coroutine for
it; a gateway handles a request synchronously anyway, so the await per message is pure overhead on
the hottest input path. This module swaps aiohttp's message queue for one that calls
``on_message`` for text and binary messages and leaves control frames (ping, close) to aiohttp.

It leans on aiohttp internals (``_post_start`` and the reader's queue), so it checks they exist
and otherwise falls back to the plain ``WebSocketResponse``; ``DIRECT`` says which is in use.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web

log = logging.getLogger(__name__)

try:
    from aiohttp._websocket.reader import WebSocketDataQueue, WebSocketReader
    from aiohttp.helpers import DEFAULT_CHUNK_SIZE

    DIRECT = hasattr(web.WebSocketResponse, "_post_start")
except ImportError:  # pragma: no cover - another aiohttp layout
    DIRECT = False

_TEXT = WSMsgType.TEXT
_BINARY = WSMsgType.BINARY

if DIRECT:

    class _DirectQueue(WebSocketDataQueue):
        """Delivers data messages synchronously; everything else takes aiohttp's path."""

        def __init__(
            self, protocol: Any, limit: int, *, loop: Any, on_message: Callable[[Any], None]
        ) -> None:
            super().__init__(protocol, limit, loop=loop)
            self.on_message = on_message

        def feed_data(self, data: Any, size: int) -> None:
            kind = data[0]
            if kind is _TEXT or kind is _BINARY:
                try:
                    self.on_message(data[1])
                except Exception:
                    log.exception("Error handling a client message")
                return
            WebSocketDataQueue.feed_data(self, data, size)


class DirectWebSocketResponse(web.WebSocketResponse):
    """A WebSocket response whose data messages go to ``on_message`` (set before ``prepare``)."""

    on_message: Callable[[Any], None] | None = None
    #: The code of the close the gateway began (drain, shedding), for the trace log: aiohttp's own
    #: ``close_code`` then reads 1000, whatever was sent. Told apart by its reason text: aiohttp's
    #: own closes (a lost connection, the client's close answered, a protocol error) carry none.
    server_close: int | None = None

    async def close(self, *, code: int = 1000, message: bytes = b"", drain: bool = True) -> bool:
        if message and self.server_close is None and not self.closed:
            self.server_close = code
        return await super().close(code=code, message=message, drain=drain)

    @property
    def direct(self) -> bool:
        return DIRECT and self.on_message is not None

    def detach(self) -> None:
        """Deliver no more messages (the connection is released): drops the callback, whose
        connection holds this response through its sink, a cycle only the collector would free."""
        self.on_message = None
        if DIRECT and isinstance(self._reader, _DirectQueue):
            self._reader.on_message = _drop

    def _post_start(self, request: Any, protocol: Any, writer: Any) -> None:
        # aiohttp's own _post_start, with our queue in place of its message queue.
        if not self.direct:
            super()._post_start(request, protocol, writer)
            return
        assert self.on_message is not None
        self._ws_protocol = protocol
        self._writer = writer
        self._reset_heartbeat()
        queue = _DirectQueue(
            request._protocol, DEFAULT_CHUNK_SIZE, loop=self._loop, on_message=self.on_message
        )
        self._reader = queue
        self._parser = WebSocketReader(
            queue, self._max_msg_size, compress=bool(self._compress), decode_text=self._decode_text
        )
        callback = None if self._heartbeat is None else self._on_data_received
        request.protocol.set_parser(self._parser, data_received_cb=callback)
        request.protocol.keep_alive(False)


def _drop(data: Any) -> None:
    pass
