"""Client listener protocol: plain API GET/HEAD requests without aiohttp, everything else with it.

aiohttp's request machinery (request and response objects, a task loop per connection, header
multidicts, writer) costs about 45 µs of CPU per request, which is more than the rest of a cached
GET. ``FrontProtocol`` is the protocol of every client connection. It frames request heads itself
(up to the first blank line) and has llhttp (``httptools``, the parser of Node.js and uvicorn, and
the one aiohttp uses) read each head with one parser per connection. ``HeadReader.read`` decides
what happens to the request (``Take``):

- ``SERVE``: an HTTP/1.1 ``GET`` or ``HEAD`` under ``apiPath`` with exactly one ``Host``, no body,
  no upgrade and only plain ASCII header values goes to the API flow (``gateway.web.api.serve``)
  and its response is written straight to the socket;
- ``REFUSE``: a head llhttp refuses, or an HTTP/1.1 request without ``Host`` or with two, gets the
  400 response Go's net/http (resgate) sends, byte for byte, and the connection is closed;
- ``WEBSOCKET``: a well-formed upgrade on ``wsPath`` whose request line is exactly
  ``GET <target> HTTP/1.1``: ``FrontProtocol._hand_over_websocket`` gives the target and headers
  the reader parsed to ``gateway.web.wsserver`` (the head is not read again), which serves a plain
  upgrade and leaves the rest to aiohttp;
- ``AIOHTTP``: anything else (POST and other methods, other paths, HTTP/1.0, bodies, odd headers,
  heads longer than ``MAX_HEAD``): the connection is handed to aiohttp for good. aiohttp's
  protocol gets the transport and the bytes of that request and of everything after it, so it sees
  exactly what the client sent.

Requests on one connection are answered one at a time, in order. Pipelined requests wait in the
input buffer (reading pauses past ``MAX_BUFFER``). Unsent output is bounded by
``clientOutboxLimit`` as for WebSocket clients: a client that pipelines requests and does not read
the answers is disconnected as a slow consumer (``FrontProtocol._check_outbox``).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import re
import time
from email.utils import formatdate
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, cast

import httptools
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
#: Buffered input beyond this pauses reading from the client.
MAX_BUFFER = 256 * 1024

_TARGET = re.compile(rb"[!-~]+")  # visible ASCII only
_HOST = re.compile(rb"[-A-Za-z0-9.:\[\]_~!$&'()*+,;=]*")  # what a Host needs; the rest goes to aiohttp
#: Headers that make a request something only aiohttp handles (bodies, 100-continue).
_HAND_OVER_HEADERS = frozenset((b"content-length", b"transfer-encoding", b"expect", b"te", b"trailer"))
_REASONS = {s.value: s.phrase.encode() for s in HTTPStatus}


def _go_bad_request(why: str = "") -> bytes:
    """The response of Go's net/http (so resgate's) to a request it cannot read, byte for byte:
    no Content-Length, ``Connection: close``, the reason in the status line and the body."""
    text = f"400 Bad Request: {why}" if why else "400 Bad Request"
    head = f"HTTP/1.1 {text}\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"
    return (head + text).encode()


#: Go's answers: a head it cannot parse or with two Host headers, and an HTTP/1.1 one without Host.
BAD_REQUEST = _go_bad_request()
MISSING_HOST = _go_bad_request("missing required Host header")


class Take(enum.Enum):
    """What the fast path does with a request head (``HeadReader.read``)."""

    SERVE = enum.auto()  # answer it here
    REFUSE = enum.auto()  # answer 400 (``HeadReader.refusal``) and close
    WEBSOCKET = enum.auto()  # a WebSocket upgrade on wsPath: hand the connection over
    AIOHTTP = enum.auto()  # anything else: hand the connection to aiohttp


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


class HeadReader:
    """Reads request heads with one llhttp parser (the callbacks below are httptools').

    ``read`` gets a complete head, from the request line to its blank line, as ``FrontProtocol``
    framed it. llhttp's strict request mode (the default of httptools) validates the framing: the
    request line, header names and values, and line endings; a head the fast path serves must
    also end exactly where llhttp ends the message, so the two can never disagree about where the
    next request starts.
    """

    __slots__ = (
        "_api_path",
        "_complete",
        "_hosts",
        "_odd",
        "_parser",
        "_upgrade",
        "_ws_path",
        "headers",
        "keep_alive",
        "method",
        "refusal",
        "target",
    )

    def __init__(self, api_path: bytes, ws_path: bytes) -> None:
        self._api_path = api_path
        self._ws_path = ws_path
        self._parser = httptools.HttpRequestParser(self)
        self._reset()
        self.refusal = BAD_REQUEST

    def _reset(self) -> None:
        self.target = b""
        self.method = ""
        self.headers: CIMultiDict[str] = CIMultiDict()
        self.keep_alive = True
        self._hosts = 0
        self._odd = False  # something the fast path (and a WebSocket upgrade) leaves to aiohttp
        self._upgrade = False  # an Upgrade header or a Connection: upgrade
        self._complete = False

    # -- httptools callbacks -----------------------------------------------------------------------

    def on_url(self, url: bytes) -> None:
        self.target += url

    def on_header(self, name: bytes, value: bytes) -> None:
        value = value.rstrip(b" \t")  # llhttp strips the whitespace before a value, not after
        lower = name.lower()
        if lower == b"host":
            self._hosts += 1
            if _HOST.fullmatch(value) is None:
                self._odd = True
        elif lower in _HAND_OVER_HEADERS:
            self._odd = True
        elif lower == b"upgrade" or (lower == b"connection" and b"upgrade" in value.lower()):
            self._upgrade = True
        if not value.isascii():
            self._odd = True  # aiohttp decodes obs-text as UTF-8; leave it to aiohttp
        else:
            self.headers.add(name.decode("ascii"), value.decode("ascii"))

    def on_headers_complete(self) -> None:
        parser = self._parser
        self.method = parser.get_method().decode("ascii")
        self.keep_alive = parser.should_keep_alive()
        if parser.get_http_version() != "1.1":
            self._odd = True

    def on_message_complete(self) -> None:
        self._complete = True

    # -- the decision ------------------------------------------------------------------------------

    def read(self, head: bytes) -> Take:
        """What to do with the request whose complete head (blank line included) is ``head``.
        After anything but ``SERVE`` the connection leaves the fast path and the reader is spent."""
        self._reset()
        try:
            self._parser.feed_data(head)
        except httptools.HttpParserUpgrade:
            pass  # llhttp stops at an upgrade's head: the checks below hand it over
        except httptools.HttpParserError:
            self.refusal = BAD_REQUEST
            return Take.REFUSE
        if self._hosts > 1 or (self._hosts == 0 and self._parser.get_http_version() == "1.1"):
            self.refusal = MISSING_HOST if self._hosts == 0 else BAD_REQUEST  # as Go (resgate)
            return Take.REFUSE
        path = self.target.partition(b"?")[0]
        if self._odd or not self._complete:  # a body follows (or llhttp read the head differently)
            return Take.AIOHTTP
        if self._upgrade:
            # A GET upgrade on wsPath whose request line is exactly as written here (llhttp also takes
            # runs of spaces; those stay aiohttp's); gateway.web.wshandshake checks its headers.
            plain = path == self._ws_path and head.startswith(b"GET %s HTTP/1.1\r\n" % self.target)
            return Take.WEBSOCKET if plain else Take.AIOHTTP
        if (
            self.method not in ("GET", "HEAD")
            or not self.target.startswith(self._api_path)
            or _TARGET.fullmatch(self.target) is None
            or b"%" in path  # the router compares the decoded path with wsPath; leave it to aiohttp
            or path == self._ws_path
        ):
            return Take.AIOHTTP
        return Take.SERVE

    def request(self, transport: asyncio.Transport) -> FastRequest:
        return FastRequest(self.method, self.target.decode("ascii"), self.headers, transport)

    def close(self) -> None:
        """Read no more heads (the connection is closed or handed over). The parser holds this
        reader's callbacks: without it, reference counting frees the reader now, where the cycle
        would wait for the garbage collector. ``read`` must not be called after this."""
        if hasattr(self, "_parser"):  # (closed once only: a slot deleted twice raises)
            del self._parser


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
        self._reader = HeadReader(server.api_path, server.ws_path)
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._busy: asyncio.Task[None] | None = None  # the request being answered
        self._reading_paused = False
        self._writing_paused = False
        self._eof = False
        self._closing = False  # close once the current response is written
        #: The largest response written since the client last had everything read, allowed on top
        #: of the outbox limit (as in ``gateway.web.sink.TransportSink``).
        self._big = 0

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
        self._reader.close()

    def pause_writing(self) -> None:
        # Pipelined requests are still answered: unsent output is bounded by the outbox limit
        # (_check_outbox), not by the transport's high-water mark.
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False

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
        """Take the next buffered request: answer it here, refuse it, or hand the connection over."""
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        buffer = self._buffer
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(buffer) > MAX_HEAD:
                self._hand_over()
            elif self._eof or self._closing:
                transport.close()
            elif b"\n\n" in buffer or b"\r\r" in buffer or b"\n\r\n" in buffer:
                self._refuse(BAD_REQUEST)  # an end of head llhttp refuses: do not wait for more
            else:
                self._resume_reading()
            return
        reader = self._reader
        take = reader.read(bytes(buffer[: end + 4]))
        if take is Take.SERVE:
            del buffer[: end + 4]
            if not reader.keep_alive:
                self._closing = True
            self._server.fast_requests += 1
            answer = self._answer(reader.request(transport), reader.method == "HEAD")
            self._busy = asyncio.get_running_loop().create_task(answer)
        elif take is Take.REFUSE:
            self._refuse(reader.refusal)
        elif take is Take.WEBSOCKET:
            self._hand_over_websocket(end)
        else:
            self._hand_over()

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
        elif self._check_outbox(transport, len(data)):
            if self._buffer or self._eof:
                self._next()
            else:
                self._resume_reading()

    def _check_outbox(self, transport: asyncio.Transport, written: int) -> bool:
        """Whether the client keeps up: False (and the connection aborted) when its unread output
        exceeds ``clientOutboxLimit`` plus the largest response since it last had everything read."""
        unread = transport.get_write_buffer_size()
        if not unread:
            self._big = 0
            return True
        self._big = max(self._big, written)
        limit = self._server.outbox_limit
        if unread <= limit + self._big:
            return True
        peer = transport.get_extra_info("peername")
        log.warning(
            "[HTTP %s] Slow consumer: %d bytes unread (limit %d), disconnecting", _peer(peer), unread, limit
        )
        self._server.gateway.metrics.slow_consumers.inc()
        self._buffer.clear()
        transport.abort()  # no close frame in HTTP; a client that does not read would not take it
        return False

    def _refuse(self, response: bytes) -> None:
        """Answer a request the fast path cannot read as Go's net/http does, and close."""
        transport = self._transport
        assert transport is not None
        self._buffer.clear()
        self._closing = True
        transport.write(response)
        transport.close()

    def _hand_over_websocket(self, end: int) -> None:
        """A WebSocket upgrade on wsPath (``Take.WEBSOCKET``), its head the first ``end`` bytes of the
        buffer: ``gateway.web.wsserver`` serves a plain one from what the reader parsed; anything it
        does not take goes to aiohttp with the exact bytes of the request."""
        transport = self._transport
        assert transport is not None
        reader = self._reader  # the head is parsed once: the handshake takes what the reader read
        target = reader.target.decode("ascii")  # llhttp's strict URL is visible ASCII
        websocket = wsserver.upgrade(self._server.gateway, target, reader.headers, transport)
        if websocket is not None:
            del self._buffer[: end + 4]
        self._hand_over(websocket)

    def _hand_over(self, handler: asyncio.Protocol | None = None) -> None:
        """Give the connection, with the bytes not yet answered, to aiohttp's protocol (or to
        ``handler``, a WebSocket upgraded by ``gateway.web.wsserver``)."""
        transport = self._transport
        assert transport is not None
        self._server.front.discard(self)
        self._transport = None
        self._reader.close()
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


def _peer(peer: object) -> str:
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer)


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
        self.outbox_limit = gateway.config.client_outbox_limit
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
