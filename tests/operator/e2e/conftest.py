"""End-to-end fixtures: one real control plane per session, the operator installed as users install it
(CRDs, ClusterRole, ServiceAccount, binding, peering object) and the real ``pyresgate-operator``
process running with that ServiceAccount's token, so RBAC is enforced on every request it makes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import k8s
from tests.support.natsserver import free_port

OPERATOR_NAMESPACE = "pyresgate-system"
SERVICE_ACCOUNT = "pyresgate-operator"
PEERING = "pyresgate-operator"
#: The gateway image the operator puts into Deployments (nothing runs it on the fake node).
GATEWAY_IMAGE = "localhost/pyresgate:e2e"

pytestmark = pytest.mark.skipif(not k8s.available(), reason=k8s.SKIP_REASON)


def install_documents() -> list[dict[str, Any]]:
    """What an install holds besides the operator Deployment: CRDs, RBAC, ServiceAccount, peering."""
    docs: list[dict[str, Any]] = []
    for path in sorted((k8s.ROOT / "operator" / "config" / "crd").glob("*.yaml")):
        docs += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    docs += [
        doc
        for doc in yaml.safe_load_all((k8s.ROOT / "operator/config/rbac/clusterrole.yaml").read_text())
        if doc
    ]
    docs += [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": OPERATOR_NAMESPACE}},
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": SERVICE_ACCOUNT, "namespace": OPERATOR_NAMESPACE},
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": SERVICE_ACCOUNT},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "pyresgate-operator",
            },
            "subjects": [
                {"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": OPERATOR_NAMESPACE}
            ],
        },
    ]
    return docs


class OperatorProcess:
    """A ``pyresgate-operator`` child process; a restart keeps its ports, log file and pod name (so
    it is one pod whose container restarts)."""

    def __init__(self, kubeconfig: Path, log_path: Path) -> None:
        self.kubeconfig = kubeconfig
        self.log_path = log_path
        self.liveness_port = free_port()
        self.metrics_port = free_port()
        #: Its kopf peering identity, as the chart sets it (``POD_ID``: the pod's name).
        self.pod_id = f"pyresgate-operator-{uuid.uuid4().hex[:6]}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *extra: str, scope: str = "cluster") -> None:
        """Start it watching every namespace, or (``scope="namespaced"``) the ``--namespace`` in ``extra``."""
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), "POD_ID": self.pod_id}
        args = [
            sys.executable, "-c", "from pyresgate_operator.cli import main; main()",
            *(["-A"] if scope == "cluster" else []), "--peering", PEERING, "--liveness-port", str(self.liveness_port),
            "--metrics-port", str(self.metrics_port), "--gateway-image", GATEWAY_IMAGE, *extra,
        ]  # fmt: skip
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
        k8s.wait_until(self.healthy, timeout=60, what="operator /healthz")

    def healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"operator exited with {self.process.returncode}:\n{self.log_tail()}")
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.liveness_port}/healthz", timeout=2
            ) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as response:
            return str(response.read().decode())

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[k8s.ControlPlane]:
    if not k8s.available():
        pytest.skip(k8s.SKIP_REASON)
    plane = k8s.ControlPlane.start(tmp_path_factory.mktemp("k8s"), pod_network=k8s.pod_network_possible())
    try:
        plane.kubectl.apply(install_documents())
        plane.kubectl.run(
            "wait", "--for=condition=established", "--timeout=60s", "crd/resgateclusters.pyresgate.io"
        )
        plane.kubectl.run(
            "wait", "--for=condition=established", "--timeout=60s", "crd/clusterkopfpeerings.kopf.dev"
        )
        plane.kubectl.apply(
            {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": PEERING}}
        )
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def operator(
    control_plane: k8s.ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    directory = tmp_path_factory.mktemp("operator")
    kubeconfig = control_plane.token_kubeconfig(OPERATOR_NAMESPACE, SERVICE_ACCOUNT, directory / "kubeconfig")
    process = OperatorProcess(kubeconfig, directory / "operator.log")
    process.start()
    try:
        yield process
    finally:
        process.stop()
        print("--- operator log tail ---\n" + process.log_tail(200))


@pytest.fixture
def kubectl(control_plane: k8s.ControlPlane) -> k8s.Kubectl:
    return control_plane.kubectl


@pytest.fixture
def namespace(control_plane: k8s.ControlPlane, operator: OperatorProcess) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards (without waiting for it to go)."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    control_plane.kubectl.run("create", "namespace", name)
    yield name
    control_plane.kubectl.run("delete", "namespace", name, "--wait=false", check=False)


def settle(seconds: float = 1.0) -> None:
    """Give the operator a moment where a test asserts that something does NOT happen."""
    time.sleep(seconds)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """These tests wait on real controllers (the HPA acts at most every 5 s, scales down a pod per
    minute): give each more than the suite's 60 s default."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.timeout(300))
