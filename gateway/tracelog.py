"""Trace logging (``-V``, ``trace: true``): every client message and NATS message, as resgate logs them.

resgate's ``Tracef`` lines, at log level TRACE, in the same notation, so its users' habits carry over:

    [cid] Connected: 127.0.0.1:50412            a client connected
    [cid] --> {"id":1,"method":"subscribe.example.model"}     from the client
    [cid] <-- {"result":{...},"id":1}           a response to the client
    [cid] <<- {"event":"example.model.change","data":{...}}   an event to the client
    [cid] Disconnecting - Server is shutting down     the gateway closes it (drain, shedding)
    [cid] Disconnected: websocket: close 1000 (normal)  it ended, and why (gorilla's wording)
    <== (3) get.example.model: {}               a NATS request (3: its number, to match the reply)
    ==> (3): {"result":{"model":{...}}}         its reply
    x=> (3) system.timeout: Request timeout     its failure (timeout, no responders, ...)
    <== event.example.model.custom: {...}       a NATS publish
    =>> event.example.model.change: {...}       a NATS message on a subscription
    S=> event.example.model.*                   a NATS subscription ...
    U=> event.example.model.*                   ... and its end

Payloads are logged as they are, tokens and passwords included (as resgate does): this is for
debugging, not for production logs.

Nothing here runs unless trace logging is on: the gateway then builds ``TracedNatsMQ`` instead of
``NatsMQ`` and ``TracedConnection`` instead of ``Connection``, and wraps each client's sink in
``TracedSink``; with it off, the hot paths carry no check at all.
"""

from __future__ import annotations

import logging
from typing import Any

from gateway.conn.connection import ClientSink, Connection
from gateway.constants import LOG_TRACE
from gateway.mq.base import MessageCallback, ReplyCallback
from gateway.mq.natsclient import NatsMQ
from gateway.protocol import wsframe
from gateway.protocol.errors import ResError

log = logging.getLogger("gateway.trace")


def _text(data: bytes | str | None) -> str:
    """A payload as it is logged: the JSON text itself (invalid UTF-8 replaced, never fatal)."""
    if data is None:
        return ""
    return data if isinstance(data, str) else data.decode("utf-8", "replace")


class TracedNatsMQ(NatsMQ):
    """``NatsMQ`` that logs what goes out to NATS and what comes back."""

    def __init__(self, *, request_timeout: float, on_message: MessageCallback) -> None:
        super().__init__(request_timeout=request_timeout, on_message=_traced_messages(on_message))
        self._requests = 0
        self._subjects: dict[Any, str] = {}

    def request(
        self,
        subject: str,
        payload: bytes,
        callback: ReplyCallback,
        *,
        timeout: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self._requests += 1
        number = self._requests
        log.log(LOG_TRACE, "<== (%d) %s: %s", number, subject, _text(payload))

        def traced(data: bytes | None, err: ResError | None) -> None:
            if err is not None:
                log.log(LOG_TRACE, "x=> (%d) %s: %s", number, err.code, err.message)
            else:
                log.log(LOG_TRACE, "==> (%d): %s", number, _text(data))
            callback(data, err)

        super().request(subject, payload, traced, timeout=timeout, headers=headers)

    def publish(self, subject: str, payload: bytes) -> None:
        log.log(LOG_TRACE, "<== %s: %s", subject, _text(payload))
        super().publish(subject, payload)

    def subscribe(self, subject: str) -> int:
        handle = super().subscribe(subject)
        self._subjects[handle] = subject
        log.log(LOG_TRACE, "S=> %s", subject)
        return handle

    def unsubscribe(self, handle: Any) -> None:
        log.log(LOG_TRACE, "U=> %s", self._subjects.pop(handle, handle))
        super().unsubscribe(handle)


def _traced_messages(on_message: MessageCallback) -> MessageCallback:
    def traced(subject: str, payload: bytes) -> None:
        log.log(LOG_TRACE, "=>> %s: %s", subject, _text(payload))
        on_message(subject, payload)

    return traced


class TracedConnection(Connection):
    """``Connection`` that logs each client message before handling it."""

    def handle_message(self, data: bytes | str) -> None:
        log.log(LOG_TRACE, "[%s] --> %s", self.cid, _text(data))
        super().handle_message(data)


class TracedSink:
    """A client's sink that logs each frame (a response ``<--`` or an event ``<<-``) it passes on."""

    __slots__ = ("_cid", "_sink")

    def __init__(self, cid: str, sink: ClientSink) -> None:
        self._cid = cid
        self._sink = sink

    def send(self, frame: bytes) -> None:
        payload = wsframe.payload(frame)
        arrow = "<<-" if payload.startswith(b'{"event"') else "<--"
        log.log(LOG_TRACE, "[%s] %s %s", self._cid, arrow, _text(payload))
        self._sink.send(frame)


def connected(cid: str, remote: str) -> None:
    log.log(LOG_TRACE, "[%s] Connected: %s", cid, remote)


def disconnecting(cid: str, reason: str) -> None:
    """The gateway begins to close a client's connection (resgate: ``Disconnecting - reason``)."""
    log.log(LOG_TRACE, "[%s] Disconnecting - %s", cid, reason)


def disconnected(cid: str, reason: str) -> None:
    """A client's connection ended; ``reason`` as ``close_reason`` words it, or an error's text."""
    log.log(LOG_TRACE, "[%s] Disconnected: %s", cid, reason)


#: Names of close codes, as gorilla/websocket (resgate's library) prints them.
_CLOSE_NAMES = {
    1000: "normal",
    1001: "going away",
    1002: "protocol error",
    1003: "unsupported data",
    1005: "no status",
    1006: "abnormal closure",
    1007: "invalid payload data",
    1008: "policy violation",
    1009: "message too big",
    1010: "mandatory extension missing",
    1011: "internal server error",
    1012: "service restart",
    1013: "try again later",
    1015: "TLS handshake error",
}


def close_reason(code: int | None, text: str = "") -> str:
    """How resgate's trace words the end of a connection: ``websocket: close 1000 (normal)``, the
    client's reason text after a colon; a connection lost without a close frame is 1006."""
    if code is None:
        code = 1005  # a close frame without a status code
    words = f"websocket: close {code}"
    if code in _CLOSE_NAMES:
        words += f" ({_CLOSE_NAMES[code]})"
    return f"{words}: {text}" if text else words


#: A connection that ended without a close frame (gorilla's words for it).
LOST = close_reason(1006, "unexpected EOF")
