"""``Service``: registers handlers by resource pattern, serves RES requests from NATS, publishes events.

The entry point of the library (see docs/service-library.md). ``start`` connects to NATS (nats-py),
subscribes to the request subjects of its registered patterns and sends ``system.reset`` for the resources it serves;
each request is decoded, matched to the most specific pattern, and run on the resource's serial worker;
``stop`` drains: no new requests, in-flight work finished (bounded), then the connection closed.
Malformed requests get a ``system.invalidRequest`` reply and a log line; they never stop the service.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeVar

import nats
import orjson
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from gateway.protocol import patterns
from gateway.protocol import rid as ridlib
from gateway.protocol.errors import caught
from pyresgate.service import pattern as patternlib
from pyresgate.service.errors import (
    ERR_INTERNAL_ERROR,
    ERR_METHOD_NOT_FOUND,
    ERR_NOT_FOUND,
    INVALID_REQUEST,
    ResError,
    to_res_error,
)
from pyresgate.service.mux import AccessHandler, AuthHandler, CallHandler, GetHandler, GetKind, Handlers, Mux
from pyresgate.service.queryevent import QueryRequest
from pyresgate.service.reply import Replier
from pyresgate.service.requests import (
    AccessRequest,
    AuthRequest,
    CallRequest,
    GetRequest,
    Request,
    publish_token,
)
from pyresgate.service.resource import QueryCallback, Resource
from pyresgate.service.worker import SerialGroups

log = logging.getLogger("pyresgate.service")

F = TypeVar("F", bound=Callable[..., Any])

#: Seconds a query-event subject keeps answering query requests (go-res: QueryDuration, 3 s).
DEFAULT_QUERY_DURATION = 3.0
#: Attempts at the first NATS connection before ``start`` fails (later reconnects are unbounded).
CONNECT_ATTEMPTS = 3
#: Seconds ``stop`` waits for in-flight handlers before cancelling them.
DEFAULT_DRAIN_TIMEOUT = 5.0


def default_nats_url() -> str:
    """``NATS_URL`` from the environment, else the gateway's default."""
    return os.environ.get("NATS_URL") or "nats://127.0.0.1:4222"


class Service:
    """A RES service named ``name``: the first part(s) of every resource it owns (``library``)."""

    def __init__(self, name: str, *, query_duration: float = DEFAULT_QUERY_DURATION) -> None:
        if name and not ridlib.is_valid_rid(name, allow_query=False):
            raise ValueError(f"invalid service name {name!r}")
        self.name = name
        self.query_duration = query_duration
        self._mux = Mux()
        self._groups = SerialGroups()
        self._nc: NatsClient | None = None
        self._own_nc = False
        self._subs: list[Subscription] = []
        self._query_subs: set[asyncio.Task[None]] = set()
        self._stopped = asyncio.Event()
        self._reset: tuple[list[str], list[str]] | None = None

    # ----------------------------------------------------------------- registration

    def handle(
        self,
        pattern: str,
        *,
        access: AccessHandler | None = None,
        get: GetHandler | None = None,
        get_model: GetHandler | None = None,
        get_collection: GetHandler | None = None,
        call: Mapping[str, CallHandler] | None = None,
        auth: Mapping[str, AuthHandler] | None = None,
        new: CallHandler | None = None,
    ) -> None:
        """Register handlers for ``pattern`` (relative to the service name; ``""`` is the name itself).

        ``$tag`` parts match one part and are read with ``r.path_param("tag")``; ``*`` matches one part,
        a trailing ``>`` one or more. A call handler under method ``"*"`` serves any method.
        """
        if self._nc is not None:
            raise RuntimeError("register handlers before start(): the subscriptions are made there")
        entry = self._mux.entry(patternlib.join(self.name, pattern))
        if access is not None:
            _set_once(entry, "access", access)
        for kind, handler in (("any", get), ("model", get_model), ("collection", get_collection)):
            if handler is not None:
                _set_once(entry, "get", handler)
                entry.get_kind = kind  # type: ignore[assignment]
        for method, ch in (call or {}).items():
            _add_method(entry.calls, method, ch, pattern)
        if new is not None:
            _add_method(entry.calls, "new", new, pattern)
        for method, ah in (auth or {}).items():
            _add_method(entry.auths, method, ah, pattern)

    def access(self, pattern: str) -> Callable[[F], F]:
        """Decorator: the access handler of ``pattern``."""
        return self._decorator(pattern, "access")

    def get(self, pattern: str) -> Callable[[F], F]:
        """Decorator: the get handler of ``pattern`` (a returned dict is the model, a list the collection)."""
        return self._decorator(pattern, "get")

    def get_model(self, pattern: str) -> Callable[[F], F]:
        return self._decorator(pattern, "get_model")

    def get_collection(self, pattern: str) -> Callable[[F], F]:
        return self._decorator(pattern, "get_collection")

    def call(self, pattern: str, method: str) -> Callable[[F], F]:
        """Decorator: the handler of call method ``method`` on ``pattern`` (``"*"``: any method)."""

        def register(fn: F) -> F:
            self.handle(pattern, call={method: fn})
            return fn

        return register

    def auth(self, pattern: str, method: str) -> Callable[[F], F]:
        """Decorator: the handler of auth method ``method`` on ``pattern``."""

        def register(fn: F) -> F:
            self.handle(pattern, auth={method: fn})
            return fn

        return register

    def new(self, pattern: str) -> Callable[[F], F]:
        """Decorator: the (deprecated) ``new`` call handler of ``pattern``; answer with ``r.new(rid)``."""
        return self._decorator(pattern, "new")

    def _decorator(self, pattern: str, kind: str) -> Callable[[F], F]:
        def register(fn: F) -> F:
            handlers: dict[str, Any] = {kind: fn}
            self.handle(pattern, **handlers)
            return fn

        return register

    def set_reset(self, resources: Iterable[str], access: Iterable[str]) -> None:
        """Patterns sent in ``system.reset`` at start (default: every pattern with a get/access handler)."""
        self._reset = (list(resources), list(access))

    # ----------------------------------------------------------------- lifecycle

    @property
    def nats(self) -> NatsClient:
        if self._nc is None:
            raise RuntimeError("the service is not started")
        return self._nc

    async def start(self, nats_conn: str | NatsClient | None = None) -> None:
        """Connect (a URL, default ``NATS_URL``) or use a connected client, subscribe, send the reset."""
        self._stopped.clear()
        if isinstance(nats_conn, NatsClient):
            self._nc = nats_conn
        else:
            self._nc = await nats.connect(
                nats_conn or default_nats_url(),
                name=f"pyresgate-service {self.name}",
                max_reconnect_attempts=CONNECT_ATTEMPTS,
                reconnect_time_wait=1,
                error_cb=self._on_nats_error,
                disconnected_cb=self._on_disconnected,
                reconnected_cb=self._on_reconnected,
            )
            # The bound above is for the first connect (a wrong URL must fail, not hang); once
            # connected, a running service keeps trying to get back to NATS for as long as it runs.
            self._nc.options["max_reconnect_attempts"] = -1
            self._own_nc = True
        subjects = self._subjects()
        for index, subject in enumerate(subjects):
            cb = self._subscription_handler(index, subjects)
            self._subs.append(await self._nc.subscribe(subject, cb=cb))
        await self._barrier()
        resources, access = self._reset or self._default_reset()
        await self.reset(resources, access)
        log.info(
            "service %r ready on %s",
            self.name,
            self._nc.connected_url.netloc if self._nc.connected_url else "?",
        )

    async def _on_nats_error(self, exc: Exception) -> None:
        log.warning("service %r: NATS: %s", self.name, exc or type(exc).__name__)

    async def _on_disconnected(self) -> None:
        log.warning("service %r: disconnected from NATS; reconnecting", self.name)

    async def _on_reconnected(self) -> None:
        """Events published while away may be lost: tell the gateway to refetch what we serve."""
        log.info("service %r: reconnected to NATS", self.name)
        resources, access = self._reset or self._default_reset()
        await self.reset(resources, access)

    async def _barrier(self, timeout: float = 5.0) -> None:
        """Wait until the server has our subscriptions: a message to ourselves, queued behind them.

        ``nc.flush()`` is not enough: nats-py (2.16) writes its PING straight to the socket, ahead of
        SUB commands still in its pending buffer, so the PONG can come back before the server has
        them, and a request sent right after ``start`` then meets "no responders".
        """
        nc = self.nats
        if nc.options.get("no_echo"):  # such a connection never hears itself
            await nc.flush()
            return
        inbox = nc.new_inbox()
        arrived = asyncio.Event()

        async def on_msg(msg: Msg) -> None:
            arrived.set()

        sub = await nc.subscribe(inbox, cb=on_msg)
        try:
            await nc.publish(inbox, b"")
            await asyncio.wait_for(arrived.wait(), timeout)
        except TimeoutError:
            log.warning("service %r: no echo of the subscription barrier within %.0fs", self.name, timeout)
        finally:
            await sub.unsubscribe()

    async def stop(self, timeout: float = DEFAULT_DRAIN_TIMEOUT) -> None:
        """Graceful stop: stop taking requests, let queued work finish (``timeout`` s), close NATS."""
        if self._nc is None:
            return
        for sub in self._subs:
            with contextlib.suppress(Exception):
                await sub.drain()  # type: ignore[no-untyped-call]  # delivered requests are still served
        self._subs.clear()
        if not await self._groups.wait_idle(timeout):
            log.warning(
                "service %r: %d resources still busy after %.1fs; cancelled",
                self.name,
                self._groups.busy,
                timeout,
            )
            await self._groups.cancel()
        for task in list(self._query_subs):
            task.cancel()
        await asyncio.gather(*self._query_subs, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self._nc.flush(timeout=2)
        if self._own_nc:
            with contextlib.suppress(Exception):
                await self._nc.drain()
        self._nc = None
        self._stopped.set()

    async def wait_stopped(self) -> None:
        """Return once ``stop`` has finished."""
        await self._stopped.wait()

    def run(
        self, nats_url: str | None = None, *, on_start: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        """Blocking: start, serve until SIGINT/SIGTERM, stop gracefully."""
        asyncio.run(self.serve(nats_url, on_start=on_start))

    async def serve(
        self, nats_url: str | None = None, *, on_start: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        """Start, run ``on_start`` if given, serve until SIGINT/SIGTERM, stop gracefully."""
        await self.start(nats_url)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        try:
            if on_start is not None:
                await on_start()
            await stop.wait()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(sig)
            await self.stop()

    # ----------------------------------------------------------------- events and resources

    def resource(self, rid: str) -> Resource:
        """The resource ``rid`` to publish events on (from outside a handler, prefer ``with_resource``)."""
        if not ridlib.is_valid_rid(rid):
            raise ValueError(f"invalid resource ID {rid!r}")
        name = ridlib.split(rid)[0]
        found = self._mux.find(name, lambda h: True)
        return Resource(self, rid, found[1] if found else {})

    async def with_resource(self, rid: str, fn: Callable[[Resource], Awaitable[None] | None]) -> None:
        """Run ``fn(resource)`` on the resource's worker, after its queued requests, before later ones.

        Changing the data and publishing its events inside ``fn`` keeps them in order with the
        responses the resource's handlers send. Exceptions of ``fn`` are raised here.
        """
        res = self.resource(rid)

        async def job() -> None:
            outcome = fn(res)
            if inspect.isawaitable(outcome):
                await outcome

        await self._groups.run(res.resource_name, job)

    async def reset(self, resources: Iterable[str] = (), access: Iterable[str] = ()) -> None:
        """``system.reset``: the gateway refetches matching cached resources / re-checks access."""
        payload: dict[str, list[str]] = {}
        if res := list(resources):
            payload["resources"] = res
        if acc := list(access):
            payload["access"] = acc
        if payload:
            await self.publish("system.reset", orjson.dumps(payload))

    async def token_event(self, cid: str, token: Any, tid: str | None = None) -> None:
        """``conn.<cid>.token``: set (``None``: clear) a connection's token."""
        await publish_token(self, cid, token, tid)

    async def token_reset(self, subject: str, tids: Iterable[str]) -> None:
        """``system.tokenReset``: the gateway sends an auth request to ``subject`` for each connection
        whose token has one of ``tids`` (serve ``subject`` with an auth handler)."""
        await self.publish("system.tokenReset", orjson.dumps({"tids": list(tids), "subject": subject}))

    async def publish(self, subject: str, payload: bytes) -> None:
        await self.nats.publish(subject, payload)

    async def start_query_listener(self, resource_name: str, callback: QueryCallback) -> str:
        """A temporary subject answering the gateway's query requests for ``resource_name``."""
        nc = self.nats
        subject = nc.new_inbox()

        async def on_query(msg: Msg) -> None:
            if not msg.reply:
                return
            replier = Replier(self.publish, msg.reply)
            try:
                payload = _decode_payload(msg.data)
                query = payload.get("query")
                if not isinstance(query, str):
                    raise ResError(INVALID_REQUEST, "Invalid request: query request without a query")
            except ResError as err:
                log.warning("bad query request on %s: %s", msg.subject, err.message)
                await replier.error(err)
                return
            qr = QueryRequest(replier, resource_name, query)

            async def job() -> None:
                await self._run_handler(replier, f"query {qr.rid}", callback, qr)
                if not replier.replied:
                    await qr.finish()

            self._groups.submit(resource_name, job)

        sub = await nc.subscribe(subject, cb=on_query)

        async def expire() -> None:
            try:
                await asyncio.sleep(self.query_duration)
            finally:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()

        task = asyncio.get_running_loop().create_task(expire())
        self._query_subs.add(task)
        task.add_done_callback(self._query_subs.discard)
        return subject

    # ----------------------------------------------------------------- dispatch

    def _subjects(self) -> list[str]:
        """The request subjects of the registered patterns, and only those.

        Requests for resources that no service serves then get NATS's no-responders answer, which the
        gateway reports as ``system.notFound`` at once, and other services may own other resources
        under the same name (resgate's jwt example: ``example.model`` beside edit-text's ``example.shared``).
        Calls are subscribed for every method of a resource we serve so unknown methods are answered
        with ``system.methodNotFound``.
        """
        subjects: list[str] = []
        for entry in self._mux.all():
            wild = entry.pattern.as_reset_pattern()
            if entry.access is not None:
                subjects.append(f"access.{wild}")
            if entry.get is not None:
                subjects.append(f"get.{wild}")
            if entry.calls or entry.get is not None:
                subjects.append(f"call.{wild}" if entry.pattern.tail else f"call.{wild}.*")
            if entry.auths:
                subjects.append(f"auth.{wild}" if entry.pattern.tail else f"auth.{wild}.*")
        return list(dict.fromkeys(subjects))

    def _subscription_handler(self, index: int, subjects: list[str]) -> Callable[[Msg], Awaitable[None]]:
        """The message callback of subscription ``index``: overlapping subscriptions (``library.>``
        beside ``library.book.*``) each receive a matching request, so only the first one serves it."""
        earlier = [p for p in (patterns.compile(subj) for subj in subjects[:index]) if p is not None]

        async def on_msg(msg: Msg) -> None:
            if any(p.matches(msg.subject) for p in earlier):
                return
            await self._on_request(msg)

        return on_msg

    def _default_reset(self) -> tuple[list[str], list[str]]:
        entries = self._mux.all()
        resources = sorted({h.pattern.as_reset_pattern() for h in entries if h.get is not None})
        access = sorted({h.pattern.as_reset_pattern() for h in entries if h.access is not None})
        return resources, access

    async def _on_request(self, msg: Msg) -> None:
        """Decode one request and queue it on its resource's worker (never raises)."""
        if not msg.reply:
            log.warning("request on %s without a reply subject; ignored", msg.subject)
            return
        replier = Replier(self.publish, msg.reply)
        try:
            name, job = self._route(msg, replier)
        except ResError as err:
            log.warning("bad request on %s: %s", msg.subject, err.message)
            await _safe_reply(replier, err)
            return
        if job is not None:
            self._groups.submit(name, job)

    def _route(self, msg: Msg, replier: Replier) -> tuple[str, Callable[[], Awaitable[None]] | None]:
        kind, _, rest = msg.subject.partition(".")
        method = ""
        if kind in ("call", "auth"):
            rest, _, method = rest.rpartition(".")
        if not ridlib.is_valid_rid(rest, allow_query=False) or (kind in ("call", "auth") and not method):
            raise ResError(INVALID_REQUEST, f"Invalid request: bad subject {msg.subject!r}")
        payload = _decode_payload(msg.data)
        query = payload.get("query")
        if query is not None and not isinstance(query, str):
            raise ResError(INVALID_REQUEST, "Invalid request: query must be a string")
        rid = f"{rest}?{query}" if query else rest
        if kind == "access":
            return rest, self._access_job(replier, rid, rest, payload)
        if kind == "get":
            return rest, self._get_job(replier, rid, rest)
        return rest, self._call_job(replier, rid, rest, method, payload, kind == "auth")

    def _access_job(
        self, replier: Replier, rid: str, name: str, payload: dict[str, Any]
    ) -> Callable[[], Awaitable[None]] | None:
        found = self._mux.find(name, lambda h: h.access is not None)
        if found is None:
            if self._mux.find(name, lambda h: True) is None:
                return lambda: replier.error(ERR_NOT_FOUND)  # not a resource of ours at all
            return None  # ours without an access handler: another service may own its access
        entry, params = found
        handler = entry.access
        assert handler is not None
        req = AccessRequest(self, replier, rid, params, payload)
        return lambda: self._run_handler(replier, f"access {rid}", handler, req)

    def _get_job(self, replier: Replier, rid: str, name: str) -> Callable[[], Awaitable[None]]:
        found = self._mux.find(name, lambda h: h.get is not None)
        if found is None:
            return lambda: replier.error(ERR_NOT_FOUND)
        entry, params = found
        handler, kind = entry.get, entry.get_kind
        assert handler is not None
        req = GetRequest(self, replier, rid, params)

        async def job() -> None:
            value = await self._run_handler(replier, f"get {rid}", handler, req)
            if not replier.replied:
                await _reply_value(req, kind, value)

        return job

    def _call_job(
        self, replier: Replier, rid: str, name: str, method: str, payload: dict[str, Any], is_auth: bool
    ) -> Callable[[], Awaitable[None]]:
        def want(h: Handlers) -> bool:
            table = h.auths if is_auth else h.calls
            return method in table or "*" in table

        found = self._mux.find(name, want)
        if found is None:
            known = self._mux.find(name, lambda h: True) is not None
            err = ERR_METHOD_NOT_FOUND if known else ERR_NOT_FOUND
            return lambda: replier.error(err)
        entry, params = found
        table: Mapping[str, Any] = entry.auths if is_auth else entry.calls
        handler = table.get(method) or table["*"]
        cls = AuthRequest if is_auth else CallRequest
        req = cls(self, replier, rid, params, payload, method)
        what = f"{'auth' if is_auth else 'call'} {rid}.{method}"

        async def job() -> None:
            value = await self._run_handler(replier, what, handler, req)
            if not replier.replied:
                await replier.result(value)

        return job

    async def _run_handler(self, replier: Replier, what: str, handler: Callable[[Any], Any], req: Any) -> Any:
        """Run a handler; a raised ``ResError`` becomes the response, anything else an internal error."""
        try:
            outcome = handler(req)
            if inspect.isawaitable(outcome):
                outcome = await outcome
            return outcome
        except asyncio.CancelledError:
            raise
        except ResError as err:
            await _safe_reply(replier, caught(err))  # (a handler may raise a predefined error itself)
        except Exception as exc:
            log.exception("%s: handler failed", what)
            await _safe_reply(replier, to_res_error(exc))
        return None


async def _reply_value(req: GetRequest, kind: GetKind, value: Any) -> None:
    """A get handler's return value as the response (dict: model, list: collection)."""
    if isinstance(value, dict) and kind != "collection":
        await req.model(value)
    elif isinstance(value, list) and kind != "model":
        await req.collection(value)
    elif value is None:
        log.error("get %s: the handler sent no response", req.rid)
        await req.error(ResError(ERR_INTERNAL_ERROR.code, "Internal error: missing response"))
    else:
        log.error("get %s: the handler returned a %s", req.rid, type(value).__name__)
        await req.error(ResError(ERR_INTERNAL_ERROR.code, "Internal error: invalid get result"))


async def _safe_reply(replier: Replier, err: ResError) -> None:
    if replier.replied:
        log.error("error after the response was sent: %s", err)
        return
    await replier.error(err)


def _decode_payload(data: bytes) -> dict[str, Any]:
    """A request payload: a JSON object (empty means ``{}``); ``system.invalidRequest`` otherwise."""
    if not data or not data.strip():
        return {}
    try:
        payload = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ResError(INVALID_REQUEST, f"Invalid request: payload is not JSON ({exc})") from None
    if not isinstance(payload, dict):
        raise ResError(INVALID_REQUEST, "Invalid request: payload must be a JSON object")
    return payload


def _set_once(entry: Handlers, attr: str, handler: Any) -> None:
    if getattr(entry, attr) is not None:
        raise ValueError(f"pattern {entry.pattern.text!r} already has a {attr} handler")
    setattr(entry, attr, handler)


def _add_method(table: dict[str, Any], method: str, handler: Any, pattern: str) -> None:
    if method != "*" and not ridlib.is_valid_part(method):
        raise ValueError(f"invalid method name {method!r}")
    if method in table:
        raise ValueError(f"pattern {pattern!r} already has a handler for method {method!r}")
    table[method] = handler


__all__ = ["Request", "Service", "default_nats_url"]
