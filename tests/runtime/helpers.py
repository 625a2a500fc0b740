"""Helpers for the runtime tests: a real ``pyresgate`` child process, an auto-answering RES service, and
an OpenMetrics text parser.

``GatewayProcess`` runs the installed ``pyresgate`` console script (next to the interpreter, else
``python -m gateway``) on free loopback ports with its stderr in a log file, polls its admin listener, and
is signalled/killed only by its own PID. ``AutoService`` wraps the harness ``FakeService`` with a
background task that answers access/get/call requests from a dict of models, so tests with many clients
(or with a gateway that re-fetches on its own) need not answer each request by hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Self

import aiohttp

from tests.support.fakeservice import FakeService, Request
from tests.support.natsserver import free_port
from tests.support.tasks import stop_tasks

#: Seconds a gateway process gets to become ready.
START_TIMEOUT = 10.0
#: Seconds a gateway process gets to exit after SIGKILL.
KILL_TIMEOUT = 5.0


def pyresgate_command() -> list[str]:
    """The ``pyresgate`` console script next to the interpreter, else ``python -m gateway``."""
    script = Path(sys.executable).parent / "pyresgate"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "gateway"]


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without any RESGATE_* variable, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESGATE_")}
    env.update(extra)
    return env


async def http_get(url: str, timeout: float = 2.0) -> tuple[int, str, dict[str, str]]:
    """``(status, body, headers)`` of a GET; status 0 when nothing answered."""
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
            session.get(url) as resp,
        ):
            return resp.status, await resp.text(), dict(resp.headers)
    except (aiohttp.ClientError, OSError, TimeoutError):
        return 0, "", {}


async def port_accepts(port: int, host: str = "127.0.0.1") -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 1.0)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()
    return True


class GatewayProcess:
    """One ``pyresgate`` child process on 127.0.0.1."""

    def __init__(self, proc: asyncio.subprocess.Process, port: int, admin_port: int, log_path: Path,
                 log_dir: tempfile.TemporaryDirectory[str]) -> None:  # fmt: skip
        self.proc = proc
        self.port = port
        self.admin_port = admin_port
        self.log_path = log_path
        self._log_dir = log_dir
        self.ws_url = f"ws://127.0.0.1:{port}/"
        self.http_url = f"http://127.0.0.1:{port}"
        self.admin_url = f"http://127.0.0.1:{admin_port}"

    @classmethod
    async def spawn(
        cls,
        args: list[str],
        *,
        nats_url: str | None,
        port: int | None = None,
        admin_port: int | None = None,
        env: dict[str, str] | None = None,
    ) -> GatewayProcess:
        """Start ``pyresgate -n nats_url -i 127.0.0.1 -p port --adminport admin_port *args`` (each of the
        first three only when given/not None) without waiting for it."""
        port = free_port() if port is None else port
        admin_port = free_port() if admin_port is None else admin_port
        log_dir = tempfile.TemporaryDirectory(prefix="pyresgate-gw-")
        log_path = Path(log_dir.name) / "gateway.log"
        cmd = [*pyresgate_command()]
        if nats_url is not None:
            cmd += ["-n", nats_url]
        cmd += ["-i", "127.0.0.1", "-p", str(port), "--adminport", str(admin_port), *args]
        with open(log_path, "wb") as log:  # noqa: ASYNC230 - a fresh local file
            proc = await asyncio.create_subprocess_exec(
                *cmd, stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=asyncio.subprocess.STDOUT,
                env=clean_env() if env is None else env,
            )  # fmt: skip
        return cls(proc, port, admin_port, log_path, log_dir)

    @classmethod
    async def start(cls, nats_url: str | None, *args: str, **kwargs: Any) -> GatewayProcess:
        """``spawn`` and wait until ``/readyz`` answers 200 and the client port accepts."""
        gw = await cls.spawn(list(args), nats_url=nats_url, **kwargs)
        try:
            await gw.wait_ready(START_TIMEOUT)
            assert await port_accepts(gw.port), f"client port {gw.port} not accepting\n{gw.log()}"
        except BaseException:
            await gw.kill()
            raise
        return gw

    # Observing

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    def log(self, chars: int = 4000) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "--- gateway log ---\n" + text[-chars:]

    async def admin(self, path: str) -> tuple[int, str, dict[str, str]]:
        return await http_get(self.admin_url + path)

    async def readyz(self) -> int:
        return (await self.admin("/readyz"))[0]

    async def wait_ready(self, timeout: float = 5.0, status: int = 200) -> float:
        """Poll ``/readyz`` until it answers ``status``; returns the seconds waited."""
        start = time.monotonic()
        last = -1
        while True:
            last = await self.readyz()
            if last == status:
                return time.monotonic() - start
            if self.proc.returncode is not None:
                raise AssertionError(f"gateway exited with {self.proc.returncode}\n{self.log()}")
            if time.monotonic() - start > timeout:
                raise AssertionError(f"/readyz not {status} within {timeout}s (last {last})\n{self.log()}")
            await asyncio.sleep(0.02)

    # Stopping (by PID only)

    def send_signal(self, sig: int) -> None:
        assert self.proc.returncode is None, "gateway process already exited"
        self.proc.send_signal(sig)

    async def wait_exit(self, timeout: float) -> int:
        try:
            return await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            raise AssertionError(f"gateway did not exit within {timeout}s\n{self.log()}") from None

    async def kill(self) -> None:
        """SIGKILL (if still running) and reap; removes the log directory."""
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.proc.wait(), KILL_TIMEOUT)
        self._log_dir.cleanup()

    async def terminate(self, timeout: float = 10.0) -> int:
        """SIGTERM and wait for the exit code."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        return await self.wait_exit(timeout)


class AutoService:
    """A fake RES service that answers every request from ``models`` (rid → model data, or a list for a
    collection) in the background.

    access → ``{"get": true, "call": "*"}``; get of a known rid → ``{"model": ...}``, else
    ``system.notFound``; call → ``null``; auth → ``null``. ``seen`` lists the subjects in arrival order.
    Requests on a subject in ``hold`` are recorded but left unanswered (``held``), e.g. to keep a request
    in flight.
    """

    def __init__(self, nats_url: str, models: dict[str, Any] | None = None) -> None:
        self.svc = FakeService(nats_url)
        self.models: dict[str, Any] = dict(models or {})
        self.seen: list[str] = []
        self.hold: set[str] = set()
        self.held: list[Request] = []
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    async def start(self) -> Self:
        await self.svc.start()
        self._task = asyncio.get_running_loop().create_task(self._serve(), name="auto-service")
        return self

    async def close(self) -> None:
        if self._task is not None:
            await stop_tasks(self._task)
        await self.svc.close()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _serve(self) -> None:
        queue = self.svc._queue
        while True:
            req = await queue.get()
            self.seen.append(req.subject)
            self._changed.set()
            if req.subject in self.hold:
                self.held.append(req)
                continue
            with contextlib.suppress(Exception):  # the service connection may be gone at teardown
                await self._answer(req)

    async def _answer(self, req: Request) -> None:
        kind, _, rid = req.subject.partition(".")
        if kind == "access":
            await req.ok({"get": True, "call": "*"})
        elif kind == "get":
            if rid in self.models:
                data = self.models[rid]
                kind = "collection" if isinstance(data, list) else "model"
                await req.json({"result": {kind: data}})
            else:
                await req.error({"code": "system.notFound", "message": "Not found"})
        else:
            await req.ok(None)

    def count(self, subject: str) -> int:
        return self.seen.count(subject)

    async def wait_count(self, subject: str, n: int, timeout: float = 5.0) -> None:
        """Wait until at least ``n`` requests on ``subject`` were seen."""
        deadline = time.monotonic() + timeout
        while self.count(subject) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    f"{self.count(subject)} of {n} requests on {subject!r} within {timeout}s"
                )
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)

    async def event(self, rid: str, name: str, payload: Any) -> None:
        await self.svc.event(rid, name, payload, check=False)


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Samples of a Prometheus/OpenMetrics exposition: ``(name, labels) → value``."""
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if m is None:
            continue
        labels = frozenset(_LABEL.findall(m.group(2) or ""))
        samples[(m.group(1), labels)] = float(m.group(3))
    return samples


def sample(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    """The value of sample ``name`` whose labels include ``labels``; fails when there is none."""
    for (n, lbls), value in samples.items():
        if n == name and set(labels.items()) <= set(lbls):
            return value
    names = sorted({n for n, _ in samples})
    raise AssertionError(f"no sample {name}{labels or ''} among {names}")


__all__ = ["AutoService", "GatewayProcess", "clean_env", "http_get", "parse_metrics", "port_accepts",
           "pyresgate_command", "sample"]  # fmt: skip
