"""WebSocket server frames (RFC 6455 §5.2), built once and shared between connections.

Called by the connection layer to frame outgoing messages. Server-to-client frames are not
masked, so the same bytes can be written to every subscriber of an event.
"""

from __future__ import annotations

import struct

_TEXT_FIN = 0x81


def text(payload: bytes) -> bytes:
    """A single final text frame carrying ``payload`` (UTF-8 JSON)."""
    n = len(payload)
    if n < 126:
        return bytes((_TEXT_FIN, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", _TEXT_FIN, 126, n) + payload
    return struct.pack("!BBQ", _TEXT_FIN, 127, n) + payload


def payload(frame: bytes) -> bytes:
    """The payload of an unmasked frame made by ``text`` (its header is 2, 4 or 10 bytes)."""
    n = frame[1] & 0x7F
    if n < 126:
        return frame[2:]
    return frame[4:] if n == 126 else frame[10:]
