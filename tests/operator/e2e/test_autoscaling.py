"""Autoscaling with the real HorizontalPodAutoscaler controller of kube-controller-manager.

The HPA the operator creates targets the ResgateCluster's scale subresource; the controller reads pod
metrics from the fake metrics API of ``--pod-network`` (numbers taken from pod annotations), changes
``spec.replicas`` of the ResgateCluster, and the operator carries it to the Deployment.
"""

from __future__ import annotations

import time

import pytest

from tests.operator.e2e import rgc
from tests.support import k8s


@pytest.fixture(autouse=True)
def _needs_metrics(control_plane: k8s.ControlPlane) -> None:
    if not control_plane.pod_network:
        pytest.skip(
            "the HPA needs the metrics APIs of `cluster up --pod-network` (root and the `ip` command)"
        )


def spec_replicas(kubectl: k8s.Kubectl, namespace: str) -> int:
    return int((kubectl.get("resgatecluster", "edge", namespace) or {})["spec"]["replicas"])


def deployment_replicas(kubectl: k8s.Kubectl, namespace: str) -> int:
    return int((kubectl.get("deployment", "edge", namespace) or {})["spec"]["replicas"])


AUTOSCALING = {
    "minReplicas": 1, "maxReplicas": 3, "targetCPUUtilization": 50,
    "scaleDown": {"stabilizationSeconds": 5, "maxPodsPerMinute": 1},
}  # fmt: skip
RESOURCES = {"requests": {"cpu": "200m", "memory": "64Mi"}}


def test_hpa_scales_the_resgatecluster_out_fast_on_cpu(kubectl: k8s.Kubectl, namespace: str) -> None:
    busy = {"annotations": {"fake-kubelet/cpu": "400m"}}  # 200 % of the 200m request
    kubectl.apply(
        rgc.manifest(
            "edge", namespace, replicas=1, resources=RESOURCES, podTemplate=busy, autoscaling=AUTOSCALING
        )
    )
    k8s.wait_until(lambda: spec_replicas(kubectl, namespace) == 3, timeout=90, what="HPA scales the RGC to 3")
    k8s.wait_until(
        lambda: deployment_replicas(kubectl, namespace) == 3, what="operator carries 3 to the Deployment"
    )
    rgc.wait_ready(kubectl, "edge", namespace, replicas=3)
    hpa = kubectl.get("hpa", "edge", namespace) or {}
    assert hpa["status"]["desiredReplicas"] == 3


def test_hpa_scales_down_one_pod_per_minute(kubectl: k8s.Kubectl, namespace: str) -> None:
    # Three idle gateways: the HPA removes them at maxPodsPerMinute, not at once. (Had it scaled up
    # within the last minute, upstream counts that as room to scale down at once.)
    idle = {"annotations": {"fake-kubelet/cpu": "10m"}}
    kubectl.apply(
        rgc.manifest(
            "edge", namespace, replicas=3, resources=RESOURCES, podTemplate=idle, autoscaling=AUTOSCALING
        )
    )
    k8s.wait_until(lambda: spec_replicas(kubectl, namespace) == 2, timeout=90, what="first scale-down step")
    stepped = time.monotonic()
    k8s.wait_until(lambda: spec_replicas(kubectl, namespace) < 2, timeout=120, what="second scale-down step")
    assert time.monotonic() - stepped > 40, "behaviour.scaleDown allows one pod per 60 s"
    assert spec_replicas(kubectl, namespace) == 1
    k8s.wait_until(lambda: deployment_replicas(kubectl, namespace) == 1, what="Deployment follows")


def test_hpa_scales_on_connections_per_pod(kubectl: k8s.Kubectl, namespace: str) -> None:
    autoscaling = {"minReplicas": 1, "maxReplicas": 4, "targetConnectionsPerPod": 1000}
    loaded = {"annotations": {"fake-kubelet/metric.resgate_ws_current_connections": "2500"}}
    kubectl.apply(rgc.manifest("edge", namespace, replicas=1, podTemplate=loaded, autoscaling=autoscaling))
    k8s.wait_until(
        lambda: spec_replicas(kubectl, namespace) >= 3, timeout=90, what="scaled out on connections"
    )
    k8s.wait_until(
        lambda: deployment_replicas(kubectl, namespace) == spec_replicas(kubectl, namespace),
        what="Deployment follows",
    )
    hpa = kubectl.get("hpa", "edge", namespace) or {}
    metric = hpa["status"]["currentMetrics"][0]["pods"]
    assert metric["metric"]["name"] == "resgate_ws_current_connections"
