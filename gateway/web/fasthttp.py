"""Client listener protocol: plain API GET/HEAD requests without aiohttp, everything else with it.

aiohttp's request machinery (request and response objects, a task loop per connection, header
multidicts, writer) costs about 45 µs of CPU per request, which is more than the rest of a cached
GET. ``FrontProtocol`` is the protocol of every client connection. It reads request heads itself,
and a request it fully understands, an HTTP/1.1 ``GET`` or ``HEAD`` under ``apiPath`` with no body,
no upgrade and only well-formed headers, goes to the API flow (``gateway.web.api.serve``) and its
response is written straight to the socket. At the first request it does not take (WebSocket
upgrades, POST and other methods, other paths, HTTP/1.0, anything unusual or malformed), the
connection is handed to aiohttp for good: aiohttp's protocol gets the transport and the bytes of
that request and of everything after it, so it sees exactly what the client sent.

Requests on one connection are answered one at a time, in order (pipelined requests wait in the
buffer; reading pauses when the buffer or the unsent output grows too large).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from email.utils import formatdate
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, cast

import orjson
from aiohttp import web
from multidict import CIMultiDict

from gateway.protocol import errors
from gateway.web import api, wsserver
from gateway.web.api import JSON_CONTENT_TYPE, ApiResponse

if TYPE_CHECKING:
    from gateway.app import Gateway

log = logging.getLogger(__name__)

#: A request head longer than this is left to aiohttp (which accepts up to 1 MiB lines, like Go).
MAX_HEAD = 16 * 1024
#: Buffered input or unsent output beyond this pauses reading from the client.
MAX_BUFFER = 256 * 1024

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TARGET = re.compile(rb"[!-~]+")  # visible ASCII only
_VALUE = re.compile(rb"[\t -~]*")  # visible ASCII, space and tab only
#: Headers that make a request something only aiohttp handles (bodies, upgrades, 100-continue).
_HAND_OVER_HEADERS = frozenset(
    (b"content-length", b"transfer-encoding", b"upgrade", b"expect", b"te", b"trailer")
)
_REASONS = {s.value: s.phrase.encode() for s in HTTPStatus}


class FastRequest:
    """An HTTP request read by ``FrontProtocol``: what the API flow and auth requests use."""

    __slots__ = ("headers", "method", "raw_path", "transport")

    def __init__(
        self, method: str, raw_path: str, headers: CIMultiDict[str], transport: asyncio.Transport
    ) -> None:
        self.method = method
        self.raw_path = raw_path
        self.headers = headers
        self.transport: asyncio.Transport | None = transport

    @property
    def host(self) -> str:
        return self.headers.get("Host", "")

    @property
    def path(self) -> str:
        return self.raw_path.partition("?")[0]  # no percent-escapes on the fast path

    @property
    def scheme(self) -> str:
        transport = self.transport
        return "https" if transport is not None and transport.get_extra_info("sslcontext") else "http"

    async def read(self) -> bytes:
        return b""  # only requests without a body are taken


def parse_head(
    head: bytes, api_path: bytes, ws_path: bytes
) -> tuple[str, str, CIMultiDict[str], bool] | None:
    """(method, raw path, headers, keep-alive) of a request head (without its blank line) that the
    fast path takes, or None when aiohttp must handle the request."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or parts[2] != b"HTTP/1.1" or parts[0] not in (b"GET", b"HEAD"):
        return None
    target = parts[1]
    if not target.startswith(api_path) or _TARGET.fullmatch(target) is None:
        return None
    path = target.split(b"?", 1)[0]
    if b"%" in path or path == ws_path:
        return None  # the router compares the decoded path with wsPath; leave that to aiohttp
    headers: CIMultiDict[str] = CIMultiDict()
    keep_alive = True
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or _TOKEN.fullmatch(name) is None:
            return None
        value = value.strip(b" \t")
        if _VALUE.fullmatch(value) is None:
            return None
        lower = name.lower()
        if lower in _HAND_OVER_HEADERS:
            return None
        if lower == b"connection":
            option = value.lower()
            if option == b"close":
                keep_alive = False
            elif option != b"keep-alive":
                return None
        headers.add(name.decode("ascii"), value.decode("ascii"))
    if len(headers.getall("Host", ())) > 1:
        return None  # aiohttp answers 400, as Go's net/http does ("too many Host headers")
    return parts[0].decode("ascii"), target.decode("ascii"), headers, keep_alive


class _Date:
    """The Date header value, formatted once per second."""

    second = -1
    value = b""

    @classmethod
    def now(cls) -> bytes:
        second = int(time.time())
        if second != cls.second:
            cls.second = second
            cls.value = formatdate(second, usegmt=True).encode()
        return cls.value


def encode_response(resp: ApiResponse, head_only: bool, close: bool = False) -> bytes:
    """The response as HTTP/1.1 bytes (status line, headers, body); ValueError on a header value
    that would break the framing."""
    status = resp.status
    out = [b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, b"Unknown"))]
    for key, value in resp.headers.items():
        if "\r" in value or "\n" in value or "\r" in key or "\n" in key or ":" in key:
            raise ValueError(f"invalid header {key!r}")
        out.append(b"%s: %s\r\n" % (key.encode("latin-1"), value.encode("latin-1")))
    body = resp.body or b""
    if status != 204 and status != 304 and status >= 200:
        out.append(b"Content-Length: %d\r\n" % len(body))
    if close:
        out.append(b"Connection: close\r\n")
    out.append(b"Date: %s\r\n\r\n" % _Date.now())
    if body and not head_only:
        out.append(body)
    return b"".join(out)


class FrontProtocol(asyncio.Protocol):
    """One client connection, until it is handed to aiohttp (see the module docstring)."""

    def __init__(self, server: FrontServer) -> None:
        self._server = server
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._busy: asyncio.Task[None] | None = None  # the request being answered
        self._reading_paused = False
        self._writing_paused = False
        self._eof = False
        self._closing = False  # close once the current response is written

    # -- asyncio callbacks ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._server.front.add(self)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self._busy is None:
            self._next()
        elif len(self._buffer) > MAX_BUFFER:
            self._pause_reading()

    def eof_received(self) -> bool:
        self._eof = True
        # True keeps the transport open to answer what is buffered first; False lets it close.
        return self._busy is not None or bool(self._buffer)

    def connection_lost(self, exc: Exception | None) -> None:
        self._server.front.discard(self)
        self._transport = None

    def pause_writing(self) -> None:
        self._writing_paused = True
        self._pause_reading()

    def resume_writing(self) -> None:
        self._writing_paused = False
        if self._busy is None:
            self._next()

    # -- requests ----------------------------------------------------------------------------------

    def close(self) -> None:
        """Close when idle (at once) or after the response being written (for shutdown)."""
        self._closing = True
        if self._busy is None and self._transport is not None:
            self._transport.close()

    @property
    def busy(self) -> asyncio.Task[None] | None:
        return self._busy

    def _next(self) -> None:
        """Take the next buffered request: answer it here, or hand the connection to aiohttp."""
        transport = self._transport
        if transport is None or transport.is_closing() or self._writing_paused:
            return
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > MAX_HEAD:
                self._hand_over()
            elif self._eof or self._closing:
                transport.close()
            else:
                self._resume_reading()
            return
        head = bytes(self._buffer[:end])
        parsed = parse_head(head, self._server.api_path, self._server.ws_path)
        if parsed is None:
            websocket = wsserver.upgrade(self._server.gateway, head, transport)
            if websocket is not None:
                del self._buffer[: end + 4]
            self._hand_over(websocket)
            return
        del self._buffer[: end + 4]
        method, raw_path, headers, keep_alive = parsed
        if not keep_alive:
            self._closing = True
        self._server.fast_requests += 1
        request = FastRequest(method, raw_path, headers, transport)
        self._busy = asyncio.get_running_loop().create_task(self._answer(request, method == "HEAD"))

    async def _answer(self, request: FastRequest, head_only: bool) -> None:
        try:
            resp = await api.serve(self._server.gateway, request)
            data = encode_response(resp, head_only, self._closing)
        except Exception:
            log.exception("HTTP API request %s %s failed", request.method, request.raw_path[:200])
            data = encode_response(_internal_error(), head_only, self._closing)
        self._busy = None
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        transport.write(data)
        if self._closing:
            transport.close()
        elif self._buffer or self._eof:
            self._next()
        else:
            self._resume_reading()

    def _hand_over(self, handler: asyncio.Protocol | None = None) -> None:
        """Give the connection, with the bytes not yet answered, to aiohttp's protocol (or to
        ``handler``, a WebSocket upgraded by ``gateway.web.wsserver``)."""
        transport = self._transport
        assert transport is not None
        self._server.front.discard(self)
        self._transport = None
        if handler is None:
            handler = web.Server.__call__(self._server)
        transport.set_protocol(handler)
        handler.connection_made(transport)
        if self._reading_paused:
            transport.resume_reading()
        if self._writing_paused:
            handler.pause_writing()
        data, self._buffer = bytes(self._buffer), bytearray()
        if data:
            handler.data_received(data)
        if self._eof:
            handler.eof_received()

    def _pause_reading(self) -> None:
        if not self._reading_paused and self._transport is not None:
            self._reading_paused = True
            self._transport.pause_reading()

    def _resume_reading(self) -> None:
        if self._reading_paused and self._transport is not None and len(self._buffer) <= MAX_BUFFER:
            self._reading_paused = False
            self._transport.resume_reading()


def _internal_error() -> ApiResponse:
    headers: CIMultiDict[str] = CIMultiDict({"Content-Type": JSON_CONTENT_TYPE})
    return ApiResponse(500, headers, orjson.dumps(errors.ERR_INTERNAL_ERROR.to_dict()))


class FrontServer(web.Server):
    """aiohttp's low-level server whose connections start on ``FrontProtocol``."""

    def __init__(self, gateway: Gateway, handler: Any, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.gateway = gateway
        self.api_path = gateway.config.api_path.encode()
        self.ws_path = gateway.config.ws_path.encode()
        #: Connections still on the fast path (the ones handed over are in ``_connections``).
        self.front: set[FrontProtocol] = set()
        #: Requests answered on the fast path (for tests and curiosity).
        self.fast_requests = 0

    def __call__(self) -> Any:  # a protocol factory for loop.create_server
        return FrontProtocol(self)

    def pre_shutdown(self) -> None:
        super().pre_shutdown()
        for proto in list(self.front):
            proto.close()

    async def shutdown(self, timeout: float | None = None) -> None:
        wsserver.shutdown(self.gateway)
        busy = [task for proto in self.front if (task := proto.busy) is not None]
        if busy:
            with contextlib.suppress(Exception):
                await asyncio.wait(busy, timeout=timeout)
        await super().shutdown(timeout)
