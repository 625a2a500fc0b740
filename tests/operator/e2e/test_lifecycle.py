"""A ResgateCluster's life on a real API server: create, scale, configuration changes, restarts,
optional objects, deletion. The real pyresgate-operator process runs with its ServiceAccount's token."""

from __future__ import annotations

import base64
import json

from tests.operator.e2e import rgc
from tests.operator.e2e.conftest import GATEWAY_IMAGE, settle
from tests.support import k8s

OWNED = ("deployment", "service", "poddisruptionbudget")


def owner_uid(obj: dict[str, object]) -> str:
    refs = obj["metadata"]["ownerReferences"]  # type: ignore[index]
    assert len(refs) == 1 and refs[0]["controller"] is True and refs[0]["kind"] == "ResgateCluster"
    return str(refs[0]["uid"])


def test_create_makes_owned_objects_and_reaches_ready(kubectl: k8s.Kubectl, namespace: str) -> None:
    kubectl.apply(
        rgc.manifest("edge", namespace, replicas=3, gateway={"apiPath": "/api/", "requestTimeout": 5000})
    )
    cluster = rgc.wait_ready(kubectl, "edge", namespace, replicas=3)
    uid = cluster["metadata"]["uid"]
    for kind, name in (
        *((kind, "edge") for kind in OWNED),
        ("configmap", "edge-config"),
        ("service", "edge-admin"),
    ):
        obj = kubectl.get(kind, name, namespace)
        assert obj is not None, f"{kind}/{name} missing"
        assert owner_uid(obj) == uid
        assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "pyresgate-operator"
        fields = kubectl.json("get", kind, name, "-n", namespace, "--show-managed-fields")["metadata"][
            "managedFields"
        ]
        assert {entry["manager"] for entry in fields if entry["operation"] == "Apply"} == {
            "pyresgate-operator"
        }
    deployment = kubectl.get("deployment", "edge", namespace)
    assert deployment is not None
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == GATEWAY_IMAGE
    settings = json.loads(kubectl.get("configmap", "edge-config", namespace)["data"]["config.json"])  # type: ignore[index]
    assert settings["natsUrl"] == "nats://nats.messaging:4222" and settings["requestTimeout"] == 5000

    status = cluster["status"]
    assert status["replicas"] == 3 and status["readyReplicas"] == 3 and status["observedGeneration"] == 1
    assert status["selector"] == rgc.SELECTOR.format(name="edge")
    assert (
        status["configHash"]
        == rgc.pod_template_annotations(kubectl, "edge", namespace)["pyresgate.io/config-hash"]
    )
    kinds = {cond["type"]: cond for cond in status["conditions"]}
    assert set(kinds) == {"Ready", "Progressing", "Degraded", "NatsConnected"}
    for cond in kinds.values():
        assert cond["lastTransitionTime"] and cond["reason"] and cond["message"]
    assert kinds["NatsConnected"]["status"] == "True" and kinds["Degraded"]["status"] == "False"
    rgc.wait_event(kubectl, "edge", namespace, "Created")
    rgc.wait_event(kubectl, "edge", namespace, "Ready")

    table = kubectl.out("get", "rgc", "edge", "-n", namespace)
    header, row = table.splitlines()[:2]
    assert header.split() == ["NAME", "DESIRED", "READY", "NATS", "STATUS", "AGE"]
    assert row.split()[:5] == ["edge", "3", "3", "True", "AllReplicasReady"]
    described = kubectl.out("describe", "rgc", "edge", "-n", namespace)
    assert "NatsConnected" in described and "AllReplicasReady" in described and "Created" in described


def test_kubectl_scale_goes_through_the_scale_subresource(kubectl: k8s.Kubectl, namespace: str) -> None:
    kubectl.apply(rgc.manifest("edge", namespace, replicas=2))
    rgc.wait_ready(kubectl, "edge", namespace, replicas=2)
    kubectl.run("scale", "rgc", "edge", "-n", namespace, "--replicas", "5")
    rgc.wait_ready(kubectl, "edge", namespace, replicas=5)
    assert kubectl.get("deployment", "edge", namespace)["spec"]["replicas"] == 5  # type: ignore[index]
    scale = json.loads(
        kubectl.out(
            "get", "--raw", f"/apis/pyresgate.io/v1alpha1/namespaces/{namespace}/resgateclusters/edge/scale"
        )
    )
    assert scale["spec"]["replicas"] == 5 and scale["status"]["replicas"] == 5
    assert scale["status"]["selector"] == rgc.SELECTOR.format(name="edge")
    rgc.wait_event(kubectl, "edge", namespace, "Scaled")
    kubectl.run("scale", "rgc", "edge", "-n", namespace, "--replicas", "1")
    rgc.wait_ready(kubectl, "edge", namespace, replicas=1)
    k8s.wait_until(lambda: len(rgc.live_pods(kubectl, "edge", namespace)) == 1, what="scaled down to one pod")


def test_config_change_rolls_the_gateways(kubectl: k8s.Kubectl, namespace: str) -> None:
    kubectl.apply(rgc.manifest("edge", namespace, replicas=2, gateway={"requestTimeout": 3000}))
    rgc.wait_ready(kubectl, "edge", namespace, replicas=2)
    before = rgc.pod_template_annotations(kubectl, "edge", namespace)["pyresgate.io/config-hash"]
    old_pods = {pod["metadata"]["name"] for pod in rgc.pods(kubectl, "edge", namespace)}

    kubectl.apply(rgc.manifest("edge", namespace, replicas=2, gateway={"requestTimeout": 7000}))
    cluster = rgc.wait_condition(kubectl, "edge", namespace, "Ready", "True")
    after = rgc.pod_template_annotations(kubectl, "edge", namespace)["pyresgate.io/config-hash"]
    assert after != before and cluster["status"]["configHash"] == after
    settings = json.loads(kubectl.get("configmap", "edge-config", namespace)["data"]["config.json"])  # type: ignore[index]
    assert settings["requestTimeout"] == 7000
    rgc.wait_event(kubectl, "edge", namespace, "RollingUpdate")
    k8s.wait_until(
        lambda: not old_pods & {pod["metadata"]["name"] for pod in rgc.live_pods(kubectl, "edge", namespace)},
        what="every old pod replaced",
    )
    replica_sets = kubectl.json("get", "replicasets", "-n", namespace)["items"]
    assert len(replica_sets) == 2


def test_restart_annotation_forces_a_rolling_restart(kubectl: k8s.Kubectl, namespace: str) -> None:
    kubectl.apply(rgc.manifest("edge", namespace, replicas=2))
    rgc.wait_ready(kubectl, "edge", namespace, replicas=2)
    kubectl.run("annotate", "rgc", "edge", "-n", namespace, "pyresgate.io/restartedAt=2026-12-07T10:00:00Z")
    k8s.wait_until(
        lambda: (
            rgc.pod_template_annotations(kubectl, "edge", namespace).get("pyresgate.io/restartedAt")
            == "2026-12-07T10:00:00Z"
        ),
        what="restartedAt on the pod template",
    )
    rgc.wait_event(kubectl, "edge", namespace, "RollingRestart")
    k8s.wait_until(
        lambda: len(kubectl.json("get", "replicasets", "-n", namespace)["items"]) == 2, what="new ReplicaSet"
    )


def test_changed_secret_content_rolls_the_gateways(kubectl: k8s.Kubectl, namespace: str) -> None:
    secret = {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "nats-creds", "namespace": namespace},
        "data": {"user.creds": base64.b64encode(b"first").decode()},
    }  # fmt: skip
    kubectl.apply(secret)
    nats = {"urls": ["nats://nats.messaging:4222"], "credentialsSecret": {"name": "nats-creds"}}
    kubectl.apply(rgc.manifest("edge", namespace, replicas=1, nats=nats))
    rgc.wait_ready(kubectl, "edge", namespace, replicas=1)
    deployment = kubectl.get("deployment", "edge", namespace)
    assert deployment is not None
    pod_spec = deployment["spec"]["template"]["spec"]
    assert {"name": "nats-creds", "secret": {"secretName": "nats-creds", "defaultMode": 420,
            "items": [{"key": "user.creds", "path": "user.creds"}]}} in pod_spec["volumes"]  # fmt: skip
    before = rgc.pod_template_annotations(kubectl, "edge", namespace)["pyresgate.io/config-hash"]

    secret["data"] = {"user.creds": base64.b64encode(b"second").decode()}
    kubectl.apply(secret)
    k8s.wait_until(
        lambda: (
            rgc.pod_template_annotations(kubectl, "edge", namespace)["pyresgate.io/config-hash"] != before
        ),
        timeout=40,
        what="hash change after the Secret changed (resync)",
    )


def test_optional_objects_follow_the_spec(kubectl: k8s.Kubectl, namespace: str) -> None:
    autoscaling = {"minReplicas": 2, "maxReplicas": 6, "targetCPUUtilization": 70}
    kubectl.apply(
        rgc.manifest("edge", namespace, replicas=2, networkPolicy={"enabled": True}, autoscaling=autoscaling)
    )
    rgc.wait_ready(kubectl, "edge", namespace, replicas=2)
    policy = kubectl.get("networkpolicy", "edge", namespace)
    hpa = kubectl.get("hpa", "edge", namespace)
    assert policy is not None and hpa is not None
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "pyresgate.io/v1alpha1",
        "kind": "ResgateCluster",
        "name": "edge",
    }

    # The real HPA controller scales the ResgateCluster (scale subresource) and the operator follows.
    # Raising minReplicas makes it act without metrics; a `kubectl scale` to 3 would race it (with
    # the fake metrics API it may find the idle pods over-provisioned and scale back to 2).
    kubectl.apply(
        rgc.manifest(
            "edge",
            namespace,
            replicas=2,
            networkPolicy={"enabled": True},
            autoscaling={**autoscaling, "minReplicas": 3},
        )
    )
    rgc.wait_ready(kubectl, "edge", namespace, replicas=3)
    assert kubectl.get("resgatecluster", "edge", namespace)["spec"]["replicas"] == 3  # type: ignore[index]
    kubectl.apply(rgc.manifest("edge", namespace, replicas=3))
    k8s.wait_until(lambda: kubectl.get("hpa", "edge", namespace) is None, what="HPA removed")
    k8s.wait_until(
        lambda: kubectl.get("networkpolicy", "edge", namespace) is None, what="NetworkPolicy removed"
    )
    rgc.wait_event(kubectl, "edge", namespace, "Deleted")
    settle(2)
    assert kubectl.get("deployment", "edge", namespace)["spec"]["replicas"] == 3  # type: ignore[index]


SERVICE_MONITOR_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "servicemonitors.monitoring.coreos.com"},
    "spec": {
        "group": "monitoring.coreos.com",
        "scope": "Namespaced",
        "names": {"kind": "ServiceMonitor", "plural": "servicemonitors", "singular": "servicemonitor"},
        "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
            "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}],
    },
}  # fmt: skip


def test_service_monitor_only_when_its_crd_exists(kubectl: k8s.Kubectl, namespace: str) -> None:
    monitor = {"serviceMonitor": {"enabled": True, "interval": "15s", "labels": {"release": "prom"}}}
    kubectl.apply(rgc.manifest("edge", namespace, replicas=1, metrics=monitor))
    rgc.wait_ready(kubectl, "edge", namespace, replicas=1)
    event = rgc.wait_event(kubectl, "edge", namespace, "ServiceMonitorUnavailable")
    assert event["type"] == "Warning"
    assert kubectl.run("get", "servicemonitors", "-n", namespace, check=False).returncode != 0

    # prometheus-operator's CRD arrives (a minimal stand-in): the next pass creates the ServiceMonitor.
    kubectl.apply(SERVICE_MONITOR_CRD)
    kubectl.run(
        "wait", "--for=condition=established", "--timeout=60s", "crd/servicemonitors.monitoring.coreos.com"
    )
    found = k8s.wait_until(
        lambda: kubectl.get("servicemonitor", "edge", namespace), timeout=40, what="ServiceMonitor"
    )
    assert found["metadata"]["labels"]["release"] == "prom"
    assert found["spec"]["endpoints"] == [{"port": "admin", "path": "/metrics", "interval": "15s"}]
    kubectl.apply(rgc.manifest("edge", namespace, replicas=1))
    k8s.wait_until(
        lambda: kubectl.get("servicemonitor", "edge", namespace) is None, what="ServiceMonitor removed"
    )


def test_deleting_the_resource_collects_everything(kubectl: k8s.Kubectl, namespace: str) -> None:
    kubectl.apply(rgc.manifest("edge", namespace, replicas=2))
    rgc.wait_ready(kubectl, "edge", namespace, replicas=2)
    kubectl.run("delete", "rgc", "edge", "-n", namespace, "--wait=true", "--timeout=60s")
    for kind in (*OWNED, "service/edge-admin"):
        name = "edge" if "/" not in kind else ""
        k8s.wait_until(
            lambda kind=kind, name=name: kubectl.run("get", kind, *([name] if name else []), "-n", namespace,
                                                     check=False).returncode != 0,
            what=f"{kind} garbage-collected",
        )  # fmt: skip
    k8s.wait_until(lambda: not rgc.pods(kubectl, "edge", namespace), what="pods gone")
