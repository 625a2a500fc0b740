"""Which gateway pods are unhealthy, and which one (at most) to replace now. Pure.

A pod is unhealthy when a container is in CrashLoopBackOff, or when it has been unready for longer
than ``spec.unhealthyPodTimeout`` while another gateway is ready (gateways are unready while NATS is
lost; when none is ready the cause is NATS, not the pod, and replacing pods would not help).
Pods are replaced one at a time, never while another is already terminating; the eviction API
enforces the disruption budget on top of that. Called by ``reconcile``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

CRASH_LOOP = "CrashLoopBackOff"
STUCK_UNREADY = "Unready"


@dataclass(frozen=True)
class PodProblem:
    pod: str
    reason: str  # CRASH_LOOP or STUCK_UNREADY
    message: str


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def is_ready(pod: Mapping[str, Any]) -> bool:
    return _condition(pod, "Ready").get("status") == "True"


def is_terminating(pod: Mapping[str, Any]) -> bool:
    return bool(pod.get("metadata", {}).get("deletionTimestamp"))


def restarts(pod: Mapping[str, Any]) -> int:
    return sum(
        int(status.get("restartCount", 0)) for status in pod.get("status", {}).get("containerStatuses") or []
    )


def _condition(pod: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    for condition in pod.get("status", {}).get("conditions") or []:
        if condition.get("type") == kind:
            return condition  # type: ignore[no-any-return]
    return {}


def _crash_looping(pod: Mapping[str, Any]) -> str | None:
    for status in pod.get("status", {}).get("containerStatuses") or []:
        waiting = (status.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") == CRASH_LOOP:
            return f"container {status.get('name')} is in CrashLoopBackOff after {status.get('restartCount', 0)} restarts"
    return None


def problems(pods: Sequence[Mapping[str, Any]], *, now: datetime, unready_timeout: int) -> list[PodProblem]:
    """Unhealthy pods among ``pods`` (terminating ones ignored), in the order the pods were listed."""
    live = [pod for pod in pods if not is_terminating(pod)]
    any_ready = any(is_ready(pod) for pod in live)
    found: list[PodProblem] = []
    for pod in live:
        name = pod["metadata"]["name"]
        crash = _crash_looping(pod)
        if crash:
            found.append(PodProblem(name, CRASH_LOOP, crash))
            continue
        if is_ready(pod) or not any_ready:
            continue
        since = _condition(pod, "Ready").get("lastTransitionTime") or pod["metadata"].get("creationTimestamp")
        if since is None:
            continue
        unready = (now - parse_time(since)).total_seconds()
        if unready > unready_timeout:
            found.append(
                PodProblem(name, STUCK_UNREADY, f"unready for {int(unready)}s while other gateways are ready")
            )
    return found


def pod_to_replace(pods: Sequence[Mapping[str, Any]], found: Sequence[PodProblem]) -> PodProblem | None:
    """The one pod to replace now, or None while another gateway pod is still terminating."""
    if not found or any(is_terminating(pod) for pod in pods):
        return None
    return found[0]
