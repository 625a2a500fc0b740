"""Multi-process mode (``--workers N``): N full gateways sharing the client port.

Called by ``gateway.cli.serve``. The first process is a worker itself and also starts N-1 more
``python -m gateway`` processes with the same effective settings (written to a temporary config
file), each binding the client port with SO_REUSEPORT so the kernel spreads connections over them,
as resgate scales with several gateways on one NATS. Only the first process serves the admin and
metrics ports, so probes and scrapes describe that process. If any worker dies, all stop, so the
supervisor (Kubernetes, systemd) restarts the whole set.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import tempfile

from gateway.config import Config

log = logging.getLogger(__name__)

#: Set in the environment of the extra workers (to their number), so they start no workers of their own.
WORKER_ENV = "PYRESGATE_WORKER"
#: Seconds a worker gets to stop after SIGTERM before it is killed.
STOP_GRACE_S = 15.0


def is_extra_worker() -> bool:
    return bool(os.environ.get(WORKER_ENV))


class Workers:
    """The extra worker processes of one pyresgate instance."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._procs: list[asyncio.subprocess.Process] = []
        self._config_file = ""
        self.failed: asyncio.Future[int] | None = None

    async def start(self) -> None:
        """Start ``workers - 1`` processes; ``failed`` completes if one of them exits."""
        loop = asyncio.get_running_loop()
        self.failed = loop.create_future()
        fd, self._config_file = tempfile.mkstemp(prefix="pyresgate-workers-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            f.write(self._config.to_json())
        # Flags win over the RESGATE_* variables the workers inherit.
        argv = [
            sys.executable,
            "-m",
            "gateway",
            "-c",
            self._config_file,
            "--adminport",
            "0",
            "--metricsport",
            "0",
        ]
        for n in range(1, self._config.workers):
            env = {**os.environ, WORKER_ENV: str(n)}
            proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.DEVNULL, env=env)
            self._procs.append(proc)
            loop.create_task(self._watch(n, proc))
        log.info("Started %d more worker processes", len(self._procs))

    async def _watch(self, n: int, proc: asyncio.subprocess.Process) -> None:
        code = await proc.wait()
        if self.failed is not None and not self.failed.done():
            log.error("Worker %d (pid %d) exited with code %d: stopping", n, proc.pid, code)
            self.failed.set_result(1)

    async def stop(self) -> None:
        """SIGTERM every worker (graceful stop) and wait; kill those that overstay."""
        if self.failed is not None and not self.failed.done():
            self.failed.set_result(0)
        for proc in self._procs:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        for proc in self._procs:
            try:
                await asyncio.wait_for(proc.wait(), STOP_GRACE_S)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if self._config_file:
            with contextlib.suppress(OSError):
                os.unlink(self._config_file)
