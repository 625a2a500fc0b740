"""Sample objects for the operator's unit tests: ResgateClusters (the example files among them), gateway
pods and Deployments in the shapes the API server returns them, as plain dicts.

Used by every test module in tests/operator/ (not the end-to-end ones, which talk to a real API server).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from pyresgate_operator import build, spec

ROOT = Path(__file__).resolve().parents[2]
#: The example ResgateClusters shipped for users; every one must be valid.
EXAMPLES = ROOT / "examples" / "kubernetes"
#: ResgateClusters the CRD schema must refuse, each with a comment naming the rule it breaks.
INVALID = Path(__file__).resolve().parent / "invalid"

NAMESPACE = "apps"
NAME = "edge"
UID = "0c7d6a52-3c1e-4b7a-9d55-5a4f6c2b1e01"
DEFAULT_IMAGE = "ghcr.io/pyresgate/pyresgate:0.1.0"
NATS_URL = "nats://nats.messaging:4222"
#: A fixed "now" for the pure status and health functions.
NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)


def load(path: Path) -> dict[str, Any]:
    """One YAML document."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path} holds no object"
    return data


def example(name: str) -> dict[str, Any]:
    """An example ResgateCluster of examples/kubernetes/, e.g. ``example("full")``."""
    return load(EXAMPLES / f"resgatecluster-{name}.yaml")


def minimal_spec(**extra: Any) -> dict[str, Any]:
    return {"nats": {"urls": [NATS_URL]}, **extra}


def owner(annotations: Mapping[str, str] | None = None) -> build.Owner:
    return build.Owner(name=NAME, namespace=NAMESPACE, uid=UID, annotations=dict(annotations or {}))


def cluster(spec_body: Mapping[str, Any], *, default_image: str = DEFAULT_IMAGE) -> spec.ClusterSpec:
    return spec.parse(spec_body, namespace=NAMESPACE, default_image=default_image)


def resgate_cluster(
    spec_body: Mapping[str, Any],
    *,
    generation: int = 1,
    annotations: Mapping[str, str] | None = None,
    status: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A ResgateCluster as the API server stores it."""
    body: dict[str, Any] = {
        "apiVersion": f"{spec.GROUP}/{spec.VERSION}",
        "kind": spec.KIND,
        "metadata": {
            "name": NAME,
            "namespace": NAMESPACE,
            "uid": UID,
            "generation": generation,
            "annotations": dict(annotations or {}),
        },
        "spec": dict(spec_body),
    }
    if status is not None:
        body["status"] = dict(status)
    return body


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def pod(
    name: str,
    *,
    ready: bool = True,
    since: datetime | None = None,
    crash_loop: bool = False,
    restarts: int = 0,
    terminating: bool = False,
    created: datetime | None = None,
) -> dict[str, Any]:
    """A gateway pod; ``since`` is when its Ready condition last changed."""
    created = created or NOW - timedelta(hours=1)
    since = since or created
    state: dict[str, Any] = {"running": {"startedAt": stamp(since)}}
    if crash_loop:
        state = {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting"}}
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": NAMESPACE,
        "creationTimestamp": stamp(created),
        "labels": build.selector_labels(owner()),
    }
    if terminating:
        metadata["deletionTimestamp"] = stamp(NOW)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "status": {
            "phase": "Running",
            "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": stamp(created)},
                {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": stamp(since)},
            ],
            "containerStatuses": [
                {"name": "gateway", "ready": ready, "restartCount": restarts, "state": state},
            ],
        },
    }


def deployment(
    *,
    replicas: int,
    ready: int,
    updated: int,
    current: int | None = None,
    generation: int = 1,
    observed_generation: int | None = None,
) -> dict[str, Any]:
    """A Deployment with the status the Deployment controller reports."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": NAME, "namespace": NAMESPACE, "generation": generation},
        "spec": {"replicas": replicas},
        "status": {
            "observedGeneration": generation if observed_generation is None else observed_generation,
            "replicas": replicas if current is None else current,
            "readyReplicas": ready,
            "updatedReplicas": updated,
        },
    }
