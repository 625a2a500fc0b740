"""Helpers to declare ResgateClusters and wait on what the operator and the controllers make of them."""

from __future__ import annotations

from typing import Any

from tests.support import k8s

SELECTOR = (
    "app.kubernetes.io/name=pyresgate,app.kubernetes.io/instance={name},app.kubernetes.io/component=gateway"
)


def manifest(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"nats": {"urls": ["nats://nats.messaging:4222"]}}
    body.update(spec)
    return {
        "apiVersion": "pyresgate.io/v1alpha1",
        "kind": "ResgateCluster",
        "metadata": {"name": name, "namespace": namespace},
        "spec": body,
    }


def condition(obj: dict[str, Any] | None, kind: str) -> dict[str, Any]:
    for item in ((obj or {}).get("status") or {}).get("conditions") or []:
        if item["type"] == kind:
            return item  # type: ignore[no-any-return]
    return {}


def wait_condition(
    kubectl: k8s.Kubectl,
    name: str,
    namespace: str,
    kind: str,
    status: str,
    *,
    reason: str | None = None,
    timeout: float = 60,
) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        obj = kubectl.get("resgatecluster", name, namespace)
        cond = condition(obj, kind)
        generation = (obj or {}).get("metadata", {}).get("generation")
        current = cond.get("observedGeneration") == generation
        if cond.get("status") == status and (reason is None or cond.get("reason") == reason) and current:
            return obj
        return None

    return k8s.wait_until(check, timeout=timeout, what=f"{namespace}/{name} {kind}={status} {reason or ''}")


def wait_ready(
    kubectl: k8s.Kubectl, name: str, namespace: str, *, replicas: int | None = None
) -> dict[str, Any]:
    obj = wait_condition(kubectl, name, namespace, "Ready", "True")
    if replicas is not None:
        k8s.wait_until(
            lambda: (
                (kubectl.get("resgatecluster", name, namespace) or {}).get("status", {}).get("readyReplicas")
                == replicas
            ),
            what=f"{replicas} ready replicas",
        )
    return obj


def pods(kubectl: k8s.Kubectl, name: str, namespace: str) -> list[dict[str, Any]]:
    return list(kubectl.json("get", "pods", "-n", namespace, "-l", SELECTOR.format(name=name))["items"])


def live_pods(kubectl: k8s.Kubectl, name: str, namespace: str) -> list[dict[str, Any]]:
    return [pod for pod in pods(kubectl, name, namespace) if not pod["metadata"].get("deletionTimestamp")]


def events(kubectl: k8s.Kubectl, name: str, namespace: str) -> list[dict[str, Any]]:
    found = kubectl.json(
        "get",
        "events",
        "-n",
        namespace,
        "--field-selector",
        f"involvedObject.kind=ResgateCluster,involvedObject.name={name}",
    )
    return list(found["items"])


def wait_event(
    kubectl: k8s.Kubectl, name: str, namespace: str, reason: str, *, timeout: float = 60
) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        return next((event for event in events(kubectl, name, namespace) if event["reason"] == reason), None)

    return k8s.wait_until(check, timeout=timeout, what=f"event {reason} on {namespace}/{name}")


def pod_template_annotations(kubectl: k8s.Kubectl, name: str, namespace: str) -> dict[str, str]:
    deployment = kubectl.get("deployment", name, namespace) or {}
    return dict(deployment.get("spec", {}).get("template", {}).get("metadata", {}).get("annotations") or {})
