"""A real Kubernetes control plane from ../shared/k8s for the chart tests, kubectl on it, and the
operator run on the host as a real ``pyresgate-operator`` process with a ServiceAccount's token.

The fake node of ../shared/k8s schedules and reports pods but runs no containers, so whatever a pod
would run (the operator, the uninstall hook) runs here on the host, with the pod's ServiceAccount token:
RBAC applies exactly as it would in the pod. Clusters live in /tmp/chart-k8s-* and are stopped at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest

from tests.chart.helm import KUBECTL
from tests.support import k8s

T = TypeVar("T")
#: Seconds `cluster up` may take (two clusters starting at once on 2 cores take ~20 s).
CLUSTER_UP_TIMEOUT = 300


def shared_k8s() -> Path | None:
    """../shared/k8s (see ``tests.support.k8s.find_k8s_dir``)."""
    return k8s.find_k8s_dir()


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 60.0, interval: float = 0.5) -> T:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` after ``timeout`` seconds."""
    return cast(T, k8s.wait_until(probe, timeout=timeout, interval=interval, what=what))


@dataclass
class Cluster:
    """One running control plane: its directory, admin kubeconfig and kubectl."""

    directory: Path
    kubeconfig: Path
    tool: Path

    @classmethod
    def up(cls, *extra: str) -> Cluster:
        k8s = shared_k8s()
        if k8s is None:
            reason = (
                "../shared/k8s (a Kubernetes control plane for tests) is absent: set PYRESGATE_K8S_DIR to it "
                "to run the chart on a real API server"
            )
            if os.environ.get("CI") == "true":  # CI lays shared/ beside the clone
                pytest.fail(reason)
            pytest.skip(reason)
        directory = Path(tempfile.mkdtemp(prefix="chart-k8s-", dir="/tmp"))
        proc = subprocess.run(
            [str(k8s / "cluster"), "up", "--dir", str(directory), *extra],
            capture_output=True,
            text=True,
            timeout=CLUSTER_UP_TIMEOUT,
            check=False,
        )
        if proc.returncode != 0:
            subprocess.run([str(k8s / "cluster"), "down", "--dir", str(directory)], check=False, timeout=120)
            raise AssertionError(f"cluster up failed:\n{proc.stderr[-3000:]}")
        kubeconfig = Path(proc.stdout.strip().splitlines()[-1].split("=", 1)[1])
        tool = KUBECTL if KUBECTL.exists() else directory / "bin" / "kubectl"
        return cls(directory, kubeconfig, tool)

    def down(self) -> None:
        k8s = shared_k8s()
        assert k8s is not None
        subprocess.run([str(k8s / "cluster"), "down", "--dir", str(self.directory)], check=False, timeout=120)
        shutil.rmtree(self.directory, ignore_errors=True)

    @property
    def env(self) -> dict[str, str]:
        return {"KUBECONFIG": str(self.kubeconfig)}

    def kubectl(
        self, *args: str, check: bool = True, kubeconfig: Path | None = None, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(self.tool), "--kubeconfig", str(kubeconfig or self.kubeconfig), *args],
            capture_output=True,
            text=True,
            timeout=120,
            input=stdin,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed:\n{proc.stderr}")
        return proc

    def get(self, *args: str) -> Any:
        """``kubectl get ... -o json``; None when the object does not exist."""
        proc = self.kubectl("get", *args, "-o", "json", check=False)
        if proc.returncode != 0:
            if "NotFound" in proc.stderr:
                return None
            raise AssertionError(f"kubectl get {' '.join(args)} failed:\n{proc.stderr}")
        return json.loads(proc.stdout)

    def token_kubeconfig(self, namespace: str, service_account: str) -> Path:
        """A kubeconfig that authenticates as ``service_account`` with a fresh token (TokenRequest API)."""
        token = self.kubectl(
            "-n", namespace, "create", "token", service_account, "--duration=2h"
        ).stdout.strip()
        config = json.loads(self.kubectl("config", "view", "--raw", "--minify", "-o", "json").stdout)
        config["users"] = [{"name": service_account, "user": {"token": token}}]
        config["contexts"][0]["context"]["user"] = service_account
        path = self.directory / f"{namespace}.{service_account}.kubeconfig"
        path.write_text(json.dumps(config))
        return path


class HostProcess:
    """A process the test runs in place of a pod's container; output in a log file; stopped by PID."""

    def __init__(self, argv: Sequence[str], kubeconfig: Path, log: Path) -> None:
        self.log = log
        self._out = log.open("wb")
        env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
        self.proc = subprocess.Popen(list(argv), env=env, stdout=self._out, stderr=subprocess.STDOUT)

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def stop(self, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._out.close()
        return self.proc.returncode


def operator_argv(container: dict[str, Any], liveness_port: int, metrics_port: int) -> list[str]:
    """The operator container's arguments as the pod would run them, its ports made free host ports.

    ``$(POD_INDEX)`` is what the kubelet would expand it to for pod 0.
    """
    argv = [str(Path(sys.executable).parent / "pyresgate-operator")]
    for arg in container["args"][1:]:
        if arg.startswith("--liveness-port="):
            arg = f"--liveness-port={liveness_port}"
        elif arg.startswith("--metrics-port="):
            arg = f"--metrics-port={metrics_port}"
        argv.append(arg.replace("$(POD_INDEX)", "0"))
    return argv
