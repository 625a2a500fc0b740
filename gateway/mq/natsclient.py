"""NATS adapter: the only module that imports nats-py.

Called by ``gateway.app`` (connect/close) and, through the ``MQ`` interface, by the cache and the
connections. Why not nats-py's own ``request()``: a RES request may get pre-responses before its
reply, and per-call futures and tasks cost far more than the gateway's own work. Instead:

* every request uses one wildcard reply subscription ``_INBOX.<nuid>.*`` with our own tokens;
* the client's parser is a ``natsparser.FastParser``, which hands every message to ``_on_wire``
  at once (nats-py's own parser, used for what the fast one leaves, reaches it through
  ``_process_msg``, which is replaced): messages are handled in wire order (a get reply and the
  events a service published right after it must not swap places), with no ``Msg`` object, queue
  or task hop per message;
* publishes, subscribes and unsubscribes made from synchronous code are queued and sent in order,
  so ``event.<name>.*`` is always subscribed before ``get.<name>`` goes out. A batch of them (the
  hot path) is encoded here and written to the socket once per event-loop turn, behind whatever
  nats-py itself still has buffered; a subscribe is registered in nats-py's subscription table as
  its own ``subscribe()`` would (so a reconnect renews it), without the awaited calls, queue and
  flush it makes per subscription (a subscribe storm makes one per connection and per resource).
  A batch with an oversized payload or a subject nats-py would refuse, or any batch while the
  connection is not up, goes through nats-py's own (awaited) calls in a task.
"""

from __future__ import annotations

import asyncio
import binascii
import contextlib
import logging
import re
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

from nats import errors as nats_errors
from nats.aio.client import Client as NatsClient
from nats.aio.subscription import Subscription
from nats.aio.transport import TcpTransport

from gateway import constants
from gateway.mq.base import MessageCallback, ReplyCallback
from gateway.mq.deadlines import Deadlines
from gateway.mq.natsparser import FastParser
from gateway.protocol import errors
from gateway.telemetry import tracing

log = logging.getLogger(__name__)

_NO_RESPONDERS = "503"
_CONNECTED = NatsClient.CONNECTED
#: Offset of the three-digit status in ``NATS/1.0 503\r\n...`` headers.
_STATUS_AT = len(b"NATS/1.0 ")
#: Upper bound for the first connection, whatever nats-py's retries do (seconds).
_FIRST_CONNECT_TIMEOUT = 10.0
#: Whitespace would break (or inject into) the protocol line; nats-py refuses such subjects.
_BAD_SUBJECT = re.compile(r"[ \t\r\n]")
_hexlify = binascii.hexlify
#: Bytes the socket may hold unsent before publishes wait for nats-py's flusher (back-pressure).
_WRITE_BUFFER_LIMIT = 8 * 1024 * 1024


class NatsRefusedError(ConnectionError):
    """NATS was reached and refused the gateway (authorization, TLS, credentials): retrying the
    same settings will not help."""


def _is_permanent(cause: BaseException) -> bool:
    if isinstance(cause, (ssl.SSLError, nats_errors.AuthorizationError, FileNotFoundError, PermissionError)):
        return True
    return "authorization" in str(cause).lower()


class _Pending:
    """One request waiting for its reply. ``trace``: the ids of the sampled-out trace the request
    belongs to, when tracing gave those as its headers; its reply is handled in that trace
    (``tracing.call_in``)."""

    __slots__ = ("callback", "deadline", "started", "subject", "trace")

    def __init__(
        self, callback: ReplyCallback, deadline: float, subject: str, started: float, trace: int | None
    ) -> None:
        self.callback = callback
        self.deadline = deadline
        self.subject = subject
        self.started = started
        self.trace = trace


class NatsMQ:
    """Implements ``gateway.mq.base.MQ`` on a nats-py connection."""

    def __init__(self, *, request_timeout: float, on_message: MessageCallback) -> None:
        self._nc = self._new_client()
        self._timeout = request_timeout
        self._on_message = on_message
        self._loop: asyncio.AbstractEventLoop | None = None
        self._outgoing: list[tuple[Any, ...]] = []
        self._flush_scheduled = False  # a _flush_soon callback is queued on the loop
        self._slow_busy = False  # the task path is sending a batch; new ops wait for it
        self._wakeup: asyncio.Event = asyncio.Event()
        self._pending: dict[bytes, _Pending] = {}
        self._deadlines: Deadlines | None = None
        self._next_token = 0
        self._inbox_prefix = ""
        self._inbox_prefix_b = b""
        self._inbox_sid = -1
        self._tasks: list[asyncio.Task[None]] = []
        self._closing_clients: set[asyncio.Task[None]] = set()  # clients of failed start-up attempts
        self._subs: dict[int, Any] = {}
        self._next_handle = 0
        self.closed: asyncio.Future[str] | None = None
        self._closing = False
        self._connected = False  # the first connect succeeded
        self._first_error: Exception | None = None  # the first connect's first failure says why
        #: Called (synchronously) when the connection is lost and when it is back.
        self.on_disconnected: Callable[[], None] = _nothing
        self.on_reconnected: Callable[[], None] = _nothing
        #: Called with (subject, outcome, seconds) when a request ends, for metrics.
        self.on_request_done: Callable[[str, str, float], None] = _ignore_request

    # -- lifecycle -----------------------------------------------------------------------------

    async def connect(self, servers: list[str], *, reconnect: bool = False, **options: Any) -> None:
        """Connect and start the dispatcher and flusher; raises on failure to connect.

        With ``reconnect`` a lost connection is re-established (to any server of the cluster) and
        the subscriptions are renewed; without it, losing the connection closes the client.
        """
        self._loop = asyncio.get_running_loop()
        self._deadlines = Deadlines(self._loop, self._on_deadline, self._pending)
        self.closed = self._loop.create_future()
        self._first_error = None
        try:
            await asyncio.wait_for(self._first_connect(servers, **options), _FIRST_CONNECT_TIMEOUT)
        except Exception as exc:
            # nats-py reports "no servers available"; the first attempt's error says why (a retry
            # after an authorization error may only see the connection reset).
            cause = self._first_error or exc
            failed, self._nc = self._nc, self._new_client()  # connect may be called again
            # In the background: after a failed TLS upgrade nats-py's close() can hang.
            closing = self._loop.create_task(_close_quietly(failed), name="mq-close-failed")
            self._closing_clients.add(closing)
            closing.add_done_callback(self._closing_clients.discard)
            shown = ", ".join(redact_url(url) for url in servers)
            message = f"cannot connect to NATS at {shown}: {cause}"
            if _is_permanent(cause):
                raise NatsRefusedError(message) from exc
            raise ConnectionError(message) from exc
        self._nc.options["allow_reconnect"] = reconnect
        self._nc.options["max_reconnect_attempts"] = -1 if reconnect else 0
        self._connected = True
        self._inbox_prefix = self._nc.new_inbox() + "."
        self._inbox_prefix_b = self._inbox_prefix.encode()
        # From here on nats-py's parser hands messages to us (see the module docstring).
        self._nc._process_msg = self._on_wire_message  # type: ignore[method-assign]
        self._inbox_sid = (await self._raw_subscribe(self._inbox_prefix + "*"))._id
        self._tasks = [self._loop.create_task(self._flush_loop(), name="mq-flush")]

    def _new_client(self) -> NatsClient:
        nc = NatsClient()
        nc._ps = FastParser(nc, self._on_wire)
        return nc

    async def _first_connect(self, servers: list[str], **options: Any) -> None:
        # One attempt tries each server twice and then fails (the caller decides whether to retry,
        # as resgate refuses to start without NATS); only an established connection is
        # re-established when it is lost. Callbacks of a client given up on are ignored.
        nc = self._nc

        def current(callback: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
            async def call(*args: Any) -> None:
                if nc is self._nc:
                    await callback(*args)

            return call

        await nc.connect(
            servers=servers,
            allow_reconnect=True,
            max_reconnect_attempts=1,
            reconnect_time_wait=0.25,  # type: ignore[arg-type]  # nats-py accepts seconds as float
            connect_timeout=2,
            error_cb=current(self._error_cb),
            closed_cb=current(self._closed_cb),
            disconnected_cb=current(self._disconnected_cb),
            reconnected_cb=current(self._reconnected_cb),
            pending_size=64 * 1024 * 1024,
            **options,
        )

    async def close(self, *, drain: bool = False) -> None:
        """Fail pending requests, flush what is queued, and close (or drain) the connection."""
        self._closing = True
        for token in list(self._pending):
            self._fail(token, errors.ERR_DISPOSING)
        with contextlib.suppress(Exception):  # best effort on the way out
            await asyncio.wait_for(self._send_outgoing(), constants.MQ_CLOSE_TIMEOUT)
        if self._connected and not self._nc.is_closed:
            with contextlib.suppress(Exception):
                closing = self._nc.drain() if drain and self._nc.is_connected else self._nc.close()
                await asyncio.wait_for(closing, constants.MQ_CLOSE_TIMEOUT)
        if self._deadlines is not None:
            self._deadlines.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def sync(self) -> None:
        """Send everything queued and wait for the server to have processed it."""
        await self._send_outgoing()
        await self._nc.flush()

    @property
    def is_connected(self) -> bool:
        return bool(self._nc.is_connected)

    @property
    def connected_url(self) -> str:
        url = self._nc.connected_url
        return url.geturl() if url else ""

    # -- MQ interface ----------------------------------------------------------------------------

    def request(
        self,
        subject: str,
        payload: bytes,
        callback: ReplyCallback,
        *,
        timeout: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        sent: dict[str, str] | int | None = headers  # (with tracing: a sampled-out root's ids, perhaps)
        trace = None
        if tracing.enabled:
            active = tracing.active
            if type(active) is int and not headers and tracing.w3c:
                # a sampled-out root (most requests with head sampling): HPUB with its traceparent,
                # and the reply handled in it (tracing.nats_request would say the same, slower)
                sent = trace = active
            else:
                callback, sent = tracing.nats_request(subject, callback, headers)
                if type(sent) is int:
                    trace = sent
        self._next_token += 1
        token = b"%x" % self._next_token  # the request's number in hex: its reply subject's last token
        reply = self._inbox_prefix_b + token
        if len(subject) + len(reply) > constants.NATS_MAX_CONTROL_LINE:  # _fits, inlined
            callback(None, errors.ERR_SUBJECT_TOO_LONG)
            return
        if self._closing or self._loop is None or self._deadlines is None:
            callback(None, errors.ERR_DISPOSING)
            return
        if self._nc._status != _CONNECTED and not self._nc.is_connected:  # the property costs two calls
            # While reconnecting a reply could not reach us: answer at once instead of hanging.
            callback(None, errors.ERR_SERVICE_UNAVAILABLE)
            return
        now = self._loop.time()
        deadline = now + (timeout or self._timeout)
        self._pending[token] = _Pending(callback, deadline, subject, now, trace)
        self._deadlines.set(token, deadline)
        # _queue, inlined (twice per subscription, once per call)
        self._outgoing.append(("pub", subject, payload, reply, sent, token))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush_soon)

    def publish(self, subject: str, payload: bytes) -> None:
        if _fits(subject, b""):
            self._queue(("pub", subject, payload, b"", None, None))

    def subscribe(self, subject: str) -> int:
        self._next_handle += 1
        handle = self._next_handle
        self._queue(("sub", subject, handle))
        return handle

    def unsubscribe(self, handle: Any) -> None:
        self._queue(("unsub", handle))

    @staticmethod
    def subject_fits(subject: str) -> bool:
        """Whether a subscription subject is short enough for the server's control line."""
        return len(subject) <= constants.NATS_MAX_CONTROL_LINE - 2

    # -- outgoing ------------------------------------------------------------------------------

    def _queue(self, op: tuple[Any, ...]) -> None:
        self._outgoing.append(op)
        if not self._flush_scheduled and self._loop is not None:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush_soon)

    def _flush_soon(self) -> None:
        """Once per loop turn: write a batch of plain publishes at once, or wake the task path."""
        self._flush_scheduled = False
        if not self._outgoing or self._slow_busy:
            return  # the task path picks the new ops up when its batch is done
        data = self._encode_publishes(self._outgoing)
        if data is None:
            self._wakeup.set()
            return
        self._outgoing = []
        nc = self._nc
        transport = nc._transport
        assert transport is not None  # checked by _encode_publishes
        try:
            if nc._pending:  # what nats-py buffered (SUB, PING, ...) must go first
                data = nc._pending + data
                nc._pending = []
                nc._pending_data_size = 0
            raw = _raw_transport(transport)
            if raw is not None:
                # One joined buffer: uvloop writes a single buffer with one write() on the spot,
                # where several (writelines) take a libuv write request, a writev and a completion
                # callback on a later turn. nats-py writes through the same transport: order holds.
                raw.write(data[0] if len(data) == 1 else b"".join(data))
            else:
                transport.writelines(data)
        except Exception as exc:  # noqa: BLE001 - a broken socket surfaces through nats-py's callbacks
            log.debug("NATS write failed: %s", exc)

    def _encode_publishes(self, ops: list[tuple[Any, ...]]) -> list[bytes] | None:
        """PUB/HPUB/SUB/UNSUB commands for ``ops``, or None when the batch needs the task path: it
        holds an oversized payload or a subject nats-py would refuse, or the connection cannot take
        writes now. Nothing is changed before the whole batch is known to fit."""
        nc = self._nc
        transport = nc._transport
        if (
            not nc.is_connected
            or transport is None
            or nc._flush_queue is None
            or _write_buffer_size(transport) > _WRITE_BUFFER_LIMIT
        ):
            return None
        max_payload = nc._max_payload
        bad_subject = _BAD_SUBJECT.search
        for op in ops:
            # nats-py's checks, which raise on the task path: the request then fails cleanly
            kind = op[0]
            if kind == "pub":
                if len(op[2]) > max_payload or not op[1] or bad_subject(op[1]):
                    return None
            elif kind == "sub" and not _valid_subscription(op[1]):
                return None
        out: list[bytes] = []
        for op in ops:
            kind = op[0]
            if kind == "pub":
                out.append(_pub_command(op[1], op[3], op[2], op[4]))
            elif kind == "sub":
                out.append(self._subscribe_now(op[1], op[2]))
            else:
                sub = self._subs.pop(op[1], None)
                if sub is not None:
                    out.append(_unsubscribe_now(sub))
        return out

    def _subscribe_now(self, subject: str, handle: int) -> bytes:
        """What nats-py's ``subscribe(subject)`` does without a callback, minus the message queue
        and iterator (see ``LeanSubscription``): a new sid in its subscription table (renewed on
        reconnect, unsubscribed by its drain). Returns the SUB command."""
        nc = self._nc
        nc._sid += 1
        sid = nc._sid
        sub = LeanSubscription(nc, sid, subject)
        nc._subs[sid] = sub
        self._subs[handle] = sub
        return b"SUB %s  %d\r\n" % (subject.encode(), sid)

    async def _flush_loop(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            self._slow_busy = True
            try:
                await self._send_outgoing()
            except Exception as exc:  # noqa: BLE001 - connection errors surface via closed_cb
                log.debug("NATS send failed: %s", exc)
            finally:
                self._slow_busy = False

    async def _send_outgoing(self) -> None:
        while self._outgoing:
            ops, self._outgoing = self._outgoing, []
            for op in ops:
                try:
                    await self._send_op(op)
                except Exception as exc:  # noqa: BLE001 - one bad message must not sink the batch
                    log.debug("NATS %s failed: %s", op[0], exc)
                    if op[0] == "pub" and op[5] is not None:
                        self._fail(op[5], errors.internal_error(f"failed to send request: {exc}"))

    async def _send_op(self, op: tuple[Any, ...]) -> None:
        kind = op[0]
        if kind == "pub":
            headers = op[4]
            if isinstance(headers, int):
                headers = {"traceparent": _traceparent(headers)}
            await self._nc.publish(op[1], op[2], reply=op[3].decode(), headers=headers)
        elif kind == "sub":
            self._subs[op[2]] = await self._raw_subscribe(op[1])
        else:
            sub = self._subs.pop(op[1], None)
            if sub is not None:
                await sub.unsubscribe()

    async def _raw_subscribe(self, subject: str) -> Any:
        # No callback: nats-py then starts no task of its own; its messages reach _on_wire.
        return await self._nc.subscribe(subject, pending_bytes_limit=0)

    # -- incoming ------------------------------------------------------------------------------

    async def _on_wire_message(
        self, sid: int, subject: bytes, reply: bytes, data: bytes, headers: bytes | None
    ) -> None:
        """nats-py's own parser calls this for every MSG/HMSG (it replaces ``_process_msg``)."""
        self._on_wire(sid, subject, reply, data, headers)

    def _on_wire(self, sid: int, subject: bytes, reply: bytes, data: bytes, headers: bytes | None) -> None:
        """Every message, in wire order: a reply to one of our requests, or a subscription's."""
        if sid not in self._nc._subs:
            return  # unsubscribed while the message was on its way
        try:
            if sid == self._inbox_sid:
                status = _status(headers) if headers is not None else None
                self._on_reply(subject[len(self._inbox_prefix_b) :], data, status)
            else:
                self._on_message(subject.decode(), data)
        except Exception:
            log.exception("Error handling NATS message on %s", subject[:200].decode(errors="replace"))

    def _on_reply(self, token: bytes, data: bytes, status: str | None) -> None:
        pending = self._pending.get(token)
        if pending is None:
            return  # late reply after a timeout, or a reply to nothing we asked
        if not data and status == _NO_RESPONDERS:
            self._fail(token, errors.ERR_NOT_FOUND)
            return
        if data[:1].isalpha():
            self._on_pre_response(token, pending, data)
            return
        del self._pending[token]
        self.on_request_done(pending.subject, "reply", self._loop.time() - pending.started)  # type: ignore[union-attr]
        if pending.trace is None:
            pending.callback(data, None)
        else:
            tracing.call_in(pending.trace, pending.callback, data, None)

    def _on_pre_response(self, token: bytes, pending: _Pending, data: bytes) -> None:
        ms = _pre_response_timeout(data)
        if ms is None or self._loop is None or self._deadlines is None:
            return
        pending.deadline = self._loop.time() + ms / 1000
        self._deadlines.set(token, pending.deadline)

    def _on_deadline(self, token: bytes, deadline: float) -> None:
        pending = self._pending.get(token)
        if pending is not None and pending.deadline == deadline:  # not answered, not extended
            self._fail(token, errors.ERR_TIMEOUT)

    def _fail(self, token: bytes, err: errors.ResError) -> None:
        pending = self._pending.pop(token, None)
        if pending is None:
            return
        if self._loop is not None:
            self.on_request_done(pending.subject, _outcome(err), self._loop.time() - pending.started)
        try:
            if pending.trace is None:
                pending.callback(None, err)
            else:
                tracing.call_in(pending.trace, pending.callback, None, err)
        except Exception:
            log.exception("Error handling failed request %s", pending.subject)

    # -- connection events ---------------------------------------------------------------------

    async def _error_cb(self, exc: Exception) -> None:
        if self._first_error is None:
            self._first_error = exc
        if self._connected:
            log.error("NATS error: %s", exc)
            return
        log.warning("NATS connect attempt failed: %s", exc)
        if isinstance(exc, ssl.SSLError):
            raise exc  # a certificate will not get better on retry; nats-py then stops trying

    async def _disconnected_cb(self) -> None:
        if self._closing:
            return
        log.warning("NATS connection lost")
        for token in list(self._pending):
            self._fail(token, errors.ERR_SERVICE_UNAVAILABLE)
        self.on_disconnected()

    async def _reconnected_cb(self) -> None:
        log.warning("NATS reconnected to %s", self.connected_url)
        self._wakeup.set()  # what was queued while away goes out through the task path
        self.on_reconnected()

    async def _closed_cb(self) -> None:
        if self.closed is not None and not self.closed.done():
            self.closed.set_result("NATS connection closed")


def _nothing() -> None:
    pass


async def _close_quietly(nc: NatsClient) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(nc.close(), constants.MQ_CLOSE_TIMEOUT)


_USERINFO = re.compile(r"(?<=://)[^/@]*@")


def redact_url(url: str) -> str:
    """``url`` without the user and password of ``nats://user:pass@host`` (kept out of logs)."""
    return _USERINFO.sub("***@", url)


def _ignore_request(subject: str, outcome: str, seconds: float) -> None:
    pass


def _status(headers: bytes | None) -> str | None:
    """The inline status of a message's headers (``NATS/1.0 503`` for no responders), if any."""
    if headers and headers[_STATUS_AT - 1 : _STATUS_AT] == b" ":
        return headers[_STATUS_AT : _STATUS_AT + 3].decode("ascii", "replace")
    return None


def _outcome(err: errors.ResError) -> str:
    if err.code == errors.TIMEOUT:
        return "timeout"
    if err.code == errors.NOT_FOUND:
        return "no_responders"
    return "failed"


def _fits(subject: str, reply: bytes) -> bool:
    # resgate's rule: subject + reply inbox must fit the server's 4096-byte control line.
    return len(subject) + len(reply) <= constants.NATS_MAX_CONTROL_LINE


class LeanSubscription(Subscription):
    """A nats-py subscription entry without the message queue, iterator and limits nats-py makes
    for each one (an ``asyncio.Queue``, three deques and a dict per subscription; a gateway holds
    one per connection and one per cached resource). Its messages never reach it: the parser hands
    them to ``NatsMQ._on_wire``. nats-py still reads the attributes set here when it renews the
    subscription after a reconnect, drains or closes (tests/gateway/test_library_internals.py
    checks they are all of ``Subscription``'s)."""

    def __init__(self, conn: NatsClient, sid: int, subject: str) -> None:  # noqa: PLW0231 - lean on purpose
        # One dict update instead of seventeen attribute stores (one entry per new resource).
        self.__dict__.update(_LEAN_DEFAULTS)
        self._conn = conn
        self._id = sid
        self._subject = subject
        self._pending_next_msgs_calls = {}


#: The attributes of a ``LeanSubscription`` that are the same for every one.
_LEAN_DEFAULTS: dict[str, Any] = {
    "_queue": "",
    "_max_msgs": 0,
    "_received": 0,
    "_cb": None,
    "_future": None,
    "_closed": False,
    "_pending_msgs_limit": 0,
    "_pending_bytes_limit": 0,
    "_pending_queue": None,  # falsy: drain has nothing to wait for
    "_pending_size": 0,
    "_wait_for_msgs_task": None,
    "_message_iterator": None,
    "_jsi": None,
}


#: A token of a subscription subject: a name without separators, whitespace or wildcards, or ``*``.
_SUB_TOKEN = r"(?:[^. \t\r\n*>]+|\*)"
#: nats-py's rule for subscription subjects (its ``subscribe()`` raises otherwise): non-empty
#: tokens, no space, tab, CR or LF, ``*`` only as a whole token and ``>`` only as the whole last
#: one. As one regular expression: nats-py's check splits and walks the tokens, for every SUB.
_VALID_SUBSCRIPTION = re.compile(rf"(?:{_SUB_TOKEN}\.)*(?:{_SUB_TOKEN}|>)")


def _valid_subscription(subject: str) -> bool:
    """nats-py's own rule for subscription subjects (tests check it against ``_validate_subject``)."""
    return _VALID_SUBSCRIPTION.fullmatch(subject) is not None


def _unsubscribe_now(sub: Subscription) -> bytes:
    """What nats-py's ``Subscription.unsubscribe()`` does on a connected client; the UNSUB command."""
    sub._closed = True
    sub._stop_processing()
    sub._conn._remove_sub(sub._id)
    return b"UNSUB %d\r\n" % sub._id


def _pub_command(subject: str, reply: bytes, payload: bytes, headers: dict[str, str] | int | None) -> bytes:
    """One PUB (or HPUB, with headers: a dict, or the ids of a sampled-out trace) command as the
    NATS protocol spells it."""
    if not headers:
        return b"PUB %s %s %d\r\n%s\r\n" % (subject.encode(), reply, len(payload), payload)
    if isinstance(headers, int):  # tracing.UnsampledIds: traceparent alone, in one format step
        return _UNSAMPLED_HPUB % (
            subject.encode(),
            reply,
            _UNSAMPLED_HEAD_LEN + len(payload),
            _hexlify(headers.to_bytes(24, "big"), b"-", -16),  # tracing.traceparent_ids, inlined
            payload,
        )
    if len(headers) == 1:  # a traceparent alone, the usual case with tracing on: half the cost
        [(key, value)] = headers.items()
        head = b"NATS/1.0\r\n%s: %s\r\n\r\n" % (key.encode(), value.encode())
    else:
        head = (
            b"NATS/1.0\r\n"
            + b"".join(b"%s: %s\r\n" % (k.encode(), v.encode()) for k, v in headers.items())
            + b"\r\n"
        )
    return b"HPUB %s %s %d %d\r\n%s%s\r\n" % (
        subject.encode(),
        reply,
        len(head),
        len(head) + len(payload),
        head,
        payload,
    )


#: The HPUB command of a request in a sampled-out trace (``_pub_command``): traceparent with the
#: sampled flag off and the random-trace-id flag on (as ``tracing`` makes such ids).
_UNSAMPLED_HEAD_LEN = len(b"NATS/1.0\r\ntraceparent: 00-%s-02\r\n\r\n" % (b"0" * 49))
_UNSAMPLED_HPUB = (
    b"HPUB %%s %%s %d %%d\r\nNATS/1.0\r\ntraceparent: 00-%%s-02\r\n\r\n%%s\r\n" % _UNSAMPLED_HEAD_LEN
)


def _traceparent(ids: int) -> str:
    """``traceparent`` of a sampled-out trace's ids (what ``_pub_command`` writes), for nats-py."""
    return f"00-{tracing.traceparent_ids(ids).decode()}-02"


def _raw_transport(transport: Any) -> Any:
    """The event loop's transport under nats-py's TCP (or TLS) transport; None for its WebSocket one."""
    if not isinstance(transport, TcpTransport):
        return None
    writer = transport._io_writer
    return None if writer is None else writer.transport


def _write_buffer_size(transport: Any) -> int:
    """Bytes queued unsent on nats-py's transport (0 when it cannot tell)."""
    raw = _raw_transport(transport)
    try:
        return int(raw.get_write_buffer_size()) if raw is not None else 0
    except Exception:  # noqa: BLE001 - a closing transport
        return 0


def _pre_response_timeout(data: bytes) -> int | None:
    """Read ``timeout:"<ms>"`` from a pre-response (Go struct-tag style key:"value" pairs)."""
    text = data.decode("utf-8", "replace")
    i = 0
    n = len(text)
    found: int | None = None
    while i < n:
        while i < n and text[i] == " ":
            i += 1
        j = text.find(':"', i)
        if j < 0:
            break
        key = text[i:j]
        k = text.find('"', j + 2)
        if k < 0:
            break
        value = text[j + 2 : k]
        if key == "timeout" and value.isdigit():
            found = int(value)
        i = k + 1
    return found


def tls_context(cert: str, key: str, root_cas: list[str]) -> ssl.SSLContext | None:
    """Client TLS context for NATS when a client certificate or root CAs are configured."""
    if not (cert or root_cas):
        return None
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    for ca in root_cas:
        ctx.load_verify_locations(ca)
    if cert:
        ctx.load_cert_chain(cert, key or None)
    return ctx


__all__ = ["NatsMQ", "tls_context"]
