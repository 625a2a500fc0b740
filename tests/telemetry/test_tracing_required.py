"""Tracing asked for without the OpenTelemetry packages: ``pyresgate`` stops at start with one line.

The packages are dependencies of pyresgate, so their absence means a broken install. Each test runs the
real ``gateway.cli.main`` in a child interpreter whose import system refuses the named modules (a
meta-path finder installed before anything is imported, as if the packages were not installed), with
the real environment variables and flags a user would set.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from importlib import metadata

import pytest
from packaging.requirements import Requirement

from tests.runtime.helpers import clean_env, http_get
from tests.support.natsserver import NatsServer, free_port

#: Child program: block the modules named in argv[1] (comma-separated), then run pyresgate.
_BLOCKED_RUN = """
import sys

class _Block:
    def __init__(self, names):
        self.names = names

    def find_spec(self, name, path=None, target=None):
        if any(name == n or name.startswith(n + ".") for n in self.names):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _Block(sys.argv[1].split(",")))
from gateway.cli import main
sys.exit(main(sys.argv[2:]))
"""

#: Seconds a child gets to exit (it should, at once) or to become ready.
CHILD_TIMEOUT = 20.0


def _env(**extra: str) -> dict[str, str]:
    """The test process's environment without RESGATE_* and OTEL_* variables, plus ``extra``."""
    return {k: v for k, v in clean_env(**extra).items() if not k.startswith("OTEL_") or k in extra}


def _run_blocked(blocked: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _BLOCKED_RUN, blocked, *args],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )


def _one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{stderr}"
    return lines[0]


def _no_nats() -> tuple[str, ...]:
    """Flags for a gateway that could never start: nothing listens on NATS port 1, so a gateway that got
    past the tracing check would log its failure to connect instead of the one expected line."""
    return ("-n", "nats://127.0.0.1:1", "-i", "127.0.0.1", "-p", str(free_port()), "--adminport", "0")


def test_tracing_flag_without_opentelemetry_exits_1_with_one_line() -> None:
    done = _run_blocked("opentelemetry", "--tracing", *_no_nats(), env=_env())
    assert done.returncode == 1, done.stderr
    line = _one_line(done.stderr)
    assert line.startswith("pyresgate: tracing was requested but OpenTelemetry is not installed"), line
    assert "(opentelemetry)" in line and "pip install pyresgate" in line
    assert done.stdout == ""


@pytest.mark.parametrize(
    ("protocol", "blocked"),
    [
        ("grpc", "opentelemetry.exporter.otlp.proto.grpc"),
        ("http/protobuf", "opentelemetry.exporter.otlp.proto.http"),
    ],
)
def test_otel_exporter_variable_without_the_exporter_exits_1_with_one_line(
    protocol: str, blocked: str
) -> None:
    env = _env(OTEL_TRACES_EXPORTER="otlp", OTEL_EXPORTER_OTLP_PROTOCOL=protocol)
    done = _run_blocked(blocked, *_no_nats(), env=env)
    assert done.returncode == 1, done.stderr
    line = _one_line(done.stderr)
    assert line.startswith(f"pyresgate: tracing was requested but OTLP {protocol} exporter is not installed")
    assert f"({blocked}" in line, line


def test_tracing_setting_in_environment_without_sdk_exits_1() -> None:
    done = _run_blocked("opentelemetry.sdk", *_no_nats(), env=_env(RESGATE_TRACING="true"))
    assert done.returncode == 1, done.stderr
    assert "OpenTelemetry is not installed (opentelemetry.sdk" in _one_line(done.stderr)


@pytest.mark.parametrize("exporter", [None, "none"])
async def test_without_tracing_the_gateway_runs_without_opentelemetry(
    nats_server: NatsServer, exporter: str | None
) -> None:
    """Tracing off (nothing set, or OTEL_TRACES_EXPORTER=none): OpenTelemetry is never imported, so the
    gateway starts, becomes ready on a real NATS and stops cleanly even with the packages missing."""
    admin_port = free_port()
    env = _env() if exporter is None else _env(OTEL_TRACES_EXPORTER=exporter)
    args = ["-n", nats_server.url, "-i", "127.0.0.1", "-p", str(free_port()), "--adminport", str(admin_port)]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _BLOCKED_RUN, "opentelemetry", *args,
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + CHILD_TIMEOUT
        status = 0
        while time.monotonic() < deadline and proc.returncode is None:
            status = (await http_get(f"http://127.0.0.1:{admin_port}/readyz"))[0]
            if status == 200:
                break
            await asyncio.sleep(0.05)
        assert status == 200, f"gateway not ready (last /readyz {status}, exit {proc.returncode})"
        proc.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(proc.communicate(), CHILD_TIMEOUT)
        assert proc.returncode == 0, stderr.decode(errors="replace")
        assert b"tracing" not in stderr.lower()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def test_the_default_install_requires_the_sdk_and_both_otlp_exporters() -> None:
    """The installed distribution's own requirements (not an extra's): ``pip install .`` and the container
    image get tracing; ``pip install '.[tracing]'`` still resolves (the extra exists, now empty)."""
    meta = metadata.metadata("pyresgate")
    unconditional = {Requirement(r).name for r in metadata.requires("pyresgate") or [] if "extra ==" not in r}
    assert {
        "opentelemetry-api",
        "opentelemetry-sdk",
        "opentelemetry-exporter-otlp-proto-http",
        "opentelemetry-exporter-otlp-proto-grpc",
    } <= unconditional
    assert "tracing" in (meta.get_all("Provides-Extra") or [])
