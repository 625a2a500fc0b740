"""The WebSocket opening handshake of the common case, read from the raw request head.

Used by ``gateway.web.wsserver`` when ``gateway.web.fasthttp.FrontProtocol`` hands over a request
it does not answer itself. ``parse_upgrade`` accepts only a plain, well-formed upgrade: ``GET`` of
exactly ``wsPath`` over HTTP/1.1, ``Upgrade: websocket``, ``Connection`` with the ``upgrade`` token,
``Sec-WebSocket-Version: 13`` and a key of 16 base64-encoded bytes, visible-ASCII headers, no body,
no subprotocol, and no permessage-deflate offer while compression is on (the gateway would accept
it). Anything else returns None and stays with aiohttp, which answers it as before (wrong version,
bad key and the like get the same 400s; compression is negotiated there).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from multidict import CIMultiDict

#: RFC 6455 section 1.3: appended to the client's key before hashing.
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: A head of lines of visible ASCII, space and tab, split by CRLF (no bare CR or LF, no other bytes).
_HEAD = re.compile(rb"[\t -~]*(?:\r\n[\t -~]*)*")
#: Headers that make a GET something for aiohttp (a body, 100-continue, a subprotocol to negotiate).
_HAND_OVER = frozenset(
    ("content-length", "transfer-encoding", "expect", "te", "trailer", "sec-websocket-protocol")
)
#: Headers the upgrade depends on: more than one of them is left to aiohttp.
_SINGLE = frozenset(("host", "upgrade", "connection", "sec-websocket-key", "sec-websocket-version", "origin"))


@dataclass(slots=True)
class Upgrade:
    """An upgrade request the gateway serves itself; also what the connection keeps of it for auth
    requests (``gateway.web.ws.RequestLike``)."""

    raw_path: str
    headers: CIMultiDict[str]
    accept: str  # the Sec-WebSocket-Accept value
    transport: asyncio.Transport | None = None  # set by the server when it takes the connection

    @property
    def host(self) -> str:
        return self.headers.get("Host", "")

    def response(self) -> bytes:
        """The 101 response, as Go's gorilla/websocket (resgate) writes it."""
        return (
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: %s\r\n\r\n" % self.accept.encode("ascii")
        )


def accept_key(key: str) -> str:
    """Sec-WebSocket-Accept for a client's Sec-WebSocket-Key."""
    return base64.b64encode(hashlib.sha1(key.encode("ascii") + _GUID).digest()).decode("ascii")


def _valid_key(key: str) -> bool:
    try:
        return len(binascii.a2b_base64(key, strict_mode=True)) == 16
    except (binascii.Error, ValueError):
        return False


def parse_upgrade(head: bytes, ws_path: bytes, compression: bool) -> Upgrade | None:
    """The upgrade in a request head (without its blank line), or None to leave it to aiohttp."""
    if _HEAD.fullmatch(head) is None:  # one pass for the characters, then plain string work
        return None
    lines = head.decode("ascii").split("\r\n")
    parts = lines[0].split(" ")
    target = parts[1] if len(parts) == 3 and "\t" not in parts[1] else ""
    if parts[0] != "GET" or parts[-1] != "HTTP/1.1" or target.partition("?")[0] != ws_path.decode():
        return None
    headers: CIMultiDict[str] = CIMultiDict()
    seen: set[str] = set()
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or _TOKEN.fullmatch(name) is None:
            return None
        lower = name.lower()
        if lower in _HAND_OVER:
            return None
        if lower in _SINGLE:
            if lower in seen:
                return None
            seen.add(lower)
        value = value.strip(" \t")
        if compression and lower == "sec-websocket-extensions" and "permessage-deflate" in value.lower():
            return None
        headers.add(name, value)
    if not _upgrade_headers(headers):
        return None
    return Upgrade(target, headers, accept_key(headers["Sec-WebSocket-Key"]))


def _upgrade_headers(headers: CIMultiDict[str]) -> bool:
    if headers.get("Upgrade", "").lower() != "websocket" or headers.get("Sec-WebSocket-Version") != "13":
        return False
    options = [option.strip().lower() for option in headers.get("Connection", "").split(",")]
    return "upgrade" in options and _valid_key(headers.get("Sec-WebSocket-Key", ""))
