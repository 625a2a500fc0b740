"""A counting throttle for bursts of service requests (``resetThrottle``, ``referenceThrottle``).

Used by the cache (system.reset) and by subscription loading. Jobs are plain callables that start a
request; whoever handles that request's reply calls ``done()`` once.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable


class Throttle:
    """Runs at most ``limit`` jobs at once (0 = unlimited); the rest wait in FIFO order."""

    __slots__ = ("_waiting", "limit", "running")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.running = 0
        self._waiting: deque[Callable[[], None]] = deque()

    def run(self, job: Callable[[], None]) -> None:
        if self.limit <= 0:
            job()
            return
        if self.running < self.limit:
            self.running += 1
            job()
        else:
            self._waiting.append(job)

    def done(self) -> None:
        if self.limit <= 0:
            return
        if self._waiting:
            self._waiting.popleft()()
        else:
            self.running -= 1


UNLIMITED = Throttle(0)
