"""Pure builders of the objects a ResgateCluster owns: ConfigMap, Deployment, Services, PDB, HPA,
NetworkPolicy and ServiceMonitor.

Each takes the parsed spec (``spec.ClusterSpec``) and an ``Owner`` and returns a plain dict ready for
server-side apply; none does I/O, so every rule here is unit-tested without a cluster. The config
hash covers everything the pods read, the referenced Secrets' contents included, so any change to it
rolls the Deployment. ``reconcile`` calls ``desired_objects``.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pyresgate_operator import spec as specs
from pyresgate_operator.spec import ClusterSpec

OPERATOR_NAME = "pyresgate-operator"
#: Annotation on the pod template with the hash of everything the pods read.
CONFIG_HASH_ANNOTATION = "pyresgate.io/config-hash"
#: Set on the ResgateCluster (any value, e.g. a timestamp) to force a rolling restart; copied to pods.
RESTARTED_AT_ANNOTATION = "pyresgate.io/restartedAt"
#: Labels of the operator's own pods (Helm chart, manifests/): the NetworkPolicy lets them reach the
#: gateways' admin port (rebalancing reads and sheds connections there).
OPERATOR_POD_LABELS = {"app.kubernetes.io/part-of": "pyresgate", "app.kubernetes.io/component": "operator"}
GATEWAY_USER = 10001
CLIENT_PORT_NAME = "http"
ADMIN_PORT_NAME = "admin"
#: Seconds added to the computed shutdown time before the kubelet kills a gateway.
GRACE_MARGIN_SECONDS = 10
#: Metric of the gateway's open WebSocket connections (resgate's name), served as a Pods metric.
CONNECTIONS_METRIC = "resgate_ws_current_connections"


@dataclass(frozen=True)
class Owner:
    """The ResgateCluster that owns the built objects."""

    name: str
    namespace: str
    uid: str
    annotations: Mapping[str, str]

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Owner:
        meta = body["metadata"]
        return cls(
            name=meta["name"],
            namespace=meta["namespace"],
            uid=meta["uid"],
            annotations=dict(meta.get("annotations") or {}),
        )


def selector_labels(owner: Owner) -> dict[str, str]:
    """Labels that select the gateway pods of one ResgateCluster (immutable in the Deployment)."""
    return {
        "app.kubernetes.io/name": "pyresgate",
        "app.kubernetes.io/instance": owner.name,
        "app.kubernetes.io/component": "gateway",
    }


def selector_string(owner: Owner) -> str:
    """The selector as the scale subresource wants it (``status.selector``)."""
    return ",".join(f"{key}={value}" for key, value in selector_labels(owner).items())


def labels(owner: Owner, cluster: ClusterSpec) -> dict[str, str]:
    # A label value has at most 63 characters and starts and ends with a letter or digit; a tag runs
    # to 128 and may start or end with _ . or -.
    version = cluster.image.rpartition(":")[2][:63].strip("_.-")
    return {
        **selector_labels(owner),
        "app.kubernetes.io/part-of": "pyresgate",
        "app.kubernetes.io/managed-by": OPERATOR_NAME,
        "app.kubernetes.io/version": version,
    }


def _meta(owner: Owner, cluster: ClusterSpec, name: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": owner.namespace,
        "labels": labels(owner, cluster),
        "ownerReferences": [
            {
                "apiVersion": f"{specs.GROUP}/{specs.VERSION}",
                "kind": specs.KIND,
                "name": owner.name,
                "uid": owner.uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
        **extra,
    }


def config_map_name(owner: Owner) -> str:
    return f"{owner.name}-config"


def admin_service_name(owner: Owner) -> str:
    return f"{owner.name}-admin"


# --- the gateway's configuration -------------------------------------------------------------------


def nats_urls(cluster: ClusterSpec, service_port: int | None = None) -> list[str]:
    """NATS URLs the gateways use: the listed ones, or the referenced Service's DNS name."""
    if cluster.nats.urls:
        return list(cluster.nats.urls)
    ref = cluster.nats.service_ref
    assert ref is not None
    port = ref.port or service_port or specs.DEFAULT_NATS_PORT
    return [f"nats://{ref.name}.{ref.namespace}.svc:{port}"]


def closing_seconds(cluster: ClusterSpec) -> int:
    """Seconds a gateway needs to close its connections at wsCloseRate, once its drain period is over.

    The connection count is the autoscaling target when there is one (a pod holds about that many),
    else ``DEFAULT_EXPECTED_CONNECTIONS``.
    """
    config = cluster.gateway_config
    expected = specs.DEFAULT_EXPECTED_CONNECTIONS
    if cluster.autoscaling and cluster.autoscaling.target_connections:
        expected = cluster.autoscaling.target_connections
    return math.ceil(expected / config.ws_close_rate) if config.ws_close_rate else 1


def shutdown_seconds(cluster: ClusterSpec) -> int:
    """Seconds a gateway needs after SIGTERM: drain period plus closing its connections at wsCloseRate."""
    return math.ceil(cluster.gateway_config.drain_period / 1000) + closing_seconds(cluster)


def shutdown_timeout_ms(cluster: ClusterSpec) -> int:
    """The gateway's ``shutdownTimeout``: the user's, else closing time plus 5 s.

    The gateway counts it from the end of its drain period, so drain + this bounds its exit.
    """
    if "shutdownTimeout" in cluster.gateway:
        return cluster.gateway_config.shutdown_timeout
    return (closing_seconds(cluster) + 5) * 1000


def gateway_settings(cluster: ClusterSpec, urls: list[str]) -> dict[str, Any]:
    """The gateway's JSON config file: the user's ``spec.gateway`` plus what the operator owns."""
    settings: dict[str, Any] = dict(cluster.gateway)
    settings["natsUrl"] = ",".join(urls)
    settings["addr"] = "0.0.0.0"
    if cluster.nats.credentials:
        settings["natsCreds"] = f"{specs.CREDS_DIR}/{cluster.nats.credentials.key}"
    if cluster.nats.tls_secret:
        settings["natsCert"] = f"{specs.TLS_DIR}/tls.crt"
        settings["natsKey"] = f"{specs.TLS_DIR}/tls.key"
        settings["natsRootCAs"] = [f"{specs.TLS_DIR}/ca.crt"]
    # preStop + drain + shutdownTimeout ends inside the grace period below: the gateway finishes
    # before the kubelet's SIGKILL.
    settings["shutdownTimeout"] = shutdown_timeout_ms(cluster)
    settings["tracing"] = cluster.tracing is not None
    return dict(sorted(settings.items()))


def config_map(owner: Owner, cluster: ClusterSpec, urls: list[str]) -> dict[str, Any]:
    text = json.dumps(gateway_settings(cluster, urls), indent=2) + "\n"
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(owner, cluster, config_map_name(owner)),
        "data": {specs.CONFIG_FILE: text},
    }


def tracing_env(owner: Owner, cluster: ClusterSpec) -> list[dict[str, Any]]:
    """OTEL_* variables from ``spec.tracing`` (the gateway reads the standard ones)."""
    tracing = cluster.tracing
    if tracing is None:
        return []
    return [
        {"name": "OTEL_TRACES_EXPORTER", "value": "otlp"},
        {"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": tracing.endpoint},
        {"name": "OTEL_EXPORTER_OTLP_PROTOCOL", "value": tracing.protocol},
        {"name": "OTEL_TRACES_SAMPLER", "value": "parentbased_traceidratio"},
        {"name": "OTEL_TRACES_SAMPLER_ARG", "value": repr(tracing.sampler_ratio)},
        {"name": "OTEL_SERVICE_NAME", "value": tracing.service_name or owner.name},
        {
            "name": "OTEL_RESOURCE_ATTRIBUTES",
            "value": f"k8s.namespace.name={owner.namespace},k8s.pod.name=$(POD_NAME)",
        },
    ]


def config_hash(
    config_map_obj: Mapping[str, Any], env: list[dict[str, Any]], secrets: Mapping[str, Any]
) -> str:
    """sha256 over the config file, the environment and the referenced Secrets' data (sorted JSON)."""
    material = json.dumps(
        {"config": config_map_obj["data"], "env": env, "secrets": secrets},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(material.encode()).hexdigest()


# --- workloads -------------------------------------------------------------------------------------


def _volumes(owner: Owner, cluster: ClusterSpec) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    volumes: list[dict[str, Any]] = [
        {"name": "config", "configMap": {"name": config_map_name(owner)}},
        {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
    ]
    mounts: list[dict[str, Any]] = [
        {"name": "config", "mountPath": specs.CONFIG_DIR, "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    if cluster.nats.credentials:
        creds = cluster.nats.credentials
        volumes.append(
            {
                "name": "nats-creds",
                "secret": {"secretName": creds.name, "items": [{"key": creds.key, "path": creds.key}]},
            }
        )
        mounts.append({"name": "nats-creds", "mountPath": specs.CREDS_DIR, "readOnly": True})
    if cluster.nats.tls_secret:
        volumes.append({"name": "nats-tls", "secret": {"secretName": cluster.nats.tls_secret}})
        mounts.append({"name": "nats-tls", "mountPath": specs.TLS_DIR, "readOnly": True})
    return volumes, mounts


def _container(owner: Owner, cluster: ClusterSpec, mounts: list[dict[str, Any]]) -> dict[str, Any]:
    admin = {"path": "/healthz", "port": ADMIN_PORT_NAME}
    return {
        "name": "gateway",
        "image": cluster.image,
        "imagePullPolicy": cluster.pull_policy,
        "args": ["--config", f"{specs.CONFIG_DIR}/{specs.CONFIG_FILE}"],
        "env": [
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            *tracing_env(owner, cluster),
        ],
        "ports": [
            {"name": CLIENT_PORT_NAME, "containerPort": cluster.port, "protocol": "TCP"},
            {"name": ADMIN_PORT_NAME, "containerPort": cluster.admin_port, "protocol": "TCP"},
        ],
        "readinessProbe": {
            "httpGet": {"path": "/readyz", "port": ADMIN_PORT_NAME},
            "periodSeconds": 2,
            "failureThreshold": 2,
            "timeoutSeconds": 2,
        },
        "livenessProbe": {"httpGet": admin, "periodSeconds": 10, "failureThreshold": 3, "timeoutSeconds": 5},
        "startupProbe": {"httpGet": admin, "periodSeconds": 1, "failureThreshold": 60, "timeoutSeconds": 2},
        "lifecycle": {"preStop": {"sleep": {"seconds": cluster.prestop_seconds}}}
        if cluster.prestop_seconds
        else {},
        "resources": cluster.resources,
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": mounts,
    }


def grace_period(cluster: ClusterSpec) -> int:
    """terminationGracePeriodSeconds: preStop delay + drain + the gateway's shutdown bound + a margin.

    The shutdown bound is at least the time to close the expected connections at wsCloseRate, and a
    user's larger ``shutdownTimeout`` is honoured too.
    """
    drain = math.ceil(cluster.gateway_config.drain_period / 1000)
    bound = max(closing_seconds(cluster), math.ceil(shutdown_timeout_ms(cluster) / 1000))
    return cluster.prestop_seconds + drain + bound + GRACE_MARGIN_SECONDS


def deployment(owner: Owner, cluster: ClusterSpec, *, config_hash_value: str) -> dict[str, Any]:
    volumes, mounts = _volumes(owner, cluster)
    container = _container(owner, cluster, mounts)
    if not container["lifecycle"]:
        del container["lifecycle"]
    annotations = {**cluster.pod_annotations, CONFIG_HASH_ANNOTATION: config_hash_value}
    restarted = owner.annotations.get(RESTARTED_AT_ANNOTATION)
    if restarted:
        annotations[RESTARTED_AT_ANNOTATION] = restarted
    pod_spec: dict[str, Any] = {
        "containers": [container],
        "volumes": volumes,
        "terminationGracePeriodSeconds": grace_period(cluster),
        "enableServiceLinks": False,
        "automountServiceAccountToken": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": GATEWAY_USER,
            "runAsGroup": GATEWAY_USER,
            "fsGroup": GATEWAY_USER,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": selector_labels(owner)},
            }
        ],
    }
    if cluster.node_selector:
        pod_spec["nodeSelector"] = cluster.node_selector
    if cluster.tolerations:
        pod_spec["tolerations"] = cluster.tolerations
    if cluster.affinity:
        pod_spec["affinity"] = cluster.affinity
    if cluster.priority_class:
        pod_spec["priorityClassName"] = cluster.priority_class
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(owner, cluster, owner.name),
        "spec": {
            "replicas": cluster.replicas,
            "selector": {"matchLabels": selector_labels(owner)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "revisionHistoryLimit": 5,
            "template": {
                "metadata": {
                    "labels": {**cluster.pod_labels, **labels(owner, cluster)},
                    "annotations": annotations,
                },
                "spec": pod_spec,
            },
        },
    }


def service(owner: Owner, cluster: ClusterSpec) -> dict[str, Any]:
    """The client Service: WebSocket and HTTP API. Any gateway serves any client: no session affinity."""
    meta = _meta(owner, cluster, owner.name)
    if cluster.service_annotations:
        meta["annotations"] = cluster.service_annotations
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {
            "type": cluster.service_type,
            "selector": selector_labels(owner),
            "ports": [
                {
                    "name": CLIENT_PORT_NAME,
                    "port": cluster.port,
                    "targetPort": CLIENT_PORT_NAME,
                    "protocol": "TCP",
                }
            ],
        },
    }


def admin_service(owner: Owner, cluster: ClusterSpec) -> dict[str, Any]:
    """Headless Service of the admin port, for scraping (ServiceMonitor) and per-pod discovery."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(owner, cluster, admin_service_name(owner)),
        "spec": {
            "clusterIP": "None",
            "selector": selector_labels(owner),
            "publishNotReadyAddresses": True,
            "ports": [
                {
                    "name": ADMIN_PORT_NAME,
                    "port": cluster.admin_port,
                    "targetPort": ADMIN_PORT_NAME,
                    "protocol": "TCP",
                }
            ],
        },
    }


def pod_disruption_budget(owner: Owner, cluster: ClusterSpec) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _meta(owner, cluster, owner.name),
        "spec": {
            "maxUnavailable": cluster.max_unavailable,
            "selector": {"matchLabels": selector_labels(owner)},
        },
    }


def horizontal_pod_autoscaler(owner: Owner, cluster: ClusterSpec) -> dict[str, Any] | None:
    """An HPA that scales the ResgateCluster itself (scale subresource), so spec.replicas stays the truth."""
    scaling = cluster.autoscaling
    if scaling is None:
        return None
    metrics: list[dict[str, Any]] = []
    if scaling.target_cpu is not None:
        metrics.append(
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": scaling.target_cpu},
                },
            }
        )
    if scaling.target_connections is not None:
        metrics.append(
            {
                "type": "Pods",
                "pods": {
                    "metric": {"name": CONNECTIONS_METRIC},
                    "target": {"type": "AverageValue", "averageValue": str(scaling.target_connections)},
                },
            }
        )
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _meta(owner, cluster, owner.name),
        "spec": {
            "scaleTargetRef": {
                "apiVersion": f"{specs.GROUP}/{specs.VERSION}",
                "kind": specs.KIND,
                "name": owner.name,
            },
            "minReplicas": scaling.min_replicas,
            "maxReplicas": scaling.max_replicas,
            "metrics": metrics,
            "behavior": {
                # Scale-up is fast: new gateways take new clients at once.
                "scaleUp": {
                    "stabilizationWindowSeconds": 0,
                    "selectPolicy": "Max",
                    "policies": [
                        {"type": "Percent", "value": 100, "periodSeconds": 15},
                        {"type": "Pods", "value": 4, "periodSeconds": 15},
                    ],
                },
                # Scale-down is gentle: every removed pod drains its WebSockets.
                "scaleDown": {
                    "stabilizationWindowSeconds": scaling.stabilization_seconds,
                    "selectPolicy": "Min",
                    "policies": [{"type": "Pods", "value": scaling.max_pods_per_minute, "periodSeconds": 60}],
                },
            },
        },
    }


def network_policy(owner: Owner, cluster: ClusterSpec) -> dict[str, Any] | None:
    """Clients may reach the client port; only the operator and ``adminFrom`` reach the admin port."""
    if not cluster.network_policy:
        return None
    operator_peer = {
        "namespaceSelector": {},
        # The labels the Helm chart and manifests/ give the operator's pods.
        "podSelector": {"matchLabels": OPERATOR_POD_LABELS},
    }
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta(owner, cluster, owner.name),
        "spec": {
            "podSelector": {"matchLabels": selector_labels(owner)},
            "policyTypes": ["Ingress"],
            "ingress": [
                {"ports": [{"port": cluster.port, "protocol": "TCP"}]},
                {
                    "from": [operator_peer, *cluster.admin_from],
                    "ports": [{"port": cluster.admin_port, "protocol": "TCP"}],
                },
            ],
        },
    }


def service_monitor(owner: Owner, cluster: ClusterSpec) -> dict[str, Any] | None:
    if not cluster.service_monitor:
        return None
    meta = _meta(owner, cluster, owner.name)
    meta["labels"] = {**meta["labels"], **cluster.service_monitor_labels}
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": meta,
        "spec": {
            "selector": {"matchLabels": {**selector_labels(owner)}},
            "endpoints": [{"port": ADMIN_PORT_NAME, "path": "/metrics", "interval": cluster.scrape_interval}],
        },
    }


@dataclass(frozen=True)
class Desired:
    """Everything one ResgateCluster should own, plus derived values for its status."""

    objects: list[dict[str, Any]]
    absent: list[tuple[str, str, str]]  # (apiVersion, kind, name) that must not exist
    config_hash: str
    nats_urls: list[str]


def desired_objects(
    owner: Owner,
    cluster: ClusterSpec,
    *,
    secrets: Mapping[str, Any],
    nats_service_port: int | None = None,
) -> Desired:
    """All owned objects, in apply order (config before the pods that read it)."""
    urls = nats_urls(cluster, nats_service_port)
    cm = config_map(owner, cluster, urls)
    hash_value = config_hash(cm, tracing_env(owner, cluster), secrets)
    objects = [
        cm,
        service(owner, cluster),
        admin_service(owner, cluster),
        pod_disruption_budget(owner, cluster),
    ]
    objects.append(deployment(owner, cluster, config_hash_value=hash_value))
    absent: list[tuple[str, str, str]] = []
    optional = (
        ("autoscaling/v2", "HorizontalPodAutoscaler", horizontal_pod_autoscaler(owner, cluster)),
        ("networking.k8s.io/v1", "NetworkPolicy", network_policy(owner, cluster)),
        ("monitoring.coreos.com/v1", "ServiceMonitor", service_monitor(owner, cluster)),
    )
    for api_version, kind, obj in optional:
        if obj is None:
            absent.append((api_version, kind, owner.name))
        else:
            objects.append(obj)
    return Desired(objects=objects, absent=absent, config_hash=hash_value, nats_urls=urls)
