"""Least privilege, checked against what really happened: every request the operator made during the
end-to-end run (the API server's audit log) is granted by the ClusterRole, and every grant was used.

Named to run last in this folder: it reads the audit log the other tests filled.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tests.operator.e2e.conftest import OPERATOR_NAMESPACE, SERVICE_ACCOUNT, OperatorProcess
from tests.support import k8s

USER = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{SERVICE_ACCOUNT}"


def granted() -> set[tuple[str, str, str]]:
    return k8s.role_grants(k8s.ROOT / "operator/config/rbac/clusterrole.yaml")


def made(events: Iterable[dict[str, Any]]) -> tuple[set[tuple[str, str, str]], list[str]]:
    """(group, resource[/subresource], verb) of the operator's resource requests, and any it was refused."""
    calls, denied = set(), []
    for event in events:
        # Every stage: a watch that is still open has only reached ResponseStarted.
        if event.get("user", {}).get("username") != USER:
            continue
        ref = event.get("objectRef")
        if not ref:
            continue  # discovery and other non-resource URLs: open to every authenticated user
        resource = ref["resource"] + (f"/{ref['subresource']}" if ref.get("subresource") else "")
        call = (ref.get("apiGroup", ""), resource, event["verb"])
        calls.add(call)
        if event["verb"] == "patch" and event.get("responseStatus", {}).get("code") == 201:
            # A server-side apply that created the object: the API server also checked "create".
            calls.add((call[0], call[1], "create"))
        # Only the authorizer's refusals count (a 403 for a namespace being deleted is not about RBAC).
        if event.get("annotations", {}).get("authorization.k8s.io/decision") == "forbid":
            denied.append(f"{call} {event['requestURI']}")
    return calls, denied


def test_the_role_grants_exactly_what_the_operator_used(
    control_plane: k8s.ControlPlane, operator: OperatorProcess
) -> None:
    calls, denied = made(control_plane.audit_events())
    assert not denied, f"requests refused by RBAC: {denied}"
    rules = granted()
    # Events may go to either API group; kopf uses the core one.
    unused = rules - calls - {("events.k8s.io", "events", "create")}
    assert not unused, f"granted but never used in the end-to-end run: {sorted(unused)}"
    assert calls <= rules, f"used but not granted: {sorted(calls - rules)}"
