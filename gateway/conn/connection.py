"""One client connection: its subscriptions, token and request handling (resgate's wsConn).

Created by the WebSocket front end (and, for each API request, by the HTTP front end) and kept in
``gateway.conn.registry``. Requests are parsed here and answered through the ``ClientSink`` the
transport gives; the protocol work is synchronous, and only waiting for replies happens in a task
per request, so requests are handled in the order they arrive.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

from gateway import constants
from gateway.cache.cache import Cache
from gateway.cache.throttle import UNLIMITED, Throttle
from gateway.conn import graph
from gateway.conn.subscription import DELETED, FAILED, LOADING, READY, ClientSub
from gateway.mq.base import MQ
from gateway.protocol import client, errors, service, wsframe
from gateway.protocol import rid as ridlib
from gateway.protocol.errors import ResError
from gateway.protocol.service import Access, RequestInfo
from gateway.telemetry import tracing

log = logging.getLogger(__name__)


class ClientSink(Protocol):
    """Where a connection's outgoing WebSocket frames go."""

    def send(self, frame: bytes) -> None: ...


AccessReply = tuple[Access | None, ResError | None]
AccessWithMeta = tuple[Access | None, ResError | None, service.Meta | None]


class _WhenLoaded:
    """Re-checks ``roots`` each time a subscription they wait for ends loading, then calls back.
    An object rather than a closure that re-registers itself: such a closure is a reference cycle,
    and one per subscribe left the cyclic garbage collector a pile of closures in subscribe storms."""

    __slots__ = ("callback", "loop", "roots", "subs")

    def __init__(
        self,
        subs: dict[str, ClientSub],
        roots: list[ClientSub],
        callback: Callable[[], None],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.subs = subs
        self.roots = roots
        self.callback = callback
        self.loop = loop

    def __call__(self) -> None:
        pending = graph.first_loading(self.subs, self.roots)
        if pending is None:
            self.loop.call_soon(self.callback)
        else:
            pending.listeners.append(self)


class _Subscribing:
    """A subscribe or get request between its access request and its answer (``Connection.
    _finish_subscribe_now``). One object with methods rather than three closures over the request:
    a subscribe storm keeps thousands in flight, and each closure, its cells and its tuple are
    objects that the allocator makes and the garbage collector walks while they wait."""

    __slots__ = ("conn", "keep", "req_id", "sub")

    def __init__(self, conn: Connection, req_id: int, sub: ClientSub, keep: bool) -> None:
        self.conn = conn
        self.req_id = req_id
        self.sub = sub
        self.keep = keep

    def on_access(self, access: Access | None, err: ResError | None) -> None:
        if err is None and (access is None or not access.get):
            err = errors.ERR_ACCESS_DENIED
        if err is not None:
            self.fail(err)
        else:
            self.conn.when_loaded([self.sub], self.on_loaded)

    def on_loaded(self) -> None:
        sub, conn = self.sub, self.conn
        if sub.state != READY:
            self.fail(sub.err or errors.ERR_NOT_FOUND)
            return
        conn._result(self.req_id, conn.resource_set([sub]))
        if not self.keep:
            conn.remove_direct(sub)

    def fail(self, err: ResError) -> None:
        self.conn.remove_direct(self.sub)
        self.conn._error(self.req_id, err)


class Connection:
    """State and request handling of one client connection."""

    def __init__(
        self,
        *,
        cid: str,
        cache: Cache,
        mq: MQ,
        sink: ClientSink,
        reference_throttle: int = 0,
        info: RequestInfo | Callable[[], RequestInfo] | None = None,
        protocol: int = constants.LEGACY_PROTOCOL,
        is_http: bool = False,
        count_request: Callable[[str], None] | None = None,
        max_subscriptions: int = constants.DEFAULT_WS_MAX_SUBSCRIPTIONS,
        max_pending: int = constants.DEFAULT_WS_MAX_PENDING_REQUESTS,
    ) -> None:
        self.cid = cid
        self.cache = cache
        self.mq = mq
        self.sink = sink
        self._info = info
        self.protocol = protocol
        self.is_http = is_http
        self.reference_throttle = reference_throttle
        self.token: Any = None
        self._prefix_token: Any = None
        self._prefix = b""
        self.token_set = False  # resgate re-checks access on token change only once one was set
        self.tid: str | None = None
        self.subs: dict[str, ClientSub] = {}
        self.closed = False
        self.count_request = count_request or _ignore
        #: Limits on what this client can make the gateway hold (wsMaxSubscriptions,
        #: wsMaxPendingRequests); ``pending`` counts requests not answered yet.
        self.max_subscriptions = max_subscriptions
        self.max_pending = max_pending
        self.pending = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        #: OpenTelemetry context of the WebSocket upgrade request (set by gateway.web.ws when tracing).
        self.trace_parent: Any = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop serving this connection. Kept: on Python 3.11 every
        ``asyncio.get_running_loop()`` is a getpid() system call (5 % of a subscribe storm)."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def request_prefix(self) -> bytes:
        """The start of this connection's access and call requests (cid and token), encoded once
        per token rather than per request."""
        if not self._prefix or self.token is not self._prefix_token:
            self._prefix = service.request_prefix(self.cid, self.token)
            self._prefix_token = self.token
        return self._prefix

    @property
    def info(self) -> RequestInfo | None:
        """The upgrade request's headers, host, remote address and URI, for auth requests. Built at
        the first auth request (most connections never make one: it costs a dict of canonical
        header names per connection)."""
        if callable(self._info):
            self._info = self._info()
        return self._info

    @property
    def tasks(self) -> list[asyncio.Task[None]]:
        """Requests still being served."""
        return list(self._tasks)

    @property
    def protocol(self) -> int:
        """The client's RES protocol version as an integer (1.2.3 -> 1002003)."""
        return self._protocol

    @protocol.setter
    def protocol(self, version: int) -> None:
        self._protocol = version
        #: Whether soft references and data values are rendered for clients older than 1.2.1.
        self.legacy = version < constants.PROTOCOL_SOFT_REFS

    # -- output ----------------------------------------------------------------------------------

    def send(self, frame: bytes) -> None:
        if not self.closed:
            self.sink.send(frame)

    def send_event(self, name: str, data: Any) -> None:
        self.send(wsframe.text(client.event(name, data)))

    def _result(self, req_id: int, value: Any) -> None:
        self.pending -= 1
        if not self.closed:  # send, inlined: every request ends here
            self.sink.send(wsframe.text(client.result(req_id, value)))

    def _error(self, req_id: int, err: ResError) -> None:
        self.pending -= 1
        self.send(wsframe.text(client.error(req_id, err)))

    # -- requests ----------------------------------------------------------------------------------

    def handle_message(self, data: bytes | str) -> None:
        """Handle one client frame; malformed frames are ignored as resgate does."""
        req = client.parse_request(data)
        if req is None:
            return
        if self.pending >= self.max_pending:
            # Not counted: this answer is the only thing the request costs.
            self.send(wsframe.text(client.error(req.id, errors.ERR_REQUEST_LIMIT_EXCEEDED)))
            return
        self.pending += 1  # every counted request is answered once, by _result or _error
        parsed = ridlib.parse_method(req.method)
        if parsed is None:
            self._error(req.id, errors.ERR_INVALID_REQUEST)
            return
        if req.params is not client.MISSING and client.too_deep(data, req.params):
            self._error(req.id, errors.ERR_INVALID_PARAMS)
            return
        action = parsed.action
        if action != "version":
            self.count_request(action)
        if tracing.enabled:
            tracing.ws_request(self, req, parsed)
            return
        self.dispatch(req, parsed)

    def dispatch(self, req: client.Request, parsed: ridlib.ParsedMethod) -> None:
        """Run a counted, parsed request (``tracing.ws_request`` calls this in the request's scope)."""
        action = parsed.action
        try:
            if action == "version":
                self._version(req)
            elif action == "subscribe":
                self._subscribe(req.id, parsed.rid)
            elif action == "unsubscribe":
                self._unsubscribe(req, parsed.rid)
            elif action == "get":
                self._get(req.id, parsed.rid)
            elif action == "call":
                self._call_now(req, parsed.rid, parsed.method or "")
            elif action == "auth":
                self.spawn(self._auth(req, parsed.rid, parsed.method or ""))
            elif action == "new":
                self.spawn(self._new(req, parsed.rid))
        except ResError as err:
            self._error(req.id, err)

    def spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        if tracing.enabled:
            tracing.bind_task(task)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("[%s] Request failed", self.cid, exc_info=task.exception())

    def _version(self, req: client.Request) -> None:
        version = client.parse_version(req.params)
        if version is not None:
            self.protocol = version
        self._result(req.id, client.VERSION_RESULT)

    def _unsubscribe(self, req: client.Request, rid: str) -> None:
        count = client.parse_unsubscribe_count(req.params)
        sub = self.subs.get(rid)
        if sub is None or sub.direct < count:
            raise errors.ERR_NO_SUBSCRIPTION.copy()
        sub.direct -= count
        self.collect_garbage()
        self.pending -= 1
        self.send(wsframe.text(client.empty_result(req.id)))

    def _subscribe(self, req_id: int, rid: str, *, keep: bool = True) -> None:
        """subscribe (``keep``) or get: a direct subscription, answered with the resource set."""
        sub = self.add_direct(rid)
        if tracing.enabled:
            self.spawn(self._finish_subscribe(req_id, sub, keep=keep))
        else:
            self._finish_subscribe_now(req_id, sub, keep=keep)

    def _get(self, req_id: int, rid: str) -> None:
        self._subscribe(req_id, rid, keep=False)

    def _finish_subscribe_now(self, req_id: int, sub: ClientSub, *, keep: bool) -> None:
        """``_finish_subscribe`` on callbacks (no task), for when tracing is off."""
        sub.get_access(_Subscribing(self, req_id, sub, keep).on_access)

    async def _finish_subscribe(self, req_id: int, sub: ClientSub, *, keep: bool) -> None:
        err = await self.load_direct(sub)
        if err is not None:
            self.remove_direct(sub)
            self._error(req_id, err)
            return
        self._result(req_id, self.resource_set([sub]))
        if not keep:
            self.remove_direct(sub)

    async def load_direct(self, sub: ClientSub) -> ResError | None:
        """Wait for access (get) and for the resource tree; the error to answer, if any."""
        access, err = await self.access_of(sub)
        if err is not None:
            return err
        if access is None or not access.get:
            return errors.ERR_ACCESS_DENIED
        await self.loaded_future([sub])
        if sub.state != READY:
            return sub.err or errors.ERR_NOT_FOUND
        return None

    def add_direct(self, rid: str) -> ClientSub:
        """Count one more direct subscription of ``rid``, loading it if needed."""
        sub = self.subs.get(rid)
        created = sub is None
        if sub is None:
            sub = self.subs[rid] = ClientSub(self, rid)
        if sub.direct >= constants.MAX_DIRECT_SUBSCRIPTIONS:
            raise errors.ERR_SUBSCRIPTION_LIMIT_EXCEEDED.copy()
        if (
            sub.direct == 0
            and len(self.subs) > self.max_subscriptions
            and self._direct_count() >= self.max_subscriptions
        ):
            if created:
                del self.subs[rid]
            raise errors.ERR_SUBSCRIPTION_LIMIT_EXCEEDED.copy()
        sub.direct += 1
        if created or sub.state in (FAILED, DELETED):
            # A throttle without a limit keeps no state: one shared instance will do.
            sub.load(Throttle(self.reference_throttle) if self.reference_throttle > 0 else UNLIMITED)
        return sub

    def _direct_count(self) -> int:
        # Only counted once the connection holds more subscriptions than the limit in all.
        return sum(1 for sub in self.subs.values() if sub.direct > 0)

    def remove_direct(self, sub: ClientSub) -> None:
        if sub.direct > 0:
            sub.direct -= 1
        self.collect_garbage()

    # -- call, auth, new -----------------------------------------------------------------------------

    async def _auth(self, req: client.Request, rid: str, method: str) -> None:
        name, query = ridlib.split(ridlib.expand_cid(rid, self.cid))
        payload = service.auth_payload(
            self.cid, self.token, client.params_or_null(req.params), query, self.info, is_http=self.is_http
        )
        data, err = await self.request("auth." + name + "." + method, payload)
        await self._answer_call(req.id, data, err)

    async def _new(self, req: client.Request, rid: str) -> None:
        name, query = ridlib.split(ridlib.expand_cid(rid, self.cid))
        access, err = await self.access_for_call(rid, name, query)
        if err is None and (access is None or not access.can_call("new")):
            err = errors.ERR_ACCESS_DENIED
        if err is not None:
            self._error(req.id, err)
            return
        payload = service.call_payload(
            self.cid, self.token, client.params_or_null(req.params), query, self.is_http
        )
        data, err = await self.request("call." + name + ".new", payload)
        try:
            reply = service.reply_or_raise(data, err)
            new_rid = reply.resource or self._legacy_new_rid(name, reply.result)
        except ResError as exc:
            self._error(req.id, exc)
            return
        await self._answer_resource(req.id, new_rid)

    def _legacy_new_rid(self, name: str, result: Any) -> str:
        """A v1.1 new-call result ``{"rid": ...}``; anything else is an internal error."""
        new_rid = service.legacy_new_rid(result)
        if new_rid is not None:
            self.cache.deprecate(name, service.LEGACY_NEW_RESULT)
            if ridlib.is_valid_rid(new_rid, allow_query=True):
                return new_rid
        raise errors.internal_error("non-resource response on new request")

    async def _answer_call(self, req_id: int, data: bytes | None, err: ResError | None) -> None:
        resource = self._reply_to_call(req_id, data, err)
        if resource is not None:
            await self._answer_resource(req_id, resource)

    def _reply_to_call(self, req_id: int, data: bytes | None, err: ResError | None) -> str | None:
        """Answer a call/auth reply; returns the rid of a resource response the client must get
        subscribed (protocol 1.2.0 and later), which the caller answers with ``_answer_resource``."""
        try:
            reply = service.reply_or_raise(data, err)
        except ResError as exc:
            self._error(req_id, exc)
            return None
        legacy = self._protocol < constants.PROTOCOL_RESOURCE_RESPONSE
        if reply.resource is not None:
            if not legacy:
                return reply.resource
            self._result(req_id, {"rid": reply.resource})
        elif legacy:
            self._result(req_id, reply.result)
        else:
            self._result(req_id, {"payload": reply.result})
        return None

    def _call_now(self, req: client.Request, rid: str, method: str) -> None:
        """The call round trip without a task: access (usually cached), call, answer; callbacks
        only (with tracing on too: the request's span is carried by tracing's scope)."""
        sub = self.subs.get(rid)
        if sub is not None and not sub.disposed and sub.access is not None:
            # The usual call: on a subscribed resource whose access result is cached (what
            # get_access would answer at once), with the subscription's own name and query.
            self._publish_call(req, sub.name, sub.query, method, sub.access)
            return
        name, query = ridlib.split(ridlib.expand_cid(rid, self.cid))

        def on_access(access: Access | None, err: ResError | None) -> None:
            if err is not None:
                self._error(req.id, err)
            else:
                self._publish_call(req, name, query, method, access)

        if sub is not None and not sub.disposed:
            if tracing.enabled:  # another request's access reply may answer it
                sub.get_access(tracing.bind(on_access))  # ... and the call keeps its own trace
            else:
                sub.get_access(on_access)
        else:
            self.request_access(name, query, on_access)

    def _publish_call(
        self, req: client.Request, name: str, query: str, method: str, access: Access | None
    ) -> None:
        """Send the call request once access allows it, and answer its reply."""
        req_id = req.id
        if access is None or not access.can_call(method):
            self._error(req_id, errors.ERR_ACCESS_DENIED)
            return

        def on_reply(data: bytes | None, err: ResError | None) -> None:
            if err is None and self._protocol >= constants.PROTOCOL_RESOURCE_RESPONSE:
                result = service.plain_result(data)
                if result is not service.MISSING:  # the usual reply: a result and nothing else
                    self._result(req_id, {"payload": result})
                    return
            resource = self._reply_to_call(req_id, data, err)
            if resource is not None:
                self.spawn(self._answer_resource(req_id, resource))

        params = client.params_or_null(req.params)
        payload = service.call_payload_after(self.request_prefix(), params, query, self.is_http)
        self.mq.request("call." + name + "." + method, payload, on_reply)

    async def _answer_resource(self, req_id: int, rid: str) -> None:
        """Subscribe a resource response's rid and answer with it (errors go in ``errors``)."""
        try:
            sub = self.add_direct(rid)
        except ResError as exc:
            self._error(req_id, exc)
            return
        access, err = await self.access_of(sub)
        if err is None and (access is None or not access.get):
            err = errors.ERR_ACCESS_DENIED
        if err is not None:
            self.remove_direct(sub)
            self._result(req_id, {"rid": rid, "errors": {rid: err.to_dict()}})
            return
        await self.loaded_future([sub])
        if sub.state != READY:
            self._result(req_id, {"rid": rid, "errors": {rid: (sub.err or errors.ERR_NOT_FOUND).to_dict()}})
            return
        result: dict[str, Any] = {"rid": rid}
        result.update(self.resource_set([sub]))
        self._result(req_id, result)

    # -- service requests ------------------------------------------------------------------------------

    def request(self, subject: str, payload: bytes) -> asyncio.Future[tuple[bytes | None, ResError | None]]:
        fut: asyncio.Future[tuple[bytes | None, ResError | None]] = asyncio.get_running_loop().create_future()

        def done(data: bytes | None, err: ResError | None) -> None:
            if not fut.done():
                fut.set_result((data, err))

        self.mq.request(subject, payload, done)
        return fut

    async def header_auth(self, rid: str, method: str) -> service.Reply | None:
        """headerAuth / wsHeaderAuth: an auth request carrying the HTTP request's headers (no params,
        ``isHttp``). Errors, timeouts and malformed replies are ignored: None."""
        name, query = ridlib.split(ridlib.expand_cid(rid, self.cid))
        payload = service.auth_payload(
            self.cid, self.token, None, query, self.info, is_http=True, with_params=False
        )
        data, err = await self.request("auth." + name + "." + method, payload)
        if err is not None:
            return None
        try:
            return service.decode_reply(data)
        except ResError:
            return None

    def _send_access(self, name: str, query: str, on_reply: Callable[[AccessWithMeta], None]) -> None:
        """One access request; ``on_reply`` gets (access, error, meta) whatever the outcome."""

        def done(data: bytes | None, err: ResError | None) -> None:
            on_reply((None, err, None) if err is not None else service.decode_access_reply(data))

        payload = service.access_payload(self.cid, self.token, query, self.is_http)
        self.mq.request("access." + name, payload, done)

    def request_access(
        self, name: str, query: str, callback: Callable[[Access | None, ResError | None], None]
    ) -> None:
        payload = service.access_payload_after(self.request_prefix(), query, self.is_http)
        self.mq.request("access." + name, payload, functools.partial(_access_reply, callback))

    def access_with_meta(self, name: str, query: str) -> asyncio.Future[AccessWithMeta]:
        """A fresh access request whose reply meta is kept (for HTTP responses)."""
        fut: asyncio.Future[AccessWithMeta] = asyncio.get_running_loop().create_future()

        def done(reply: AccessWithMeta) -> None:
            if not fut.done():
                fut.set_result(reply)

        self._send_access(name, query, done)
        return fut

    def access_of(self, sub: ClientSub) -> asyncio.Future[AccessReply]:
        fut: asyncio.Future[AccessReply] = asyncio.get_running_loop().create_future()

        def done(access: Access | None, err: ResError | None) -> None:
            if not fut.done():
                fut.set_result((access, err))

        sub.get_access(done)
        return fut

    def access_for_call(self, rid: str, name: str, query: str) -> asyncio.Future[AccessReply]:
        """Access for a call: the subscription's cached result, or a fresh request."""
        sub = self.subs.get(rid)
        if sub is not None and not sub.disposed:
            return self.access_of(sub)
        fut: asyncio.Future[AccessReply] = asyncio.get_running_loop().create_future()

        def done(access: Access | None, err: ResError | None) -> None:
            if not fut.done():
                fut.set_result((access, err))

        self.request_access(name, query, done)
        return fut

    # -- references, loading and resource sets ---------------------------------------------------------

    def add_refs(self, parent: ClientSub, rids: Iterable[str]) -> list[ClientSub]:
        """The subscriptions for references of ``parent``; new ones start loading."""
        children: list[ClientSub] = []
        created: list[ClientSub] = []
        for rid in rids:
            sub = self.subs.get(rid)
            if sub is None:
                sub = self.subs[rid] = ClientSub(self, rid)
                created.append(sub)
            children.append(sub)
        for sub in created:
            sub.load(parent.throttle)
        return children

    def when_loaded(self, roots: list[ClientSub], callback: Callable[[], None]) -> None:
        """Call ``callback`` (soon) once every unsent subscription reachable from roots is loaded."""
        if len(roots) == 1 and roots[0].state != LOADING and not roots[0].refs:
            # Nothing to wait for (what ``_WhenLoaded`` would find): the usual subscribe.
            self.loop.call_soon(callback)
            return
        _WhenLoaded(self.subs, roots, callback, self.loop)()

    def loaded_future(self, roots: list[ClientSub]) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def done() -> None:
            if not fut.done():
                fut.set_result(None)

        self.when_loaded(roots, done)
        return fut

    def resource_set(self, roots: list[ClientSub]) -> dict[str, Any]:
        """Resources reachable from roots that the client does not hold yet; marks them held."""
        groups, sent = graph.resource_set(self.subs, roots, legacy=self.legacy)
        for sub in sent:
            self.spawn_flush(sub)
        return groups

    def send_with_resources(
        self, event: str, payload: dict[str, Any], roots: list[ClientSub]
    ) -> list[ClientSub]:
        """Send an event carrying the resources of ``roots`` the client lacks; returns those sent."""
        groups, sent = graph.resource_set(self.subs, roots, legacy=self.legacy)
        payload.update(groups)
        self.send_event(event, payload)
        return sent

    def spawn_flush(self, sub: ClientSub) -> None:
        # Queued events must follow the message that delivered the resource, which the caller
        # writes right after this returns. Nothing queued: nothing to do (the subscription is held
        # from now on, so a later event is only queued while it waits for something, and whatever
        # it waits for flushes it when done).
        if sub.queue:
            self.loop.call_soon(sub.flush)

    def collect_garbage(self) -> None:
        """Drop subscriptions no longer reachable from a direct one; un-hold what the client dropped."""
        alive = graph.reachable(self.subs, [s for s in self.subs.values() if s.direct > 0])
        for rid, sub in list(self.subs.items()):
            if sub not in alive:
                del self.subs[rid]
                sub.dispose()
        held = graph.reachable(self.subs, [s for s in alive if s.direct > 0 and s.sent], only_sent=True)
        for sub in alive:
            if sub.sent and sub not in held:
                sub.sent = False

    # -- service events for this connection ----------------------------------------------------------

    def on_conn_event(self, event: str, data: bytes) -> None:
        """``conn.<cid>.<event>`` from a service; only ``token`` is defined."""
        if event != "token":
            return
        try:
            payload = service.parse_payload(data)
        except service.InvalidEvent as exc:
            log.error("[%s] Invalid token event: %s", self.cid, exc)
            return
        if payload is not None and not isinstance(payload, dict):
            log.error("[%s] Invalid token event: payload is not an object", self.cid)
            return
        payload = payload or {}
        tid = payload.get("tid")
        if tid is not None and not isinstance(tid, str):
            log.error("[%s] Invalid token event: tid is not a string", self.cid)
            return
        had_token = self.token_set
        self.token = payload.get("token")
        self.tid = tid
        self.token_set = True
        if had_token:
            for sub in list(self.subs.values()):
                sub.recheck_access(Throttle(0))

    def token_reset(self, subject: str) -> None:
        """Ask the service at ``subject`` to re-issue this connection's token (system.tokenReset)."""
        payload = service.auth_payload(self.cid, self.token, None, "", self.info, with_params=False)

        def done(data: bytes | None, err: ResError | None) -> None:
            if err is not None and err.code == errors.TIMEOUT:
                log.error("[%s] Token reset request to %s timed out", self.cid, subject)

        self.mq.request(subject, payload, done)

    # -- lifecycle ---------------------------------------------------------------------------------------

    def close(self) -> None:
        """Forget every subscription and stop pending request tasks."""
        if self.closed:
            return
        self.closed = True
        subs = list(self.subs.values())
        self.subs.clear()
        for sub in subs:
            sub.dispose()
        for task in list(self._tasks):
            task.cancel()


def _access_reply(
    callback: Callable[[Access | None, ResError | None], None], data: bytes | None, err: ResError | None
) -> None:
    """An access reply (or the request's error) decoded for ``callback`` (``request_access``; a
    partial rather than a closure: fewer objects per request in flight)."""
    if err is not None:
        callback(None, err)
        return
    access, err, _ = service.decode_access_reply(data)
    callback(access, err)


def _ignore(action: str) -> None:
    pass
