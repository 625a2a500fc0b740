"""One level-based reconcile pass of a ResgateCluster: observe, apply the desired objects, replace one
unhealthy pod if the budget allows, and write the status.

Every kopf handler ends here, whatever woke it (a change, a resume, the periodic resync, a pod event),
so there is a single path from the custom resource to the cluster. A pass is idempotent: applying
the same spec twice changes nothing, and a restarted operator converges without duplicates because
objects are applied by name with server-side apply. Returns the Events to post (the handlers post
them through kopf) so that this module stays free of kopf.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pyresgate_operator import build, health, metrics, status
from pyresgate_operator import spec as specs
from pyresgate_operator.kube import ApiError, Kube

log = logging.getLogger(__name__)

#: Keys a NATS TLS Secret must hold (cert-manager's names).
TLS_KEYS = ("tls.crt", "tls.key", "ca.crt")


@dataclass(frozen=True)
class Event:
    type: str  # Normal or Warning
    reason: str
    message: str


@dataclass
class Outcome:
    status: dict[str, Any]
    events: list[Event] = field(default_factory=list)


class Blocked(Exception):
    """A reference the spec names cannot be resolved; ``reason`` goes to the conditions."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def reconcile(kube: Kube, body: Mapping[str, Any], *, default_image: str, now: datetime) -> Outcome:
    """Bring the cluster in line with ``body`` (a ResgateCluster) and compute its status."""
    started = time.monotonic()
    owner = build.Owner.from_body(body)
    previous_status = body.get("status") or {}
    previous = previous_status.get("conditions") or []
    events: list[Event] = []
    blocked: tuple[str, str] | None = None
    desired: build.Desired | None = None
    applied: dict[str, Any] | None = None
    replicas = int(body.get("spec", {}).get("replicas", specs.DEFAULT_REPLICAS))
    replacements = int(previous_status.get("podReplacements", 0))
    try:
        specs.check_name(owner.name)
        cluster = specs.parse(body.get("spec") or {}, namespace=owner.namespace, default_image=default_image)
        replicas = cluster.replicas
        secrets, nats_port = _resolve_references(kube, owner, cluster)
        desired = build.desired_objects(owner, cluster, secrets=secrets, nats_service_port=nats_port)
        before = kube.get("Deployment", owner.namespace, owner.name)
        applied, apply_events = _apply(kube, owner, desired, before, monitor_wanted=cluster.service_monitor)
        events += apply_events
        pods = kube.list_pods(owner.namespace, build.selector_string(owner))
        problems = health.problems(pods, now=now, unready_timeout=cluster.unhealthy_pod_timeout)
        replaced = _replace_one(kube, owner.namespace, pods, problems)
        if replaced:
            replacements += 1
            events.append(replaced)
    except specs.InvalidSpec as exc:
        blocked = ("InvalidSpec", str(exc))
    except Blocked as exc:
        blocked = (exc.reason, exc.message)
    if blocked:
        pods = kube.list_pods(owner.namespace, build.selector_string(owner))
        problems = []
    # The apply answered with the Deployment as stored (status included); a blocked pass applied nothing.
    deployment = applied if applied is not None else kube.get("Deployment", owner.namespace, owner.name)
    observed = status.Observed(
        generation=int(body["metadata"].get("generation", 0)),
        desired_replicas=replicas,
        selector=build.selector_string(owner),
        deployment=deployment,
        pods=pods,
        config_hash=desired.config_hash if desired else previous_status.get("configHash", ""),
        nats_urls=desired.nats_urls
        if desired
        else [url for url in str(previous_status.get("natsUrl", "")).split(",") if url],
        problems=problems,
        blocked=blocked,
        pod_replacements=replacements,
    )
    new_status = status.compute(observed, previous=previous, now=now)
    events += transition_events(previous, new_status["conditions"])
    outcome_label = "invalid" if blocked else "ok"
    metrics.RECONCILES.labels(outcome_label).inc()
    metrics.RECONCILE_SECONDS.observe(time.monotonic() - started)
    return Outcome(status=new_status, events=events)


def _resolve_references(
    kube: Kube, owner: build.Owner, cluster: specs.ClusterSpec
) -> tuple[dict[str, Any], int | None]:
    """Check the Secrets and the NATS Service the spec names; hashes of the Secrets' data for the config hash."""
    secrets: dict[str, Any] = {}
    wanted: list[tuple[str, Sequence[str]]] = []
    if cluster.nats.credentials:
        wanted.append((cluster.nats.credentials.name, (cluster.nats.credentials.key,)))
    if cluster.nats.tls_secret:
        wanted.append((cluster.nats.tls_secret, TLS_KEYS))
    for name, keys in wanted:
        secret = kube.get("Secret", owner.namespace, name)
        if secret is None:
            raise Blocked(
                "SecretNotFound", f"Secret {owner.namespace}/{name} (named in spec.nats) does not exist"
            )
        data = secret.get("data") or {}
        missing = [key for key in keys if key not in data]
        if missing:
            raise Blocked(
                "SecretKeyNotFound", f"Secret {owner.namespace}/{name} has no key {', '.join(missing)}"
            )
        # Only digests enter the hash and the operator's memory of the pass, never the secret itself.
        secrets[name] = {key: hashlib.sha256(str(data[key]).encode()).hexdigest() for key in keys}
    port = None
    ref = cluster.nats.service_ref
    if ref is not None:
        service = kube.get("Service", ref.namespace, ref.name)
        if service is None:
            raise Blocked(
                "NatsServiceNotFound",
                f"NATS Service {ref.namespace}/{ref.name} (spec.nats.serviceRef) does not exist",
            )
        port = _client_port(service, ref)
    return secrets, port


def _client_port(service: Mapping[str, Any], ref: specs.ServiceRef) -> int:
    ports = service.get("spec", {}).get("ports") or []
    if ref.port is not None:
        if not any(int(port.get("port", 0)) == ref.port for port in ports):
            raise Blocked(
                "NatsServiceNotFound", f"NATS Service {ref.namespace}/{ref.name} has no port {ref.port}"
            )
        return ref.port
    for port in ports:
        if port.get("name") == "client":
            return int(port["port"])
    if not ports:
        raise Blocked("NatsServiceNotFound", f"NATS Service {ref.namespace}/{ref.name} has no ports")
    return int(ports[0]["port"])


def _apply(
    kube: Kube,
    owner: build.Owner,
    desired: build.Desired,
    before: Mapping[str, Any] | None,
    *,
    monitor_wanted: bool,
) -> tuple[dict[str, Any] | None, list[Event]]:
    """Apply every desired object and delete the optional ones no longer wanted; the applied
    Deployment as the API server returned it, and the Events of what changed."""
    events: list[Event] = []
    deployment: dict[str, Any] | None = None
    monitors = kube.api_group_served("monitoring.coreos.com/v1") if monitor_wanted else False
    for obj in desired.objects:
        if obj["kind"] == "ServiceMonitor" and not monitors:
            continue
        try:
            result = kube.apply(obj)
        except ApiError as exc:
            if exc.status == 422:  # the spec produced an object the API server refuses: no retry helps
                raise specs.InvalidSpec(
                    f"{obj['kind']} {obj['metadata']['name']} refused: {exc.message}"
                ) from None
            raise
        metrics.APPLIES.labels(obj["kind"]).inc()
        if obj["kind"] == "Deployment":
            deployment = result
    if monitor_wanted and not monitors and before is None:
        events.append(
            Event(
                "Warning",
                "ServiceMonitorUnavailable",
                "spec.metrics.serviceMonitor is enabled but the ServiceMonitor CRD is not installed",
            )
        )
    for api_version, kind, name in desired.absent:
        if kind == "ServiceMonitor" and not kube.api_group_served(api_version):
            continue
        current = kube.get(kind, owner.namespace, name)
        if current and _owned_by(current, owner):
            kube.delete(kind, owner.namespace, name)
            events.append(Event("Normal", "Deleted", f"deleted {kind} {name}: no longer asked for"))
    events += _deployment_events(before, desired)
    return deployment, events


def _owned_by(obj: Mapping[str, Any], owner: build.Owner) -> bool:
    return any(ref.get("uid") == owner.uid for ref in obj.get("metadata", {}).get("ownerReferences") or [])


def _deployment_events(before: Mapping[str, Any] | None, desired: build.Desired) -> list[Event]:
    after = next(obj for obj in desired.objects if obj["kind"] == "Deployment")
    if before is None:
        kinds = ", ".join(sorted({obj["kind"] for obj in desired.objects}))
        return [Event("Normal", "Created", f"created the gateways' {kinds}")]
    events = []
    old_template = before["spec"]["template"]["metadata"].get("annotations") or {}
    new_template = after["spec"]["template"]["metadata"]["annotations"]
    if old_template.get(build.CONFIG_HASH_ANNOTATION) != new_template[build.CONFIG_HASH_ANNOTATION]:
        events.append(
            Event(
                "Normal",
                "RollingUpdate",
                f"configuration changed (hash {desired.config_hash[:12]}): rolling the gateways",
            )
        )
    elif old_template.get(build.RESTARTED_AT_ANNOTATION) != new_template.get(build.RESTARTED_AT_ANNOTATION):
        events.append(Event("Normal", "RollingRestart", "restart requested: rolling the gateways"))
    old_replicas = before["spec"].get("replicas")
    if old_replicas != after["spec"]["replicas"]:
        events.append(
            Event(
                "Normal", "Scaled", f"scaled the gateways from {old_replicas} to {after['spec']['replicas']}"
            )
        )
    return events


def _replace_one(
    kube: Kube, namespace: str, pods: Sequence[Mapping[str, Any]], problems: Sequence[health.PodProblem]
) -> Event | None:
    problem = health.pod_to_replace(pods, problems)
    if problem is None:
        return None
    try:
        kube.evict(namespace, problem.pod)
    except ApiError as exc:
        if exc.status == 429:  # the PodDisruptionBudget forbids it now; the next pass tries again
            log.info(
                "eviction of %s/%s refused by the disruption budget: %s", namespace, problem.pod, exc.message
            )
            return None
        if exc.status == 404:
            return None
        raise
    metrics.POD_REPLACEMENTS.labels(problem.reason).inc()
    return Event("Warning", "ReplacedPod", f"evicted {problem.pod} ({problem.reason}: {problem.message})")


def transition_events(
    previous: Sequence[Mapping[str, Any]], current: Sequence[Mapping[str, Any]]
) -> list[Event]:
    """Events for condition changes that a user should see in ``kubectl describe``."""
    before = {item.get("type"): item for item in previous}
    events = []
    for cond in current:
        old = before.get(cond["type"], {})
        same = old.get("status") == cond["status"] and old.get("reason") == cond["reason"]
        if same:
            continue
        kind, state = cond["type"], cond["status"]
        if kind == "Degraded" and state == "True":
            events.append(Event("Warning", cond["reason"], cond["message"]))
        elif kind == "Degraded" and old.get("status") == "True":
            events.append(Event("Normal", "Recovered", cond["message"]))
        elif kind == "Ready" and state == "True":
            events.append(Event("Normal", "Ready", cond["message"]))
        elif kind == "NatsConnected" and state == "False":
            events.append(Event("Warning", "NatsDisconnected", cond["message"]))
    return events
