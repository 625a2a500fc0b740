"""Stopping background tasks at teardown, bounded in time.

A single ``task.cancel()`` is not always enough on Python 3.11: ``asyncio.wait_for`` (nats-py awaits
every request's reply with it) swallows a cancellation that arrives in the loop turn its inner future
completes, so a task looping around a request goes on as if nothing happened, and ``await task`` then
waits forever. (CI saw exactly that: a fake service's answer loop outlived its teardown.) Python 3.12
fixed ``wait_for``; the project supports 3.11.
"""

from __future__ import annotations

import asyncio
from typing import Any

#: Seconds between repeated cancellations of a task that is still running.
_RETRY = 0.05


async def stop_tasks(*tasks: asyncio.Future[Any], timeout: float = 5.0) -> None:
    """Cancel ``tasks`` (again while any still runs) and wait until all are done.

    Their results and exceptions are left unread on purpose (teardown); a task still running after
    ``timeout`` seconds raises AssertionError with its stack, rather than hanging the test run.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    pending = {t for t in tasks if not t.done()}
    while pending:
        left = deadline - loop.time()
        if left <= 0:
            raise AssertionError(f"tasks still running {timeout}s after cancel: {_describe(pending)}")
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=min(left, _RETRY))
    for task in tasks:
        if not task.cancelled():
            task.exception()  # read, so asyncio does not log "exception was never retrieved"


def _describe(tasks: set[asyncio.Future[Any]]) -> str:
    parts = []
    for task in tasks:
        frames = task.get_stack(limit=3) if isinstance(task, asyncio.Task) else []
        where = " <- ".join(f"{f.f_code.co_name}:{f.f_lineno}" for f in frames)
        parts.append(f"{task!r} at {where or '?'}")
    return "; ".join(parts)
