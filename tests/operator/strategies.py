"""Hypothesis strategies of ResgateCluster specs within the CRD's schema: replica counts, images, NATS
wiring, gateway settings inside their published limits, tracing and every optional part.

The specs are what the API server would store (before its defaulting: absent fields stay absent).
Used by test_build.py (the builders' invariants) and test_crd.py (generated specs pass the schema).
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

#: A DNS label as the CRD's patterns accept it (kept short: names are combined with suffixes).
dns_labels = st.from_regex(r"[a-z]([-a-z0-9]{0,14}[a-z0-9])?", fullmatch=True)
#: Image tags per the CRD's pattern ``^[\w][\w.-]{0,127}$`` (ASCII, as Go's \w).
image_tags = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", fullmatch=True)
label_keys = st.from_regex(r"(team\.example\.com/)?[a-z]([-a-z0-9_.]{0,14}[a-z0-9])?", fullmatch=True)
label_values = st.from_regex(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,20}[A-Za-z0-9])?)?", fullmatch=True)
string_maps = st.dictionaries(label_keys, label_values, max_size=3)

nats_urls = st.lists(
    st.builds(
        "{}://{}.{}:{}".format,
        st.sampled_from(["nats", "tls", "ws", "wss"]),
        dns_labels,
        dns_labels,
        st.integers(1, 65535),
    ),
    min_size=1,
    max_size=3,
)
service_refs = st.fixed_dictionaries(
    {"name": dns_labels}, optional={"namespace": dns_labels, "port": st.integers(1, 65535)}
)
secret_names = st.from_regex(r"[a-z0-9]([-a-z0-9.]{0,20}[a-z0-9])?", fullmatch=True)
nats_specs = st.fixed_dictionaries(
    {},
    optional={
        "credentialsSecret": st.fixed_dictionaries(
            {"name": secret_names}, optional={"key": st.sampled_from(["user.creds", "gateway.creds"])}
        ),
        "tlsSecret": st.fixed_dictionaries({"name": secret_names}),
    },
).flatmap(
    lambda extra: st.one_of(
        nats_urls.map(lambda urls: {"urls": urls, **extra}),
        service_refs.map(lambda ref: {"serviceRef": ref, **extra}),
    )
)

_ports = st.integers(1, 65535)


def _distinct_ports(gateway: dict[str, Any]) -> bool:
    """The gateway refuses shared ports (other tests cover that): keep the settings it accepts."""
    ports = [gateway.get("port") or 8080, gateway.get("adminPort", 9090)]
    if gateway.get("metricsPort"):
        ports.append(gateway["metricsPort"])
    return len(set(ports)) == len(ports)


gateway_settings = st.fixed_dictionaries(
    {},
    optional={
        "port": _ports,
        "adminPort": _ports,
        "metricsPort": st.integers(0, 65535),
        "wsPath": st.sampled_from(["/", "/ws", "ws/"]),
        "apiPath": st.sampled_from(["/api/", "/api", "rest/v1"]),
        "apiEncoding": st.sampled_from(["json", "jsonflat", "JSONFlat"]),
        "requestTimeout": st.integers(0, 600_000),
        "bufferSize": st.integers(0, 1_000_000),
        "headerAuth": st.sampled_from(["auth.jwtHeader", "auth.user.login", "a.b"]),
        "wsHeaderAuth": st.sampled_from(["auth.jwtHeader", "auth.ws.token"]),
        "allowOrigin": st.sampled_from(["*", "https://app.example.com", "http://a.test;https://b.test:8443"]),
        "putMethod": st.sampled_from(["put", "set"]),
        "deleteMethod": st.sampled_from(["delete", "remove"]),
        "patchMethod": st.sampled_from(["patch", "update"]),
        "wsCompression": st.booleans(),
        "resetThrottle": st.integers(0, 10_000),
        "referenceThrottle": st.integers(0, 10_000),
        "cacheEvictionDelay": st.integers(0, 3_600_000),
        "exitOnNatsLoss": st.booleans(),
        "workers": st.integers(1, 16),
        "drainPeriod": st.integers(0, 120_000),
        "wsCloseRate": st.integers(0, 100_000),
        "shutdownTimeout": st.integers(0, 600_000),
        "debug": st.booleans(),
        "trace": st.booleans(),
    },
).filter(_distinct_ports)

tracing_specs = st.fixed_dictionaries(
    {"otlpEndpoint": st.sampled_from(["http://jaeger-collector.observability:4318", "https://otel:4317"])},
    optional={
        "protocol": st.sampled_from(["http/protobuf", "grpc"]),
        "samplerRatio": st.floats(0, 1),
        "serviceName": dns_labels,
    },
)
resources = st.sampled_from(
    [
        {"requests": {"cpu": "100m", "memory": "64Mi"}},
        {"requests": {"cpu": 1, "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "2Gi"}},
    ]
)
tolerations = st.lists(
    st.sampled_from(
        [
            {"key": "dedicated", "operator": "Equal", "value": "gateways", "effect": "NoSchedule"},
            {"operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30},
        ]
    ),
    max_size=2,
    unique_by=lambda item: str(item),
)
affinities = st.sampled_from(
    [
        {
            "podAntiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 100,
                        "podAffinityTerm": {
                            "topologyKey": "topology.kubernetes.io/zone",
                            "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "pyresgate"}},
                        },
                    }
                ]
            }
        },
        {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}
                            ]
                        }
                    ]
                }
            }
        },
    ]
)
pod_templates = st.fixed_dictionaries(
    {},
    optional={
        "labels": st.dictionaries(
            label_keys.filter(lambda key: not key.startswith("app.kubernetes.io/")), label_values, max_size=3
        ),
        "annotations": st.dictionaries(label_keys, st.text(max_size=20), max_size=3),
        "nodeSelector": string_maps,
        "tolerations": tolerations,
        "affinity": affinities,
        "priorityClassName": dns_labels,
    },
)
durations = st.builds(
    lambda h, m, s: (f"{h}h" if h else "") + (f"{m}m" if m else "") + (f"{s}s" if s or not (h or m) else ""),
    st.integers(0, 3),
    st.integers(0, 59),
    st.integers(0, 59),
)


@st.composite
def autoscaling_specs(draw: st.DrawFn) -> dict[str, Any]:
    # Without minReplicas the API server stores the CRD's default, which maxReplicas must not go below.
    explicit = draw(st.booleans())
    minimum = draw(st.integers(1, 20)) if explicit else 2
    targets = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "targetCPUUtilization": st.integers(1, 1000),
                "targetConnectionsPerPod": st.integers(1, 100_000),
            },
        ).filter(bool)
    )
    return {
        **({"minReplicas": minimum} if explicit else {}),
        "maxReplicas": draw(st.integers(minimum, 1000)),
        **targets,
        **draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "enabled": st.booleans(),
                    "scaleDown": st.fixed_dictionaries(
                        {},
                        optional={
                            "stabilizationSeconds": st.integers(0, 3600),
                            "maxPodsPerMinute": st.integers(1, 100),
                        },
                    ),
                    "rebalance": st.fixed_dictionaries(
                        {},
                        optional={
                            "enabled": st.booleans(),
                            "tolerance": st.floats(0, 10),
                            "maxShedPerSecond": st.integers(1, 100_000),
                        },
                    ),
                },
            )
        ),
    }


cluster_specs = st.fixed_dictionaries(
    {"nats": nats_specs},
    optional={
        "replicas": st.integers(0, 1000),
        "image": st.fixed_dictionaries(
            {},
            optional={
                "repository": st.sampled_from(["ghcr.io/pyresgate/pyresgate", "registry.local:5000/gw"]),
                "tag": image_tags,
                "pullPolicy": st.sampled_from(["Always", "IfNotPresent", "Never"]),
            },
        ),
        "gateway": gateway_settings,
        "tracing": tracing_specs,
        "resources": resources,
        "podTemplate": pod_templates,
        "service": st.fixed_dictionaries(
            {},
            optional={
                "type": st.sampled_from(["ClusterIP", "NodePort", "LoadBalancer"]),
                "annotations": string_maps,
            },
        ),
        "disruption": st.fixed_dictionaries(
            {}, optional={"maxUnavailable": st.one_of(st.integers(0, 5), st.sampled_from(["25%", "50%"]))}
        ),
        "unhealthyPodTimeout": durations,
        "preStopDelaySeconds": st.integers(0, 300),
        "metrics": st.fixed_dictionaries(
            {},
            optional={
                "serviceMonitor": st.fixed_dictionaries(
                    {},
                    optional={
                        "enabled": st.booleans(),
                        "interval": st.sampled_from(["15s", "30s", "1m", "500ms"]),
                        "labels": string_maps,
                    },
                )
            },
        ),
        "networkPolicy": st.fixed_dictionaries(
            {},
            optional={
                "enabled": st.booleans(),
                "adminFrom": st.lists(
                    st.sampled_from(
                        [
                            {
                                "namespaceSelector": {
                                    "matchLabels": {"kubernetes.io/metadata.name": "monitoring"}
                                }
                            },
                            {"podSelector": {"matchLabels": {"app": "prometheus"}}},
                            {"ipBlock": {"cidr": "10.0.0.0/8"}},
                        ]
                    ),
                    max_size=2,
                ),
            },
        ),
        "autoscaling": autoscaling_specs(),
    },
)
