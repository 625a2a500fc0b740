"""A ResgateCluster's spec read into typed, defaulted values, and the checks only the operator can make.

The API server has already applied the CRD's schema, defaults and CEL rules; this module reads the
result (or a hand-written dict in tests, hence every default again here, from the same constants the
CRD generator uses) and raises ``InvalidSpec`` for what a schema cannot say: gateway settings that
the gateway's own configuration model refuses (``headerAuth`` syntax, origins…), and
``podTemplate`` labels that would change the selector. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.config import Config, ConfigError, from_file_values

GROUP = "pyresgate.io"
VERSION = "v1alpha1"
KIND = "ResgateCluster"
PLURAL = "resgateclusters"

#: Image repository the gateways run when neither ``spec.image.repository`` nor the operator's
#: ``--gateway-image`` says otherwise; the tag defaults to the operator's own version, so an operator
#: upgrade rolls the gateways to the matching release.
DEFAULT_IMAGE_REPOSITORY = "ghcr.io/pyresgate/pyresgate"
DEFAULT_REPLICAS = 2
DEFAULT_PULL_POLICY = "IfNotPresent"
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
#: Secret key of the NATS user credentials when ``credentialsSecret.key`` is not set (nsc's name).
DEFAULT_CREDS_KEY = "user.creds"
DEFAULT_NATS_PORT = 4222
NATS_URL_SCHEMES = ("nats", "tls", "ws", "wss")
DEFAULT_SAMPLER_RATIO = 0.01
OTLP_PROTOCOLS = ("http/protobuf", "grpc")
DEFAULT_OTLP_PROTOCOL = "http/protobuf"
#: How long a gateway pod may stay unready (while others are ready) before it is replaced.
DEFAULT_UNHEALTHY_POD_TIMEOUT = "5m"
#: Seconds between a pod's removal from the Service's endpoints and SIGTERM (preStop sleep).
DEFAULT_PRESTOP_SECONDS = 5
#: WebSocket connections a pod is expected to hold at most, when autoscaling does not say; sizes
#: the time needed to close them all at ``wsCloseRate`` and so the termination grace period.
DEFAULT_EXPECTED_CONNECTIONS = 5000
SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer")
DEFAULT_SERVICE_TYPE = "ClusterIP"
DEFAULT_MAX_UNAVAILABLE: int | str = 1
DEFAULT_RESOURCES: dict[str, Any] = {
    "requests": {"cpu": "250m", "memory": "128Mi"},
    "limits": {"memory": "512Mi"},
}
DEFAULT_SCRAPE_INTERVAL = "30s"
#: Fewest gateways the autoscaler keeps when autoscaling.minReplicas is not set (the CRD's default too).
DEFAULT_MIN_REPLICAS = 2
DEFAULT_SCALE_DOWN_STABILIZATION = 300
DEFAULT_SCALE_DOWN_PODS_PER_MINUTE = 1
DEFAULT_REBALANCE_TOLERANCE = 0.2
DEFAULT_MAX_SHED_PER_SECOND = 50

#: Gateway settings the operator owns: they come from other parts of the spec (``nats``,
#: ``tracing``) or must hold for pods (listen on every interface, plain HTTP behind the Service).
OPERATOR_OWNED_GATEWAY_KEYS = frozenset(
    {
        "natsUrl",
        "natsCreds",
        "natsCert",
        "natsKey",
        "natsRootCAs",
        "addr",
        "tls",
        "certFile",
        "keyFile",
        "tracing",
    }
)
#: Where the pods find what the operator mounts.
CONFIG_DIR = "/etc/pyresgate"
CONFIG_FILE = "config.json"
CREDS_DIR = "/etc/pyresgate/nats-creds"
TLS_DIR = "/etc/pyresgate/nats-tls"

_DURATION_RE = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
#: Longest ResgateCluster name: "<name>-admin" names a Service, and Service names have at most 63.
MAX_NAME_LENGTH = 57
#: Service names are DNS-1035 labels; a custom resource's name may hold dots or start with a digit.
_SERVICE_NAME_RE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


class InvalidSpec(Exception):
    """The spec passed the API server's schema but cannot be reconciled; the message says why."""


@dataclass(frozen=True)
class SecretKeyRef:
    name: str
    key: str


@dataclass(frozen=True)
class ServiceRef:
    name: str
    namespace: str
    port: int | None


@dataclass(frozen=True)
class NatsSpec:
    urls: tuple[str, ...]
    service_ref: ServiceRef | None
    credentials: SecretKeyRef | None
    tls_secret: str | None


@dataclass(frozen=True)
class TracingSpec:
    endpoint: str
    protocol: str
    sampler_ratio: float
    service_name: str | None


@dataclass(frozen=True)
class AutoscalingSpec:
    min_replicas: int
    max_replicas: int
    target_cpu: int | None
    target_connections: int | None
    stabilization_seconds: int
    max_pods_per_minute: int
    rebalance: bool
    tolerance: float
    max_shed_per_second: int


@dataclass(frozen=True)
class ClusterSpec:
    """Everything the builders need, defaulted and checked."""

    replicas: int
    image: str
    pull_policy: str
    nats: NatsSpec
    gateway: dict[str, Any]
    tracing: TracingSpec | None
    resources: dict[str, Any]
    pod_labels: dict[str, str]
    pod_annotations: dict[str, str]
    node_selector: dict[str, str]
    tolerations: list[dict[str, Any]]
    affinity: dict[str, Any] | None
    priority_class: str | None
    service_type: str
    service_annotations: dict[str, str]
    max_unavailable: int | str
    unhealthy_pod_timeout: int
    prestop_seconds: int
    service_monitor: bool
    scrape_interval: str
    service_monitor_labels: dict[str, str]
    network_policy: bool
    admin_from: list[dict[str, Any]]
    autoscaling: AutoscalingSpec | None
    gateway_config: Config = field(repr=False, compare=False)

    @property
    def port(self) -> int:
        return self.gateway_config.port

    @property
    def admin_port(self) -> int:
        return self.gateway_config.admin_port


def check_name(name: str) -> None:
    """Refuse a ResgateCluster name that cannot name its Services (the API server would refuse them)."""
    if len(name) > MAX_NAME_LENGTH or not _SERVICE_NAME_RE.match(name):
        raise InvalidSpec(
            f"metadata.name {name!r} must be a DNS label (lower-case letters, digits and -, starting with "
            f"a letter) of at most {MAX_NAME_LENGTH} characters: it names the gateways' Services"
        )


def parse_duration(text: str) -> int:
    """Seconds of a duration such as ``90s``, ``5m`` or ``1h30m``."""
    match = _DURATION_RE.fullmatch(text.strip())
    if not text.strip() or match is None:
        raise InvalidSpec(f"{text!r} is not a duration like 30s, 5m or 1h30m")
    hours, minutes, seconds = (int(group or 0) for group in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def parse(spec: Mapping[str, Any], *, namespace: str, default_image: str) -> ClusterSpec:
    """Read a ResgateCluster's ``spec`` (as stored by the API server) into a ``ClusterSpec``.

    ``default_image`` (``repository:tag``) fills what ``spec.image`` leaves out.
    """
    image = _mapping(spec, "image")
    pod = _mapping(spec, "podTemplate")
    service = _mapping(spec, "service")
    metrics = _mapping(spec, "metrics")
    monitor = _mapping(metrics, "serviceMonitor")
    policy = _mapping(spec, "networkPolicy")
    gateway = dict(_mapping(spec, "gateway"))
    pod_labels = dict(_mapping(pod, "labels"))
    reserved = sorted(key for key in pod_labels if key.startswith("app.kubernetes.io/"))
    if reserved:
        raise InvalidSpec(f"podTemplate.labels must not set {', '.join(reserved)}: the operator owns them")
    config = gateway_config(gateway)
    if config.admin_port == 0:
        raise InvalidSpec("gateway.adminPort must not be 0: the probes and the operator use the admin port")
    default_repository, _, default_tag = default_image.rpartition(":")
    return ClusterSpec(
        replicas=int(spec.get("replicas", DEFAULT_REPLICAS)),
        image=f"{image.get('repository') or default_repository}:{image.get('tag') or default_tag}",
        pull_policy=str(image.get("pullPolicy", DEFAULT_PULL_POLICY)),
        nats=_nats(_mapping(spec, "nats"), namespace=namespace),
        gateway=gateway,
        tracing=_tracing(spec.get("tracing")),
        resources=dict(spec.get("resources") or DEFAULT_RESOURCES),
        pod_labels=pod_labels,
        pod_annotations=dict(_mapping(pod, "annotations")),
        node_selector=dict(_mapping(pod, "nodeSelector")),
        tolerations=list(pod.get("tolerations") or []),
        affinity=pod.get("affinity"),
        priority_class=pod.get("priorityClassName"),
        service_type=str(service.get("type", DEFAULT_SERVICE_TYPE)),
        service_annotations=dict(_mapping(service, "annotations")),
        max_unavailable=_mapping(spec, "disruption").get("maxUnavailable", DEFAULT_MAX_UNAVAILABLE),
        unhealthy_pod_timeout=parse_duration(
            str(spec.get("unhealthyPodTimeout", DEFAULT_UNHEALTHY_POD_TIMEOUT))
        ),
        prestop_seconds=int(spec.get("preStopDelaySeconds", DEFAULT_PRESTOP_SECONDS)),
        service_monitor=bool(monitor.get("enabled", False)),
        scrape_interval=str(monitor.get("interval", DEFAULT_SCRAPE_INTERVAL)),
        service_monitor_labels=dict(_mapping(monitor, "labels")),
        network_policy=bool(policy.get("enabled", False)),
        admin_from=list(policy.get("adminFrom") or []),
        autoscaling=_autoscaling(spec.get("autoscaling")),
        gateway_config=config,
    )


def gateway_config(gateway: Mapping[str, Any]) -> Config:
    """The gateway's own configuration model applied to ``spec.gateway``: one set of rules."""
    owned = sorted(OPERATOR_OWNED_GATEWAY_KEYS.intersection(gateway))
    if owned:
        raise InvalidSpec(f"gateway.{owned[0]} is set by the operator (see spec.nats and spec.tracing)")
    try:
        return from_file_values(gateway)
    except ConfigError as exc:
        raise InvalidSpec(f"gateway: {exc}") from None


def _mapping(parent: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = parent.get(key)
    return value if isinstance(value, Mapping) else {}


def _nats(nats: Mapping[str, Any], *, namespace: str) -> NatsSpec:
    urls = tuple(str(url) for url in nats.get("urls") or ())
    ref = nats.get("serviceRef")
    if bool(urls) == bool(ref):
        raise InvalidSpec("nats: set exactly one of urls and serviceRef")
    for url in urls:
        scheme = url.partition("://")[0]
        if scheme not in NATS_URL_SCHEMES or "://" not in url:
            raise InvalidSpec(f"nats.urls: {url!r} must start with one of {', '.join(NATS_URL_SCHEMES)}://")
    service_ref = None
    if ref:
        port = ref.get("port")
        service_ref = ServiceRef(
            name=str(ref["name"]),
            namespace=str(ref.get("namespace") or namespace),
            port=None if port is None else int(port),
        )
    creds = nats.get("credentialsSecret")
    tls = nats.get("tlsSecret")
    return NatsSpec(
        urls=urls,
        service_ref=service_ref,
        credentials=SecretKeyRef(str(creds["name"]), str(creds.get("key") or DEFAULT_CREDS_KEY))
        if creds
        else None,
        tls_secret=str(tls["name"]) if tls else None,
    )


def _tracing(tracing: Any) -> TracingSpec | None:
    if not isinstance(tracing, Mapping) or not tracing.get("otlpEndpoint"):
        return None
    return TracingSpec(
        endpoint=str(tracing["otlpEndpoint"]),
        protocol=str(tracing.get("protocol", DEFAULT_OTLP_PROTOCOL)),
        sampler_ratio=float(tracing.get("samplerRatio", DEFAULT_SAMPLER_RATIO)),
        service_name=tracing.get("serviceName"),
    )


def _autoscaling(scaling: Any) -> AutoscalingSpec | None:
    if not isinstance(scaling, Mapping) or not scaling.get("enabled", True):
        return None
    down = _mapping(scaling, "scaleDown")
    rebalance = _mapping(scaling, "rebalance")
    minimum = int(scaling.get("minReplicas", DEFAULT_MIN_REPLICAS))
    maximum = int(scaling.get("maxReplicas", minimum))
    if maximum < minimum:
        raise InvalidSpec("autoscaling.maxReplicas must be at least minReplicas")
    cpu = scaling.get("targetCPUUtilization")
    connections = scaling.get("targetConnectionsPerPod")
    if cpu is None and connections is None:
        raise InvalidSpec("autoscaling needs targetCPUUtilization or targetConnectionsPerPod")
    return AutoscalingSpec(
        min_replicas=minimum,
        max_replicas=maximum,
        target_cpu=None if cpu is None else int(cpu),
        target_connections=None if connections is None else int(connections),
        stabilization_seconds=int(down.get("stabilizationSeconds", DEFAULT_SCALE_DOWN_STABILIZATION)),
        max_pods_per_minute=int(down.get("maxPodsPerMinute", DEFAULT_SCALE_DOWN_PODS_PER_MINUTE)),
        rebalance=bool(rebalance.get("enabled", False)),
        tolerance=float(rebalance.get("tolerance", DEFAULT_REBALANCE_TOLERANCE)),
        max_shed_per_second=int(rebalance.get("maxShedPerSecond", DEFAULT_MAX_SHED_PER_SECOND)),
    )
