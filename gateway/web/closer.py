"""Closing WebSockets with 1001 (going away) at a bounded rate: the SIGTERM drain and load shedding.

Owned by ``gateway.app.Gateway``, which calls ``drain`` on shutdown; ``gateway.web.admin`` calls
``shed`` for ``POST /shed`` (connection rebalancing, issue 11). Both take the same paced loop, so a
shed client sees exactly what a drained one sees and reconnects the same way.

Which connections go: the oldest first (``Gateway.sockets`` is ordered by upgrade time). A client that
was shed and reconnected lands at the end of that order, so no client is shed twice while an older
one on the same gateway is still open; shedding the newest first would keep hitting the clients that
just came back through the Service. Picking costs one pass over the registry per batch.

Pacing: closes go out in batches of ``max(floor(rate / 20), 1)`` spaced ``batch / rate`` seconds
apart, so the long-run rate is ``rate`` and any one-second window holds at most ``rate + batch``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
from collections.abc import Callable
from typing import Protocol

from aiohttp import WSCloseCode

from gateway import tracelog

#: Batches per second of a paced close (the drain's pacing since before shedding existed).
_BATCHES_PER_SECOND = 20


class ClientSocket(Protocol):
    """An open WebSocket as the closer sees it: aiohttp's ``WebSocketResponse`` or
    ``gateway.web.wsserver.WebSocketProtocol``."""

    @property
    def closed(self) -> bool: ...

    async def close(self, *, code: int = ..., message: bytes = ...) -> bool: ...


@dataclasses.dataclass
class _Plan:
    """What the running loop works towards; a new ``shed`` call replaces it in place."""

    target: int
    rate: float  # closes per second; 0 = all at once (drain only)
    budget: float  # closes left before the loop stops even if new clients keep coming
    counted: bool  # closes count as shed (the metric), not as a drain
    reason: str  # for the trace log


#: Why the closer closes a connection, as the trace log says it.
DRAIN_REASON = "Server is shutting down"  # (resgate's words)
SHED_REASON = "Shedding connections (rebalance)"


class Closer:
    """Closes the open WebSockets of ``sockets`` (cid → socket, oldest first) beyond a target count."""

    def __init__(
        self, sockets: dict[str, ClientSocket], on_shed: Callable[[int], None], *, trace: bool = False
    ) -> None:
        self._sockets = sockets
        self._on_shed = on_shed
        self._trace = trace
        self._plan: _Plan | None = None
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        #: Closes begun here and not finished, by socket (``ws.closed`` turns true only once the
        #: close coroutine runs, which is after the whole batch was picked when the rate is 0).
        self._closing: dict[ClientSocket, asyncio.Future[bool]] = {}
        #: Loop time and size of the last batch, so a replaced rate still spaces the next batch.
        self._last_at = -math.inf
        self._last_n = 0
        #: Connections closed by ``shed`` since start.
        self.shed_total = 0

    # -- state -------------------------------------------------------------------------------------

    def open_count(self) -> int:
        """WebSockets that are open and not being closed (what the target is compared with)."""
        return len(self._open())

    def _open(self) -> list[tuple[str, ClientSocket]]:
        closing = self._closing
        return [(cid, ws) for cid, ws in self._sockets.items() if not ws.closed and ws not in closing]

    @property
    def shedding(self) -> bool:
        return self._task is not None and not self._task.done() and self._plan is not None

    def status(self) -> dict[str, object]:
        """The JSON of ``GET /connections`` (and of the ``POST /shed`` reply)."""
        plan = self._plan if self.shedding else None
        return {
            "connections": self.open_count(),
            "shedding": plan is not None and plan.counted,
            "target": plan.target if plan is not None and plan.counted else None,
            "rate": plan.rate if plan is not None and plan.counted else None,
            "shedTotal": self.shed_total,
        }

    # -- shedding and draining ---------------------------------------------------------------------

    def shed(self, target: int, rate: float) -> None:
        """Close open WebSockets beyond ``target``, at most ``rate`` per second (``rate`` > 0).

        Replaces an earlier call's target and rate (nothing accumulates). Closes at most as many as
        were beyond the target now, so clients arriving meanwhile cannot keep it going for ever.
        """
        budget = max(self.open_count() - target, 0)
        self._plan = _Plan(target=target, rate=rate, budget=budget, counted=True, reason=SHED_REASON)
        self._changed.set()
        if budget and not self.shedding:
            self._task = asyncio.ensure_future(self._run())

    def stop_shedding(self) -> None:
        """End a shed in progress where it is (closes already begun go on); a drain is not stopped."""
        if self._plan is not None and self._plan.counted:
            self._plan = None
            self._changed.set()

    async def drain(self, rate: int) -> None:
        """Close every WebSocket (``rate`` per second, 0 = all at once) and wait for the handshakes."""
        await self.cancel()
        self._plan = _Plan(target=0, rate=rate, budget=math.inf, counted=False, reason=DRAIN_REASON)
        await self._run()
        await self.wait_closed()

    async def cancel(self) -> None:
        """Stop shedding (closes already begun go on)."""
        task, self._task, self._plan = self._task, None, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def wait_closed(self) -> None:
        if self._closing:
            await asyncio.gather(*self._closing.values(), return_exceptions=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while (plan := self._plan) is not None:
            open_ws = self._open()
            n = min(len(open_ws) - plan.target, plan.budget)
            if n <= 0:
                break
            if plan.rate:
                wait = self._last_at + self._last_n / plan.rate - loop.time()
                if wait > 0:
                    self._changed.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._changed.wait(), wait)
                    continue  # the plan may have been replaced meanwhile
                n = min(n, max(int(plan.rate / _BATCHES_PER_SECOND), 1))
            batch = open_ws[: int(n)]
            for cid, ws in batch:
                if self._trace:
                    tracelog.disconnecting(cid, plan.reason)
                self._close(ws)
            plan.budget -= len(batch)
            self._last_at, self._last_n = loop.time(), len(batch)
            if plan.counted:
                self.shed_total += len(batch)
                self._on_shed(len(batch))
        if self._plan is not None and self._plan.counted:
            self._plan = None

    def _close(self, ws: ClientSocket) -> None:
        fut = asyncio.ensure_future(ws.close(code=WSCloseCode.GOING_AWAY, message=b"going away"))
        self._closing[ws] = fut
        fut.add_done_callback(lambda _: self._closing.pop(ws, None))
