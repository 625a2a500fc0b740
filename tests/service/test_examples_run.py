"""Each example starts with one command: ``python examples/run.py <example>`` brings up NATS, the
gateway, the service and the page; the example's resources answer over the gateway's REST API, the
page is served, and Ctrl-C (SIGINT) stops every process it started.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from tests.support.natsserver import free_port

REPO = Path(__file__).resolve().parents[2]
RESCLIENT = REPO / "examples" / "node_modules" / "resclient" / "dist" / "resclient.min.js"
#: Seconds run.py gets to print where to look.
START_TIMEOUT = 30.0

#: Per example: a REST path and the (status, body) the gateway answers for it.
EXPECTED: dict[str, tuple[str, int, object]] = {
    "hello-world": ("example/model", 200, {"message": "Hello, World!"}),
    "edit-text": ("example/shared", 200, {"message": "Edit me!"}),
    "book-collection": ("library/book/3", 200, {"id": 3, "title": "Coraline", "author": "Neil Gaiman"}),
    "password-authentication": (
        "ticker/model",
        401,
        {"code": "system.accessDenied", "message": "Access denied"},
    ),
    "jwt-authentication": ("example/model", 401, {"code": "system.accessDenied", "message": "Access denied"}),
    "client-session": (
        "session/user/nobody",
        401,
        {"code": "system.accessDenied", "message": "Access denied"},
    ),
}


def start_run_py(example: str, gateway_port: int, http_port: int) -> subprocess.Popen[str]:
    argv = [sys.executable, str(REPO / "examples" / "run.py"), example]
    argv += ["--gateway-port", str(gateway_port), "--http-port", str(http_port), "--no-npm"]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for_banner(proc: subprocess.Popen[str]) -> list[str]:
    """Lines up to "<example> is running. Open ..."; fails if run.py exits or takes too long."""
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            pytest.fail("run.py exited before it was ready:\n" + "".join(lines))
        lines.append(line)
        if " is running. Open http://127.0.0.1:" in line:
            return lines
    pytest.fail("run.py did not say where to look in time:\n" + "".join(lines))


@pytest.mark.timeout(90)
@pytest.mark.parametrize("example", sorted(EXPECTED))
async def test_one_command_runs_the_example(example: str) -> None:
    gateway_port, http_port = free_port(), free_port()
    proc = start_run_py(example, gateway_port, http_port)
    try:
        banner = wait_for_banner(proc)
        assert any(f"Open http://127.0.0.1:{http_port}/" in line for line in banner)
        path, status, body = EXPECTED[example]
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{gateway_port}/api/{path}") as resp:
                assert (resp.status, await resp.json()) == (status, body)
            async with http.get(f"http://127.0.0.1:{http_port}/") as resp:
                assert resp.status == 200
                assert '<script src="/resclient.min.js"></script>' in await resp.text()
            async with http.get(f"http://127.0.0.1:{http_port}/resclient.min.js") as resp:
                assert resp.status == (200 if RESCLIENT.exists() else 404)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            rc = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
    assert rc == 0
    for port in (gateway_port, http_port):  # everything it started is gone
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


@pytest.mark.timeout(60)
async def test_jwt_cookie_opens_the_rest_api() -> None:
    """run.py starts the gateway with --headauth auth.jwtHeader: the /login cookie works over REST."""
    gateway_port, http_port = free_port(), free_port()
    proc = start_run_py("jwt-authentication", gateway_port, http_port)
    try:
        wait_for_banner(proc)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{http_port}/login") as resp:
                assert resp.status == 200
                cookie = resp.cookies["access-token"].value
            headers = {"Cookie": f"access-token={cookie}"}
            async with http.get(
                f"http://127.0.0.1:{gateway_port}/api/example/model", headers=headers
            ) as resp:
                assert (resp.status, await resp.json()) == (200, {"message": "Hello, secure World!"})
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
