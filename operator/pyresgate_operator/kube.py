"""The operator's Kubernetes API calls, on the official ``kubernetes`` client, with plain dicts.

Every object the operator owns goes through ``apply`` (server-side apply, one field manager,
``force`` so the operator keeps owning its fields); the rest are small reads, the eviction of an
unhealthy pod, and status writes. Paths come from one table of the kinds involved, so the request
each method makes is plain to see (and to match against the RBAC role). Errors become ``ApiError``
with the API server's message. Called by ``reconcile``; blocking (kopf runs sync handlers in threads).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from kubernetes import client, config

from pyresgate_operator import spec as specs

FIELD_MANAGER = "pyresgate-operator"

#: kind -> (API prefix, plural) of every kind the operator reads or writes.
_KINDS: dict[str, tuple[str, str]] = {
    "ConfigMap": ("/api/v1", "configmaps"),
    "Service": ("/api/v1", "services"),
    "Secret": ("/api/v1", "secrets"),
    "Pod": ("/api/v1", "pods"),
    "Deployment": ("/apis/apps/v1", "deployments"),
    "PodDisruptionBudget": ("/apis/policy/v1", "poddisruptionbudgets"),
    "HorizontalPodAutoscaler": ("/apis/autoscaling/v2", "horizontalpodautoscalers"),
    "NetworkPolicy": ("/apis/networking.k8s.io/v1", "networkpolicies"),
    "ServiceMonitor": ("/apis/monitoring.coreos.com/v1", "servicemonitors"),
    specs.KIND: (f"/apis/{specs.GROUP}/{specs.VERSION}", specs.PLURAL),
}


class ApiError(Exception):
    """A failed API request: HTTP status and the server's message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


def load_client() -> client.ApiClient:
    """An API client configured as kubectl would be: in-cluster, else KUBECONFIG / ~/.kube/config."""
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]
    return client.ApiClient()


def path(kind: str, namespace: str, name: str | None = None, subresource: str | None = None) -> str:
    prefix, plural = _KINDS[kind]
    out = f"{prefix}/namespaces/{namespace}/{plural}"
    if name is not None:
        out += f"/{name}"
    if subresource is not None:
        out += f"/{subresource}"
    return out


class Kube:
    """Thin request layer: JSON in, JSON out."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api

    def request(
        self,
        method: str,
        url: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> Any:
        _, full_url, headers, _, _ = self.api.param_serialize(
            method,
            url,
            query_params=list((query or {}).items()),
            header_params={"Accept": "application/json", "Content-Type": content_type},
            auth_settings=["BearerToken"],
        )
        # The client serialises dict bodies as JSON, which is valid for apply (YAML) patches too.
        response = self.api.call_api(method, full_url, header_params=headers, body=body, _request_timeout=30)
        response.read()  # type: ignore[no-untyped-call]
        raw = response.data or b""
        if not 200 <= response.status < 300:
            raise ApiError(response.status, _message(raw))
        return json.loads(raw) if raw else None

    # --- objects -------------------------------------------------------------------------------

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        try:
            return self.request("GET", path(kind, namespace, name))  # type: ignore[no-any-return]
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def apply(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Server-side apply of an owned object (field manager ``pyresgate-operator``)."""
        meta = obj["metadata"]
        return self.request(  # type: ignore[no-any-return]
            "PATCH",
            path(obj["kind"], meta["namespace"], meta["name"]),
            query={"fieldManager": FIELD_MANAGER, "force": "true"},
            body=obj,
            content_type="application/apply-patch+yaml",
        )

    def delete(self, kind: str, namespace: str, name: str) -> bool:
        """Delete an object; False when it was already gone."""
        try:
            self.request("DELETE", path(kind, namespace, name))
        except ApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        found = self.request("GET", path("Pod", namespace), query={"labelSelector": selector})
        return list(found.get("items") or [])

    def evict(self, namespace: str, pod: str) -> None:
        """Evict a pod through the Eviction API, which refuses (429) what the PodDisruptionBudget forbids."""
        body = {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": pod, "namespace": namespace},
        }
        self.request("POST", path("Pod", namespace, pod, "eviction"), body=body)

    def patch_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        self.request(
            "PATCH",
            path(specs.KIND, namespace, name, "status"),
            query={"fieldManager": FIELD_MANAGER},
            body={"status": status},
            content_type="application/merge-patch+json",
        )

    def api_group_served(self, group_version: str) -> bool:
        """Whether the API server serves ``group/version`` (e.g. monitoring.coreos.com/v1)."""
        try:
            self.request("GET", f"/apis/{group_version}")
        except ApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True


def _message(raw: bytes) -> str:
    try:
        return str(json.loads(raw).get("message") or raw.decode(errors="replace"))
    except (ValueError, AttributeError):
        return raw.decode(errors="replace")[:500]
