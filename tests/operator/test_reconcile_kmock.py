"""One reconcile pass through the operator's real kube layer (the official ``kubernetes`` client, real HTTP
on loopback) against kmock's Kubernetes emulator: what is applied and how (server-side apply, one field
manager), how the status is written, what a missing Secret or Service does, how API errors surface, and
how an eviction refused by the disruption budget is handled.

The kube layer is blocking, so each pass runs in a thread while the emulator serves on the test's loop.
kmock's limits and the one addition (apply patches create objects) are in tests/operator/kmockapi.py.
"""

from __future__ import annotations

import asyncio
import contextvars
import types
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import kmock
import kopf
import pytest
from kopf._core.engines import posting
from pyresgate_operator import build, handlers, reconcile
from pyresgate_operator import spec as specs
from pyresgate_operator.kube import FIELD_MANAGER, ApiError, Kube

from tests.operator import samples
from tests.operator.kmockapi import APPLY_PATCH, ApplyingEmulator, declare, kube_for, stored
from tests.support.k8s import role_grants

pytestmark = pytest.mark.timeout(30)

NS, NAME = samples.NAMESPACE, samples.NAME
RGC = f"{specs.GROUP}/{specs.VERSION}/{specs.PLURAL}"
BASE = f"/apis/{specs.GROUP}/{specs.VERSION}/namespaces/{NS}/{specs.PLURAL}/{NAME}"


@pytest.fixture
async def emulator() -> AsyncIterator[ApplyingEmulator]:
    async with ApplyingEmulator() as fake, kmock.Server(fake):
        declare(fake)
        yield fake


@pytest.fixture
def kube(emulator: ApplyingEmulator) -> Kube:
    return kube_for(emulator)


def _seed(emulator: ApplyingEmulator, spec_body: dict[str, Any], **extra: Any) -> dict[str, Any]:
    body = samples.resgate_cluster(spec_body, **extra)
    emulator.objects[RGC, NS, NAME] = body
    return body


async def _pass(kube: Kube, body: dict[str, Any], *, now: Any = samples.NOW) -> reconcile.Outcome:
    return await asyncio.to_thread(
        reconcile.reconcile, kube, body, default_image=samples.DEFAULT_IMAGE, now=now
    )


def _requests(emulator: ApplyingEmulator, since: int = 0) -> list[kmock.Request]:
    return list(emulator)[since:]


def _writes(emulator: ApplyingEmulator, since: int = 0) -> list[kmock.Request]:
    return [request for request in _requests(emulator, since) if request.method.value != "GET"]


def _conditions(outcome: reconcile.Outcome) -> dict[str, tuple[str, str]]:
    return {cond["type"]: (cond["status"], cond["reason"]) for cond in outcome.status["conditions"]}


def _secret(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": NS}, "data": data}


# --- applying -------------------------------------------------------------------------------------


async def test_first_pass_applies_every_owned_object_with_server_side_apply(
    emulator: ApplyingEmulator, kube: Kube
) -> None:
    body = _seed(emulator, samples.minimal_spec())
    outcome = await _pass(kube, body)

    applies = _writes(emulator)
    desired = build.desired_objects(samples.owner(), samples.cluster(samples.minimal_spec()), secrets={})
    assert [request.data for request in applies] == desired.objects
    for request, obj in zip(applies, desired.objects, strict=True):
        assert request.method.value == "PATCH"
        assert request.headers["Content-Type"] == APPLY_PATCH
        assert request.params == {"fieldManager": FIELD_MANAGER, "force": "true"}
        assert request.name == obj["metadata"]["name"] and request.namespace == NS
    assert [request.url.path for request in applies] == [
        f"/api/v1/namespaces/{NS}/configmaps/{NAME}-config",
        f"/api/v1/namespaces/{NS}/services/{NAME}",
        f"/api/v1/namespaces/{NS}/services/{NAME}-admin",
        f"/apis/policy/v1/namespaces/{NS}/poddisruptionbudgets/{NAME}",
        f"/apis/apps/v1/namespaces/{NS}/deployments/{NAME}",
    ]
    deployment = stored(emulator, "apps/v1/deployments", NS, NAME)
    assert deployment is not None and deployment["spec"]["replicas"] == 2
    assert outcome.events == [
        reconcile.Event(
            "Normal", "Created", "created the gateways' ConfigMap, Deployment, PodDisruptionBudget, Service"
        )
    ]
    # Pods are listed by the cluster's selector (kmock ignores it; the request carries it).
    lists = [
        request for request in _requests(emulator) if request.url.path == f"/api/v1/namespaces/{NS}/pods"
    ]
    assert lists and {request.params["labelSelector"] for request in lists} == {
        build.selector_string(samples.owner())
    }
    assert outcome.status["configHash"] == desired.config_hash
    assert _conditions(outcome)["Ready"] == ("False", "ReplicasNotReady")


async def test_a_second_pass_applies_the_same_objects_and_reports_no_change(
    emulator: ApplyingEmulator, kube: Kube
) -> None:
    body = _seed(emulator, samples.minimal_spec())
    await _pass(kube, body)
    first = [request.data for request in _writes(emulator)]
    seen = len(_requests(emulator))
    outcome = await _pass(kube, body)
    assert [request.data for request in _writes(emulator, seen)] == first
    assert outcome.events == []


async def test_changes_roll_restart_or_scale_the_gateways_with_an_event_each(
    emulator: ApplyingEmulator, kube: Kube
) -> None:
    body = _seed(emulator, samples.minimal_spec())
    await _pass(kube, body)

    changed = _seed(emulator, samples.minimal_spec(gateway={"requestTimeout": 9000}), generation=2)
    outcome = await _pass(kube, changed)
    assert [(event.reason, event.type) for event in outcome.events] == [("RollingUpdate", "Normal")]
    config = stored(emulator, "v1/configmaps", NS, f"{NAME}-config")
    assert config is not None and '"requestTimeout": 9000' in config["data"][specs.CONFIG_FILE]

    restarted = _seed(
        emulator,
        samples.minimal_spec(gateway={"requestTimeout": 9000}),
        generation=2,
        annotations={build.RESTARTED_AT_ANNOTATION: "2026-12-01T12:05:00Z"},
    )
    outcome = await _pass(kube, restarted)
    assert [event.reason for event in outcome.events] == ["RollingRestart"]
    deployment = stored(emulator, "apps/v1/deployments", NS, NAME)
    assert deployment is not None
    assert deployment["spec"]["template"]["metadata"]["annotations"][build.RESTARTED_AT_ANNOTATION] == (
        "2026-12-01T12:05:00Z"
    )

    scaled = _seed(
        emulator,
        samples.minimal_spec(gateway={"requestTimeout": 9000}, replicas=5),
        generation=3,
        annotations={build.RESTARTED_AT_ANNOTATION: "2026-12-01T12:05:00Z"},
    )
    outcome = await _pass(kube, scaled)
    assert outcome.events == [reconcile.Event("Normal", "Scaled", "scaled the gateways from 2 to 5")]


async def test_objects_no_longer_asked_for_are_deleted_but_only_when_owned(
    emulator: ApplyingEmulator, kube: Kube
) -> None:
    with_policy = samples.minimal_spec(networkPolicy={"enabled": True})
    await _pass(kube, _seed(emulator, with_policy))
    assert stored(emulator, "networking.k8s.io/v1/networkpolicies", NS, NAME) is not None
    # Someone else's HPA of the same name stays.
    emulator.objects["autoscaling/v2/horizontalpodautoscalers", NS, NAME] = {
        "metadata": {"name": NAME, "namespace": NS, "ownerReferences": [{"uid": "someone-else"}]}
    }
    seen = len(_requests(emulator))
    outcome = await _pass(kube, _seed(emulator, samples.minimal_spec(), generation=2))
    deletes = [request for request in _writes(emulator, seen) if request.method.value == "DELETE"]
    assert [request.url.path for request in deletes] == [
        f"/apis/networking.k8s.io/v1/namespaces/{NS}/networkpolicies/{NAME}"
    ]
    assert stored(emulator, "networking.k8s.io/v1/networkpolicies", NS, NAME) is None
    assert stored(emulator, "autoscaling/v2/horizontalpodautoscalers", NS, NAME) is not None
    assert (
        reconcile.Event("Normal", "Deleted", f"deleted NetworkPolicy {NAME}: no longer asked for")
        in outcome.events
    )


async def test_service_monitor_is_applied_only_where_its_crd_is_served(
    emulator: ApplyingEmulator, kube: Kube
) -> None:
    wanted = samples.minimal_spec(metrics={"serviceMonitor": {"enabled": True}})
    outcome = await _pass(kube, _seed(emulator, wanted))
    assert "ServiceMonitor" not in {request.data.get("kind") for request in _writes(emulator)}
    assert (
        reconcile.Event(
            "Warning",
            "ServiceMonitorUnavailable",
            "spec.metrics.serviceMonitor is enabled but the ServiceMonitor CRD is not installed",
        )
        in outcome.events
    )
    declare(emulator, service_monitors=True)
    seen = len(_requests(emulator))
    await _pass(kube, _seed(emulator, wanted))
    kinds = [request.data["kind"] for request in _writes(emulator, seen)]
    assert kinds[-1] == "ServiceMonitor"
    assert stored(emulator, "monitoring.coreos.com/v1/servicemonitors", NS, NAME) is not None


# --- references -----------------------------------------------------------------------------------

WITH_CREDS = samples.minimal_spec(
    nats={"urls": [samples.NATS_URL], "credentialsSecret": {"name": "nats-creds"}}
)


async def test_missing_secret_blocks_with_a_clear_condition_and_applies_nothing(
    emulator: ApplyingEmulator, kube: Kube
) -> None:
    outcome = await _pass(kube, _seed(emulator, WITH_CREDS))
    message = f"Secret {NS}/nats-creds (named in spec.nats) does not exist"
    assert _conditions(outcome) == {
        "Ready": ("False", "SecretNotFound"),
        "Progressing": ("False", "Blocked"),
        "Degraded": ("True", "SecretNotFound"),
        "NatsConnected": ("Unknown", "NoGateways"),
    }
    assert all(cond["message"] == message for cond in outcome.status["conditions"][:3])
    assert _writes(emulator) == []
    assert stored(emulator, "apps/v1/deployments", NS, NAME) is None
    assert outcome.events == [reconcile.Event("Warning", "SecretNotFound", message)]


async def test_secret_without_the_key_blocks_too(emulator: ApplyingEmulator, kube: Kube) -> None:
    emulator.objects["v1/secrets", NS, "nats-creds"] = _secret("nats-creds", {"other.creds": "eA=="})
    outcome = await _pass(kube, _seed(emulator, WITH_CREDS))
    assert _conditions(outcome)["Degraded"] == ("True", "SecretKeyNotFound")
    assert outcome.status["conditions"][2]["message"] == f"Secret {NS}/nats-creds has no key user.creds"
    assert _writes(emulator) == []


async def test_once_the_secret_exists_the_gateways_are_created_and_its_content_rolls_them(
    emulator: ApplyingEmulator, kube: Kube
) -> None:
    body = _seed(emulator, WITH_CREDS)
    blocked = await _pass(kube, body)
    emulator.objects["v1/secrets", NS, "nats-creds"] = _secret("nats-creds", {"user.creds": "Zmlyc3Q="})
    body["status"] = blocked.status
    created = await _pass(kube, body)
    assert _conditions(created)["Degraded"] == ("False", "AsExpected")
    assert reconcile.Event("Normal", "Recovered", "no gateway pod needs attention") in created.events
    deployment = stored(emulator, "apps/v1/deployments", NS, NAME)
    assert deployment is not None
    first_hash = deployment["spec"]["template"]["metadata"]["annotations"][build.CONFIG_HASH_ANNOTATION]
    assert first_hash == created.status["configHash"]
    # The data themselves never leave the operator: only a digest enters the hash.
    assert "Zmlyc3Q=" not in str([request.data for request in _writes(emulator)])

    emulator.objects["v1/secrets", NS, "nats-creds"] = _secret("nats-creds", {"user.creds": "c2Vjb25k"})
    body["status"] = created.status
    rotated = await _pass(kube, body)
    assert rotated.status["configHash"] != first_hash
    assert [event.reason for event in rotated.events] == ["RollingUpdate"]


async def test_nats_service_ref_is_resolved_or_reported_missing(
    emulator: ApplyingEmulator, kube: Kube
) -> None:
    spec_body = {"nats": {"serviceRef": {"name": "nats", "namespace": "messaging"}}}
    missing = await _pass(kube, _seed(emulator, spec_body))
    assert _conditions(missing)["Degraded"] == ("True", "NatsServiceNotFound")
    assert missing.status["conditions"][2]["message"] == (
        "NATS Service messaging/nats (spec.nats.serviceRef) does not exist"
    )
    emulator.objects["v1/services", "messaging", "nats"] = {
        "metadata": {"name": "nats", "namespace": "messaging"},
        "spec": {"ports": [{"name": "monitor", "port": 8222}, {"name": "client", "port": 4333}]},
    }
    found = await _pass(kube, _seed(emulator, spec_body))
    assert found.status["natsUrl"] == "nats://nats.messaging.svc:4333"
    config = stored(emulator, "v1/configmaps", NS, f"{NAME}-config")
    assert (
        config is not None
        and '"natsUrl": "nats://nats.messaging.svc:4333"' in config["data"][specs.CONFIG_FILE]
    )


async def test_invalid_spec_is_reported_and_nothing_is_applied(
    emulator: ApplyingEmulator, kube: Kube
) -> None:
    outcome = await _pass(kube, _seed(emulator, samples.minimal_spec(gateway={"headerAuth": "nodot"})))
    assert _conditions(outcome)["Degraded"] == ("True", "InvalidSpec")
    assert outcome.status["conditions"][2]["message"].startswith("gateway: invalid headerAuth setting")
    assert _writes(emulator) == []


# --- API errors -----------------------------------------------------------------------------------


def _status_error(code: int, message: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Status", "status": "Failure", "code": code, "message": message}


async def test_api_server_error_surfaces_as_api_error_with_its_message(
    emulator: ApplyingEmulator, kube: Kube
) -> None:
    (
        emulator[f"get /apis/apps/v1/namespaces/{NS}/deployments/{NAME}"]
        << 500
        << _status_error(500, "etcdserver: leader changed")
    )
    with pytest.raises(ApiError) as caught:
        await _pass(kube, _seed(emulator, samples.minimal_spec()))
    assert (caught.value.status, caught.value.message) == (500, "etcdserver: leader changed")


async def test_an_apply_refused_as_invalid_is_an_invalid_spec_and_stops_the_pass(
    emulator: ApplyingEmulator, kube: Kube
) -> None:
    (
        emulator[f"patch /apis/policy/v1/namespaces/{NS}/poddisruptionbudgets/{NAME}"]
        << 422
        << _status_error(422, 'PodDisruptionBudget.policy "edge" is invalid')
    )
    outcome = await _pass(kube, _seed(emulator, samples.minimal_spec()))
    degraded = next(cond for cond in outcome.status["conditions"] if cond["type"] == "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "InvalidSpec")
    assert (
        'PodDisruptionBudget edge refused: PodDisruptionBudget.policy "edge" is invalid'
        in degraded["message"]
    )
    assert "Deployment" not in {request.data.get("kind") for request in _writes(emulator) if request.data}


async def test_a_failed_apply_stops_the_pass(emulator: ApplyingEmulator, kube: Kube) -> None:
    (
        emulator[f"patch /apis/policy/v1/namespaces/{NS}/poddisruptionbudgets/{NAME}"]
        << 500
        << _status_error(500, "etcdserver: request timed out")
    )
    with pytest.raises(ApiError) as caught:
        await _pass(kube, _seed(emulator, samples.minimal_spec()))
    assert caught.value.status == 500
    assert "Deployment" not in {request.data.get("kind") for request in _writes(emulator) if request.data}


# --- unhealthy pods -------------------------------------------------------------------------------


def _seed_pods(emulator: ApplyingEmulator, *pods: dict[str, Any]) -> None:
    for pod in pods:
        emulator.objects["v1/pods", NS, pod["metadata"]["name"]] = pod


def _evictions(emulator: ApplyingEmulator) -> list[str]:
    return [request.url.path for request in _requests(emulator) if request.url.path.endswith("/eviction")]


async def test_eviction_refused_by_the_disruption_budget_counts_no_replacement(
    emulator: ApplyingEmulator, kube: Kube
) -> None:
    _seed_pods(emulator, samples.pod("gw-a"), samples.pod("gw-b", ready=False, crash_loop=True, restarts=5))
    (
        emulator[f"post /api/v1/namespaces/{NS}/pods/gw-b/eviction"]
        << 429
        << _status_error(429, "Cannot evict pod as it would violate the pod's disruption budget.")
    )
    outcome = await _pass(kube, _seed(emulator, samples.minimal_spec()))
    assert _evictions(emulator) == [f"/api/v1/namespaces/{NS}/pods/gw-b/eviction"]
    assert outcome.status["podReplacements"] == 0
    assert "ReplacedPod" not in {event.reason for event in outcome.events}
    assert _conditions(outcome)["Degraded"] == ("True", "CrashLoopBackOff")
    assert outcome.status["restarts"] == 5


def _evict_into_terminating(
    emulator: ApplyingEmulator, pod: str
) -> Callable[[kmock.Request], dict[str, Any]]:
    def evict(request: kmock.Request) -> dict[str, Any]:
        emulator.objects["v1/pods", NS, pod].patch(
            {"metadata": {"deletionTimestamp": samples.stamp(samples.NOW)}}
        )
        return {"apiVersion": "v1", "kind": "Status", "status": "Success", "code": 201}

    return evict


async def test_a_crash_looping_pod_is_evicted_once_and_counted(
    emulator: ApplyingEmulator, kube: Kube
) -> None:
    stuck_since = samples.NOW - timedelta(minutes=30)
    _seed_pods(
        emulator,
        samples.pod("gw-a"),
        samples.pod("gw-b", ready=False, crash_loop=True, restarts=5),
        samples.pod("gw-c", ready=False, since=stuck_since),
    )
    (
        emulator[f"post /api/v1/namespaces/{NS}/pods/gw-b/eviction"]
        << 201
        << _evict_into_terminating(emulator, "gw-b")
    )
    body = _seed(emulator, samples.minimal_spec(), status={"podReplacements": 3})
    outcome = await _pass(kube, body)
    assert outcome.status["podReplacements"] == 4
    assert (
        reconcile.Event(
            "Warning",
            "ReplacedPod",
            "evicted gw-b (CrashLoopBackOff: container gateway is in CrashLoopBackOff after 5 restarts)",
        )
        in outcome.events
    )
    # gw-b terminates: the stuck gw-c waits for the next pass after it is gone.
    body["status"] = outcome.status
    again = await _pass(kube, body)
    assert again.status["podReplacements"] == 4
    assert _evictions(emulator) == [f"/api/v1/namespaces/{NS}/pods/gw-b/eviction"]
    assert _conditions(again)["Degraded"] == ("True", "Unready")


async def test_an_eviction_of_a_pod_already_gone_is_not_counted(
    emulator: ApplyingEmulator, kube: Kube
) -> None:
    _seed_pods(emulator, samples.pod("gw-a"), samples.pod("gw-b", ready=False, crash_loop=True))
    # kmock answers the unknown eviction URL with 404, as the API server does for a deleted pod.
    outcome = await _pass(kube, _seed(emulator, samples.minimal_spec()))
    assert _evictions(emulator) == [f"/api/v1/namespaces/{NS}/pods/gw-b/eviction"]
    assert outcome.status["podReplacements"] == 0


# --- the handlers' pass: status written, Events posted --------------------------------------------


class KopfHandlerContext:
    """What kopf gives a handler: its settings and event queue (kopf.event needs them), and the client."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.queue: asyncio.Queue[posting.K8sEvent] = asyncio.Queue()
        self.context = contextvars.copy_context()
        self.context.run(posting.settings_var.set, kopf.OperatorSettings())
        self.context.run(posting.event_queue_var.set, self.queue)
        self.context.run(posting.event_queue_loop_var.set, loop)

    async def run_pass(self, body: dict[str, Any]) -> None:
        memo = types.SimpleNamespace(gateway_image=samples.DEFAULT_IMAGE)
        await asyncio.to_thread(self.context.run, handlers.run_pass, body, memo)

    async def posted(self) -> list[tuple[str, str]]:
        await asyncio.sleep(0.05)  # events come back through call_soon_threadsafe
        found = []
        while not self.queue.empty():
            event = self.queue.get_nowait()
            assert event.ref["name"] == NAME and event.ref["uid"] == samples.UID
            found.append((event.type, event.reason))
        return found


@pytest.fixture
async def kopf_context(monkeypatch: pytest.MonkeyPatch, kube: Kube) -> KopfHandlerContext:
    monkeypatch.setattr(handlers, "_kube", kube)
    return KopfHandlerContext(asyncio.get_running_loop())


async def test_status_is_written_to_the_status_subresource_once_and_events_are_posted(
    emulator: ApplyingEmulator, kopf_context: KopfHandlerContext
) -> None:
    body = _seed(emulator, samples.minimal_spec())
    await kopf_context.run_pass(body)
    status_writes = [request for request in _writes(emulator) if request.url.path == f"{BASE}/status"]
    assert len(status_writes) == 1
    assert status_writes[0].method.value == "PATCH"
    assert status_writes[0].headers["Content-Type"] == "application/merge-patch+json"
    assert status_writes[0].params == {"fieldManager": FIELD_MANAGER}
    written = stored(emulator, RGC, NS, NAME)
    assert written is not None
    assert written["status"]["selector"] == build.selector_string(samples.owner())
    assert {cond["type"] for cond in written["status"]["conditions"]} == {
        "Ready",
        "Progressing",
        "Degraded",
        "NatsConnected",
    }
    assert await kopf_context.posted() == [("Normal", "Created")]
    # Nothing changed: the next pass reads the written status and writes none.
    seen = len(_requests(emulator))
    await kopf_context.run_pass(body)
    assert [request for request in _writes(emulator, seen) if request.url.path.endswith("/status")] == []
    assert await kopf_context.posted() == []


async def test_an_api_error_becomes_a_warning_and_a_retry_with_backoff(
    emulator: ApplyingEmulator, kopf_context: KopfHandlerContext
) -> None:
    (
        emulator[f"patch /api/v1/namespaces/{NS}/configmaps/{NAME}-config"]
        << 503
        << _status_error(503, "unavailable")
    )
    body = _seed(emulator, samples.minimal_spec())
    with pytest.raises(kopf.TemporaryError) as caught:
        await kopf_context.run_pass(body)
    assert caught.value.delay == 5
    assert await kopf_context.posted() == [("Warning", "ApiError")]
    assert [request for request in _writes(emulator) if request.url.path.endswith("/status")] == []


async def test_a_resource_deleted_meanwhile_is_left_alone(
    emulator: ApplyingEmulator, kopf_context: KopfHandlerContext
) -> None:
    body = samples.resgate_cluster(samples.minimal_spec())  # not in the emulator: deleted
    await kopf_context.run_pass(body)
    assert _writes(emulator) == []


# --- every request is one the operator's ClusterRole grants ----------------------------------------

CLUSTER_ROLE = samples.ROOT / "operator" / "config" / "rbac" / "clusterrole.yaml"
FULL = samples.example("full")["spec"]


def _granted() -> set[tuple[str, str, str]]:
    return role_grants(CLUSTER_ROLE)


def _needed(request: kmock.Request) -> set[tuple[str, str, str]]:
    """The RBAC (group, resource, verb) a request needs, as the API server's authorizer reads it."""
    assert request.resource is not None
    resource = request.resource.plural + (f"/{request.subresource}" if request.subresource else "")
    method = request.method.value
    if method == "GET":
        verb = "watch" if request.params.get("watch") == "true" else "get" if request.name else "list"
    else:
        verb = {"PATCH": "patch", "DELETE": "delete", "POST": "create", "PUT": "update"}[method]
    needed = {(request.resource.group, resource, verb)}
    if request.headers.get("Content-Type") == APPLY_PATCH:
        needed.add((request.resource.group, resource, "create"))  # an apply may create the object
    return needed


async def test_the_full_example_applies_every_kind_and_every_request_is_granted_by_the_cluster_role(
    emulator: ApplyingEmulator, kopf_context: KopfHandlerContext
) -> None:
    declare(emulator, service_monitors=True)
    emulator.objects["v1/secrets", NS, "nats-creds"] = _secret("nats-creds", {"user.creds": "eA=="})
    emulator.objects["v1/secrets", NS, "nats-client-tls"] = _secret(
        "nats-client-tls", {"tls.crt": "eA==", "tls.key": "eA==", "ca.crt": "eA=="}
    )
    _seed_pods(emulator, samples.pod("gw-a"), samples.pod("gw-b", ready=False, crash_loop=True))
    (
        emulator[f"post /api/v1/namespaces/{NS}/pods/gw-b/eviction"]
        << 201
        << _evict_into_terminating(emulator, "gw-b")
    )
    await kopf_context.run_pass(_seed(emulator, FULL))
    applied = {
        request.data["kind"]
        for request in _writes(emulator)
        if request.method.value == "PATCH" and request.data.get("kind")
    }
    assert applied == {
        "ConfigMap",
        "Service",
        "PodDisruptionBudget",
        "Deployment",
        "HorizontalPodAutoscaler",
        "NetworkPolicy",
        "ServiceMonitor",
    }
    # Then with the optional objects switched off (deletes), and with a NATS Service to read.
    emulator.objects["v1/services", "messaging", "nats"] = {
        "metadata": {"name": "nats", "namespace": "messaging"},
        "spec": {"ports": [{"name": "client", "port": 4222}]},
    }
    await kopf_context.run_pass(
        _seed(emulator, {"nats": {"serviceRef": {"name": "nats", "namespace": "messaging"}}}, generation=2)
    )
    assert any(request.method.value == "DELETE" for request in _requests(emulator))

    granted = _granted()
    requests = [request for request in _requests(emulator) if request.resource and request.resource.plural]
    missing = sorted({need for request in requests for need in _needed(request)} - granted)
    assert missing == []
    verbs = {verb for request in requests for _, _, verb in _needed(request)}
    assert verbs == {"get", "list", "patch", "create", "delete"}


@pytest.mark.parametrize(
    "name", ["1edge", "edge.v1", "e" * 58], ids=["leading-digit", "dot", "58-characters"]
)
async def test_a_name_that_cannot_name_the_services_is_an_invalid_spec_and_nothing_is_applied(
    emulator: ApplyingEmulator, kube: Kube, name: str
) -> None:
    """Valid for a custom resource (a DNS subdomain), refused by the API server as a Service name."""
    body = samples.resgate_cluster(samples.minimal_spec())
    body["metadata"]["name"] = name
    emulator.objects[RGC, NS, name] = body
    outcome = await _pass(kube, body)
    assert _conditions(outcome)["Degraded"] == ("True", "InvalidSpec")
    assert "it names the gateways' Services" in outcome.status["conditions"][2]["message"]
    assert _writes(emulator) == []
