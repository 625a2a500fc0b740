"""The WebSocket opening handshake of the common case, on the head ``HeadReader`` already parsed.

Used by ``gateway.web.wsserver`` when ``gateway.web.fasthttp.HeadReader`` has found a well-formed
upgrade on ``wsPath`` (``Take.WEBSOCKET``); the head is not read a second time. By then llhttp, in
strict mode, has accepted it (token header names; no control characters, bare CR or LF, or
folded lines; a visible-ASCII target), and the reader has made sure that its request line is
exactly ``GET <target> HTTP/1.1``, that it has one ``Host``, no body or 100-continue
(``Content-Length``, ``Transfer-Encoding``, ``Expect``, ``TE``, ``Trailer``) and only ASCII header
values. ``accept`` checks the rest on the parsed headers: exactly one each of ``Upgrade: websocket``,
``Connection`` with the ``upgrade`` token, ``Sec-WebSocket-Version: 13`` and a ``Sec-WebSocket-Key``
of 16 base64-encoded bytes, at most one ``Origin``, no subprotocol, and no permessage-deflate offer
while compression is on (the gateway would accept it). Anything else returns None and stays with
aiohttp, which answers it as before (wrong version, bad key and the like get the same 400s;
compression is negotiated there).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
from dataclasses import dataclass

from multidict import CIMultiDict

#: RFC 6455 section 1.3: appended to the client's key before hashing.
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#: Headers the upgrade depends on: exactly one of each, anything else is left to aiohttp.
_ONE = ("Upgrade", "Connection", "Sec-WebSocket-Key", "Sec-WebSocket-Version")


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


def accept(target: str, headers: CIMultiDict[str], compression: bool) -> Upgrade | None:
    """The upgrade of a ``Take.WEBSOCKET`` head (its target and headers as ``HeadReader`` read them),
    or None to leave it to aiohttp. The upgrade keeps ``headers`` (the reader starts a new multidict
    for each head) for auth requests."""
    found = [headers.getall(name, []) for name in _ONE]
    if any(len(values) != 1 for values in found):
        return None
    (upgrade,), (connection,), (key,), (version,) = found
    if (
        upgrade.lower() != "websocket"
        or version != "13"
        or "upgrade" not in [option.strip().lower() for option in connection.split(",")]
        or not _valid_key(key)
        or "Sec-WebSocket-Protocol" in headers
        or len(headers.getall("Origin", ())) > 1
        or (compression and _offers_deflate(headers))
    ):
        return None
    return Upgrade(target, headers, accept_key(key))


def _offers_deflate(headers: CIMultiDict[str]) -> bool:
    offers = headers.getall("Sec-WebSocket-Extensions", ())
    return any("permessage-deflate" in offer.lower() for offer in offers)
