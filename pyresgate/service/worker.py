"""Serial work per resource: jobs with the same key (a resource name) run one after another.

Called by ``Service`` for every incoming request (keyed by the request's resource name) and by
``Service.with_resource``. Running one resource's handlers in order is what makes its events and
responses reach the gateway in the order they were produced (the protocol requires events of one
resource to come from one ordered source); different resources run concurrently.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections import deque
from collections.abc import Awaitable, Callable

log = logging.getLogger("pyresgate.service")

Job = Callable[[], Awaitable[None]]

#: The key whose worker runs the current task (so a job can run more work of its own key inline).
_current_key: contextvars.ContextVar[str | None] = contextvars.ContextVar("res_worker_key", default=None)


class SerialGroups:
    """A queue of jobs per key, each drained by its own task while it has work."""

    def __init__(self) -> None:
        self._queues: dict[str, deque[Job]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    def submit(self, key: str, job: Job) -> None:
        """Queue ``job`` behind the key's earlier jobs; it runs when they are done."""
        queue = self._queues.get(key)
        if queue is not None:
            queue.append(job)
            return
        self._queues[key] = deque([job])
        self._idle.clear()
        task = asyncio.get_running_loop().create_task(self._drain(key), name=f"res-worker {key}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def run(self, key: str, job: Job) -> None:
        """Queue ``job`` and wait until it has run; its exception, if any, is raised here.

        Called from a job of the same key, ``job`` runs at once: waiting behind itself would deadlock.
        """
        if _current_key.get() == key:
            await job()
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def wrapped() -> None:
            try:
                await job()
            except asyncio.CancelledError:
                if not done.done():
                    done.cancel()
                raise
            except Exception as exc:  # noqa: BLE001 - handed to the waiter, not lost in the worker
                if not done.done():
                    done.set_exception(exc)
                return
            if not done.done():
                done.set_result(None)

        self.submit(key, wrapped)
        await done

    async def _drain(self, key: str) -> None:
        queue = self._queues[key]
        _current_key.set(key)
        try:
            while queue:
                job = queue.popleft()
                try:
                    await job()
                except asyncio.CancelledError:
                    raise
                except Exception:  # a job's own failure must not stop the jobs behind it
                    log.exception("resource %s: job failed", key)
        finally:
            del self._queues[key]
            if not self._queues:
                self._idle.set()

    @property
    def busy(self) -> int:
        """Number of keys with queued or running work."""
        return len(self._queues)

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until no work is queued (True) or ``timeout`` seconds passed (False)."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def cancel(self) -> None:
        """Cancel whatever still runs (after a drain that timed out)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
