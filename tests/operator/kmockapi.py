"""kmock's Kubernetes emulator set up for the operator's kube layer: the kinds it reads and writes, and
the one thing kmock 0.8 does not emulate that the operator relies on.

kmock stores objects and serves get/list/patch/delete over real HTTP on loopback, so the official
``kubernetes`` client (the operator's ``kube.Kube``) talks to it unchanged. Its limits, and how the tests
live with them (see /work/shared/kubernetes-notes.md, A2):

- Server-side apply: kmock answers a PATCH of a missing object with 404, while the API server creates
  it. ``ApplyingEmulator`` creates the object first when the patch is an apply patch
  (``application/apply-patch+yaml``), then kmock merges it as for any patch. Field ownership, conflicts
  and list merging are not emulated (the end-to-end tests cover them on a real API server).
- labelSelector is ignored on lists: each test's namespace holds one ResgateCluster's pods only.
- No controllers: a Deployment gets no status and pods are never made; tests seed them.
- The Eviction subresource is not emulated: tests answer it with reactions (201, or 429 as the API
  server does when the PodDisruptionBudget forbids it).

Used by test_reconcile_kmock.py.
"""

from __future__ import annotations

from typing import Any

import aiohttp.web
import kmock
from kubernetes import client
from pyresgate_operator import spec
from pyresgate_operator.kube import Kube

APPLY_PATCH = "application/apply-patch+yaml"

#: Resources (group/version/plural) the operator uses, and their kinds.
RESOURCES = {
    f"{spec.GROUP}/{spec.VERSION}/{spec.PLURAL}": spec.KIND,
    "v1/configmaps": "ConfigMap",
    "v1/services": "Service",
    "v1/secrets": "Secret",
    "v1/pods": "Pod",
    "apps/v1/deployments": "Deployment",
    "policy/v1/poddisruptionbudgets": "PodDisruptionBudget",
    "autoscaling/v2/horizontalpodautoscalers": "HorizontalPodAutoscaler",
    "networking.k8s.io/v1/networkpolicies": "NetworkPolicy",
}
SERVICE_MONITORS = "monitoring.coreos.com/v1/servicemonitors"


class ApplyingEmulator(kmock.KubernetesEmulator):
    """kmock's emulator plus server-side apply's create-on-patch."""

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        content_type = request.headers.get("Content-Type", "")
        if (
            request.action == kmock.action.UPDATE
            and content_type.startswith(APPLY_PATCH)
            and request.subresource is None
        ):
            key = (request.resource, request.namespace, request.name)
            async with self._lock:
                if key not in self.objects or self.objects[key].deleted:
                    self.objects[key] = {}
        return await super()._handle(request)


def declare(emulator: kmock.KubernetesEmulator, *, service_monitors: bool = False) -> None:
    """Declare the operator's resources (and the ServiceMonitor CRD's, when installed)."""
    resources = dict(RESOURCES)
    if service_monitors:
        resources[SERVICE_MONITORS] = "ServiceMonitor"
    for name, kind in resources.items():
        subresources = {"status"} if kind == spec.KIND else set()
        emulator.resources[name] = kmock.ResourceInfo(kind=kind, namespaced=True, subresources=subresources)


def kube_for(emulator: kmock.KubernetesEmulator) -> Kube:
    """The operator's API layer on the official client, pointed at the emulator."""
    configuration = client.Configuration()
    configuration.host = str(emulator.url).rstrip("/")
    return Kube(client.ApiClient(configuration))


def stored(
    emulator: kmock.KubernetesEmulator, resource: str, namespace: str, name: str
) -> dict[str, Any] | None:
    """An object as the emulator holds it now, or None."""
    key = (kmock.resource(resource), namespace, name)  # objects' `in` does not parse strings
    if key not in emulator.objects or emulator.objects[key].deleted:
        return None
    return dict(emulator.objects[key])
