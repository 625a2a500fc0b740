"""Waiting in a test until something the event loop does has happened, bounded in time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def until(cond: Callable[[], object], timeout: float = 5.0, what: str = "condition") -> None:
    """Poll ``cond`` every 10 ms until it is true; AssertionError naming ``what`` after ``timeout`` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        assert loop.time() < deadline, f"{what} not met in time"
        await asyncio.sleep(0.01)
