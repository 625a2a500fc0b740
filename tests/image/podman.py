"""podman for the image tests: the storage ``.ci/image.sh`` built the image into, and containers by name.

``.ci/image.sh`` builds ``localhost/pyresgate:dev`` into the podman storage of ``../shared/k8s`` (so the
Kubernetes end-to-end tests run pods from it), and so podman is always called through that tool's
``cluster podman`` wrapper here. Every container a test starts is named ``PREFIX<n>`` (the prefix holds
this process's PID), and only those names are ever removed.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support import k8s

ROOT = Path(__file__).resolve().parents[2]
#: The shared/k8s tool (its `cluster podman` wrapper), beside the repository unless PYRESGATE_K8S_DIR says.
K8S_DIR = k8s.K8S_DIR
IMAGE = os.environ.get("PYRESGATE_IMAGE", "localhost/pyresgate:dev")
#: Name prefix of this run's containers.
PREFIX = f"pyresgate-imgtest-{os.getpid()}-"
#: What the issue asks the container to survive: read-only root, a numeric user, no capabilities.
HARDENED = ("--read-only", "--user", "10001", "--cap-drop", "ALL", "--security-opt", "no-new-privileges")
#: Seconds one podman command may take (a `run -d` takes ~0.3 s, a first one on a busy machine more).
PODMAN_TIMEOUT = 60.0
#: Seconds a gateway container gets to become ready.
READY_TIMEOUT = 30.0

_numbers = itertools.count(1)


def unavailable_reason() -> str | None:
    """Why the image tests cannot run here, or None when they can."""
    if shutil.which("podman") is None or shutil.which("runc") is None:
        return "podman and runc are not installed"
    if os.geteuid() != 0:
        return "podman runs as root here (shared/k8s storage)"
    if not (K8S_DIR / "cluster").exists():
        return f"{K8S_DIR}/cluster not found (set PYRESGATE_K8S_DIR to the shared/k8s directory)"
    done = podman("image", "exists", IMAGE, check=False)
    if done.returncode != 0:
        return f"image {IMAGE} not built"
    return None


def podman(
    *args: str, check: bool = True, timeout: float = PODMAN_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """Run ``podman ARGS`` with the shared/k8s storage; raises with podman's output when ``check`` fails."""
    done = subprocess.run(
        [str(K8S_DIR / "cluster"), "podman", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} → {done.returncode}\n{done.stdout}\n{_stderr(done)}")
    return done


def _stderr(done: subprocess.CompletedProcess[str]) -> str:
    """podman's stderr without the systemd complaints podman 4.3 prints about health-check timers here."""
    return "\n".join(line for line in done.stderr.splitlines() if "systemd" not in line)


def image_inspect() -> dict[str, Any]:
    data: list[dict[str, Any]] = json.loads(podman("image", "inspect", IMAGE).stdout)
    return data[0]


@dataclass
class Container:
    """One container of this run (``podman run -d``)."""

    name: str

    def exec(self, *cmd: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        opts = [f"--env={k}={v}" for k, v in (env or {}).items()]
        return podman("exec", *opts, self.name, *cmd, check=False)

    def inspect(self, fmt: str) -> str:
        return podman("inspect", "--format", fmt, self.name).stdout.strip()

    def running(self) -> bool:
        return self.inspect("{{.State.Running}}") == "true"

    def logs(self) -> str:
        done = podman("logs", self.name, check=False)
        return f"--- {self.name} log ---\n{done.stdout}{_stderr(done)}"

    def diff(self) -> set[str]:
        """Paths podman reports as added, changed or deleted in the container's root filesystem."""
        return {line.split(maxsplit=1)[1] for line in podman("diff", self.name).stdout.splitlines() if line}

    def remove(self) -> None:
        podman("rm", "--force", "--time", "2", self.name, check=False)

    def wait_ready(self, admin_port: int, timeout: float = READY_TIMEOUT) -> None:
        """Poll the gateway's ``/readyz`` on 127.0.0.1 (host network) until it answers 200."""
        deadline = time.monotonic() + timeout
        last = "nothing"
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/readyz", timeout=1.0) as resp:
                    if resp.status == 200:
                        return
                    last = str(resp.status)
            except urllib.error.HTTPError as exc:
                last = str(exc.code)
            except OSError as exc:
                last = str(exc)
            if not self.running():
                raise AssertionError(f"container {self.name} exited\n{self.logs()}")
            time.sleep(0.1)
        raise AssertionError(f"/readyz not 200 within {timeout}s (last: {last})\n{self.logs()}")


class Containers:
    """Starts containers for one test (or module) and removes exactly those at the end."""

    def __init__(self) -> None:
        self.started: list[Container] = []

    def run(self, *args: str, image_args: tuple[str, ...] = ()) -> Container:
        """``podman run -d --name PREFIX<n> ARGS IMAGE IMAGE_ARGS``."""
        container = Container(f"{PREFIX}{next(_numbers)}")
        self.started.append(container)
        podman("run", "--detach", "--pull=never", "--name", container.name, *args, IMAGE, *image_args)
        return container

    def run_once(self, *args: str, image_args: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
        """``podman run --rm --name PREFIX<n> ARGS IMAGE IMAGE_ARGS`` in the foreground; not checked."""
        container = Container(f"{PREFIX}{next(_numbers)}")
        self.started.append(container)
        return podman("run", "--rm", "--pull=never", "--name", container.name, *args, IMAGE, *image_args,
                      check=False)  # fmt: skip

    async def arun(self, *args: str, image_args: tuple[str, ...] = ()) -> Container:
        return await asyncio.to_thread(self.run, *args, image_args=image_args)

    def remove_all(self) -> None:
        for container in self.started:
            container.remove()
        self.started.clear()


def gateway_env(nats_url: str, port: int, admin_port: int, **extra: str) -> list[str]:
    """``--env`` options for a gateway on the host network bound to 127.0.0.1."""
    env = {
        "RESGATE_NATS_URL": nats_url,
        "RESGATE_ADDR": "127.0.0.1",
        "RESGATE_PORT": str(port),
        "RESGATE_ADMIN_PORT": str(admin_port),
        **extra,
    }
    return [f"--env={k}={v}" for k, v in env.items()]
