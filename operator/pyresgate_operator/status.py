"""The ResgateCluster's status, computed from what the operator observed. Pure.

Conditions follow the Kubernetes API conventions: ``type``, ``status`` ("True"/"False"/"Unknown"),
CamelCase ``reason``, ``message``, ``observedGeneration`` and a ``lastTransitionTime`` that only moves
when the status changes. Types:

- ``Ready``: every desired gateway runs the current configuration and is ready.
- ``Progressing``: a rollout or scaling is under way.
- ``Degraded``: something needs attention (invalid spec, missing reference, crash loop, stuck pod).
- ``NatsConnected``: gateways are ready only while connected to NATS, so at least one ready pod
  means the wiring works.

Called by ``reconcile``; the result is written to the status subresource.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pyresgate_operator import health


@dataclass(frozen=True)
class Observed:
    """What one reconcile pass saw and did."""

    generation: int
    desired_replicas: int
    selector: str
    deployment: Mapping[str, Any] | None
    pods: Sequence[Mapping[str, Any]]
    config_hash: str = ""
    nats_urls: Sequence[str] = ()
    problems: Sequence[health.PodProblem] = ()
    #: (reason, message) of a failure that stopped the reconcile (InvalidSpec, SecretNotFound…).
    blocked: tuple[str, str] | None = None
    pod_replacements: int = 0


def condition(
    kind: str,
    status: bool | None,
    reason: str,
    message: str,
    *,
    generation: int,
    now: str,
    previous: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    text = "Unknown" if status is None else ("True" if status else "False")
    before = next((item for item in previous if item.get("type") == kind), None)
    moved = before is None or before.get("status") != text
    return {
        "type": kind,
        "status": text,
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
        "lastTransitionTime": now if moved or not before else before.get("lastTransitionTime", now),
    }


def _deployment_counts(deployment: Mapping[str, Any] | None) -> tuple[int, int, int, bool]:
    """(replicas, ready, updated, rolled out) of the Deployment's status."""
    if deployment is None:
        return 0, 0, 0, False
    status = deployment.get("status") or {}
    desired = int(deployment.get("spec", {}).get("replicas", 0))
    replicas = int(status.get("replicas", 0))
    ready = int(status.get("readyReplicas", 0))
    updated = int(status.get("updatedReplicas", 0))
    current = status.get("observedGeneration", 0) >= deployment.get("metadata", {}).get("generation", 0)
    done = current and updated == desired and replicas == desired and ready == desired
    return replicas, ready, updated, done


def compute(observed: Observed, *, previous: Sequence[Mapping[str, Any]], now: datetime) -> dict[str, Any]:
    """The whole status object for ``observed``."""
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    replicas, ready, updated, rolled_out = _deployment_counts(observed.deployment)

    def cond(kind: str, status: bool | None, reason: str, message: str) -> dict[str, Any]:
        return condition(
            kind, status, reason, message, generation=observed.generation, now=stamp, previous=previous
        )

    ready_now = rolled_out and ready >= observed.desired_replicas and observed.blocked is None
    if observed.blocked:
        ready_cond = cond("Ready", False, observed.blocked[0], observed.blocked[1])
    elif ready_now:
        ready_cond = cond(
            "Ready", True, "AllReplicasReady", f"{ready}/{observed.desired_replicas} gateways ready"
        )
    else:
        ready_cond = cond(
            "Ready",
            False,
            "ReplicasNotReady",
            f"{ready}/{observed.desired_replicas} gateways ready, {updated} updated",
        )

    if observed.blocked:
        progressing = cond("Progressing", False, "Blocked", observed.blocked[1])
    elif rolled_out:
        progressing = cond(
            "Progressing", False, "RolloutComplete", "the gateways run the current configuration"
        )
    else:
        progressing = cond(
            "Progressing",
            True,
            "RollingOut",
            f"{updated}/{observed.desired_replicas} gateways updated, {ready} ready",
        )

    if observed.blocked:
        degraded = cond("Degraded", True, observed.blocked[0], observed.blocked[1])
    elif observed.problems:
        first = observed.problems[0]
        names = ", ".join(problem.pod for problem in observed.problems)
        degraded = cond("Degraded", True, first.reason, f"{names}: {first.message}")
    else:
        degraded = cond("Degraded", False, "AsExpected", "no gateway pod needs attention")

    pods_ready = sum(1 for pod in observed.pods if health.is_ready(pod))
    if not observed.pods:
        nats = cond("NatsConnected", None, "NoGateways", "no gateway pod is running")
    elif pods_ready:
        nats = cond("NatsConnected", True, "GatewaysConnected", f"{pods_ready} gateways connected to NATS")
    else:
        nats = cond(
            "NatsConnected",
            False,
            "NoGatewayConnected",
            f"none of {len(observed.pods)} gateways is ready: NATS ({', '.join(observed.nats_urls)}) may be unreachable",
        )

    return {
        "observedGeneration": observed.generation,
        "replicas": replicas,
        "readyReplicas": ready,
        "updatedReplicas": updated,
        "selector": observed.selector,
        "configHash": observed.config_hash,
        "natsUrl": ",".join(observed.nats_urls),
        "restarts": sum(health.restarts(pod) for pod in observed.pods),
        "podReplacements": observed.pod_replacements,
        "conditions": [ready_cond, progressing, degraded, nats],
    }
