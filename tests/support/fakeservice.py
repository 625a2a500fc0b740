"""The fake RES service: records the gateway's NATS requests and lets a test answer them and publish events.

One nats-py connection (``no_echo``) per test, made by the ``service`` fixture in ``tests/conftest.py``. It
subscribes to ``get.>``, ``access.>``, ``call.>``, ``auth.>`` plus any ad-hoc subject added with
``add_subject`` (e.g. ``_EVENT_01_``, ``token.renew``). Every message with a reply subject becomes a
``Request`` in an arrival-ordered queue; the test pops it and answers (or does not, to make the gateway time
out). Publishes and replies are flushed, so their order relative to each other and to later test steps
holds at the NATS server (catalog §7.1 item 3).

Gateway subscriptions are read from the server's monitoring endpoint: every open connection that is not a
harness connection (name prefix ``HARNESS_PREFIX``) counts as the gateway.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Awaitable, Iterator
from typing import Any, Self

import aiohttp
import nats
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from tests.support.jsoncmp import assert_json_equal, dumps, has_path, lookup

#: Name prefix of every NATS connection the harness opens; the others are the gateway's.
HARNESS_PREFIX = "pyresgate-harness"
#: Subjects the fake service always answers (catalog §7.1 item 3).
SERVICE_SUBJECTS = ("get.>", "access.>", "call.>", "auth.>")

_names = itertools.count(1)


class _Sentinel:
    def __init__(self, name: str, data: bytes) -> None:
        self.name = name
        self.data = data

    def __repr__(self) -> str:
        return self.name


#: Event payload: the 4 bytes ``null``.
NULL = _Sentinel("NULL", b"null")
#: Event payload: zero length.
EMPTY = _Sentinel("EMPTY", b"")


def encode_payload(payload: Any) -> bytes:
    """JSON-encode ``payload``; bytes are sent verbatim, ``NULL``/``EMPTY`` as their bytes."""
    if isinstance(payload, _Sentinel):
        return payload.data
    if isinstance(payload, (bytes, bytearray)):
        return bytes(payload)
    return json.dumps(payload).encode()


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS wildcard match: ``*`` one token, ``>`` one or more trailing tokens."""
    p, s = pattern.split("."), subject.split(".")
    for i, tok in enumerate(p):
        if tok == ">":
            return len(s) > i
        if i >= len(s) or (tok != "*" and tok != s[i]):
            return False
    return len(p) == len(s)


class RawPayload(bytes):
    """The request's payload bytes, also callable as the ``raw`` reply: ``req.raw`` compares and parses
    like bytes, ``await req.raw(b"...")`` replies these bytes (both spellings are in the harness brief)."""

    request: Request

    def __call__(self, data: bytes) -> Awaitable[None]:
        return self.request.respond_raw(data)


class Request:
    """One request the gateway sent; answer it at most once.

    ``raw``/``payload``: payload bytes; ``data``: parsed JSON (None if empty or not JSON, see ``is_json``).
    """

    def __init__(self, service: FakeService, subject: str, raw: bytes, reply: str) -> None:
        self.service = service
        self.subject = subject
        self.raw = RawPayload(raw)
        self.raw.request = self
        self.payload = raw
        self.reply = reply
        self.answered = False
        try:
            self.data: Any = json.loads(raw) if raw else None
            self.is_json = bool(raw)
        except ValueError:
            self.data = None
            self.is_json = False

    def __repr__(self) -> str:
        return f"Request({self.subject!r}, {self.payload[:200]!r})"

    # Replies

    async def respond_raw(self, data: bytes) -> None:
        """Reply exactly these bytes (may be invalid JSON or empty); also spelled ``await req.raw(data)``."""
        if self.answered:
            raise AssertionError(f"request {self.subject} answered twice")
        self.answered = True
        await self.service.publish(self.reply, data)

    async def json(self, obj: Any) -> None:
        await self.respond_raw(json.dumps(obj).encode())

    async def ok(self, result: Any) -> None:
        await self.json({"result": result})

    async def error(self, err: Any) -> None:
        await self.json({"error": err})

    async def resource(self, rid: str) -> None:
        await self.json({"resource": {"rid": rid}})

    # Assertions

    def assert_subject(self, subject: str) -> Request:
        assert self.subject == subject, f"expected request on {subject!r}, got {self!r}"
        return self

    def assert_payload(self, expected: Any) -> Request:
        """The whole payload deep-equals ``expected``."""
        assert self.is_json, f"payload of {self.subject} is not JSON: {self.payload!r}"
        assert_json_equal(self.data, expected, f"payload of {self.subject}")
        return self

    def path(self, path: str) -> Any:
        """Value at dotted ``path``; fails when the key is absent."""
        assert has_path(self.data, path), f"{self.subject}: {path!r} missing in {dumps(self.data)}"
        return lookup(self.data, path)

    def assert_path(self, path: str, value: Any) -> Request:
        """The value at dotted ``path`` exists and deep-equals ``value`` (so null is not absent)."""
        assert_json_equal(self.path(path), value, f"{self.subject} payload at {path!r}")
        return self

    def assert_path_type(self, path: str, typ: type | tuple[type, ...]) -> Request:
        value = self.path(path)
        ok = isinstance(value, typ) and not (isinstance(value, bool) and typ in (int, float))
        assert ok, f"{self.subject}: {path!r} is {value!r}, expected {typ}"
        return self

    def assert_missing(self, path: str) -> Request:
        assert not has_path(self.data, path), f"{self.subject}: {path!r} present in {dumps(self.data)}"
        return self


class RequestSet:
    """Requests collected order-free; ``get(subject)`` takes the one with that subject."""

    def __init__(self, requests: list[Request]) -> None:
        self.requests = list(requests)

    def __len__(self) -> int:
        return len(self.requests)

    def __iter__(self) -> Iterator[Request]:
        return iter(self.requests)

    def subjects(self) -> list[str]:
        return sorted(r.subject for r in self.requests)

    def get(self, subject: str) -> Request:
        for req in self.requests:
            if req.subject == subject:
                return req
        raise AssertionError(f"no request on {subject!r} among {self.subjects()}")

    def get_all(self, subject: str) -> list[Request]:
        return [r for r in self.requests if r.subject == subject]


class FakeService:
    """A RES service double on its own NATS connection; see the module docstring."""

    def __init__(self, nats_url: str, monitor_url: str | None = None, *, check_subscriptions: bool = False):
        self.nats_url = nats_url
        self.monitor_url = monitor_url
        #: When true, every event publish first asserts the gateway holds a covering subscription.
        self.check_subscriptions = check_subscriptions
        self.name = f"{HARNESS_PREFIX}-service-{next(_names)}"
        self.nc: NATS | None = None
        self._queue: asyncio.Queue[Request] = asyncio.Queue()
        self._subjects: set[str] = set()
        self._http: aiohttp.ClientSession | None = None

    async def start(self) -> Self:
        self.nc = await nats.connect(
            self.nats_url, name=self.name, no_echo=True, allow_reconnect=False, connect_timeout=2
        )
        await self.add_subject(*SERVICE_SUBJECTS)
        return self

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None
        if self.nc is not None and not self.nc.is_closed:
            await self.nc.close()

    async def leave(self, probe_subject: str, timeout: float = 5.0) -> None:
        """Close the connection and return once nats-server no longer routes ``probe_subject`` to it.

        The server drops a closed client's subscriptions only when it notices the socket closed, so
        a request published right after ``close()`` can still be routed to the dead connection (and
        then gets no answer at all instead of the no-responders status)."""
        await self.close()
        probe = await nats.connect(self.nats_url, allow_reconnect=False, connect_timeout=2)
        try:
            deadline = asyncio.get_running_loop().time() + timeout
            while True:
                try:
                    await probe.request(probe_subject, b"", timeout=0.2)
                except nats.errors.NoRespondersError:
                    return
                except nats.errors.TimeoutError:
                    pass
                if asyncio.get_running_loop().time() > deadline:
                    raise AssertionError(f"nats-server still routes {probe_subject} after {timeout}s")
        finally:
            await probe.close()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _settled(self) -> None:
        """Return once nats-server has processed everything this connection sent so far.

        ``nc.flush()`` is not enough: nats-py 2.16 writes its PING straight to the socket, ahead of
        commands still in its pending buffer, so the PONG can come back before a SUB or PUB reached
        the server. A request nobody answers goes through that buffer, behind them, and the server's
        no-responders reply (it answers even with ``no_echo``) proves they arrived.
        """
        assert self.nc is not None
        try:
            await self.nc.request(f"_{HARNESS_PREFIX}_settled.{next(_names)}", b"", timeout=2)
        except nats.errors.NoRespondersError:
            pass

    async def add_subject(self, *subjects: str) -> None:
        """Also record requests on these subjects (flushed: in effect when this returns)."""
        assert self.nc is not None
        for subject in subjects:
            if subject not in self._subjects:
                self._subjects.add(subject)
                await self.nc.subscribe(subject, cb=self._on_msg)
        await self._settled()

    add_subjects = add_subject

    async def _on_msg(self, msg: Msg) -> None:
        if msg.reply:
            self._queue.put_nowait(Request(self, msg.subject, msg.data, msg.reply))

    async def publish(self, subject: str, data: bytes) -> None:
        assert self.nc is not None
        await self.nc.publish(subject, data)
        await self._settled()

    # Requests

    def pending(self) -> list[Request]:
        """Requests received and not yet taken (does not take them)."""
        return list(self._queue._queue)  # type: ignore[attr-defined]

    async def next_request(self, timeout: float = 1.0) -> Request:
        try:
            return await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            raise AssertionError(f"no NATS request within {timeout}s") from None

    async def expect_request(self, subject: str, timeout: float = 1.0) -> Request:
        """The next request, which must be on ``subject``."""
        return (await self.next_request(timeout)).assert_subject(subject)

    async def requests(self, n: int, timeout: float = 1.0) -> RequestSet:
        """The next ``n`` requests, order-free (``timeout`` bounds the whole wait)."""
        got: list[Request] = []
        try:
            async with asyncio.timeout(timeout):
                while len(got) < n:
                    got.append(await self._queue.get())
        except TimeoutError:
            raise AssertionError(
                f"expected {n} NATS requests within {timeout}s, got {[r.subject for r in got]}"
            ) from None
        return RequestSet(got)

    async def expect_no_request(self, window: float = 0.2) -> None:
        """No request arrives (or is already queued) within ``window`` seconds."""
        try:
            req = await asyncio.wait_for(self._queue.get(), window)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected NATS request {req!r}")

    def assert_no_pending(self) -> None:
        left = self.pending()
        assert not left, f"unexpected NATS requests {left!r}"

    # Events

    async def _publish_event(self, subject: str, payload: Any, check: bool | None) -> None:
        if (self.check_subscriptions if check is None else check) and not await self.gateway_subscribed(
            subject
        ):
            # The monitor's view can lag a just-made connection by a moment: look again, briefly.
            await self.wait_gateway_subscribed(subject, timeout=0.5)
        await self.publish(subject, encode_payload(payload))

    async def event(self, rid: str, name: str, payload: Any = NULL, *, check: bool | None = None) -> None:
        """Publish ``event.<rid>.<name>``. ``payload``: JSON-able, raw bytes, ``NULL`` or ``EMPTY``."""
        await self._publish_event(f"event.{rid}.{name}", payload, check)

    async def conn_event(
        self, cid: str, name: str, payload: Any = NULL, *, check: bool | None = None
    ) -> None:
        await self._publish_event(f"conn.{cid}.{name}", payload, check)

    async def system_event(self, name: str, payload: Any = NULL, *, check: bool | None = None) -> None:
        await self._publish_event(f"system.{name}", payload, check)

    # Gateway subscriptions (NATS monitoring)

    async def gateway_subscriptions(self) -> set[str]:
        """Subjects subscribed by every open non-harness connection (i.e. the gateway's)."""
        assert self.monitor_url, "FakeService has no monitor_url"
        if self._http is None:
            self._http = aiohttp.ClientSession()
        url = f"{self.monitor_url}/connz?subs=1&limit=100000"
        async with self._http.get(url, timeout=aiohttp.ClientTimeout(total=2)) as resp:
            resp.raise_for_status()
            body = await resp.json(content_type=None)
        subs: set[str] = set()
        for conn in body.get("connections") or []:
            if str(conn.get("name", "")).startswith(HARNESS_PREFIX):
                continue
            subs.update(conn.get("subscriptions_list") or [])
        return subs

    async def gateway_subscribed(self, subject: str) -> bool:
        """Whether some gateway subscription covers ``subject`` (literal or wildcard)."""
        return any(subject_matches(p, subject) for p in await self.gateway_subscriptions())

    async def assert_gateway_subscribed(self, subject: str) -> None:
        subs = await self.gateway_subscriptions()
        assert any(subject_matches(p, subject) for p in subs), (
            f"gateway has no subscription covering {subject!r}: {sorted(subs)}"
        )

    async def assert_gateway_not_subscribed(self, subject: str) -> None:
        subs = await self.gateway_subscriptions()
        covering = sorted(p for p in subs if subject_matches(p, subject))
        assert not covering, f"gateway still subscribed to {subject!r} via {covering}"

    async def wait_gateway_subscribed(self, subject: str, present: bool = True, timeout: float = 1.0) -> None:
        """Poll the monitor until a subscription covering ``subject`` is (or is no longer) present."""
        try:
            async with asyncio.timeout(timeout):
                while await self.gateway_subscribed(subject) != present:
                    await asyncio.sleep(0.01)
        except TimeoutError:
            state = "subscribed" if present else "unsubscribed"
            raise AssertionError(f"gateway not {state} to {subject!r} within {timeout}s") from None


__all__ = [
    "EMPTY",
    "NULL",
    "FakeService",
    "Request",
    "RequestSet",
    "encode_payload",
    "subject_matches",
]
