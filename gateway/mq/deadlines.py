"""Request deadlines on one event-loop timer.

A ``loop.call_later`` per NATS request (and its ``cancel`` when the reply comes, which is almost
always) showed at ~5 % of a call round trip. ``Deadlines`` keeps (deadline, token) pairs in a heap
and one timer for the earliest; replies do nothing here (their entries are skipped when they come
up), and the timer fires at most once per ``granularity``, so a timeout may be reported up to that
much late.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Callable, Mapping

#: Latest a timeout may be reported, in seconds.
GRANULARITY = 0.01


class Deadlines:
    """Calls ``on_expired(token, deadline)`` once each deadline set with ``set`` has passed, for
    tokens still in ``live``; the owner ignores tokens whose deadline was moved since."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        on_expired: Callable[[bytes, float], None],
        live: Mapping[bytes, object],
        granularity: float = GRANULARITY,
    ) -> None:
        self._loop = loop
        self._on_expired = on_expired
        self._live = live  # the owner's pending requests: bounds the heap's stale entries
        self._granularity = granularity
        self._heap: list[tuple[float, bytes]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._armed_at = float("inf")

    def set(self, token: bytes, deadline: float) -> None:
        heapq.heappush(self._heap, (deadline, token))
        if deadline < self._armed_at:
            self._arm(deadline)
        elif len(self._heap) > 4 * len(self._live) + 1024:
            self._compact()

    def __len__(self) -> int:
        return len(self._heap)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._heap.clear()
        self._armed_at = float("inf")

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._armed_at = when
        self._timer = self._loop.call_at(when, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._armed_at = float("inf")
        heap = self._heap
        live = self._live
        now = self._loop.time()
        while heap and heap[0][0] <= now:
            deadline, token = heapq.heappop(heap)
            if token in live:  # (nearly every entry is of a request answered long ago: no call)
                self._on_expired(token, deadline)
        if heap:
            self._arm(max(heap[0][0], now + self._granularity))

    def _compact(self) -> None:
        """Drop the entries of requests that are no longer pending (most of them, usually)."""
        live = self._live
        self._heap = [entry for entry in self._heap if entry[1] in live]
        heapq.heapify(self._heap)
