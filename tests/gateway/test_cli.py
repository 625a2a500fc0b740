"""The ``pyresgate`` command (``python -m gateway``) and the embedded nats-server.

Help, version and bad flags run the real command in a subprocess. The run loop (``cli.serve``) is
driven in-process with a stand-in ``gateway.app.Gateway`` that records calls, against real
nats-server processes; the last test runs the real gateway as a subprocess when it is available.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import types
from collections.abc import Iterator
from typing import Any, ClassVar

import nats
import pytest

import gateway
from gateway import cli
from gateway.config import Config
from gateway.mq.embedded import EmbeddedNats, EmbeddedNatsError, find_nats_server
from tests.support.natsserver import free_port

PYTHON = sys.executable


def run_cli(*args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESGATE_")}
    return subprocess.run(
        [PYTHON, "-m", "gateway", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


# --- help, version, errors (subprocess) -------------------------------------------------------------


def test_version_prints_pyresgate_and_protocol_versions() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout == f"pyresgate v{gateway.__version__} (resgate v1.8.0 compatible)\nprotocol v1.2.3\n"
    assert run_cli("-v").stdout == result.stdout


def test_help_lists_every_flag_with_defaults() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    out = result.stdout
    assert out.startswith("Usage: pyresgate [options]")
    for flag in [
        "-n, --nats", "--creds", "--natscert", "--natskey", "--natsrootca", "-r, --reqtimeout",
        "-D, --debug", "-V, --trace", "-DV", "-i, --addr", "-p, --port", "-w, --wspath", "-a, --apipath",
        "-m, --metricsport", "--apiencoding", "-u, --headauth", "-t, --wsheadauth", "--alloworigin",
        "--putmethod", "--deletemethod", "--patchmethod", "--tls", "--tlscert", "--tlskey",
        "--wscompression", "--resetthrottle", "--referencethrottle", "-c, --config", "-h, --help",
        "-v, --version", "--adminport", "--cacheevictiondelay", "--exitonnatsloss",
    ]:  # fmt: skip
        assert flag in out, flag
    for default in [
        "nats://127.0.0.1:4222",
        "(default: 8080)",
        "(default: 3000)",
        "(default: 0.0.0.0)",
        "(default: json)",
        "(default: *)",
        "(default: 9090)",
        "(default: 5000)",
    ]:
        assert default in out, default
    assert run_cli("-h").stdout == out


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--port", "eighty"], "-port"),
        (["-i", "localhost"], "invalid addr setting"),
        (["--alloworigin", "http://this.is/invalid"], "invalid allowOrigin setting"),
        (["--apiencoding", "xml"], "invalid apiEncoding setting"),
        (["--bogus"], "flag provided but not defined"),
    ],
)
def test_bad_flag_exits_1_with_one_line_on_stderr(args: list[str], fragment: str) -> None:
    result = run_cli(*args)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("pyresgate: ")
    assert fragment in lines[0]
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_bad_config_file_exits_1_with_one_line(tmp_path: Any) -> None:
    path = tmp_path / "config.json"
    path.write_text('{"headerAuth": "novalidmethod"}')
    result = run_cli("-c", str(path))
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "invalid headerAuth setting" in result.stderr


# --- EmbeddedNats -----------------------------------------------------------------------------------


def test_nats_server_binary_is_found() -> None:
    assert os.access(find_nats_server(), os.X_OK)


async def test_embedded_nats_is_a_real_server_and_stops() -> None:
    server = await EmbeddedNats.start()
    try:
        assert server.url.startswith("nats://127.0.0.1:")
        assert server.port > 0 and server.running
        nc = await nats.connect(server.url, allow_reconnect=False)
        sub = await nc.subscribe("pyresgate.test")
        await nc.publish("pyresgate.test", b"hello")
        msg = await sub.next_msg(timeout=2)
        assert msg.data == b"hello"
        await nc.close()
    finally:
        server.stop()
    assert not server.running
    server.stop()  # idempotent
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()


async def test_embedded_nats_on_a_given_port() -> None:
    port = free_port()
    async with await EmbeddedNats.start(port=port) as server:
        assert server.url == f"nats://127.0.0.1:{port}"
        nc = await nats.connect(server.url, allow_reconnect=False)
        await nc.close()


async def test_two_embedded_servers_get_different_ports() -> None:
    first, second = await asyncio.gather(EmbeddedNats.start(), EmbeddedNats.start())
    try:
        assert first.port != second.port
    finally:
        first.stop()
        second.stop()


async def test_embedded_nats_start_failure_is_a_clear_error() -> None:
    async with await EmbeddedNats.start() as taken:
        with pytest.raises(EmbeddedNatsError, match="exited with code"):
            await EmbeddedNats.start(port=taken.port)


async def test_missing_binary_is_a_clear_error(tmp_path: Any) -> None:
    with pytest.raises(EmbeddedNatsError, match="cannot run"):
        await EmbeddedNats.start(binary=str(tmp_path / "no-such-nats-server"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux-only")
def test_embedded_nats_dies_with_a_killed_parent() -> None:
    script = (
        "import asyncio, sys\n"
        "from gateway.mq.embedded import EmbeddedNats\n"
        "async def main():\n"
        "    server = await EmbeddedNats.start()\n"
        "    print(server.pid, flush=True)\n"
        "    await asyncio.sleep(60)\n"
        "asyncio.run(main())\n"
    )
    parent = subprocess.Popen([PYTHON, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        child_pid = int(parent.stdout.readline())
        parent.kill()
        parent.wait()
        for _ in range(100):
            if not _alive(child_pid):
                return
            time.sleep(0.05)
        os.kill(child_pid, signal.SIGKILL)
        pytest.fail("nats-server outlived its killed parent")
    finally:
        if parent.poll() is None:
            parent.kill()


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie left for an absent reaper counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# --- run loop (in-process, stand-in Gateway) --------------------------------------------------------


class StandInGateway:
    """Records the lifecycle calls ``cli.serve`` makes and connects to the configured NATS for real."""

    instances: ClassVar[list[StandInGateway]] = []
    start_error: Exception | None = None
    exit_code: int | None = None  # wait_stopped returns this at once; None = run until stopped
    connect = True  # connect to config.nats_url in start()

    def __init__(self, config: Config) -> None:
        self.config = config
        self.calls: list[str] = []
        self.nats_connected = False
        self._stopped = asyncio.Event()
        StandInGateway.instances.append(self)

    async def start(self) -> None:
        self.calls.append("start")
        if self.start_error is not None:
            raise self.start_error
        if not self.connect:
            return
        nc = await nats.connect(self.config.nats_url, allow_reconnect=False, connect_timeout=2)
        self.nats_connected = nc.is_connected
        await nc.close()

    async def wait_stopped(self) -> int:
        self.calls.append("wait_stopped")
        if self.exit_code is not None:
            return self.exit_code
        await self._stopped.wait()
        return 0

    async def stop(self) -> None:
        self.calls.append("stop")
        self._stopped.set()


@pytest.fixture
def stand_in(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[StandInGateway]]:
    module = types.ModuleType("gateway.app")
    module.Gateway = StandInGateway  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "gateway.app", module)
    StandInGateway.instances = []
    StandInGateway.start_error = None
    StandInGateway.exit_code = None
    StandInGateway.connect = True
    yield StandInGateway


@pytest.fixture
async def nats_url() -> Any:
    async with await EmbeddedNats.start() as server:
        yield server.url


async def test_serve_stops_the_gateway_and_returns_0_on_sigterm(
    stand_in: type[StandInGateway], nats_url: str
) -> None:
    task = asyncio.ensure_future(cli.serve(Config(nats_url=nats_url)))
    while not stand_in.instances or "wait_stopped" not in stand_in.instances[0].calls:
        await asyncio.sleep(0.01)
    os.kill(os.getpid(), signal.SIGTERM)
    assert await asyncio.wait_for(task, 5) == 0
    gw = stand_in.instances[0]
    assert gw.nats_connected
    assert gw.calls == ["start", "wait_stopped", "stop"]


async def test_serve_returns_the_gateways_exit_code_when_it_stops_by_itself(
    stand_in: type[StandInGateway], nats_url: str
) -> None:
    stand_in.exit_code = 1
    assert await cli.serve(Config(nats_url=nats_url)) == 1
    assert stand_in.instances[0].calls[-1] == "stop"


async def test_serve_returns_1_when_the_gateway_fails_to_start(
    stand_in: type[StandInGateway], nats_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    stand_in.start_error = ConnectionRefusedError("nats: no servers available for connection")
    assert await cli.serve(Config(nats_url=nats_url)) == 1
    assert "Failed to start: nats: no servers available" in caplog.text
    assert stand_in.instances[0].calls == ["start", "stop"]


async def test_serve_starts_embedded_nats_when_no_url_is_configured_and_none_runs_locally(
    stand_in: type[StandInGateway], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(cli, "DEFAULT_NATS_PROBE", ("127.0.0.1", free_port()))  # nothing listens there
    caplog.set_level(logging.INFO, logger="gateway")
    stand_in.exit_code = 0
    config = Config()
    assert not config.nats_url_configured
    assert await cli.serve(config) == 0
    gw = stand_in.instances[0]
    assert gw.config.nats_url != config.nats_url
    assert gw.nats_connected  # the embedded server was real
    assert "embedded nats-server" in caplog.text
    with pytest.raises(OSError):  # and it is gone
        host, port = gw.config.nats_url.removeprefix("nats://").rsplit(":", 1)
        socket.create_connection((host, int(port)), timeout=1).close()


async def test_serve_uses_a_local_nats_on_the_default_address_instead_of_embedding(
    stand_in: type[StandInGateway], monkeypatch: pytest.MonkeyPatch, nats_url: str
) -> None:
    host, port = nats_url.removeprefix("nats://").rsplit(":", 1)
    monkeypatch.setattr(cli, "DEFAULT_NATS_PROBE", (host, int(port)))
    stand_in.exit_code = 0
    stand_in.connect = False  # the probe found "a local NATS"; the URL stays the default
    assert await cli.serve(Config()) == 0
    assert stand_in.instances[0].config.nats_url == "nats://127.0.0.1:4222"


async def test_configured_nats_url_is_never_replaced(stand_in: type[StandInGateway], nats_url: str) -> None:
    stand_in.exit_code = 0
    assert await cli.serve(Config(nats_url=nats_url)) == 0
    assert stand_in.instances[0].config.nats_url == nats_url


class GracefulStandIn(StandInGateway):
    """A stand-in whose ``shutdown`` (graceful drain) lasts ``shutdown_seconds``."""

    shutdown_seconds = 0.0

    async def shutdown(self) -> None:
        self.calls.append("shutdown")
        await asyncio.sleep(self.shutdown_seconds)
        self.calls.append("shutdown done")


@pytest.fixture
def graceful_stand_in(
    monkeypatch: pytest.MonkeyPatch, stand_in: type[StandInGateway]
) -> type[GracefulStandIn]:
    monkeypatch.setattr(sys.modules["gateway.app"], "Gateway", GracefulStandIn)
    GracefulStandIn.shutdown_seconds = 0.0
    return GracefulStandIn


async def _serve_until_waiting(config: Config) -> asyncio.Future[int]:
    task = asyncio.ensure_future(cli.serve(config))
    while not StandInGateway.instances or "wait_stopped" not in StandInGateway.instances[0].calls:
        await asyncio.sleep(0.01)
    return task


async def test_stop_signal_runs_the_graceful_shutdown_then_stop(
    graceful_stand_in: type[GracefulStandIn], nats_url: str
) -> None:
    task = await _serve_until_waiting(Config(nats_url=nats_url))
    os.kill(os.getpid(), signal.SIGINT)
    assert await asyncio.wait_for(task, 5) == 0
    assert StandInGateway.instances[0].calls == ["start", "wait_stopped", "shutdown", "shutdown done", "stop"]


async def test_second_stop_signal_cuts_the_graceful_shutdown_short(
    graceful_stand_in: type[GracefulStandIn], nats_url: str
) -> None:
    graceful_stand_in.shutdown_seconds = 30
    task = await _serve_until_waiting(Config(nats_url=nats_url))
    os.kill(os.getpid(), signal.SIGTERM)
    while "shutdown" not in StandInGateway.instances[0].calls:
        await asyncio.sleep(0.01)
    os.kill(os.getpid(), signal.SIGTERM)
    assert await asyncio.wait_for(task, 5) == 0
    assert StandInGateway.instances[0].calls == ["start", "wait_stopped", "shutdown", "stop"]


# --- the real gateway (when gateway.app exists) -------------------------------------------------------


async def test_real_gateway_process_runs_and_exits_0_on_sigterm() -> None:
    pytest.importorskip("gateway.app")
    async with await EmbeddedNats.start() as server:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("RESGATE_")}
        proc = await asyncio.create_subprocess_exec(
            PYTHON, "-m", "gateway", "-n", server.url, "-i", "127.0.0.1", "-p", str(port), "--adminport", "0",
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
        )  # fmt: skip
        try:
            for _ in range(200):
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", port)
                    writer.close()
                    break
                except OSError:
                    assert proc.returncode is None, "gateway exited early"
                    await asyncio.sleep(0.05)
            else:
                pytest.fail("gateway did not listen within 10 s")
            proc.send_signal(signal.SIGTERM)
            _, stderr = await asyncio.wait_for(proc.communicate(), 10)
            assert proc.returncode == 0, stderr.decode()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
