"""WebSocket connections served without aiohttp: the upgrade and the connection's protocol.

``gateway.web.fasthttp.FrontProtocol`` calls ``upgrade`` with the target and headers of a GET upgrade
on ``wsPath`` as its ``HeadReader`` parsed them (``Take.WEBSOCKET``; the head is not read again). A
plain upgrade (see ``gateway.web.wshandshake``) from an allowed origin is answered here with 101, and the transport moves to a ``WebSocketProtocol``: client frames are parsed
by ``gateway.web.wsframes.FrameReader`` in ``data_received`` and each message goes straight to
``Connection.handle_message``; output goes through the same ``TransportSink`` as on the aiohttp path.
Everything else (compression, header auth, subprotocols, bad or unusual upgrades) returns None and
goes to aiohttp (``gateway.web.ws``) as before.

Why: aiohttp's upgrade (request and response objects, a handler task, the handshake, its reader
queue) was about 40 % of the gateway's CPU per new connection, and its reader sat on every call.
The connection set-up, registration and release are ``gateway.web.ws``'s, shared by both paths.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from multidict import CIMultiDict

from gateway import constants, tracelog
from gateway.web import closer, ws, wshandshake
from gateway.web.sink import TransportSink
from gateway.web.wsframes import FrameReader

if TYPE_CHECKING:
    from gateway.app import Gateway
    from gateway.conn.connection import Connection

log = logging.getLogger(__name__)

#: Close codes the server sends.
GOING_AWAY = 1001


def upgrade(
    gateway: Gateway, target: str, headers: CIMultiDict[str], transport: asyncio.Transport
) -> WebSocketProtocol | None:
    """Answer the upgrade of a ``Take.WEBSOCKET`` head (its target and headers as ``HeadReader`` read
    them) and return the protocol to give the transport to, or None when aiohttp is to handle it."""
    config = gateway.config
    if config.ws_header_auth_parts is not None:  # asks a service before answering: aiohttp's path
        return None
    found = wshandshake.accept(target, headers, config.ws_compression)
    if found is None or not ws.origin_allowed(found.headers.get("Origin"), config.allowed_origins):
        return None  # aiohttp answers a refused origin with the same 403 as ever
    transport.write(found.response())
    found.transport = transport
    return WebSocketProtocol(gateway, transport, found)


def shutdown(gateway: Gateway) -> None:
    """Close what is left of this module's connections when the listener stops (after the drain,
    or at once when the gateway stops without one)."""
    for cid, socket in list(gateway.sockets.items()):
        if isinstance(socket, WebSocketProtocol):
            if gateway.config.trace and not socket.closed:
                tracelog.disconnecting(cid, closer.DRAIN_REASON)
            socket.going_away()


class WebSocketProtocol(asyncio.Protocol):
    """One upgraded client connection (see the module docstring)."""

    def __init__(self, gateway: Gateway, transport: asyncio.Transport, request: wshandshake.Upgrade) -> None:
        self._gateway = gateway
        self._transport = transport
        config = gateway.config
        conn, self._handle_sub = ws.open_connection(gateway, request, _NO_SINK)
        self._sink = TransportSink(
            transport, cid=conn.cid, flusher=gateway.flusher, limit=config.client_outbox_limit
        )
        ws.attach(gateway, conn, self._sink)
        self._conn: Connection = conn
        self._reader = FrameReader(self, config.ws_max_message_size)
        self._close_sent = False
        self._released = False
        self._closed_waiter: asyncio.Future[None] | None = None
        ws.register(gateway, conn, self)

    # -- asyncio callbacks ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        pass  # made at the upgrade; the front protocol calls this when it hands the transport over

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)

    def eof_received(self) -> bool:
        self._transport.close()  # also when called by the front protocol at the hand-over
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._release(tracelog.LOST if exc is None else str(exc) or type(exc).__name__)

    # -- frames from the client (wsframes.FrameSink) ----------------------------------------------

    def on_message(self, data: bytes) -> None:
        try:
            self._conn.handle_message(data)
        except Exception:
            log.exception("Error handling a client message")

    def on_ping(self, payload: bytes) -> None:
        self._sink.send(b"\x8a" + bytes((len(payload),)) + payload)

    def on_close(self, code: int | None, reason: bytes) -> None:
        if not self._close_sent:  # the client's close: echo its code, as gorilla (resgate) does
            self._send_close(code, b"")
        self._transport.close()
        self._release(tracelog.close_reason(code, reason.decode("utf-8", "replace")))

    def on_error(self, code: int, reason: str) -> None:
        log.debug("[%s] WebSocket protocol error: %s", self._conn.cid, reason)
        if not self._close_sent:
            self._send_close(code, reason.encode()[:123])
        self._transport.close()
        self._release(reason)

    # -- closing ---------------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """Whether a close frame was sent or the connection is gone (aiohttp's meaning)."""
        return self._close_sent or self._released or self._transport.is_closing()

    async def close(self, *, code: int = 1000, message: bytes = b"") -> bool:
        """Close with ``code`` and wait (bounded) for the client's close frame; False if closed
        already. Called by ``gateway.web.closer`` (drain, shedding)."""
        if self.closed:
            return False
        self._send_close(code, message)
        waiter = self._closed_waiter = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait_for(waiter, constants.WS_CLOSE_TIMEOUT)
        except TimeoutError:
            log.debug("[%s] no close frame from the client in time", self._conn.cid)
        self._transport.close()
        self._release(tracelog.close_reason(code, "closed by the server, no close frame back in time"))
        return True

    def going_away(self) -> None:
        """Close at once with 1001 (the listener is stopping)."""
        if not self.closed:
            self._send_close(GOING_AWAY, b"going away")
        self._transport.close()
        self._release(tracelog.close_reason(GOING_AWAY, "closed by the server"))

    def _send_close(self, code: int | None, reason: bytes) -> None:
        """Write what is queued for the client, then the close frame."""
        self._close_sent = True
        payload = b"" if code is None else code.to_bytes(2, "big") + reason
        transport = self._transport
        if transport.is_closing():
            return
        self._sink.send(bytes((0x88, len(payload))) + payload)
        self._sink.flush()  # now, in one write behind what was queued: the transport may close next

    def _release(self, reason: str) -> None:
        waiter = self._closed_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if self._released:
            return
        self._released = True
        self._reader.stop()
        ws.release(self._gateway, self._conn, self._handle_sub, registered=True, reason=reason)


class _NoSink:
    """The sink of a connection for the instant before its ``TransportSink`` exists."""

    def send(self, frame: bytes) -> None:
        pass


_NO_SINK: Any = _NoSink()
