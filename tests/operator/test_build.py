"""The pure builders of pyresgate_operator.build: every object a ResgateCluster owns, its labels, owner
references and contents, each validated by kubernetes-validate (strict) for three Kubernetes versions;
hypothesis-generated specs check that the invariants hold for any spec the CRD accepts.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyresgate_operator import build
from pyresgate_operator import spec as specs
from pyresgate_operator.spec import ClusterSpec

from gateway.config import from_file_values
from tests.operator import samples, strategies
from tests.operator.validation import (
    K8S_VERSIONS,
    assert_labels_valid,
    assert_service_name_valid,
    assert_valid,
)

FULL = samples.example("full")["spec"]


def _desired(
    spec_body: dict[str, Any],
    *,
    secrets: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
    nats_service_port: int | None = None,
) -> build.Desired:
    return build.desired_objects(
        samples.owner(annotations),
        samples.cluster(spec_body),
        secrets=secrets or {},
        nats_service_port=nats_service_port,
    )


def _kind(desired: build.Desired, kind: str, name: str = samples.NAME) -> dict[str, Any]:
    return next(obj for obj in desired.objects if obj["kind"] == kind and obj["metadata"]["name"] == name)


def _settings(desired: build.Desired) -> dict[str, Any]:
    data = json.loads(_kind(desired, "ConfigMap", f"{samples.NAME}-config")["data"][specs.CONFIG_FILE])
    assert isinstance(data, dict)
    return data


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def _env(deployment: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item.get("value", "") for item in _container(deployment)["env"]}


def _hash(deployment: dict[str, Any]) -> str:
    return deployment["spec"]["template"]["metadata"]["annotations"][build.CONFIG_HASH_ANNOTATION]


# --- labels and ownership --------------------------------------------------------------------------


def test_objects_carry_the_recommended_labels_and_the_version_of_the_image() -> None:
    desired = _desired(FULL)
    for obj in desired.objects:
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "pyresgate"
        assert labels["app.kubernetes.io/instance"] == samples.NAME
        assert labels["app.kubernetes.io/component"] == "gateway"
        assert labels["app.kubernetes.io/part-of"] == "pyresgate"
        assert labels["app.kubernetes.io/managed-by"] == "pyresgate-operator"
        assert labels["app.kubernetes.io/version"] == "0.1.0"
    monitor = _kind(desired, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "prometheus"


@pytest.mark.parametrize(
    ("tag", "label"),
    [
        ("1.2.3", "1.2.3"),
        ("1.0-", "1.0"),
        ("_rc.1_", "rc.1"),
        ("a" * 62 + "-b", "a" * 62),
        ("v" + "1" * 127, "v" + "1" * 62),
        ("_", ""),
    ],
    ids=["plain", "trailing-dash", "underscores", "cut-at-dash", "cut-at-63", "no-letter-or-digit"],
)
def test_version_label_is_a_valid_label_value_for_every_tag_the_crd_accepts(tag: str, label: str) -> None:
    """Tags may start or end with _ . - and run to 128 characters; label values may not."""
    desired = _desired(samples.minimal_spec(image={"tag": tag}))
    for obj in desired.objects:
        assert obj["metadata"]["labels"]["app.kubernetes.io/version"] == label
        assert_labels_valid(obj["metadata"]["labels"])
    assert _container(_kind(desired, "Deployment"))["image"].endswith(f":{tag}")


def test_selector_depends_on_the_name_only_so_it_never_changes_with_the_spec() -> None:
    owner = samples.owner()
    first = build.deployment(owner, samples.cluster(samples.minimal_spec()), config_hash_value="a")
    second = build.deployment(owner, samples.cluster(FULL), config_hash_value="b")
    selector = {
        "app.kubernetes.io/name": "pyresgate",
        "app.kubernetes.io/instance": samples.NAME,
        "app.kubernetes.io/component": "gateway",
    }
    assert first["spec"]["selector"] == second["spec"]["selector"] == {"matchLabels": selector}
    assert build.selector_string(owner) == ",".join(f"{key}={value}" for key, value in selector.items())
    for deployment in (first, second):
        assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()


def test_user_pod_labels_are_added_and_never_replace_the_operators() -> None:
    deployment = _kind(_desired(FULL), "Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels["team"] == "realtime"
    assert labels["app.kubernetes.io/managed-by"] == "pyresgate-operator"
    assert deployment["spec"]["template"]["metadata"]["annotations"]["example.com/owner"] == "realtime-team"


def test_every_object_is_controlled_by_the_resgate_cluster_and_blocks_its_deletion() -> None:
    for obj in _desired(FULL).objects:
        assert obj["metadata"]["namespace"] == samples.NAMESPACE
        assert obj["metadata"]["ownerReferences"] == [
            {
                "apiVersion": "pyresgate.io/v1alpha1",
                "kind": "ResgateCluster",
                "name": samples.NAME,
                "uid": samples.UID,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]


# --- the gateway's config file ---------------------------------------------------------------------


def test_config_file_holds_the_nats_urls_and_the_operator_owned_settings() -> None:
    settings = _settings(_desired(samples.minimal_spec()))
    assert settings["natsUrl"] == samples.NATS_URL
    assert settings["addr"] == "0.0.0.0"
    assert settings["tracing"] is False
    for key in ("natsCreds", "natsCert", "natsKey", "natsRootCAs"):
        assert key not in settings


def test_several_nats_urls_are_joined_as_the_gateway_reads_them() -> None:
    urls = ["nats://a.messaging:4222", "tls://b.messaging:4222"]
    settings = _settings(_desired({"nats": {"urls": urls}}))
    assert settings["natsUrl"] == "nats://a.messaging:4222,tls://b.messaging:4222"
    assert from_file_values(settings).nats_url == settings["natsUrl"]


@pytest.mark.parametrize(
    ("ref", "service_port", "url"),
    [
        ({"name": "nats", "namespace": "messaging", "port": 4223}, 4222, "nats://nats.messaging.svc:4223"),
        ({"name": "nats", "namespace": "messaging"}, 4333, "nats://nats.messaging.svc:4333"),
        ({"name": "nats"}, None, f"nats://nats.{samples.NAMESPACE}.svc:4222"),
    ],
    ids=["ref-port", "service-port", "defaults"],
)
def test_service_ref_becomes_the_services_cluster_dns_name(
    ref: dict[str, Any], service_port: int | None, url: str
) -> None:
    desired = _desired({"nats": {"serviceRef": ref}}, nats_service_port=service_port)
    assert desired.nats_urls == [url]
    assert _settings(desired)["natsUrl"] == url


def test_named_secrets_become_paths_in_the_config_file() -> None:
    settings = _settings(_desired(FULL))
    assert settings["natsCreds"] == "/etc/pyresgate/nats-creds/user.creds"
    assert settings["natsCert"] == "/etc/pyresgate/nats-tls/tls.crt"
    assert settings["natsKey"] == "/etc/pyresgate/nats-tls/tls.key"
    assert settings["natsRootCAs"] == ["/etc/pyresgate/nats-tls/ca.crt"]
    other_key = {"nats": {"urls": [samples.NATS_URL], "credentialsSecret": {"name": "c", "key": "gw.creds"}}}
    assert _settings(_desired(other_key))["natsCreds"] == "/etc/pyresgate/nats-creds/gw.creds"


def test_user_gateway_settings_are_kept_and_the_file_passes_the_gateways_own_rules() -> None:
    settings = _settings(_desired(FULL))
    for key, value in FULL["gateway"].items():
        assert settings[key] == value, key
    assert settings["tracing"] is True
    config = from_file_values(settings)
    assert config.header_auth == "auth.jwtHeader"
    assert config.allowed_origins == ["https://admin.example.com", "https://app.example.com"]
    assert config.nats_creds == "/etc/pyresgate/nats-creds/user.creds"


def test_shutdown_timeout_defaults_to_what_the_grace_period_allows_and_a_users_value_is_kept() -> None:
    cluster = samples.cluster(samples.minimal_spec())
    settings = _settings(_desired(samples.minimal_spec()))
    assert settings["shutdownTimeout"] > 0
    assert settings["shutdownTimeout"] / 1000 < build.grace_period(cluster)
    own = _settings(_desired(samples.minimal_spec(gateway={"shutdownTimeout": 1234})))
    assert own["shutdownTimeout"] == 1234


@pytest.mark.parametrize("drain", [0, 3_000, 30_000, 120_000])
def test_default_shutdown_timeout_lets_the_gateway_finish_before_the_kubelet_kills_it(drain: int) -> None:
    """The gateway drains for drainPeriod, then closes connections for at most shutdownTimeout: both,
    after the preStop delay, must end inside terminationGracePeriodSeconds."""
    spec_body = samples.minimal_spec(gateway={"drainPeriod": drain}, preStopDelaySeconds=5)
    settings = _settings(_desired(spec_body))
    grace = _kind(_desired(spec_body), "Deployment")["spec"]["template"]["spec"][
        "terminationGracePeriodSeconds"
    ]
    assert 5 + drain / 1000 + settings["shutdownTimeout"] / 1000 < grace
    # ...and the closing phase still gets the time that closing the expected connections takes.
    cluster = samples.cluster(spec_body)
    assert settings["shutdownTimeout"] / 1000 > build.shutdown_seconds(cluster) - math.ceil(drain / 1000)


# --- the Deployment --------------------------------------------------------------------------------


def test_probes_use_the_admin_port_readiness_on_readyz_and_liveness_on_healthz() -> None:
    container = _container(_kind(_desired(samples.minimal_spec(gateway={"adminPort": 9191})), "Deployment"))
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"http": 8080, "admin": 9191}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "admin"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "admin"}
    assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "admin"}
    assert container["args"] == ["--config", "/etc/pyresgate/config.json"]


def test_pre_stop_sleeps_for_the_delay_and_is_left_out_when_it_is_zero() -> None:
    container = _container(_kind(_desired(samples.minimal_spec(preStopDelaySeconds=7)), "Deployment"))
    assert container["lifecycle"] == {"preStop": {"sleep": {"seconds": 7}}}
    container = _container(_kind(_desired(samples.minimal_spec(preStopDelaySeconds=0)), "Deployment"))
    assert "lifecycle" not in container


@pytest.mark.parametrize(
    "gateway",
    [{}, {"drainPeriod": 30_000}, {"drainPeriod": 2_500, "wsCloseRate": 100}, {"wsCloseRate": 0}],
    ids=["defaults", "long-drain", "slow-close", "close-all-at-once"],
)
def test_grace_period_outlasts_the_pre_stop_delay_the_drain_and_closing_the_connections(
    gateway: dict[str, Any],
) -> None:
    spec_body = samples.minimal_spec(gateway=gateway, preStopDelaySeconds=5)
    cluster = samples.cluster(spec_body)
    deployment = _kind(_desired(spec_body), "Deployment")
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    config = cluster.gateway_config
    closing = (
        math.ceil(specs.DEFAULT_EXPECTED_CONNECTIONS / config.ws_close_rate) if config.ws_close_rate else 1
    )
    assert build.shutdown_seconds(cluster) == math.ceil(config.drain_period / 1000) + closing
    assert grace > 5 + build.shutdown_seconds(cluster)


def test_grace_period_sizes_closing_time_from_the_autoscaling_connection_target() -> None:
    small = samples.cluster(samples.minimal_spec(gateway={"wsCloseRate": 100}))
    big = samples.cluster(
        samples.minimal_spec(
            gateway={"wsCloseRate": 100},
            autoscaling={"minReplicas": 2, "maxReplicas": 4, "targetConnectionsPerPod": 20_000},
        )
    )
    assert build.shutdown_seconds(small) == 50
    assert build.shutdown_seconds(big) == 200
    assert build.grace_period(big) > build.grace_period(small)


def test_rolling_update_never_takes_a_gateway_away_before_its_replacement_is_ready() -> None:
    deployment = _kind(_desired(samples.minimal_spec(replicas=4)), "Deployment")
    assert deployment["spec"]["replicas"] == 4
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }


def test_pods_run_as_non_root_on_a_read_only_root_without_capabilities() -> None:
    deployment = _kind(_desired(samples.minimal_spec()), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    security = _container(deployment)["securityContext"]
    assert security == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
    # A read-only root still needs a writable /tmp.
    assert {"name": "tmp", "mountPath": "/tmp"} in _container(deployment)["volumeMounts"]


def test_pods_spread_across_nodes() -> None:
    pod = _kind(_desired(samples.minimal_spec()), "Deployment")["spec"]["template"]["spec"]
    assert pod["topologySpreadConstraints"] == [
        {
            "maxSkew": 1,
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": build.selector_labels(samples.owner())},
        }
    ]


def test_pod_template_settings_reach_the_pod_spec() -> None:
    pod = _kind(_desired(FULL), "Deployment")["spec"]["template"]["spec"]
    template = FULL["podTemplate"]
    assert pod["nodeSelector"] == template["nodeSelector"]
    assert pod["tolerations"] == template["tolerations"]
    assert pod["affinity"] == template["affinity"]
    assert pod["priorityClassName"] == "gateway-priority"
    assert _container(_kind(_desired(FULL), "Deployment"))["resources"] == FULL["resources"]
    minimal = _kind(_desired(samples.minimal_spec()), "Deployment")["spec"]["template"]["spec"]
    assert not {"nodeSelector", "tolerations", "affinity", "priorityClassName"} & minimal.keys()
    assert _container(_kind(_desired(samples.minimal_spec()), "Deployment"))["resources"] == (
        specs.DEFAULT_RESOURCES
    )


def test_tracing_becomes_the_standard_otel_variables() -> None:
    env = _env(_kind(_desired(FULL), "Deployment"))
    assert env["OTEL_TRACES_EXPORTER"] == "otlp"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger-collector.observability:4318"
    assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/protobuf"
    assert env["OTEL_TRACES_SAMPLER"] == "parentbased_traceidratio"
    assert float(env["OTEL_TRACES_SAMPLER_ARG"]) == 0.01
    assert env["OTEL_SERVICE_NAME"] == "edge-gateway"
    assert (
        env["OTEL_RESOURCE_ATTRIBUTES"] == f"k8s.namespace.name={samples.NAMESPACE},k8s.pod.name=$(POD_NAME)"
    )
    # $(POD_NAME) expands only when POD_NAME is defined earlier in the list.
    names = [item["name"] for item in _container(_kind(_desired(FULL), "Deployment"))["env"]]
    assert names.index("POD_NAME") < names.index("OTEL_RESOURCE_ATTRIBUTES")
    default_name = samples.minimal_spec(tracing={"otlpEndpoint": "http://otel:4318"})
    assert _env(_kind(_desired(default_name), "Deployment"))["OTEL_SERVICE_NAME"] == samples.NAME
    assert not any(
        name.startswith("OTEL_") for name in _env(_kind(_desired(samples.minimal_spec()), "Deployment"))
    )


def test_nats_secrets_are_mounted_read_only_where_the_config_file_points() -> None:
    deployment = _kind(_desired(FULL), "Deployment")
    volumes = {volume["name"]: volume for volume in deployment["spec"]["template"]["spec"]["volumes"]}
    mounts = {mount["name"]: mount for mount in _container(deployment)["volumeMounts"]}
    assert volumes["nats-creds"]["secret"] == {
        "secretName": "nats-creds",
        "items": [{"key": "user.creds", "path": "user.creds"}],
    }
    assert volumes["nats-tls"]["secret"] == {"secretName": "nats-client-tls"}
    assert volumes["config"]["configMap"] == {"name": f"{samples.NAME}-config"}
    assert mounts["nats-creds"] == {"name": "nats-creds", "mountPath": specs.CREDS_DIR, "readOnly": True}
    assert mounts["nats-tls"] == {"name": "nats-tls", "mountPath": specs.TLS_DIR, "readOnly": True}
    assert mounts["config"] == {"name": "config", "mountPath": specs.CONFIG_DIR, "readOnly": True}
    minimal = _kind(_desired(samples.minimal_spec()), "Deployment")
    assert {volume["name"] for volume in minimal["spec"]["template"]["spec"]["volumes"]} == {"config", "tmp"}


SECRETS = {"nats-creds": {"user.creds": "a" * 64}}


def test_config_hash_changes_with_the_config_the_environment_or_a_secrets_content() -> None:
    base = _hash(_kind(_desired(FULL, secrets=SECRETS), "Deployment"))
    config_changed = {**FULL, "gateway": {**FULL["gateway"], "requestTimeout": 6000}}
    env_changed = {**FULL, "tracing": {**FULL["tracing"], "samplerRatio": 0.5}}
    nats_changed = {**FULL, "nats": {**FULL["nats"], "urls": ["nats://other:4222"]}}
    changed = [
        _hash(_kind(_desired(config_changed, secrets=SECRETS), "Deployment")),
        _hash(_kind(_desired(env_changed, secrets=SECRETS), "Deployment")),
        _hash(_kind(_desired(nats_changed, secrets=SECRETS), "Deployment")),
        _hash(_kind(_desired(FULL, secrets={"nats-creds": {"user.creds": "b" * 64}}), "Deployment")),
    ]
    assert base not in changed
    assert len(set(changed)) == len(changed)


def test_config_hash_ignores_what_the_pods_do_not_read() -> None:
    base = _desired(FULL, secrets=SECRETS)
    same = [
        _desired({**FULL, "replicas": 7}, secrets=SECRETS),
        _desired(
            {**FULL, "podTemplate": {**FULL["podTemplate"], "annotations": {"x": "y"}}}, secrets=SECRETS
        ),
        _desired({**FULL, "service": {"type": "ClusterIP"}}, secrets=SECRETS),
        _desired({**FULL, "autoscaling": {**FULL["autoscaling"], "maxReplicas": 20}}, secrets=SECRETS),
        _desired(FULL, secrets=SECRETS, annotations={build.RESTARTED_AT_ANNOTATION: "2026-12-01T12:00:00Z"}),
        _desired(dict(reversed(list(FULL.items()))), secrets=dict(SECRETS)),
    ]
    assert base.config_hash == _hash(_kind(base, "Deployment"))
    for desired in same:
        assert desired.config_hash == base.config_hash


def test_restarted_at_annotation_is_copied_to_the_pod_template() -> None:
    stamp = "2026-12-01T12:00:00Z"
    deployment = _kind(_desired(FULL, annotations={build.RESTARTED_AT_ANNOTATION: stamp}), "Deployment")
    assert deployment["spec"]["template"]["metadata"]["annotations"][build.RESTARTED_AT_ANNOTATION] == stamp
    plain = _kind(_desired(FULL, annotations={"other": "x"}), "Deployment")
    assert build.RESTARTED_AT_ANNOTATION not in plain["spec"]["template"]["metadata"]["annotations"]


# --- Services, PDB, HPA, NetworkPolicy, ServiceMonitor ---------------------------------------------


def test_client_service_exposes_the_client_port_with_the_users_type_and_annotations() -> None:
    service = _kind(_desired(FULL), "Service")
    assert service["spec"]["type"] == "LoadBalancer"
    assert service["spec"]["selector"] == build.selector_labels(samples.owner())
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}
    ]
    assert service["metadata"]["annotations"] == FULL["service"]["annotations"]
    minimal = _kind(_desired(samples.minimal_spec()), "Service")
    assert minimal["spec"]["type"] == "ClusterIP"
    assert "annotations" not in minimal["metadata"]
    assert "sessionAffinity" not in minimal["spec"]


def test_admin_service_is_headless_and_lists_unready_pods_too() -> None:
    admin = _kind(_desired(FULL), "Service", f"{samples.NAME}-admin")
    assert admin["spec"]["clusterIP"] == "None"
    assert admin["spec"]["publishNotReadyAddresses"] is True
    assert admin["spec"]["selector"] == build.selector_labels(samples.owner())
    assert admin["spec"]["ports"] == [
        {"name": "admin", "port": 9090, "targetPort": "admin", "protocol": "TCP"}
    ]


@pytest.mark.parametrize("value", [0, 2, "25%"])
def test_disruption_budget_limits_voluntary_disruptions(value: int | str) -> None:
    pdb = _kind(_desired(samples.minimal_spec(disruption={"maxUnavailable": value})), "PodDisruptionBudget")
    assert pdb["spec"] == {
        "maxUnavailable": value,
        "selector": {"matchLabels": build.selector_labels(samples.owner())},
    }
    default = _kind(_desired(samples.minimal_spec()), "PodDisruptionBudget")
    assert default["spec"]["maxUnavailable"] == specs.DEFAULT_MAX_UNAVAILABLE


def test_autoscaler_scales_the_resgate_cluster_on_cpu_and_connections() -> None:
    hpa = _kind(_desired(FULL), "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "pyresgate.io/v1alpha1",
        "kind": "ResgateCluster",
        "name": samples.NAME,
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 12)
    assert hpa["spec"]["metrics"] == [
        {
            "type": "Resource",
            "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
        },
        {
            "type": "Pods",
            "pods": {
                "metric": {"name": "resgate_ws_current_connections"},
                "target": {"type": "AverageValue", "averageValue": "5000"},
            },
        },
    ]
    behavior = hpa["spec"]["behavior"]
    assert behavior["scaleUp"]["stabilizationWindowSeconds"] == 0
    assert behavior["scaleDown"] == {
        "stabilizationWindowSeconds": 300,
        "selectPolicy": "Min",
        "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}],
    }


def test_autoscaler_with_one_metric_has_only_that_metric() -> None:
    scaling = {"minReplicas": 2, "maxReplicas": 5, "targetConnectionsPerPod": 800}
    hpa = _kind(_desired(samples.minimal_spec(autoscaling=scaling)), "HorizontalPodAutoscaler")
    assert [metric["type"] for metric in hpa["spec"]["metrics"]] == ["Pods"]
    disabled = _desired(samples.minimal_spec(autoscaling={**scaling, "enabled": False}))
    assert "HorizontalPodAutoscaler" not in {obj["kind"] for obj in disabled.objects}


def test_network_policy_opens_the_client_port_to_all_and_the_admin_port_to_the_operator_and_listed_peers() -> (
    None
):
    policy = _kind(_desired(FULL), "NetworkPolicy")
    assert policy["spec"]["podSelector"] == {"matchLabels": build.selector_labels(samples.owner())}
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    client, admin = policy["spec"]["ingress"]
    assert client == {"ports": [{"port": 8080, "protocol": "TCP"}]}
    assert admin["ports"] == [{"port": 9090, "protocol": "TCP"}]
    assert admin["from"] == [
        {
            "namespaceSelector": {},
            "podSelector": {
                "matchLabels": {
                    "app.kubernetes.io/part-of": "pyresgate",
                    "app.kubernetes.io/component": "operator",
                }
            },
        },
        *FULL["networkPolicy"]["adminFrom"],
    ]


def test_service_monitor_scrapes_the_admin_metrics() -> None:
    monitor = _kind(_desired(FULL), "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["spec"] == {
        "selector": {"matchLabels": build.selector_labels(samples.owner())},
        "endpoints": [{"port": "admin", "path": "/metrics", "interval": "30s"}],
    }


def test_desired_objects_put_the_config_before_the_pods_and_list_what_must_be_absent() -> None:
    minimal = _desired(samples.minimal_spec())
    kinds = [obj["kind"] for obj in minimal.objects]
    assert kinds == ["ConfigMap", "Service", "Service", "PodDisruptionBudget", "Deployment"]
    assert minimal.absent == [
        ("autoscaling/v2", "HorizontalPodAutoscaler", samples.NAME),
        ("networking.k8s.io/v1", "NetworkPolicy", samples.NAME),
        ("monitoring.coreos.com/v1", "ServiceMonitor", samples.NAME),
    ]
    full = _desired(FULL)
    assert full.absent == []
    assert [obj["kind"] for obj in full.objects][-3:] == [
        "HorizontalPodAutoscaler",
        "NetworkPolicy",
        "ServiceMonitor",
    ]
    assert full.nats_urls == FULL["nats"]["urls"]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
@given(name=st.from_regex(r"[a-z0-9.-]{1,70}", fullmatch=True))
def test_every_name_the_operator_accepts_gives_valid_object_names_and_labels(name: str) -> None:
    try:
        specs.check_name(name)
    except specs.InvalidSpec:
        return
    owner = build.Owner(name=name, namespace=samples.NAMESPACE, uid=samples.UID, annotations={})
    desired = build.desired_objects(owner, samples.cluster(FULL), secrets={})
    for obj in desired.objects:
        assert_labels_valid(obj["metadata"]["labels"])
        if obj["kind"] == "Service":
            assert_service_name_valid(obj["metadata"]["name"])


# --- kubernetes-validate -------------------------------------------------------------------------


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("example", ["minimal", "serviceref", "full"])
def test_every_built_object_of_the_examples_is_valid_kubernetes(example: str, version: str) -> None:
    desired = _desired(samples.example(example)["spec"], secrets=SECRETS, nats_service_port=4222)
    checked = 0
    for obj in desired.objects:
        if obj["kind"] == "ServiceMonitor":  # a CRD's kind: kubernetes-validate has no schema for it
            continue
        assert_valid(obj, (version,))
        checked += 1
    assert checked == len(desired.objects) - (example == "full")


def test_validation_catches_what_the_api_server_would_refuse() -> None:
    """The validator in use is strict: the checks above would fail on a wrong field or type."""
    deployment = _kind(_desired(samples.minimal_spec()), "Deployment")
    wrong = json.loads(json.dumps(deployment))
    wrong["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["paht"] = "/readyz"
    with pytest.raises(AssertionError, match="paht"):
        assert_valid(wrong, ("1.35.0",))
    wrong = json.loads(json.dumps(deployment))
    wrong["spec"]["replicas"] = "two"
    with pytest.raises(AssertionError, match="replicas"):
        assert_valid(wrong, ("1.35.0",))


# --- generated specs -------------------------------------------------------------------------------


def _check_invariants(cluster: ClusterSpec, desired: build.Desired, spec_body: dict[str, Any]) -> None:
    owner = samples.owner()
    selector = build.selector_labels(owner)
    deployment = _kind(desired, "Deployment")
    template = deployment["spec"]["template"]
    assert deployment["spec"]["selector"] == {"matchLabels": selector}
    assert selector.items() <= template["metadata"]["labels"].items()
    assert deployment["spec"]["replicas"] == spec_body.get("replicas", specs.DEFAULT_REPLICAS)
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert_labels_valid(template["metadata"]["labels"])
    for obj in desired.objects:
        assert obj["metadata"]["ownerReferences"][0]["uid"] == samples.UID
        assert_labels_valid(obj["metadata"]["labels"])
        if obj["kind"] == "Service":
            assert_service_name_valid(obj["metadata"]["name"])
            assert obj["spec"]["selector"] == selector
    # Pods read a config file that the gateway accepts, with the operator's NATS settings.
    settings = _settings(desired)
    config = from_file_values(settings)
    assert config.nats_url == ",".join(desired.nats_urls)
    assert config.port == cluster.port and config.admin_port == cluster.admin_port
    assert (config.nats_creds != "") == ("credentialsSecret" in spec_body["nats"])
    assert (config.nats_cert != "") == ("tlsSecret" in spec_body["nats"])
    # Shutdown fits in the grace period: preStop, then the gateway's drain and closing time.
    pod = template["spec"]
    prestop = spec_body.get("preStopDelaySeconds", specs.DEFAULT_PRESTOP_SECONDS)
    assert pod["terminationGracePeriodSeconds"] > prestop + build.shutdown_seconds(cluster)
    if "shutdownTimeout" not in spec_body.get("gateway", {}):
        # The gateway's own bound on its shutdown (drain, then at most shutdownTimeout) ends before SIGKILL.
        bound = config.drain_period / 1000 + config.shutdown_timeout / 1000
        assert prestop + bound < pod["terminationGracePeriodSeconds"]
    # Probes and ports follow the gateway settings.
    container = _container(deployment)
    assert {port["name"]: port["containerPort"] for port in container["ports"]} == {
        "http": cluster.port,
        "admin": cluster.admin_port,
    }
    # Optional objects exist exactly when asked for; the rest are listed as absent.
    kinds = {obj["kind"] for obj in desired.objects}
    scaling = spec_body.get("autoscaling")
    assert ("HorizontalPodAutoscaler" in kinds) == bool(scaling and scaling.get("enabled", True))
    assert ("NetworkPolicy" in kinds) == bool(spec_body.get("networkPolicy", {}).get("enabled"))
    monitor = spec_body.get("metrics", {}).get("serviceMonitor", {})
    assert ("ServiceMonitor" in kinds) == bool(monitor.get("enabled"))
    assert kinds | {kind for _, kind, _ in desired.absent} == {
        "ConfigMap",
        "Service",
        "PodDisruptionBudget",
        "Deployment",
        "HorizontalPodAutoscaler",
        "NetworkPolicy",
        "ServiceMonitor",
    }


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
@given(
    spec_body=strategies.cluster_specs,
    secrets=st.dictionaries(
        st.sampled_from(["nats-creds", "tls"]), st.fixed_dictionaries({"k": st.text(max_size=8)})
    ),
    service_port=st.none() | st.integers(1, 65535),
)
def test_generated_specs_build_objects_that_keep_the_invariants(
    spec_body: dict[str, Any], secrets: dict[str, Any], service_port: int | None
) -> None:
    cluster = samples.cluster(spec_body)
    desired = build.desired_objects(samples.owner(), cluster, secrets=secrets, nats_service_port=service_port)
    _check_invariants(cluster, desired, spec_body)
    # Pure: building twice gives the same objects and hash.
    again = build.desired_objects(samples.owner(), cluster, secrets=secrets, nats_service_port=service_port)
    assert again == desired


# kubernetes-validate takes ~10 ms an object: fewer examples here, each against one drawn version.
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
@given(spec_body=strategies.cluster_specs, version=st.sampled_from(K8S_VERSIONS))
def test_generated_specs_build_valid_kubernetes_objects(spec_body: dict[str, Any], version: str) -> None:
    desired = build.desired_objects(
        samples.owner(), samples.cluster(spec_body), secrets={}, nats_service_port=4222
    )
    for obj in desired.objects:
        if obj["kind"] != "ServiceMonitor":
            assert_valid(obj, (version,))


def test_grace_period_honours_a_users_larger_shutdown_timeout() -> None:
    nats = {"urls": ["nats://nats:4222"]}
    default = specs.parse({"nats": nats}, namespace="apps", default_image="img:1")
    long = specs.parse(
        {"nats": nats, "gateway": {"shutdownTimeout": 120000}}, namespace="apps", default_image="img:1"
    )
    assert build.grace_period(long) >= long.prestop_seconds + 120 + build.GRACE_MARGIN_SECONDS
    assert build.grace_period(long) > build.grace_period(default)
