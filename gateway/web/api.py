"""HTTP API front end: web resources under ``apiPath`` (GET/HEAD, POST calls, mapped PUT/PATCH/DELETE).

Called by ``gateway.web.server`` (aiohttp requests) and ``gateway.web.fasthttp`` (plain GET/HEAD
requests read straight off the socket) for every request whose path starts with ``apiPath``; both
hand in an object with ``method``, ``raw_path``, ``headers`` and ``read()`` and get an
``ApiResponse`` back, which they write in their own way. Each request runs on a temporary
``Connection`` (own cid, latest protocol, ``isHttp`` requests, no token) that is
closed when the response is built. Rules: res-protocol.md §4 (routing, URL mapping, flows, status
codes, CORS, headerAuth) and §3.9 (meta, merged by ``web.meta``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp
import orjson
from aiohttp import web
from multidict import CIMultiDict

from gateway import constants
from gateway.conn.connection import Connection
from gateway.conn.subscription import FAILED, READY
from gateway.protocol import errors, http, service
from gateway.protocol import rid as ridlib
from gateway.protocol.errors import ResError
from gateway.telemetry import tracing
from gateway.web import meta
from gateway.web.ws import RequestLike, new_cid, request_info

if TYPE_CHECKING:
    from gateway.app import Gateway

log = logging.getLogger(__name__)

Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


class ApiRequest(RequestLike, Protocol):
    """What the API flow reads of an HTTP request (aiohttp's ``BaseRequest`` has all of it)."""

    @property
    def method(self) -> str: ...
    async def read(self) -> bytes: ...


class ApiResponse:
    """A finished API response: status, headers (CORS, meta, content type, location) and body."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: CIMultiDict[str], body: bytes | None) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def to_aiohttp(self) -> web.Response:
        return web.Response(status=self.status, body=self.body, headers=self.headers)


#: Content type of every JSON body the API writes (resources, call results, errors).
JSON_CONTENT_TYPE = "application/json; charset=utf-8"
#: Methods always allowed in a CORS preflight answer; mapped PUT/DELETE/PATCH are appended.
_BASE_METHODS = "GET, HEAD, OPTIONS, POST"
#: Answer to a request body over constants.HTTP_MAX_BODY_BYTES (resgate has no limit).
ERR_BODY_TOO_LARGE = ResError(errors.BAD_REQUEST, "Error reading request body: too large")
#: JSON insignificant whitespace: a body of only these bytes means "no params".
_JSON_WS = b" \t\r\n"


def handler(gateway: Gateway) -> Handler:
    """The API request handler for aiohttp (``server.make_server``)."""

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        return (await serve(gateway, request)).to_aiohttp()

    return handle


async def serve(gateway: Gateway, request: ApiRequest) -> ApiResponse:
    """Answer one API request (in an ``HTTP <verb>`` span when tracing is on); both front ends
    call this."""
    if tracing.enabled:
        resp = await tracing.http_request(request, _ApiRequest(gateway, request).serve)
    else:
        resp = await _ApiRequest(gateway, request).serve()
    gateway.metrics.http_response(resp.status)
    return resp


class _NullSink:
    """HTTP connections never send WebSocket frames; anything written is dropped."""

    def send(self, frame: bytes) -> None:
        pass


class _Direct(Exception):
    """Carries a response that ends the request early (meta status, access outcome)."""

    def __init__(self, response: ApiResponse) -> None:
        super().__init__()
        self.response = response


class _ApiRequest:
    """One API request: CORS, routing, the service flow and the response with merged meta headers."""

    def __init__(self, gateway: Gateway, request: ApiRequest) -> None:
        self.gateway = gateway
        self.config = gateway.config
        self.request = request
        self.cors: CIMultiDict[str] = CIMultiDict()
        self.header: meta.Header = {}  # merged meta headers (auth < access < call)
        self.conn: Connection | None = None
        self._conn_sub: Any = None
        self._registered = False

    # -- entry -------------------------------------------------------------------------------------

    async def serve(self) -> ApiResponse:
        forbidden = self._cors()
        if self.request.method == "OPTIONS":
            return self._options()
        if forbidden:
            return self._error(errors.ERR_FORBIDDEN_ORIGIN)
        try:
            return await self._dispatch()
        except _Direct as direct:
            return direct.response
        except ResError as err:
            return self._error(err)
        except Exception:
            log.exception("HTTP API request %s %s failed", self.request.method, self.request.raw_path[:200])
            return self._error(errors.ERR_INTERNAL_ERROR)
        finally:
            self._close()

    async def _dispatch(self) -> ApiResponse:
        if self.gateway.stopping:
            return self._error(errors.ERR_SERVICE_UNAVAILABLE)
        api_path = self.config.api_path
        path, _, raw_query = self.request.raw_path.partition("?")
        path = path.partition("#")[0]
        if len(path) > len(api_path) and path.endswith("/"):
            return self._error(errors.ERR_NOT_FOUND)
        rest = path[len(api_path) :]
        method = self.request.method
        mapped = {
            "PUT": self.config.put_method,
            "DELETE": self.config.delete_method,
            "PATCH": self.config.patch_method,
        }.get(method)
        if method in ("GET", "HEAD", "POST") or mapped:
            self.gateway.metrics.http_request(method)
        if method in ("GET", "HEAD"):
            rid = http.path_to_rid(rest, raw_query)
            if rid is None:
                return self._error(errors.ERR_NOT_FOUND)
            return await self._get(rid)
        if method == "POST":
            target = http.path_to_rid_action(rest, raw_query)
            if target is None:
                return self._error(errors.ERR_NOT_FOUND)
            return await self._call(target[0], target[1], mapped=False)
        if not mapped:
            return self._error(errors.ERR_METHOD_NOT_ALLOWED)
        rid = http.path_to_rid(rest, raw_query)
        if rid is None:
            return self._error(errors.ERR_NOT_FOUND)
        return await self._call(rid, mapped, mapped=True)

    # -- CORS and OPTIONS --------------------------------------------------------------------------

    def _cors(self) -> bool:
        """Fill the CORS headers of every response; True if the request's Origin is refused."""
        if self.config.header_auth is not None:
            self.cors["Access-Control-Allow-Credentials"] = "true"
        allowed = self.config.allowed_origins
        if allowed is None:
            self.cors["Access-Control-Allow-Origin"] = "*"
            return False
        origin = self.request.headers.get("Origin")
        if origin is None or origin == "null":
            return False
        self.cors["Vary"] = "Origin"
        if origin.lower() in allowed:
            self.cors["Access-Control-Allow-Origin"] = origin
            return False
        self.cors["Access-Control-Allow-Origin"] = allowed[0]
        return True

    def _options(self) -> ApiResponse:
        methods = _BASE_METHODS
        for name, mapped in (
            ("PUT", self.config.put_method),
            ("DELETE", self.config.delete_method),
            ("PATCH", self.config.patch_method),
        ):
            if mapped:
                methods += ", " + name
        headers = CIMultiDict(self.cors)
        headers["Access-Control-Allow-Methods"] = methods
        requested = self.request.headers.getall("Access-Control-Request-Headers", [])
        if requested:
            headers["Access-Control-Allow-Headers"] = ", ".join(requested)
        return ApiResponse(200, headers, None)

    # -- flows -------------------------------------------------------------------------------------

    async def _get(self, rid: str) -> ApiResponse:
        conn = self._open()
        await self._header_auth()
        name, query = ridlib.split(ridlib.expand_cid(rid, conn.cid))
        # A resource already in the cache needs no subscription: only the access check waits, and
        # the body is encoded straight from the cache. Otherwise it is loaded (with its references)
        # while access is checked.
        cached = conn.cache.peek(name, query) is not None
        sub = None if cached else conn.add_direct(rid)
        access, err, access_meta = await conn.access_with_meta(name, query)
        self._apply_meta(access_meta, err, None)
        if err is not None:
            return self._error(err)
        if access is None or not access.get:
            return self._error(errors.ERR_ACCESS_DENIED)
        body = self._encode(rid, _cache_lookup(conn)) if sub is None else None
        if body is None:
            token = conn.token
            if sub is None:
                sub = conn.add_direct(rid)  # evicted, or references not cached, meanwhile
            await conn.loaded_future([sub])
            if sub.state != READY:
                return self._error(sub.err or errors.ERR_NOT_FOUND)
            if conn.token is not token:  # revoked or replaced while loading: ask again
                access, err, _ = await conn.access_with_meta(name, query)
                if err is not None:
                    return self._error(err)
                if access is None or not access.get:
                    return self._error(errors.ERR_ACCESS_DENIED)
            body = self._encode(rid, _lookup(conn))
        assert body is not None
        return self._respond(200, body, json=True)

    def _encode(self, rid: str, lookup: http.Lookup) -> bytes | None:
        """The response body in the configured encoding; None when the lookup misses a resource."""
        try:
            if self.config.api_encoding == "jsonflat":
                return orjson.dumps(http.encode_jsonflat(rid, lookup, self.config.api_path))
            return orjson.dumps(http.encode_json(rid, lookup, self.config.api_path))
        except _NotCached:
            return None

    async def _call(self, rid: str, method: str, *, mapped: bool) -> ApiResponse:
        params = _params(await self._read_body())
        conn = self._open()
        await self._header_auth()
        name, query = ridlib.split(ridlib.expand_cid(rid, conn.cid))
        reply: service.Reply | None = None
        access, err, access_meta = await conn.access_with_meta(name, query)
        self._apply_meta(access_meta, err, None)
        if err is None and (access is None or not access.can_call(method)):
            err = errors.ERR_ACCESS_DENIED
        if err is None:
            payload = service.call_payload(conn.cid, conn.token, params, query, True)
            data, err = await conn.request("call." + name + "." + method, payload)
        if err is None:
            try:
                reply = service.decode_reply(data)
            except ResError as exc:
                err = exc
            else:
                self._apply_meta(reply.meta, reply.error, reply.resource)
                err = reply.error
        if err is not None:
            if mapped and err.code == errors.METHOD_NOT_FOUND:
                err = errors.ERR_METHOD_NOT_ALLOWED
            return self._error(err)
        assert reply is not None
        if reply.resource is not None:
            return self._respond(200, location=http.rid_to_path(reply.resource, self.config.api_path))
        if method == "new":
            new_rid = service.legacy_new_rid(reply.result)
            if new_rid is not None and ridlib.is_valid_rid(new_rid, allow_query=True):
                conn.cache.deprecate(name, service.LEGACY_NEW_RESULT)
                return self._respond(200, location=http.rid_to_path(new_rid, self.config.api_path))
        if reply.result is None:
            return self._respond(204)
        return self._respond(200, orjson.dumps(reply.result), json=True)

    async def _read_body(self) -> bytes:
        try:
            return await self.request.read()
        except web.HTTPRequestEntityTooLarge:
            raise _Direct(self._error(ERR_BODY_TOO_LARGE, 413)) from None
        except (ConnectionError, aiohttp.ClientPayloadError) as exc:
            raise ResError(errors.BAD_REQUEST, f"Error reading request body: {exc}") from None

    async def _header_auth(self) -> None:
        """Send the ``headerAuth`` request (if configured); its errors are ignored, its meta kept."""
        parts = self.config.header_auth_parts
        if parts is None:
            return
        conn = self.conn
        assert conn is not None
        # Registered and subscribed first, so a token event sent before the reply reaches us.
        self.gateway.connections[conn.cid] = conn
        self._registered = True
        self._conn_sub = self.gateway.mq.subscribe("conn." + conn.cid + ".*")
        reply = await conn.header_auth(*parts)
        if reply is not None:
            self._apply_meta(reply.meta, reply.error, reply.resource)

    # -- meta --------------------------------------------------------------------------------------

    def _apply_meta(self, m: service.Meta | None, err: ResError | None, resource: str | None) -> None:
        """Merge a response's meta headers; raise ``_Direct`` if its status answers the request."""
        if m is None:
            return
        meta.merge(self.header, m.header)
        kind = meta.status_kind(m.status)
        if kind == "invalid":
            log.error("Invalid meta status %d in HTTP response; ignored", m.status)
        elif kind == "redirect":
            location = meta.redirect_location(self.header, resource, self.config.api_path)
            raise _Direct(self._respond(m.status, location=location))
        elif kind == "error":
            raise _Direct(self._error(meta.status_error(m.status, err), m.status))

    # -- connection --------------------------------------------------------------------------------

    def _open(self) -> Connection:
        self.conn = Connection(
            cid=new_cid(),
            cache=self.gateway.cache,
            mq=self.gateway.mq,
            sink=_NullSink(),
            reference_throttle=self.config.reference_throttle,
            # Only auth requests carry the request's headers; canonicalising them costs, so skip it
            # when no headerAuth will be sent.
            info=request_info(self.request) if self.config.header_auth is not None else None,
            protocol=constants.PROTOCOL_LATEST,
            is_http=True,
        )
        return self.conn

    def _close(self) -> None:
        conn = self.conn
        if conn is None:
            return
        self.conn = None
        if self._registered and self.gateway.connections.get(conn.cid) is conn:
            del self.gateway.connections[conn.cid]
        if self._conn_sub is not None:
            self.gateway.mq.unsubscribe(self._conn_sub)
            self._conn_sub = None
        conn.close()

    # -- responses ---------------------------------------------------------------------------------

    def _respond(
        self, status: int, body: bytes | None = None, *, json: bool = False, location: str | None = None
    ) -> ApiResponse:
        headers: CIMultiDict[str] = CIMultiDict()
        for key, values in self.header.items():
            for value in values:
                headers.add(key, value)
        headers.update(self.cors)
        if json:
            headers["Content-Type"] = JSON_CONTENT_TYPE
        if location is not None:
            headers["Location"] = location
        return ApiResponse(status, headers, body)

    def _error(self, err: ResError, status: int | None = None) -> ApiResponse:
        code = status if status is not None else http.status_for_code(err.code)
        return self._respond(code, orjson.dumps(err.to_dict()), json=True)


def _params(body: bytes) -> Any:
    """Call params from a request body: ``None`` when blank, else the JSON text kept verbatim."""
    if not body.strip(_JSON_WS):
        return None
    try:
        orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ResError(errors.BAD_REQUEST, f"Error decoding request body: {exc}") from None
    return orjson.Fragment(body.strip(_JSON_WS))


class _NotCached(Exception):
    """A resource of the tree is not in the cache (the slow path loads it)."""


def _cache_lookup(conn: Connection) -> http.Lookup:
    """Resolve rids straight from the shared cache; raises ``_NotCached`` for anything missing."""

    def lookup(rid: str) -> http.Resource:
        name, query = ridlib.split(ridlib.expand_cid(rid, conn.cid))
        res = conn.cache.peek(name, query)
        if res is None:
            raise _NotCached(rid)
        return ("model", res.data) if res.is_model else ("collection", res.data)

    return lookup


def _lookup(conn: Connection) -> http.Lookup:
    """Resolve rids of the loaded tree from the connection's subscriptions (for the encoders)."""

    def lookup(rid: str) -> http.Resource:
        sub = conn.subs.get(rid)
        if sub is None:
            return ("error", errors.ERR_NOT_FOUND)
        if sub.state == READY:
            if sub.is_model:
                return ("model", sub.data)
            return ("collection", sub.data)
        if sub.state == FAILED:
            return ("error", sub.err or errors.ERR_NOT_FOUND)
        return ("error", errors.ERR_NOT_FOUND)

    return lookup
