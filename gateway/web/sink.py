"""Outgoing WebSocket frames for one client, written straight to its transport.

Used by ``gateway.web.ws`` as the connection's ``ClientSink``. Frames sent during one turn of the
event loop are coalesced into one write; a client whose transport buffer grows past the limit is a
slow consumer and is disconnected, so one stalled client cannot exhaust the gateway's memory.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from gateway import constants
from gateway.protocol import wsframe

log = logging.getLogger(__name__)


class SinkFlusher:
    """Flushes every sink that got frames in this turn of the event loop with one callback
    (one per gateway), instead of one scheduled callback per client per burst."""

    __slots__ = ("_dirty", "_loop", "_scheduled", "on_slow_consumer")

    def __init__(self, on_slow_consumer: Callable[[], None] | None = None) -> None:
        self._dirty: list[TransportSink] = []
        self._scheduled = False
        self.on_slow_consumer = on_slow_consumer or _nothing
        self._loop: asyncio.AbstractEventLoop | None = None  # kept: get_running_loop() is a syscall

    def mark(self, sink: TransportSink) -> None:
        self._dirty.append(sink)
        if not self._scheduled:
            self._scheduled = True
            if self._loop is None:
                self._loop = asyncio.get_running_loop()
            self._loop.call_soon(self._run)

    def _run(self) -> None:
        self._scheduled = False
        dirty, self._dirty = self._dirty, []
        for sink in dirty:
            sink.flush()


class TransportSink:
    """Coalescing writer of pre-built (unmasked, uncompressed) server frames.

    Slow consumers: output the client has not read is bounded by ``limit`` (``clientOutboxLimit``)
    plus the largest frame written since the client last had everything read: one response larger
    than the limit (a big resource set) still goes out, and the events right behind it do not make a
    client that is reading it a slow consumer. The check runs once per loop turn, after the write
    (the hot path pays one buffer-size read, as before), so the gateway holds at most the limit plus
    the largest recent frame plus one turn's output per client; a turn's output follows from what
    NATS delivered in it, which nats-py reads in bounded chunks.
    """

    __slots__ = ("_big", "_closed", "_flusher", "_frames", "_limit", "_scheduled", "_transport", "cid")

    def __init__(
        self,
        transport: asyncio.Transport,
        *,
        cid: str,
        flusher: SinkFlusher | None = None,
        limit: int = constants.WS_MAX_OUTBOX_BYTES,
    ) -> None:
        self._transport = transport
        self._flusher = flusher or SinkFlusher()
        self._frames: list[bytes] = []
        self._scheduled = False
        self._closed = False
        self._limit = limit
        #: The largest frame written since the client last had everything read (a big resource
        #: set, say), as far as it mattered: allowed on top of the limit.
        self._big = 0
        self.cid = cid

    def send(self, frame: bytes) -> None:
        self._frames.append(frame)
        if not self._scheduled:
            self._scheduled = True
            self._flusher.mark(self)

    def flush(self) -> None:
        """Write what was sent since the last flush, in one write."""
        self._scheduled = False
        frames, self._frames = self._frames, []
        transport = self._transport
        if transport.is_closing():  # also after _slow_consumer, which closes it
            return
        data = frames[0] if len(frames) == 1 else b"".join(frames)
        transport.write(data)
        unread = transport.get_write_buffer_size()
        if unread > self._limit:  # rare
            self._over_limit(unread, frames)
        elif self._big and not unread:  # caught up: the allowance for a big frame ends
            self._big = 0

    def _over_limit(self, unread: int, frames: list[bytes]) -> None:
        largest = max(map(len, frames))
        self._big = max(self._big, largest)
        if unread > self._limit + self._big:
            self._slow_consumer(unread)

    def _slow_consumer(self, unread: int) -> None:
        """Disconnect: a close frame (1008) behind the unread output, then abort unless the client
        took it all within the grace period (a stalled client never does)."""
        if self._closed:
            return
        self._closed = True
        self._frames = []
        log.warning(
            "[%s] Slow consumer: %d bytes unread (limit %d), disconnecting", self.cid, unread, self._limit
        )
        self._flusher.on_slow_consumer()
        transport = self._transport
        if transport.is_closing():
            return
        transport.write(SLOW_CONSUMER_CLOSE_FRAME)
        transport.close()
        asyncio.get_running_loop().call_later(constants.SLOW_CONSUMER_CLOSE_GRACE, _abort, transport)


class CompressingSink:
    """Fallback for connections that negotiated permessage-deflate: one writer task re-sends
    frame payloads through aiohttp, which compresses them per connection.

    Frames are written in order. Queued bytes are bounded like ``TransportSink``'s outbox: past the
    limit the client is a slow consumer and its connection is aborted (not just left without output;
    a close frame cannot be put between aiohttp's compressed writes, so there is none).
    A write that fails (client gone) ends the writer quietly; the read loop then ends the connection.
    """

    def __init__(
        self,
        ws: object,
        *,
        cid: str,
        limit: int = constants.WS_MAX_OUTBOX_BYTES,
        on_slow_consumer: Callable[[], None] | None = None,
    ) -> None:
        self._ws = ws
        self._on_slow_consumer = on_slow_consumer or _nothing
        self._queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._queued = 0
        self._limit = limit
        self._closed = False
        self._task: asyncio.Task[None] | None = asyncio.get_running_loop().create_task(
            self._run(), name=f"ws-compress {cid}"
        )
        self.cid = cid

    def send(self, frame: bytes) -> None:
        if self._closed:
            return
        if self._queued > self._limit:  # counted before this frame, as in TransportSink
            log.warning(
                "[%s] Slow consumer: %d bytes unread (limit %d), disconnecting",
                self.cid,
                self._queued,
                self._limit,
            )
            self._on_slow_consumer()
            self._abort()
            return
        self._queue.put_nowait(frame)
        self._queued += len(frame)

    async def _run(self) -> None:
        from aiohttp import WSMsgType, web

        ws = self._ws
        assert isinstance(ws, web.WebSocketResponse)
        send_frame = getattr(ws, "send_frame", None)  # aiohttp >= 3.11: no decode/encode round trip
        try:
            while True:
                frame = await self._queue.get()
                self._queued -= len(frame)
                if send_frame is not None:
                    await send_frame(wsframe.payload(frame), WSMsgType.TEXT)
                else:
                    await ws.send_str(wsframe.payload(frame).decode("utf-8"))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the client went away; the read loop cleans up
            log.debug("[%s] compressed write failed: %r", self.cid, exc)
            self._closed = True

    def _abort(self) -> None:
        self._closed = True
        self._stop_writer()
        self._queue = asyncio.Queue()
        self._queued = 0
        # aiohttp has no public handle on the socket of a prepared WebSocketResponse; its writer has.
        transport = getattr(getattr(self._ws, "_writer", None), "transport", None)
        if transport is not None:
            transport.abort()

    def close(self) -> None:
        self._closed = True
        self._stop_writer()

    def _stop_writer(self) -> None:
        # Not kept once cancelled: its cancellation's traceback holds the writer's frame, and so
        # this sink, a cycle only the garbage collector would free (the loop holds it until done).
        task, self._task = self._task, None
        if task is not None:
            task.cancel()


def _nothing() -> None:
    pass


def _abort(transport: asyncio.Transport) -> None:
    try:
        transport.abort()
    except Exception:  # already gone
        log.debug("abort of a closed transport", exc_info=True)


#: Close frame 1008 (policy violation) "slow consumer", as a server sends it (unmasked).
SLOW_CONSUMER_CLOSE_FRAME = bytes((0x88, 15)) + (1008).to_bytes(2, "big") + b"slow consumer"
