"""Incremental reader of client WebSocket frames (RFC 6455, no extensions).

Used by ``gateway.web.wsserver`` for the connections it upgrades itself. It is fed the bytes as they
arrive, in any split, and reports complete messages, pings and the close frame to its ``FrameSink``;
a protocol violation is reported once, with the close code RFC 6455 prescribes, and everything after
it (or after a close frame) is ignored. Memory is bounded: a data frame whose length would take the
message past ``max_size`` is refused (1009) from its header, before its payload is buffered.

The common case, a whole small frame in one read, runs through ``feed`` without copying the input.
"""

from __future__ import annotations

from typing import Protocol

#: Close codes (RFC 6455 section 7.4.1).
PROTOCOL_ERROR = 1002
INVALID_PAYLOAD = 1007
MESSAGE_TOO_BIG = 1009

_CONTINUATION = 0
_TEXT = 1
_BINARY = 2
_CLOSE = 8
_PING = 9
_PONG = 10


class FrameSink(Protocol):
    """What the reader reports to (``gateway.web.wsserver.WebSocketProtocol``)."""

    def on_message(self, data: bytes) -> None:
        """A complete text (valid UTF-8) or binary message."""

    def on_ping(self, payload: bytes) -> None: ...

    def on_close(self, code: int | None, reason: bytes) -> None:
        """The client's close frame; ``code`` is None for a close frame without a payload."""

    def on_error(self, code: int, reason: str) -> None:
        """A protocol violation: the connection is to be closed with ``code``."""


def _unmask_int(payload: bytes, mask: bytes) -> bytes:
    """The payload XOR the repeated 4-byte mask, as one big-integer XOR (no loop in Python)."""
    n = len(payload)
    if not n:
        return b""
    key = (mask * ((n >> 2) + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


try:  # aiohttp's C masking: 2x faster on a request, 1000x on a large message
    from aiohttp._websocket.helpers import websocket_mask as _mask_in_place

    def unmask(payload: bytes, mask: bytes) -> bytes:
        """The payload XOR the repeated 4-byte mask."""
        data = bytearray(payload)
        _mask_in_place(mask, data)
        return bytes(data)

except ImportError:  # pragma: no cover - another aiohttp layout
    unmask = _unmask_int


def valid_close_code(code: int) -> bool:
    """Whether a client may send ``code`` in a close frame (RFC 6455 section 7.4)."""
    if 3000 <= code <= 4999:
        return True
    return 1000 <= code <= 1011 and code not in (1004, 1005, 1006)


def _utf8(data: bytes) -> bool:
    if data.isascii():  # a C loop over the bytes: the usual JSON request needs nothing more
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class FrameReader:
    """Parses client frames into messages for one connection (see the module docstring)."""

    __slots__ = (
        "_done",
        "_have",
        "_max_size",
        "_need",
        "_opcode",
        "_partial",
        "_pending",
        "_sink",
        "_size",
    )

    def __init__(self, sink: FrameSink, max_size: int) -> None:
        self._sink = sink
        self._max_size = max_size
        #: The start of a frame not complete yet, its length and the length of the whole frame (0
        #: while its header is incomplete): a large frame arriving in many reads is joined once.
        self._pending: list[bytes] = []
        self._have = 0
        self._need = 0
        self._opcode = 0  # of the fragmented message in progress (0: none)
        self._partial = bytearray()
        self._size = 0  # bytes of the fragmented message so far
        self._done = False  # after a close frame or an error

    @property
    def done(self) -> bool:
        return self._done

    def stop(self) -> None:
        """Read no more: the connection is released. Lets go of the sink, the protocol that holds
        this reader, so reference counting frees both (a cycle would wait for the collector)."""
        self._done = True
        self._sink = _DETACHED
        self._pending = []
        self._partial = bytearray()

    def feed(self, data: bytes) -> None:
        """Take the next bytes from the client; reports what completes to the sink."""
        if self._done:
            return
        if self._pending:
            self._pending.append(data)
            self._have += len(data)
            if self._have < self._need:
                return
            data = b"".join(self._pending)
            self._pending = []
        n = len(data)
        pos = 0
        need = 0
        limit = self._max_size
        while n - pos >= 2:  # every pass consumes a whole frame or stops
            b0 = data[pos]
            b1 = data[pos + 1]
            length = b1 & 0x7F
            head = pos + 6
            if (b0 == 0x81 or b0 == 0x82) and 0x80 <= b1 < 0xFE and not self._opcode and length <= limit:
                # The usual frame: a whole masked text or binary message under 126 bytes.
                end = head + length
                if end > n:
                    need = end - pos
                    break
                payload = unmask(data[head:end], data[head - 4 : head])
                pos = end
                if b0 == 0x81 and not _utf8(payload):
                    self._fail(INVALID_PAYLOAD, "invalid UTF-8 in a text message")
                    return
                self._sink.on_message(payload)
                if self._done:
                    return
                continue
            if length == 126:  # the header is checked as soon as the length is there, mask or not
                head = pos + 8
                if n < pos + 4:
                    break
                length = int.from_bytes(data[pos + 2 : pos + 4], "big")
            elif length == 127:
                head = pos + 14
                if n < pos + 10:
                    break
                length = int.from_bytes(data[pos + 2 : pos + 10], "big")
            problem = self._check(b0, b1, length)
            if problem:
                self._fail(*problem)
                return
            end = head + length
            if end > n:  # also when the mask is not complete yet
                need = end - pos
                break
            payload = unmask(data[head:end], data[head - 4 : head])
            pos = end
            self._frame(b0, payload)
            if self._done:
                return
        if pos < n:
            self._pending = [data[pos:]]
            self._have = n - pos
            self._need = need

    def _check(self, b0: int, b1: int, length: int) -> tuple[int, str] | None:
        """The close code and reason for a frame header that breaks the rules, else None."""
        if b0 & 0x70:
            return PROTOCOL_ERROR, "reserved bits set"
        if not b1 & 0x80:
            return PROTOCOL_ERROR, "unmasked client frame"
        opcode = b0 & 0x0F
        if opcode >= _CLOSE:
            if opcode > _PONG:
                return PROTOCOL_ERROR, f"reserved opcode {opcode}"
            if not b0 & 0x80 or length > 125:
                return PROTOCOL_ERROR, "fragmented or long control frame"
            return None
        if opcode > _BINARY:
            return PROTOCOL_ERROR, f"reserved opcode {opcode}"
        if opcode == _CONTINUATION:
            if not self._opcode:
                return PROTOCOL_ERROR, "continuation without a message"
            size = self._size + length
        elif self._opcode:
            return PROTOCOL_ERROR, "new message inside a fragmented one"
        else:
            size = length
        if size > self._max_size:
            return MESSAGE_TOO_BIG, f"message of {size} bytes exceeds limit {self._max_size}"
        return None

    def _frame(self, b0: int, payload: bytes) -> None:
        opcode = b0 & 0x0F
        if opcode >= _CLOSE:
            self._control(opcode, payload)
            return
        if b0 & 0x80:  # FIN
            if opcode != _CONTINUATION:
                self._message(opcode, payload)
                return
            self._partial += payload
            message = bytes(self._partial)
            opcode = self._opcode
            self._partial = bytearray()
            self._opcode = self._size = 0
            self._message(opcode, message)
            return
        if opcode != _CONTINUATION:
            self._opcode = opcode
        self._partial += payload  # one buffer: many tiny fragments cost no object each
        self._size += len(payload)

    def _message(self, opcode: int, data: bytes) -> None:
        if opcode == _TEXT and not _utf8(data):
            self._fail(INVALID_PAYLOAD, "invalid UTF-8 in a text message")
            return
        self._sink.on_message(data)

    def _control(self, opcode: int, payload: bytes) -> None:
        if opcode == _PING:
            self._sink.on_ping(payload)
        elif opcode == _CLOSE:
            self._close(payload)
        # a pong needs nothing

    def _close(self, payload: bytes) -> None:
        if not payload:
            self._done = True
            self._sink.on_close(None, b"")
            return
        if len(payload) < 2:
            self._fail(PROTOCOL_ERROR, "close frame with a 1-byte payload")
            return
        code = int.from_bytes(payload[:2], "big")
        reason = payload[2:]
        if not valid_close_code(code):
            self._fail(PROTOCOL_ERROR, f"invalid close code {code}")
        elif not _utf8(reason):
            self._fail(INVALID_PAYLOAD, "invalid UTF-8 in the close reason")
        else:
            self._done = True
            self._sink.on_close(code, reason)

    def _fail(self, code: int, reason: str) -> None:
        self._done = True
        self._pending = []
        self._partial = bytearray()
        self._sink.on_error(code, reason)


class _Detached:
    """The sink of a stopped reader (it reports nothing more)."""

    def on_message(self, data: bytes) -> None:
        pass

    def on_ping(self, payload: bytes) -> None:
        pass

    def on_close(self, code: int | None, reason: bytes) -> None:
        pass

    def on_error(self, code: int, reason: str) -> None:
        pass


_DETACHED: FrameSink = _Detached()
