"""The operator process itself: restarts mid-way, peering between replicas, liveness and metrics."""

from __future__ import annotations

from pathlib import Path

from tests.operator.e2e import rgc
from tests.operator.e2e.conftest import PEERING, OperatorProcess
from tests.support import k8s


def test_operator_restart_mid_way_converges_without_duplicates(
    kubectl: k8s.Kubectl, namespace: str, operator: OperatorProcess
) -> None:
    kubectl.apply(rgc.manifest("edge", namespace, replicas=2))
    k8s.wait_until(lambda: kubectl.get("deployment", "edge", namespace), what="deployment created")
    operator.kill()  # no graceful stop: as a crashed or evicted operator pod
    try:
        kubectl.apply(rgc.manifest("edge", namespace, replicas=3, gateway={"requestTimeout": 4000}))
        kubectl.apply(rgc.manifest("second", namespace, replicas=1))
    finally:
        operator.start()
    # The restarted container is the same peer (POD_ID): it took over its own record instead of
    # pausing behind it until the dead process's record expired (up to kopf's 60 s lifetime).
    peers = kubectl.json("get", "clusterkopfpeering", PEERING).get("status") or {}
    assert set(peers) == {operator.pod_id}, peers
    rgc.wait_ready(kubectl, "edge", namespace, replicas=3)
    rgc.wait_ready(kubectl, "second", namespace, replicas=1)
    deployments = kubectl.json("get", "deployments", "-n", namespace)["items"]
    assert sorted(item["metadata"]["name"] for item in deployments) == ["edge", "second"]
    configmaps = [
        item["metadata"]["name"] for item in kubectl.json("get", "configmaps", "-n", namespace)["items"]
    ]
    assert sorted(name for name in configmaps if name.endswith("-config")) == ["edge-config", "second-config"]
    assert len(rgc.live_pods(kubectl, "edge", namespace)) == 3
    assert kubectl.get("deployment", "edge", namespace)["spec"]["replicas"] == 3  # type: ignore[index]


def test_namespaced_replicas_peer_so_only_the_highest_priority_acts(
    kubectl: k8s.Kubectl, namespace: str, operator: OperatorProcess, tmp_path: Path
) -> None:
    """Two replicas watching one namespace (KopfPeering there): the lower one pauses, takes over when
    the higher one stops. The cluster-wide session operator is stopped meanwhile so it cannot act."""
    kubectl.apply(
        {
            "apiVersion": "kopf.dev/v1",
            "kind": "KopfPeering",
            "metadata": {"name": PEERING, "namespace": namespace},
        }
    )
    operator.stop()
    low = OperatorProcess(operator.kubeconfig, tmp_path / "low.log")
    high = OperatorProcess(operator.kubeconfig, tmp_path / "high.log")
    try:
        low.start("--namespace", namespace, "--priority", "1", scope="namespaced")
        high.start("--namespace", namespace, "--priority", "2", scope="namespaced")
        k8s.wait_until(
            lambda: "Pausing operations in favour of" in low.log_tail(400), timeout=60, what="low pauses"
        )
        kubectl.apply(rgc.manifest("edge", namespace, replicas=1))
        rgc.wait_ready(kubectl, "edge", namespace, replicas=1)
        assert f"[{namespace}/edge]" in high.log_path.read_text()
        assert f"[{namespace}/edge]" not in low.log_path.read_text()

        high.stop()
        k8s.wait_until(
            lambda: "Resuming operations after the pause" in low.log_tail(400), timeout=90, what="low resumes"
        )
        kubectl.run("scale", "rgc", "edge", "-n", namespace, "--replicas", "2")
        rgc.wait_ready(kubectl, "edge", namespace, replicas=2)
        assert f"[{namespace}/edge]" in low.log_path.read_text()
    finally:
        high.stop()
        low.stop()
        operator.start()


def test_liveness_and_metrics_endpoints(
    kubectl: k8s.Kubectl, namespace: str, operator: OperatorProcess
) -> None:
    kubectl.apply(rgc.manifest("edge", namespace, replicas=1))
    rgc.wait_ready(kubectl, "edge", namespace, replicas=1)
    assert operator.healthy()
    text = operator.metrics()
    assert 'pyresgate_operator_reconciles_total{outcome="ok"}' in text
    assert "pyresgate_operator_reconcile_duration_seconds_count" in text
    assert 'pyresgate_operator_applies_total{kind="Deployment"}' in text
