"""A real Kubernetes control plane for the tests: ``../shared/k8s`` (etcd, kube-apiserver,
controller-manager, scheduler and a fake node), started once per test session, plus small helpers.

``ControlPlane.start`` runs ``cluster up`` in a temporary directory with the API server's audit log
on (the RBAC test reads which requests the operator made); ``Kubectl`` runs the cluster's own
kubectl (v1.36) with a given kubeconfig. Where ``../shared/k8s`` is missing the tests that need it
skip with ``SKIP_REASON``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

ROOT = Path(__file__).resolve().parents[2]


def find_k8s_dir() -> Path | None:
    """``../shared/k8s``: where PYRESGATE_K8S_DIR says, beside this checkout, or beside the main
    checkout when this one is a git worktree; None when none of them holds its ``cluster`` tool."""
    candidates = [os.environ.get("PYRESGATE_K8S_DIR", ""), str(ROOT.parent / "shared" / "k8s")]
    common = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--path-format=absolute", "--git-common-dir"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    if common:
        candidates.append(str(Path(common).parent.parent / "shared" / "k8s"))
    for candidate in candidates:
        if candidate and (Path(candidate) / "cluster").exists():
            return Path(candidate)
    return None


#: The control plane tool (../shared/k8s/cluster; PYRESGATE_K8S_DIR overrides where it lives).
K8S_DIR = find_k8s_dir() or ROOT.parent / "shared" / "k8s"
CLUSTER = K8S_DIR / "cluster"
SKIP_REASON = (
    f"needs the Kubernetes control plane of ../shared/k8s ({CLUSTER} not found); set PYRESGATE_K8S_DIR to a "
    "folder holding its `cluster` tool (kube-apiserver, etcd, controller-manager, scheduler, fake node)"
)

#: Audit policy: record who did what (metadata level) for every request to the API server.
AUDIT_POLICY = {"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [{"level": "Metadata"}]}

T = TypeVar("T")


def available() -> bool:
    return CLUSTER.is_file()


def role_grants(path: Path) -> set[tuple[str, str, str]]:
    """Every (apiGroup, resource, verb) a Role or ClusterRole file grants."""
    role = yaml.safe_load(path.read_text())
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def pod_network_possible() -> bool:
    """``--pod-network`` (pod IPs, Service endpoints, the metrics APIs for the HPA) needs root and ``ip``."""
    return os.geteuid() == 0 and shutil.which("ip") is not None


def wait_until(check: Callable[[], T], *, timeout: float = 60, interval: float = 0.5, what: str = "") -> T:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = check()
        except subprocess.CalledProcessError as exc:
            last = exc.stderr or exc
        else:
            if last:
                return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or check}: last={last!r}")
        time.sleep(interval)


@dataclass
class Kubectl:
    binary: str
    kubeconfig: Path

    def run(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.binary, "--kubeconfig", str(self.kubeconfig), *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=60,
            check=check,
        )

    def out(self, *args: str) -> str:
        return self.run(*args).stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.out(*args, "-o", "json"))

    def get(self, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
        done = self.run("get", kind, name, "-n", namespace, "-o", "json", check=False)
        if done.returncode != 0:
            if "NotFound" in done.stderr:
                return None
            raise subprocess.CalledProcessError(done.returncode, done.args, done.stdout, done.stderr)
        return json.loads(done.stdout)  # type: ignore[no-any-return]

    def apply(
        self, obj: dict[str, Any] | Sequence[dict[str, Any]], *, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        docs = [obj] if isinstance(obj, dict) else list(obj)
        return self.run("apply", "--server-side", "-f", "-", input=yaml.safe_dump_all(docs), check=check)


@dataclass
class ControlPlane:
    directory: Path
    kubeconfig: Path
    kubectl: Kubectl
    audit_log: Path
    info: dict[str, Any]

    @property
    def pod_network(self) -> bool:
        return bool(self.info.get("pod_network"))

    @classmethod
    def start(cls, directory: Path, *, pod_network: bool = False) -> ControlPlane:
        directory.mkdir(parents=True, exist_ok=True)
        policy = directory / "audit-policy.yaml"
        policy.write_text(yaml.safe_dump(AUDIT_POLICY))
        audit_log = directory / "audit.log"
        args = [
            str(CLUSTER),
            "up",
            "--dir",
            str(directory / "cluster"),
            f"--apiserver-arg=--audit-policy-file={policy}",
            f"--apiserver-arg=--audit-log-path={audit_log}",
        ]
        if pod_network:
            args.append("--pod-network")
        done = subprocess.run(args, check=False, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"cluster up failed:\n{done.stderr[-4000:]}")
        kubeconfig = Path(done.stdout.strip().splitlines()[-1].split("=", 1)[1])
        info = json.loads((directory / "cluster" / "cluster.json").read_text())
        kubectl = shutil.which("kubectl", path=str(directory / "cluster" / "bin")) or "kubectl"
        return cls(directory, kubeconfig, Kubectl(kubectl, kubeconfig), audit_log, info)

    def stop(self) -> None:
        subprocess.run(
            [str(CLUSTER), "down", "--dir", str(self.directory / "cluster")],
            check=False,
            capture_output=True,
            timeout=120,
        )

    def token_kubeconfig(self, namespace: str, service_account: str, path: Path) -> Path:
        """A kubeconfig that authenticates as a ServiceAccount (a real signed token from TokenRequest)."""
        token = self.kubectl.out(
            "create", "token", service_account, "-n", namespace, "--duration", "4h"
        ).strip()
        config = yaml.safe_load(self.kubeconfig.read_text())
        config["users"] = [{"name": service_account, "user": {"token": token}}]
        config["contexts"][0]["context"]["user"] = service_account
        path.write_text(yaml.safe_dump(config))
        return path

    def audit_events(self) -> list[dict[str, Any]]:
        events = []
        for line in self.audit_log.read_text().splitlines():
            if line.strip():
                events.append(json.loads(line))
        return events
