"""WebSocket front end on aiohttp: origin check, upgrade, read loop into a ``Connection``.

Called by ``gateway.web.server`` for requests on ``wsPath`` that ``gateway.web.wsserver`` does not
serve itself (compression, header auth, unusual or bad upgrades); the parts both front ends share
(cid, connection set-up and release, request info, origin rule) live here. The transport stays thin: frames in
go to ``Connection.handle_message``; frames out are written by a sink straight to the socket.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import secrets
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import WSCloseCode, WSMsgType, web
from multidict import CIMultiDict, CIMultiDictProxy

from gateway import tracelog
from gateway.conn.connection import ClientSink, Connection
from gateway.protocol import errors, http, service
from gateway.protocol.service import RequestInfo
from gateway.telemetry import tracing
from gateway.web import meta
from gateway.web.closer import ClientSocket
from gateway.web.sink import CompressingSink, TransportSink
from gateway.web.wsreader import DirectWebSocketResponse

if TYPE_CHECKING:
    from gateway.app import Gateway

log = logging.getLogger(__name__)


#: Connection IDs are this process's random prefix and a counter (like resgate's xid, unique but not
#: secret); one getrandom() per connection showed in the HTTP request profile.
_CID_PREFIX = secrets.token_hex(5)
_cid_counter = itertools.count(secrets.randbelow(1 << 32))


def new_cid() -> str:
    """A connection ID: 20 lowercase hex digits, unique, and safe as a NATS subject token."""
    return _CID_PREFIX + format(next(_cid_counter) & 0xFFFFFFFFFF, "010x")


def origin_allowed(origin: str | None, allowed: list[str] | None) -> bool:
    """resgate's rule: "*" allows all; a missing or "null" Origin is always accepted."""
    if allowed is None or origin is None or origin == "null":
        return True
    return origin.lower() in allowed


class RequestLike(Protocol):
    """The parts of an HTTP request that auth requests carry (aiohttp's ``BaseRequest`` has them)."""

    @property
    def headers(self) -> CIMultiDictProxy[str] | CIMultiDict[str]: ...
    @property
    def host(self) -> str: ...
    @property
    def raw_path(self) -> str: ...
    @property
    def transport(self) -> asyncio.Transport | None: ...


def request_info(request: RequestLike) -> RequestInfo:
    """Headers (canonical names, Host removed), host, remote address and URI for auth requests."""
    header: dict[str, list[str]] = {}
    for key, value in request.headers.items():
        canon = http.canonical_header_key(key)
        if canon != "Host":
            header.setdefault(canon, []).append(value)
    return RequestInfo(
        header=header, host=request.host, remote_addr=remote_addr(request), uri=request.raw_path
    )


def remote_addr(request: RequestLike) -> str:
    """The client's address as resgate writes it (``host:port``, ``[v6]:port``), or ""."""
    peer = request.transport.get_extra_info("peername") if request.transport else None
    if not peer:
        return ""
    host, port = peer[0], peer[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def open_connection(gateway: Gateway, request: RequestLike, sink: ClientSink) -> tuple[Connection, Any]:
    """A new client connection for an upgrade request (cid, NATS subscription to its ``conn.<cid>.*``
    events, limits, trace parent) and its subscription handle; both WebSocket front ends call this."""
    config = gateway.config
    cid = new_cid()
    handle_sub = gateway.mq.subscribe("conn." + cid + ".*")
    trace = config.trace
    if trace:
        tracelog.connected(cid, remote_addr(request))
    conn = (tracelog.TracedConnection if trace else Connection)(
        cid=cid,
        cache=gateway.cache,
        mq=gateway.mq,
        sink=sink,
        reference_throttle=config.reference_throttle,
        info=functools.partial(request_info, request),
        count_request=gateway.metrics.ws_request,
        max_subscriptions=config.ws_max_subscriptions,
        max_pending=config.ws_max_pending_requests,
    )
    if tracing.enabled:
        conn.trace_parent = tracing.extract(request.headers)
    gateway.connections[cid] = conn
    return conn, handle_sub


def attach(gateway: Gateway, conn: Connection, sink: ClientSink) -> None:
    """Give an upgraded connection its sink (wrapped to log each frame when trace logging is on)."""
    conn.sink = tracelog.TracedSink(conn.cid, sink) if gateway.config.trace else sink


def register(gateway: Gateway, conn: Connection, socket: ClientSocket) -> None:
    """Count an upgraded connection and make it known to the closer (drain, shedding)."""
    gateway.sockets[conn.cid] = socket
    gateway.metrics.ws_current.inc()
    gateway.metrics.ws_total.inc()


def release(gateway: Gateway, conn: Connection, handle_sub: Any, *, registered: bool, reason: str) -> None:
    """Forget a connection that ended (or was refused before the upgrade: not ``registered``);
    ``reason`` says why, for the trace log."""
    if gateway.config.trace:
        tracelog.disconnected(conn.cid, reason)
    if registered:
        gateway.metrics.ws_current.dec()
        gateway.sockets.pop(conn.cid, None)
    gateway.connections.pop(conn.cid, None)
    conn.close()
    gateway.mq.unsubscribe(handle_sub)


async def handle(gateway: Gateway, request: web.BaseRequest) -> web.StreamResponse:
    """Serve one WebSocket client from upgrade to close."""
    config = gateway.config
    if not origin_allowed(request.headers.get("Origin"), config.allowed_origins):
        return web.json_response(errors.ERR_FORBIDDEN_ORIGIN.to_dict(), status=403)
    ws = DirectWebSocketResponse(
        autoping=True, max_msg_size=config.ws_max_message_size, compress=config.ws_compression
    )
    if not ws.can_prepare(request).ok:
        return web.json_response(errors.ERR_BAD_REQUEST.to_dict(), status=400)
    conn, handle_sub = open_connection(gateway, request, _BufferSink())
    cid = conn.cid
    if config.ws_header_auth_parts is not None:
        refused = await _header_auth(gateway, conn, ws, config.ws_header_auth_parts)
        if refused is not None:
            release(
                gateway, conn, handle_sub, registered=False, reason=f"upgrade refused: HTTP {refused.status}"
            )
            return refused
    ws.on_message = conn.handle_message
    await ws.prepare(request)
    transport = request.transport
    assert transport is not None
    sink: TransportSink | CompressingSink
    limit = config.client_outbox_limit
    sink = (
        CompressingSink(ws, cid=cid, limit=limit, on_slow_consumer=gateway.metrics.slow_consumers.inc)
        if ws.compress
        else TransportSink(transport, cid=cid, flusher=gateway.flusher, limit=limit)
    )
    early = conn.sink
    attach(gateway, conn, sink)
    if isinstance(early, _BufferSink):
        for frame in early.frames:  # answers to messages that arrived while the upgrade finished
            conn.sink.send(frame)
    register(gateway, conn, ws)
    try:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT or msg.type == WSMsgType.BINARY:
                conn.handle_message(msg.data)
    finally:
        release(gateway, conn, handle_sub, registered=True, reason=_ended(ws) if config.trace else "")
        ws.detach()
        if isinstance(sink, CompressingSink):
            sink.close()
    return ws


def _ended(ws: DirectWebSocketResponse) -> str:
    """Why an aiohttp WebSocket's read loop ended, in the trace log's words."""
    if ws.server_close is not None:
        return tracelog.close_reason(ws.server_close, "closed by the server")
    code = ws.close_code
    if code is None or code == WSCloseCode.ABNORMAL_CLOSURE:
        return tracelog.LOST  # (aiohttp's exception then is its own failed close frame)
    exc = ws.exception()
    return tracelog.close_reason(code, "" if exc is None else str(exc) or type(exc).__name__)


class _BufferSink:
    """Sink of a connection that is not upgraded yet: keeps frames for the real sink."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def send(self, frame: bytes) -> None:
        self.frames.append(frame)


async def _header_auth(
    gateway: Gateway, conn: Connection, ws: web.WebSocketResponse, parts: tuple[str, str]
) -> web.StreamResponse | None:
    """wsHeaderAuth: ask the service before upgrading; its meta may refuse or add headers.

    Returns the response that refuses the upgrade, or None to go on (auth errors are ignored).
    """
    reply = await conn.header_auth(*parts)
    if reply is None or reply.meta is None:
        return None
    rid, method = parts
    header = meta.merge({}, reply.meta.header)
    kind = meta.status_kind(reply.meta.status)
    if kind == "invalid":
        log.error("Invalid meta status %d in response to %s.%s", reply.meta.status, rid, method)
    if kind in ("none", "invalid"):
        for key, values in header.items():
            ws.headers.popall(key, None)
            for value in values:
                ws.headers.add(key, value)
        return None
    return _meta_response(gateway, reply, header)


def _meta_response(gateway: Gateway, reply: service.Reply, header: meta.Header) -> web.Response:
    """The refusal of an upgrade whose header-auth reply carried a 3xx/4xx/5xx meta status."""
    assert reply.meta is not None
    status = reply.meta.status
    resp = web.Response(status=status)
    for key, values in header.items():
        for value in values:
            resp.headers.add(key, value)
    if status < 400:
        location = meta.redirect_location(header, reply.resource, gateway.config.api_path)
        if location is not None:
            resp.headers["Location"] = location
        return resp
    resp.content_type = "application/json"
    resp.charset = "utf-8"
    resp.body = service.encode(meta.status_error(status, reply.error).to_dict())
    return resp
