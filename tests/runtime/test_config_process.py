"""Configuration, end to end: a real ``pyresgate`` process started with a config file, RESGATE_* variables
and flags serves with the effective settings (defaults < file < env < flags); a bad setting anywhere makes
it exit 1 with a single line on stderr that names the setting, and no traceback.

The layering itself is unit-tested in tests/gateway/test_config.py; these tests only check what the
process actually does with it.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tests.runtime.conftest import GatewayStarter, ServiceStarter
from tests.runtime.helpers import AutoService, clean_env, http_get, port_accepts, pyresgate_command
from tests.support.natsserver import NatsServer, free_port
from tests.support.wsclient import WSClient

MODEL = {"string": "foo", "int": 42}
#: Seconds a refused start may take.
EXIT_TIMEOUT = 10.0


async def test_file_env_and_flags_layer_into_the_running_gateway(
    tmp_path: Path, nats_server: NatsServer, start_gateway: GatewayStarter, auto_service: ServiceStarter
) -> None:
    svc: AutoService = await auto_service(nats_server.url, {"test.model": MODEL})
    file_port, env_port, flag_port = free_port(), free_port(), free_port()
    file_admin, env_admin = free_port(), free_port()
    config = {
        "natsUrl": nats_server.url,  # only in the file: the file beats the default
        "port": file_port,  # file < env < flag
        "apiPath": "/file/",  # file < env
        "wsPath": "/filews",  # only in the file
        "adminPort": file_admin,  # file < env < flag (--adminport, set by the runner)
        "requestTimeout": 2500,
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    env = clean_env(RESGATE_PORT=str(env_port), RESGATE_API_PATH="/env/", RESGATE_ADMIN_PORT=str(env_admin))

    gw = await start_gateway(None, "-c", str(path), port=flag_port, env=env)

    # NATS from the file (ready means connected); ports from the flags only.
    assert await gw.readyz() == 200
    assert await port_accepts(flag_port)
    for port in (file_port, env_port, file_admin, env_admin):
        assert not await port_accepts(port), f"something listens on overridden port {port}\n{gw.log()}"
    # apiPath from the environment, not from the file.
    status, body, _ = await http_get(f"http://127.0.0.1:{flag_port}/env/test/model")
    assert status == 200 and json.loads(body) == MODEL, (status, body, gw.log())
    status, _, _ = await http_get(f"http://127.0.0.1:{flag_port}/file/test/model")
    assert status == 404
    # wsPath from the file.
    client = await WSClient.connect(f"ws://127.0.0.1:{flag_port}/filews")
    try:
        resp = await client.request("subscribe.test.model", timeout=3)
        assert resp.get("result", {}).get("models", {}).get("test.model") == MODEL, resp
    finally:
        await client.close()
    assert svc.count("get.test.model") == 1
    # An existing config file is read, never rewritten.
    assert json.loads(path.read_text()) == config


async def run_refused(args: list[str], env: dict[str, str] | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *pyresgate_command(), *args, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=clean_env(**(env or {})),
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(), EXIT_TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"pyresgate {args} did not exit within {EXIT_TIMEOUT}s") from None
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def assert_one_line_naming(code: int, out: str, err: str, *fragments: str) -> None:
    assert code == 1, f"exit code {code}; stderr:\n{err}"
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
    assert lines[0].startswith("pyresgate: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    assert out == ""


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--adminport", "70000"], "adminPort"),
        (["-p", "8123", "--adminport", "8123"], "adminPort"),
        (["--drainperiod", "-5"], "drainPeriod"),
        (["--shutdowntimeout", "-1"], "shutdownTimeout"),
        (["--wscloserate", "fast"], "wscloserate"),
        (["--exitonnatsloss=maybe"], "exitonnatsloss"),
        (["--reqtimeout", "-1"], "requestTimeout"),
        (["--metricsport", "8080"], "metricsPort"),  # equal to the default client port
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
async def test_invalid_flag_value_exits_1_with_one_line_naming_it(args: list[str], fragment: str) -> None:
    assert_one_line_naming(*await run_refused(args), fragment)


@pytest.mark.parametrize(
    ("var", "value", "fragment"),
    [
        ("RESGATE_DRAIN_PERIOD", "soon", "drainPeriod"),
        ("RESGATE_ADMIN_PORT", "99999", "adminPort"),
        ("RESGATE_EXIT_ON_NATS_LOSS", "perhaps", "exitOnNatsLoss"),
    ],
)
async def test_invalid_env_value_exits_1_with_one_line_naming_it(var: str, value: str, fragment: str) -> None:
    code, out, err = await run_refused([], {var: value})
    assert_one_line_naming(code, out, err)
    line = err.strip()
    assert fragment in line or var in line, f"neither {fragment!r} nor {var!r} in {line!r}"


@pytest.mark.parametrize(
    ("content", "fragments"),
    [
        ('{"port": 8080,', ["invalid JSON", "config.json"]),
        ("[1, 2]", ["config.json", "object"]),
        ('{"adminPort": "nine"}', ["adminPort"]),
        ('{"wsCloseRate": -3}', ["wsCloseRate"]),
        ('{"drainPeriod": 1.5}', ["drainPeriod"]),
    ],
    ids=["syntax", "not-an-object", "adminPort-string", "wsCloseRate-negative", "drainPeriod-float"],
)
async def test_invalid_config_file_exits_1_with_one_line_naming_it(
    tmp_path: Path, content: str, fragments: list[str]
) -> None:
    path = tmp_path / "config.json"
    path.write_text(content)
    assert_one_line_naming(*await run_refused(["-c", str(path)]), *fragments)
    assert path.read_text() == content  # a bad file is left alone


async def test_config_error_from_env_config_file_path(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{"apiEncoding": "xml"}')
    assert_one_line_naming(*await run_refused([], {"RESGATE_CONFIG": str(path)}), "apiEncoding")
