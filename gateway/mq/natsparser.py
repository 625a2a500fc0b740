"""nats-py's protocol parser with a fast path for the messages the gateway lives on.

nats-py's ``Parser`` tries a regular expression per operation, deletes each parsed message from the
front of its buffer (moving the rest of it every time) and awaits a coroutine per message. In a
burst of service events or replies that is most of the cost of receiving. ``FastParser`` reads the
``MSG``/``HMSG`` operations of a chunk with ``find``/``split`` on one bytes object and hands each
message to a plain callback, in wire order. Anything else (``PING``, ``PONG``, ``INFO``, ``+OK``,
``-ERR``) and anything it cannot finish goes to nats-py's own parser, which keeps the same buffer
and state, so connection handling stays nats-py's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nats.errors import ProtocolError
from nats.protocol.parser import AWAITING_CONTROL_LINE, Parser

#: Called with (sid, subject, reply, payload, headers or None) for every message.
MessageHandler = Callable[[int, bytes, bytes, bytes, "bytes | None"], None]

_MSG = b"MSG "
_HMSG = b"HMSG "
_CRLF = b"\r\n"


class FastParser(Parser):
    """A drop-in ``nats.protocol.parser.Parser`` (install it as the client's ``_ps``)."""

    def __init__(self, nc: Any, on_message: MessageHandler) -> None:
        super().__init__(nc)
        self.on_message = on_message

    async def parse(self, data: bytes = b"") -> None:
        if self.state != AWAITING_CONTROL_LINE:
            await super().parse(data)  # finish the message the generic parser started
            return
        if self.buf:
            self.buf.extend(data)
            data = bytes(self.buf)
            self.buf.clear()
        pos, other = _parse_messages(data, self.on_message)
        if pos < len(data):
            self.buf.extend(data[pos:] if pos else data)
            if other:
                await super().parse()


def _parse_messages(data: bytes, on_message: MessageHandler) -> tuple[int, bool]:
    """Deliver the complete MSG/HMSG operations at the start of ``data``; returns the offset where
    delivery stopped and whether a different operation stopped it (else data ran out)."""
    pos = 0
    n = len(data)
    while pos < n:
        if data.startswith(_MSG, pos):
            skip = 4
        elif data.startswith(_HMSG, pos):
            skip = 5
        else:
            return pos, True
        end = data.find(_CRLF, pos)
        if end < 0:
            return pos, False
        args = data[pos + skip : end].split()
        try:
            if skip == 4:
                header_size = 0
                if len(args) == 3:
                    subject, sid, size = args
                    reply = b""
                else:
                    subject, sid, reply, size = args
            elif len(args) == 4:
                subject, sid, hsize, size = args
                reply = b""
                header_size = int(hsize)
            else:
                subject, sid, reply, hsize, size = args
                header_size = int(hsize)
            total = int(size)
            sid_number = int(sid)
        except ValueError:
            raise ProtocolError("nats: malformed MSG") from None
        start = end + 2
        stop = start + total
        if stop + 2 > n:
            return pos, False  # the payload is not all here yet
        if header_size:
            headers: bytes | None = data[start : start + header_size]
            payload = data[start + header_size : stop]
        else:
            headers = None
            payload = data[start:stop]
        pos = stop + 2
        on_message(sid_number, subject, reply, payload, headers)
    return pos, False
