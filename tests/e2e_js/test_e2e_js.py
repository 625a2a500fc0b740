"""End-to-end suites with real JavaScript clients, run by Node's test runner from pytest.

``resclient.test.mjs``: the official client (npm resclient, on Node) against the gateway and the
example services. ``browser.test.mjs``: headless Chromium (Debian's ``chromium``, driven by npm
playwright-core) on the example pages. Both start their own gateway and service processes against
the session's nats-server. They need what ``.ci/e2e-js.sh`` installs (Node packages in
examples/node_modules, /usr/bin/chromium); without it they skip on a developer machine and fail in
CI (``CI`` set), so a broken install cannot pass as green.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.natsserver import NatsServer

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
NODE_MODULES = REPO / "examples" / "node_modules"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
#: Seconds one Node suite may take (they take 20-40 s on a quiet machine).
SUITE_TIMEOUT = 240
HOW = "run `bash .ci/e2e-js.sh` (npm install in examples/, apt-get install chromium)"


def require(ok: bool, what: str) -> None:
    if ok:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{what} is missing in CI: .ci/e2e-js.sh should have installed it")
    pytest.skip(f"{what} is missing: {HOW}")


def run_suite(name: str, nats_server: NatsServer) -> None:
    node = shutil.which("node")
    require(node is not None, "node")
    assert node is not None
    for package in ("resclient", "ws", "playwright-core"):
        require((NODE_MODULES / package / "package.json").exists(), f"the npm package {package}")
    env = {
        **os.environ,
        "NATS_URL": nats_server.url,
        "PYTHON": sys.executable,
        "E2E_ARTIFACTS": str(HERE / "artifacts"),
        "CHROMIUM": CHROMIUM,
    }
    try:
        done = subprocess.run(
            [node, "--test", "--test-reporter=spec", str(HERE / name)],
            check=False,
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=SUITE_TIMEOUT,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{name} did not finish within {SUITE_TIMEOUT}s:\n{exc.stdout}\n{exc.stderr}")
    report = f"{done.stdout}\n{done.stderr}"
    assert done.returncode == 0, f"{name} failed (exit {done.returncode}):\n{report}"
    assert "ℹ fail 0" in done.stdout and "ℹ pass 0" not in done.stdout, report


@pytest.mark.timeout(SUITE_TIMEOUT + 30)
def test_resclient_on_node(nats_server: NatsServer) -> None:
    run_suite("resclient.test.mjs", nats_server)


@pytest.mark.timeout(SUITE_TIMEOUT + 30)
def test_pages_in_headless_chromium(nats_server: NatsServer) -> None:
    require(Path(CHROMIUM).exists(), f"Chromium ({CHROMIUM})")
    run_suite("browser.test.mjs", nats_server)
