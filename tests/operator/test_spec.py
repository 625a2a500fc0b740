"""pyresgate_operator.spec.parse: a ResgateCluster's spec read into typed, defaulted values, and the rules
only the operator checks (reserved pod labels, operator-owned gateway keys, the gateway's own
configuration rules) refused with InvalidSpec and a message that names the field.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyresgate_operator import crd
from pyresgate_operator import spec as specs
from pyresgate_operator.spec import InvalidSpec

from tests.operator import samples


def _parse(spec_body: dict[str, Any], *, default_image: str = samples.DEFAULT_IMAGE) -> specs.ClusterSpec:
    return specs.parse(spec_body, namespace=samples.NAMESPACE, default_image=default_image)


def test_only_nats_is_needed_and_everything_else_is_defaulted() -> None:
    cluster = _parse(samples.minimal_spec())
    assert cluster.replicas == specs.DEFAULT_REPLICAS == 2
    assert cluster.image == samples.DEFAULT_IMAGE
    assert cluster.pull_policy == "IfNotPresent"
    assert cluster.nats == specs.NatsSpec(
        urls=(samples.NATS_URL,), service_ref=None, credentials=None, tls_secret=None
    )
    assert cluster.gateway == {}
    assert (cluster.port, cluster.admin_port) == (8080, 9090)
    assert cluster.tracing is None
    assert cluster.resources == specs.DEFAULT_RESOURCES
    assert (cluster.pod_labels, cluster.pod_annotations, cluster.node_selector) == ({}, {}, {})
    assert (cluster.tolerations, cluster.affinity, cluster.priority_class) == ([], None, None)
    assert (cluster.service_type, cluster.service_annotations) == ("ClusterIP", {})
    assert cluster.max_unavailable == 1
    assert cluster.unhealthy_pod_timeout == 300
    assert cluster.prestop_seconds == 5
    assert (cluster.service_monitor, cluster.scrape_interval, cluster.service_monitor_labels) == (
        False,
        "30s",
        {},
    )
    assert (cluster.network_policy, cluster.admin_from) == (False, [])
    assert cluster.autoscaling is None


def test_the_full_example_is_read_field_by_field() -> None:
    full = samples.example("full")["spec"]
    cluster = _parse(full)
    assert cluster.replicas == 3
    assert cluster.image == "ghcr.io/pyresgate/pyresgate:0.1.0"
    assert cluster.nats.credentials == specs.SecretKeyRef("nats-creds", "user.creds")
    assert cluster.nats.tls_secret == "nats-client-tls"
    assert cluster.gateway == full["gateway"]
    assert cluster.gateway_config.metrics_port == 9100
    assert cluster.tracing == specs.TracingSpec(
        endpoint="http://jaeger-collector.observability:4318",
        protocol="http/protobuf",
        sampler_ratio=0.01,
        service_name="edge-gateway",
    )
    assert cluster.pod_labels == {"team": "realtime"}
    assert cluster.service_type == "LoadBalancer"
    assert cluster.service_monitor and cluster.network_policy
    assert cluster.service_monitor_labels == {"release": "prometheus"}
    assert cluster.autoscaling == specs.AutoscalingSpec(
        min_replicas=3,
        max_replicas=12,
        target_cpu=70,
        target_connections=5000,
        stabilization_seconds=300,
        max_pods_per_minute=1,
        rebalance=True,
        tolerance=0.2,
        max_shed_per_second=50,
    )


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        (None, "registry.example/gw:9.9.9"),
        ({}, "registry.example/gw:9.9.9"),
        ({"repository": "mirror.local:5000/pyresgate"}, "mirror.local:5000/pyresgate:9.9.9"),
        ({"tag": "1.2.3"}, "registry.example/gw:1.2.3"),
        ({"repository": "own/gw", "tag": "dev"}, "own/gw:dev"),
    ],
    ids=["absent", "empty", "repository", "tag", "both"],
)
def test_image_fills_what_spec_image_leaves_out_from_the_default_image(
    image: dict[str, str] | None, expected: str
) -> None:
    body = samples.minimal_spec() if image is None else samples.minimal_spec(image=image)
    cluster = _parse(body, default_image="registry.example/gw:9.9.9")
    assert cluster.image == expected


def test_default_image_with_a_registry_port_keeps_the_port() -> None:
    cluster = _parse(samples.minimal_spec(), default_image="localhost:5000/pyresgate:0.2.0")
    assert cluster.image == "localhost:5000/pyresgate:0.2.0"
    cluster = _parse(samples.minimal_spec(image={"tag": "x"}), default_image="localhost:5000/pyresgate:0.2.0")
    assert cluster.image == "localhost:5000/pyresgate:x"


@pytest.mark.parametrize(
    "nats",
    [
        {},
        {"urls": []},
        {"urls": [samples.NATS_URL], "serviceRef": {"name": "nats"}},
        {"credentialsSecret": {"name": "creds"}},
    ],
    ids=["nothing", "empty-urls", "both", "only-credentials"],
)
def test_exactly_one_of_urls_and_service_ref(nats: dict[str, Any]) -> None:
    with pytest.raises(InvalidSpec, match="nats: set exactly one of urls and serviceRef"):
        _parse({"nats": nats})


@pytest.mark.parametrize("url", ["http://nats:4222", "nats:4222", "nats.messaging:4222", "NATS://n:4222", ""])
def test_nats_urls_need_a_nats_scheme(url: str) -> None:
    with pytest.raises(InvalidSpec, match=r"nats\.urls: .* must start with one of nats, tls, ws, wss://"):
        _parse({"nats": {"urls": ["nats://ok:4222", url]}})


@pytest.mark.parametrize("scheme", specs.NATS_URL_SCHEMES)
def test_every_nats_scheme_is_accepted(scheme: str) -> None:
    assert _parse({"nats": {"urls": [f"{scheme}://nats:4222"]}}).nats.urls == (f"{scheme}://nats:4222",)


def test_service_ref_defaults_to_the_clusters_namespace_and_the_services_port() -> None:
    cluster = _parse({"nats": {"serviceRef": {"name": "nats"}}})
    assert cluster.nats.service_ref == specs.ServiceRef(name="nats", namespace=samples.NAMESPACE, port=None)
    cluster = _parse({"nats": {"serviceRef": {"name": "nats", "namespace": "messaging", "port": 4223}}})
    assert cluster.nats.service_ref == specs.ServiceRef(name="nats", namespace="messaging", port=4223)
    assert cluster.nats.urls == ()


def test_credentials_key_defaults_to_nscs_file_name() -> None:
    cluster = _parse(
        samples.minimal_spec(nats={"urls": [samples.NATS_URL], "credentialsSecret": {"name": "c"}})
    )
    assert cluster.nats.credentials == specs.SecretKeyRef("c", "user.creds")


def test_pod_labels_under_app_kubernetes_io_are_refused_as_the_operators() -> None:
    labels = {"team": "rt", "app.kubernetes.io/name": "x", "app.kubernetes.io/instance": "y"}
    with pytest.raises(InvalidSpec) as caught:
        _parse(samples.minimal_spec(podTemplate={"labels": labels}))
    assert str(caught.value) == (
        "podTemplate.labels must not set app.kubernetes.io/instance, app.kubernetes.io/name: the operator owns them"
    )
    # Other domains, even look-alikes, are the user's.
    fine = {"team": "rt", "example.com/app.kubernetes.io": "x", "kubernetes.io/app": "y"}
    assert _parse(samples.minimal_spec(podTemplate={"labels": fine})).pod_labels == fine


@pytest.mark.parametrize("key", sorted(specs.OPERATOR_OWNED_GATEWAY_KEYS))
def test_gateway_keys_the_operator_owns_are_refused(key: str) -> None:
    with pytest.raises(
        InvalidSpec, match=rf"^gateway\.{key} is set by the operator \(see spec\.nats and spec\.tracing\)$"
    ):
        _parse(samples.minimal_spec(gateway={key: "x"}))


@pytest.mark.parametrize(
    ("gateway", "message"),
    [
        (
            {"headerAuth": "noMethod"},
            'invalid headerAuth setting ("noMethod"): must be "<resource ID>.<method>"',
        ),
        ({"wsHeaderAuth": "auth.x?y"}, "invalid wsHeaderAuth setting"),
        ({"allowOrigin": "*;https://a.example"}, '"*" cannot be combined with other origins'),
        ({"allowOrigin": "example.com"}, 'origin "example.com" is not <scheme>://<host>[:<port>]'),
        ({"port": 9090}, "invalid adminPort setting (9090): must differ from port and metricsPort"),
        ({"port": 7000, "adminPort": 7000}, "invalid adminPort setting (7000)"),
        ({"metricsPort": 8080}, "invalid metricsPort setting (8080): must differ from port"),
        ({"port": 65536}, "invalid port setting (65536): must be between 0 and 65535"),
        ({"apiEncoding": "xml"}, "invalid apiEncoding setting"),
        ({"workers": 0}, "invalid workers setting (0): must be at least 1"),
        ({"requestTimeout": -1}, "invalid requestTimeout setting (-1): must not be negative"),
        ({"putMethod": "a.b"}, "invalid putMethod setting"),
        ({"port": "eighty"}, "invalid port setting"),
    ],
)
def test_gateway_settings_are_checked_by_the_gateways_own_rules(
    gateway: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidSpec) as caught:
        _parse(samples.minimal_spec(gateway=gateway))
    assert str(caught.value).startswith("gateway: invalid ")
    assert message in str(caught.value)


def test_admin_port_zero_is_refused_because_probes_need_it() -> None:
    with pytest.raises(InvalidSpec, match="gateway.adminPort must not be 0"):
        _parse(samples.minimal_spec(gateway={"adminPort": 0}))


def test_gateway_settings_are_normalised_by_the_gateway_but_kept_as_written_for_the_file() -> None:
    cluster = _parse(samples.minimal_spec(gateway={"apiPath": "rest", "port": 0, "apiEncoding": "JSONFLAT"}))
    assert cluster.gateway == {"apiPath": "rest", "port": 0, "apiEncoding": "JSONFLAT"}
    assert cluster.gateway_config.api_path == "/rest/"
    assert cluster.port == 8080
    assert cluster.gateway_config.api_encoding == "jsonflat"


_GATEWAY_TYPES = {
    "integer": st.integers(-(2**40), 2**40),
    "string": st.text(max_size=30),
    "boolean": st.booleans(),
}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
@given(
    gateway=st.fixed_dictionaries(
        {},
        optional={
            key: _GATEWAY_TYPES[prop["type"]] for key, prop in crd.gateway_schema()["properties"].items()
        },
    )
)
def test_any_gateway_settings_of_the_schemas_types_are_read_or_refused_with_invalid_spec(
    gateway: dict[str, Any],
) -> None:
    """Values of the right JSON type but outside the rules never crash the operator: InvalidSpec."""
    try:
        cluster = _parse(samples.minimal_spec(gateway=gateway))
    except InvalidSpec as exc:
        assert str(exc).startswith("gateway")
    else:
        assert cluster.gateway == gateway


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("5m", 300), ("1h30m", 5400), ("2h", 7200), ("1h2m3s", 3723), ("0s", 0), (" 45s ", 45)],
)
def test_durations(text: str, seconds: int) -> None:
    assert specs.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", " ", "5", "5d", "m", "1m30", "30s5m", "-5s", "1.5m", "5 m"])
def test_bad_durations_are_refused_with_an_example_of_a_good_one(text: str) -> None:
    with pytest.raises(InvalidSpec, match="is not a duration like 30s, 5m or 1h30m"):
        specs.parse_duration(text)


def test_unhealthy_pod_timeout_is_read_as_a_duration() -> None:
    assert _parse(samples.minimal_spec(unhealthyPodTimeout="90s")).unhealthy_pod_timeout == 90
    with pytest.raises(InvalidSpec, match="'ninety' is not a duration"):
        _parse(samples.minimal_spec(unhealthyPodTimeout="ninety"))


def test_tracing_needs_an_endpoint_and_defaults_the_rest() -> None:
    assert _parse(samples.minimal_spec(tracing={})).tracing is None
    tracing = _parse(samples.minimal_spec(tracing={"otlpEndpoint": "http://otel:4318"})).tracing
    assert tracing == specs.TracingSpec(
        endpoint="http://otel:4318", protocol="http/protobuf", sampler_ratio=0.01, service_name=None
    )


def test_autoscaling_rules_and_defaults() -> None:
    base = {"maxReplicas": 5, "targetCPUUtilization": 60}
    scaling = _parse(samples.minimal_spec(autoscaling=base)).autoscaling
    assert scaling is not None
    assert (scaling.max_replicas, scaling.target_cpu, scaling.target_connections) == (5, 60, None)
    assert (scaling.stabilization_seconds, scaling.max_pods_per_minute) == (300, 1)
    assert (scaling.rebalance, scaling.tolerance, scaling.max_shed_per_second) == (False, 0.2, 50)
    assert _parse(samples.minimal_spec(autoscaling={**base, "enabled": False})).autoscaling is None
    with pytest.raises(InvalidSpec, match="autoscaling.maxReplicas must be at least minReplicas"):
        _parse(samples.minimal_spec(autoscaling={**base, "minReplicas": 6}))
    with pytest.raises(
        InvalidSpec, match="autoscaling needs targetCPUUtilization or targetConnectionsPerPod"
    ):
        _parse(samples.minimal_spec(autoscaling={"minReplicas": 2, "maxReplicas": 5}))


@pytest.mark.parametrize("name", ["edge", "e", "gw-1", "e" * 57])
def test_names_that_can_name_the_services_are_accepted(name: str) -> None:
    specs.check_name(name)


@pytest.mark.parametrize("name", ["1edge", "edge.v1", "e" * 58, "-edge", "edge-", "Edge", ""])
def test_names_that_cannot_name_the_services_are_refused(name: str) -> None:
    with pytest.raises(
        InvalidSpec, match="must be a DNS label .* of at most 57 characters: it names the gateways' Services"
    ):
        specs.check_name(name)
