"""A RES WebSocket client for tests, on the ``websockets`` asyncio client.

Used by the macros in ``tests/support/macros.py`` and the ``gateway_factory`` fixture. A background reader
routes messages with an ``id`` to the matching request future and messages with an ``event`` key to an event
queue. Anything else (non-JSON text, a response with an unknown id, a binary frame) marks the client
*broken*; the fixture that created the client fails the test at teardown (catalog §2, ws.go).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Self

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from tests.support.jsoncmp import assert_json_equal, dumps


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


#: ``params`` value meaning "omit the params key" (the Go client omits nil params).
MISSING: Any = _Missing()

#: Seconds allowed for the WebSocket opening handshake.
OPEN_TIMEOUT = 2.0
#: Seconds allowed for the closing handshake.
CLOSE_TIMEOUT = 2.0


class Event(tuple[str, Any]):
    """A client event ``(name, data)``; ``msg`` is the whole message (to tell absent data from null)."""

    msg: dict[str, Any]

    def __new__(cls, msg: dict[str, Any]) -> Self:
        obj = super().__new__(cls, (msg["event"], msg.get("data")))
        obj.msg = msg
        return obj

    @property
    def name(self) -> str:
        return self[0]

    @property
    def data(self) -> Any:
        return self[1]

    @property
    def has_data(self) -> bool:
        return "data" in self.msg


class PendingRequest:
    """A request sent by ``WSClient.send``; ``await response()`` for the whole response message."""

    def __init__(self, client: WSClient, rid: int, method: str, future: asyncio.Future[dict[str, Any]]):
        self.client = client
        self.id = rid
        self.method = method
        self._future = future

    def __repr__(self) -> str:
        return f"PendingRequest({self.id}, {self.method!r})"

    @property
    def done(self) -> bool:
        return self._future.done()

    async def response(self, timeout: float = 1.0) -> dict[str, Any]:
        try:
            return await asyncio.wait_for(asyncio.shield(self._future), timeout)
        except TimeoutError:
            raise AssertionError(f"no response to {self.method!r} (id {self.id}) within {timeout}s") from None

    async def result(self, expected: Any = MISSING, timeout: float = 1.0) -> Any:
        """The response's ``result`` (must not be an error); compared with ``expected`` unless MISSING."""
        return assert_result(await self.response(timeout), expected)

    async def error(self, expected: Any = None, timeout: float = 1.0) -> dict[str, Any]:
        return assert_error(await self.response(timeout), expected)

    def assert_no_response(self) -> None:
        """No response has arrived so far (use after a barrier)."""
        assert not self._future.done(), f"unexpected response to {self.method!r}: {self._future.result()!r}"


def assert_result(resp: dict[str, Any], expected: Any = MISSING) -> Any:
    """``resp`` is a success; its ``result`` deep-equals ``expected`` (unless MISSING). Returns result."""
    assert "error" not in resp, f"expected a result, got error {dumps(resp.get('error'))}"
    if expected is not MISSING:
        assert "result" in resp, f"expected result {dumps(expected)}, response has none: {dumps(resp)}"
        assert_json_equal(resp["result"], expected, "result")
    return resp.get("result")


def assert_error(resp: dict[str, Any], expected: Any = None) -> dict[str, Any]:
    """``resp`` is an error. ``expected``: a full error dict (deep-equal; ``data`` absent or null
    accepted when expected has none), a code string (only ``code`` compared), or None (any error)."""
    assert "error" in resp, f"expected an error, got {dumps(resp)}"
    err = resp["error"]
    assert isinstance(err, dict), f"error is not an object: {dumps(err)}"
    if isinstance(expected, str):
        assert err.get("code") == expected, f"expected error code {expected!r}, got {dumps(err)}"
    elif expected is not None:
        actual = err
        if "data" not in expected and err.get("data", None) is None:
            actual = {k: v for k, v in err.items() if k != "data"}
        assert_json_equal(actual, expected, "error")
    return err


class WSClient:
    """One client WebSocket connection to the gateway."""

    def __init__(self, ws: ClientConnection, url: str) -> None:
        self.ws = ws
        self.url = url
        self.status: int = ws.response.status_code if ws.response else 0
        self.headers: Headers = ws.response.headers if ws.response else Headers()
        self.broken: list[str] = []
        self._next_id = 1
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._events: asyncio.Queue[Event] = asyncio.Queue()
        self._reader = asyncio.get_running_loop().create_task(self._read(), name=f"wsclient-reader {url}")

    # Connecting

    @staticmethod
    async def _open(url: str, headers: dict[str, str] | None, compression: bool) -> ClientConnection:
        return await connect(
            url,
            additional_headers=headers,
            compression="deflate" if compression else None,
            open_timeout=OPEN_TIMEOUT,
            close_timeout=CLOSE_TIMEOUT,
            ping_interval=None,
            max_size=None,
            user_agent_header=None,
        )

    @classmethod
    async def connect(
        cls, url: str, headers: dict[str, str] | None = None, *, compression: bool = False
    ) -> WSClient:
        """Open a connection; fails the test if the upgrade is rejected."""
        client, status, _ = await cls.try_connect(url, headers, compression=compression)
        assert client is not None, f"WebSocket upgrade to {url} rejected (status {status})"
        return client

    @classmethod
    async def try_connect(
        cls, url: str, headers: dict[str, str] | None = None, *, compression: bool = False
    ) -> tuple[WSClient | None, int, Headers]:
        """``(client, 101, headers)`` on success, ``(None, status, headers)`` for a rejected upgrade
        (status 0 and empty headers when no HTTP response was received at all)."""
        try:
            ws = await cls._open(url, headers, compression)
        except InvalidStatus as exc:
            return None, exc.response.status_code, exc.response.headers
        except (InvalidHandshake, OSError, TimeoutError):
            return None, 0, Headers()
        client = cls(ws, url)
        return client, client.status, client.headers

    # Reading

    def _mark_broken(self, reason: str) -> None:
        self.broken.append(reason)

    async def _read(self) -> None:
        try:
            async for frame in self.ws:
                if isinstance(frame, bytes):
                    self._mark_broken(f"binary frame {frame[:200]!r}")
                    continue
                try:
                    msg = orjson.loads(frame)
                except orjson.JSONDecodeError:
                    self._mark_broken(f"non-JSON message {frame[:200]!r}")
                    continue
                if not isinstance(msg, dict):
                    self._mark_broken(f"non-object message {frame[:200]!r}")
                elif "event" in msg:
                    self._events.put_nowait(Event(msg))
                elif "id" in msg:
                    fut = self._pending.pop(msg["id"], None) if isinstance(msg["id"], int) else None
                    if fut is None:
                        self._mark_broken(f"response with unknown id {frame[:200]!r}")
                    else:
                        fut.set_result(msg)
                else:
                    self._mark_broken(f"message neither response nor event {frame[:200]!r}")
        except ConnectionClosed:
            pass
        finally:
            for rid, fut in self._pending.items():
                if not fut.done():
                    fut.set_exception(AssertionError(f"connection closed before response to id {rid}"))
            self._pending.clear()

    # Requests

    async def send(self, method: str, params: Any = MISSING) -> PendingRequest:
        """Send ``{"id":n,"method":method[,"params":params]}``; ids increase from 1 per client."""
        rid = self._next_id
        self._next_id += 1
        msg: dict[str, Any] = {"id": rid, "method": method}
        if params is not MISSING:
            msg["params"] = params
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        try:
            await self.ws.send(json.dumps(msg))
        except BaseException:
            self._pending.pop(rid, None)
            raise
        return PendingRequest(self, rid, method, fut)

    async def request(self, method: str, params: Any = MISSING, timeout: float = 1.0) -> dict[str, Any]:
        """Send and await the whole response message."""
        return await (await self.send(method, params)).response(timeout)

    async def send_raw(self, data: str | bytes) -> None:
        """Send a frame verbatim (text for str, binary for bytes)."""
        await self.ws.send(data)

    # Events

    def pending_events(self) -> list[Event]:
        return list(self._events._queue)  # type: ignore[attr-defined]

    async def get_event(self, timeout: float = 1.0) -> Event:
        try:
            return await asyncio.wait_for(self._events.get(), timeout)
        except TimeoutError:
            raise AssertionError(f"no client event within {timeout}s") from None

    async def expect_event(self, name: str, data: Any = MISSING, timeout: float = 1.0) -> Event:
        """The next event is ``name``; its data deep-equals ``data`` unless MISSING."""
        ev = await self.get_event(timeout)
        assert ev.name == name, f"expected event {name!r}, got {ev.name!r} {dumps(ev.data)}"
        if data is not MISSING:
            assert_json_equal(ev.data, data, f"data of event {name!r}")
        return ev

    async def get_events(self, n: int, timeout: float = 1.0) -> list[Event]:
        """The next ``n`` events in arrival order (compare order-free, e.g. by name)."""
        got: list[Event] = []
        try:
            async with asyncio.timeout(timeout):
                while len(got) < n:
                    got.append(await self._events.get())
        except TimeoutError:
            raise AssertionError(f"expected {n} events within {timeout}s, got {got!r}") from None
        return got

    async def assert_no_event(self, window: float = 0.0) -> None:
        """No event is queued now, nor arrives within a quiet ``window`` of seconds (0: check only).

        See ``macros.no_event`` for the ordered barrier form.
        """
        queued = self.pending_events()
        assert not queued, f"unexpected events {queued!r}"
        if window:
            try:
                ev = await asyncio.wait_for(self._events.get(), window)
            except TimeoutError:
                return
            raise AssertionError(f"unexpected event {ev!r}")

    # Closing

    @property
    def closed(self) -> bool:
        return self._reader.done()

    @property
    def close_code(self) -> int | None:
        return self.ws.close_code

    async def wait_closed(self, timeout: float = 1.0) -> None:
        """Wait until the connection is closed (by either side)."""
        try:
            await asyncio.wait_for(asyncio.shield(self._reader), timeout)
        except TimeoutError:
            raise AssertionError(f"connection to {self.url} not closed within {timeout}s") from None

    async def close(self, timeout: float = CLOSE_TIMEOUT + 1) -> None:
        """Close from the client side and wait for the reader to finish (idempotent)."""
        await self.ws.close()
        await self.wait_closed(timeout)

    def assert_not_broken(self) -> None:
        assert not self.broken, f"client {self.url} broken: {self.broken}"


__all__ = ["MISSING", "Event", "PendingRequest", "WSClient", "assert_error", "assert_result"]
