"""The image's health check (``scripts/container_healthcheck.py``), run on the host against real gateways.

No podman needed: the script is plain Python and finds the gateway from the same settings the gateway
reads (``RESGATE_*`` over the config file), so it is run here as the HEALTHCHECK runs it in the
container, against ``pyresgate`` child processes on a real nats-server.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.runtime.helpers import GatewayProcess, clean_env
from tests.support.natsserver import NatsServer, free_port

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "container_healthcheck.py"


def run_check(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The script as the HEALTHCHECK runs it, in a child process with ``env`` (no RESGATE_* otherwise)."""
    return subprocess.run(
        [sys.executable, str(SCRIPT)],
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )


def load_script() -> ModuleType:
    """The script as a module, to call ``check(env, mounted)`` with a stand-in for the mounted file."""
    spec = importlib.util.spec_from_file_location("container_healthcheck", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
async def gateway(nats_server: NatsServer) -> AsyncIterator[GatewayProcess]:
    gw = await GatewayProcess.start(nats_server.url)
    try:
        yield gw
    finally:
        await gw.kill()


async def test_healthy_gateway_passes(gateway: GatewayProcess) -> None:
    done = run_check({"RESGATE_ADMIN_PORT": str(gateway.admin_port), "RESGATE_ADDR": "127.0.0.1"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"GET /healthz on 127.0.0.1:{gateway.admin_port}: 200"


async def test_all_interfaces_address_is_checked_on_loopback(gateway: GatewayProcess) -> None:
    for addr in ("0.0.0.0", ""):
        done = run_check({"RESGATE_ADMIN_PORT": str(gateway.admin_port), "RESGATE_ADDR": addr})
        assert done.returncode == 0, (addr, done.stderr)


def test_nothing_listening_fails_with_one_line() -> None:
    port = free_port()
    done = run_check({"RESGATE_ADMIN_PORT": str(port)})
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"unhealthy: GET /healthz on 127.0.0.1:{port} failed")


async def test_stopped_gateway_fails(nats_server: NatsServer) -> None:
    gw = await GatewayProcess.start(nats_server.url)
    env = {"RESGATE_ADMIN_PORT": str(gw.admin_port)}
    assert run_check(env).returncode == 0
    await gw.terminate()
    await gw.kill()
    assert run_check(env).returncode == 1


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RESGATE_ADMIN_PORT": "http"}, "admin_port setting 'http' is not a port number"),
        ({"RESGATE_ADMIN_PORT": "70000"}, "admin_port setting 70000 is not a port number"),
        ({"RESGATE_ADDR": "gateway.local"}, "addr setting 'gateway.local' is not an IP address"),
    ],
)
def test_bad_settings_fail_with_a_clear_line(env: dict[str, str], message: str) -> None:
    done = run_check(env)
    assert done.returncode == 1
    assert done.stderr.strip() == f"unhealthy: {message}"


async def test_config_file_settings_are_followed_and_variables_win(
    gateway: GatewayProcess, tmp_path: Path
) -> None:
    """adminPort from the mounted file (what the image's entry point passes to the gateway), unless a
    RESGATE_ADMIN_PORT variable overrides it, as in the gateway itself."""
    script = load_script()
    mounted = tmp_path / "config.json"
    mounted.write_text(json.dumps({"AdminPort": gateway.admin_port, "addr": "127.0.0.1"}))
    assert script.check({}, str(mounted)) == f"GET /healthz on 127.0.0.1:{gateway.admin_port}: 200"
    with pytest.raises(script.CheckError, match="GET /healthz on 127.0.0.1:"):
        script.check({"RESGATE_ADMIN_PORT": str(free_port())}, str(mounted))
    # RESGATE_CONFIG names another file: that one is read instead of the mounted one.
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"adminPort": free_port()}))
    with pytest.raises(script.CheckError):
        script.check({"RESGATE_CONFIG": str(other)}, str(mounted))
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    done = run_check({"RESGATE_CONFIG": str(broken)})
    assert done.returncode == 1 and done.stderr.startswith(f"unhealthy: cannot read config file {broken}")


async def test_admin_listener_off_checks_the_client_port(nats_server: NatsServer) -> None:
    gw = await GatewayProcess.start(nats_server.url)
    try:
        done = run_check({"RESGATE_ADMIN_PORT": "0", "RESGATE_PORT": str(gw.port)})
        assert done.returncode == 0, done.stderr
        assert "admin listener off" in done.stdout
    finally:
        await gw.kill()
    assert run_check({"RESGATE_ADMIN_PORT": "0", "RESGATE_PORT": str(gw.port)}).returncode == 1
