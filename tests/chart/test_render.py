"""The chart offline: ``helm lint --strict``, ``helm template`` output checked object by object and
validated by kubernetes-validate (strict, three Kubernetes versions), and bad values rejected by
values.schema.json (or by the chart's own checks) with a message that names the value.
"""

from __future__ import annotations

import filecmp
import json
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.chart.helm import (
    CHART,
    CI_VALUES,
    NAMESPACE,
    ROOT,
    find,
    helm,
    one,
    pod_spec,
    render,
    require_helm,
)
from tests.chart.test_examples import crd_schema

KUBE_VERSIONS = ("1.34.0", "1.35.0", "1.36.0")
FULL = CHART / "ci" / "full-values.yaml"
NAMESPACED = CHART / "ci" / "namespaced-values.yaml"
STANDALONE = CHART / "ci" / "standalone-values.yaml"
SERVICE_MONITOR_API = "monitoring.coreos.com/v1/ServiceMonitor"
#: Kinds defined by CRDs; kubernetes-validate has no schema for them.
CUSTOM_KINDS = {"ResgateCluster", "ClusterKopfPeering", "KopfPeering", "ServiceMonitor", "HTTPRoute"}
STANDARD_LABELS = (
    "helm.sh/chart",
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/component",
    "app.kubernetes.io/version",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/managed-by",
)
WORKLOAD_KINDS = ("Deployment", "StatefulSet")
NATS = "resgateCluster.spec.nats.urls={nats://nats.messaging:4222}"


@pytest.fixture(scope="module", autouse=True)
def _helm() -> None:
    require_helm()


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod_spec(obj)
    return [*spec.get("initContainers", []), *spec["containers"]]


def pods_of(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] in (*WORKLOAD_KINDS, "Job", "Pod")]


# --- lint and validation --------------------------------------------------------------------------------


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_lint_strict(values: Path) -> None:
    out = helm("lint", "--strict", str(CHART), "-f", str(values)).stdout
    assert "1 chart(s) linted, 0 chart(s) failed" in out


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_rendered_objects_validate_strictly(values: Path) -> None:
    objects = render([values], api_versions=[SERVICE_MONITOR_API], include_crds=True)
    validated = 0
    for obj in objects:
        if obj["kind"] in CUSTOM_KINDS:
            continue
        for version in KUBE_VERSIONS:
            kubernetes_validate.validate(obj, version, strict=True)
        validated += 1
    assert validated >= 5, "the operator, its Service, ServiceAccount, RBAC and the CRDs at least"


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_resgatecluster_from_values_matches_the_crd(values: Path) -> None:
    schema = crd_schema()
    for obj in find(render([values]), "ResgateCluster"):
        jsonschema.validate(obj, schema)
        assert obj["apiVersion"] == "pyresgate.io/v1alpha1"


def test_crds_and_rbac_are_copies_of_the_operator_files() -> None:
    sources = sorted((ROOT / "operator/config/crd").glob("*.yaml"))
    assert [p.name for p in sources] == sorted(p.name for p in (CHART / "crds").glob("*.yaml"))
    for source in sources:
        assert filecmp.cmp(source, CHART / "crds" / source.name, shallow=False), (
            f"charts/pyresgate/crds/{source.name} differs from operator/config/crd/: copy it again"
        )
    assert filecmp.cmp(
        ROOT / "operator/config/rbac/clusterrole.yaml", CHART / "files/clusterrole.yaml", shallow=False
    ), "charts/pyresgate/files/clusterrole.yaml differs from operator/config/rbac/clusterrole.yaml"


# --- labels and selectors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_every_object_has_the_standard_labels(values: Path) -> None:
    for obj in render([values], api_versions=[SERVICE_MONITOR_API]):
        labels = obj["metadata"]["labels"]
        missing = [key for key in STANDARD_LABELS if key not in labels]
        assert not missing, f"{obj['kind']} {obj['metadata']['name']} lacks {missing}"
        assert labels["app.kubernetes.io/name"] == "pyresgate"
        assert labels["app.kubernetes.io/instance"] == "rel"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["app.kubernetes.io/part-of"] == "pyresgate"


def test_selectors_pick_their_own_pods_only() -> None:
    objects = render([FULL], api_versions=[SERVICE_MONITOR_API])
    workloads = [o for o in objects if o["kind"] in WORKLOAD_KINDS]
    assert {o["kind"] for o in workloads} == {"StatefulSet", "Deployment"}  # operator, Jaeger
    selectors = []
    for workload in workloads:
        selector = workload["spec"]["selector"]["matchLabels"]
        template_labels = workload["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= template_labels.items()
        assert "app.kubernetes.io/component" in selector
        assert "app.kubernetes.io/version" not in selector, "selectors are immutable: no version in them"
        selectors.append(selector)
    assert selectors[0] != selectors[1]
    for service in find(objects, "Service"):
        matching = [
            w
            for w in workloads
            if service["spec"]["selector"].items() <= w["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(matching) == 1, f"Service {service['metadata']['name']} selects {len(matching)} workloads"
        ports = {p["name"] for c in containers(matching[0]) for p in c.get("ports", [])}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports
    monitor = one(objects, "ServiceMonitor")
    operator_service = one(objects, "Service", "rel-pyresgate-operator")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= operator_service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"


# --- the operator pod -------------------------------------------------------------------------------------


def test_operator_pod_probes_ports_and_arguments() -> None:
    objects = render()
    operator = one(objects, "StatefulSet", "rel-pyresgate-operator")
    assert operator["spec"]["replicas"] == 1
    spec = pod_spec(operator)
    assert spec["serviceAccountName"] == one(objects, "ServiceAccount")["metadata"]["name"]
    (container,) = spec["containers"]
    assert container["image"] == "ghcr.io/pyresgate/pyresgate:0.1.0"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"healthz": 8080, "metrics": 8081}
    probe = container["livenessProbe"]
    assert probe["httpGet"] == {"path": "/healthz", "port": "healthz"}
    assert probe["periodSeconds"] > 0 and probe["failureThreshold"] >= 1
    assert container["args"] == [
        "pyresgate-operator",
        "--all-namespaces",
        "--peering=pyresgate-operator",
        "--priority=$(POD_INDEX)",
        "--liveness-port=8080",
        "--metrics-port=8081",
        "--gateway-image=ghcr.io/pyresgate/pyresgate:0.1.0",
    ]
    env = {e["name"]: e for e in container["env"]}
    assert env["POD_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"] == (
        "metadata.labels['apps.kubernetes.io/pod-index']"
    )
    assert env["POD_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"  # kopf's peer identity
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]


def test_operator_arguments_follow_the_values() -> None:
    (container,) = pod_spec(one(render([STANDALONE]), "StatefulSet"))["containers"]
    assert container["image"] == "registry.example.com/pyresgate:0.1.0-rc1"
    assert "--standalone" in container["args"]
    assert not any(a.startswith(("--peering", "--priority")) for a in container["args"])
    assert "--gateway-image=registry.example.com/pyresgate:0.1.0" in container["args"]
    (container,) = pod_spec(one(render([NAMESPACED]), "StatefulSet"))["containers"]
    assert "--namespace=apps" in container["args"] and f"--namespace={NAMESPACE}" in container["args"]
    assert "--all-namespaces" not in container["args"]
    objects = render([FULL])
    operator = one(objects, "StatefulSet")
    assert operator["spec"]["replicas"] == 2
    assert "--verbose" in pod_spec(operator)["containers"][0]["args"]


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_every_pod_runs_non_root_read_only_without_capabilities(values: Path) -> None:
    objects = render([values])
    pods = pods_of(objects)
    assert pods
    for obj in pods:
        spec = pod_spec(obj)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] > 0
        for container in containers(obj):
            context = container["securityContext"]
            name = f"{obj['kind']} {obj['metadata']['name']}/{container['name']}"
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            assert "add" not in context["capabilities"], name


# --- RBAC and peering -------------------------------------------------------------------------------------


def source_rules() -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = yaml.safe_load(
        (ROOT / "operator/config/rbac/clusterrole.yaml").read_text()
    )["rules"]
    return rules


def test_cluster_wide_rbac_is_the_operator_file() -> None:
    objects = render()
    role = one(objects, "ClusterRole")
    assert role["rules"] == source_rules()
    binding = one(objects, "ClusterRoleBinding")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "rel-pyresgate-operator", "namespace": NAMESPACE}
    ]
    assert not find(objects, "Role") and not find(objects, "RoleBinding")
    peering = one(objects, "ClusterKopfPeering")
    assert peering["metadata"]["name"] == "pyresgate-operator"


def test_namespaced_rbac_is_one_role_per_watched_namespace() -> None:
    objects = render([NAMESPACED])
    assert not find(objects, "ClusterRole") and not find(objects, "ClusterRoleBinding")
    assert not find(objects, "ClusterKopfPeering")
    roles = [
        r
        for r in find(objects, "Role")
        if r["metadata"]["labels"]["app.kubernetes.io/component"] == "operator"
    ]
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["apps", NAMESPACE]
    for role in roles:
        assert role["rules"] == source_rules()
    bindings = [b for b in find(objects, "RoleBinding") if b["roleRef"]["name"] == "rel-pyresgate-operator"]
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["apps", NAMESPACE]
    for binding in bindings:
        assert binding["roleRef"]["kind"] == "Role"
        assert binding["subjects"][0]["namespace"] == NAMESPACE
    peerings = find(objects, "KopfPeering")
    assert sorted((p["metadata"]["namespace"], p["metadata"]["name"]) for p in peerings) == [
        ("apps", "pyresgate-operator"),
        (NAMESPACE, "pyresgate-operator"),
    ]


def test_standalone_has_no_peering_and_a_named_service_account() -> None:
    objects = render([STANDALONE])
    assert not find(objects, "ClusterKopfPeering") and not find(objects, "KopfPeering")
    assert one(objects, "ServiceAccount")["metadata"]["name"] == "resgate-operator"
    assert pod_spec(one(objects, "StatefulSet"))["serviceAccountName"] == "resgate-operator"
    assert one(objects, "ClusterRoleBinding")["subjects"][0]["name"] == "resgate-operator"
    assert not find(objects, "Pod"), "tests.enabled=false renders no test pod"


def test_uninstall_hook_deletes_the_resgatecluster_with_least_rights() -> None:
    assert not find(render(), "Job"), "no ResgateCluster, nothing to clean up"
    objects = render([FULL])
    job = one(objects, "Job", "rel-pyresgate-cleanup")
    for obj in [job, *find(objects, "ServiceAccount", "rel-pyresgate-cleanup")]:
        assert obj["metadata"]["annotations"]["helm.sh/hook"] == "pre-delete"
        assert "hook-succeeded" in obj["metadata"]["annotations"]["helm.sh/hook-delete-policy"]
    role = one(objects, "Role", "rel-pyresgate-cleanup")
    assert role["rules"] == [
        {
            "apiGroups": ["pyresgate.io"],
            "resources": ["resgateclusters"],
            "resourceNames": ["edge"],
            "verbs": ["get", "delete", "patch"],
        }
    ]
    (container,) = pod_spec(job)["containers"]
    assert container["args"][0] == (CHART / "files/delete-resgatecluster.py").read_text()
    assert container["args"][1:] == [NAMESPACE, "edge", "60"]
    assert pod_spec(job)["serviceAccountName"] == "rel-pyresgate-cleanup"


# --- optional parts ---------------------------------------------------------------------------------------


def test_service_monitor_only_where_the_api_exists() -> None:
    assert not find(render([FULL]), "ServiceMonitor")
    assert one(render([FULL], api_versions=[SERVICE_MONITOR_API]), "ServiceMonitor")
    assert not find(render(api_versions=[SERVICE_MONITOR_API]), "ServiceMonitor"), "off by default"


def test_resgatecluster_spec_is_the_values_spec_with_tracing_to_jaeger() -> None:
    objects = render([FULL])
    cluster = one(objects, "ResgateCluster", "edge")
    values = yaml.safe_load(FULL.read_text())["resgateCluster"]["spec"]
    tracing = cluster["spec"].pop("tracing")
    del values["replicas"]  # autoscaling owns it
    assert cluster["spec"] == values
    jaeger_service = one(objects, "Service", "rel-pyresgate-jaeger")
    assert tracing == {
        "otlpEndpoint": f"http://rel-pyresgate-jaeger.{NAMESPACE}.svc:4318",
        "protocol": "http/protobuf",
        "samplerRatio": 1.0,
    }
    ports = {p["name"]: p["port"] for p in jaeger_service["spec"]["ports"]}
    assert ports == {"otlp-grpc": 4317, "otlp-http": 4318, "ui": 16686}
    (jaeger,) = pod_spec(one(objects, "Deployment", "rel-pyresgate-jaeger"))["containers"]
    assert jaeger["image"].startswith("jaegertracing/all-in-one:")
    assert jaeger["readinessProbe"]["httpGet"]["port"] == "admin"


def test_with_autoscaling_the_chart_leaves_replicas_to_the_hpa() -> None:
    cluster = one(render([FULL]), "ResgateCluster")
    assert "replicas" not in cluster["spec"], "the HPA owns spec.replicas through the scale subresource"
    cluster = one(
        render([FULL], set_json=['resgateCluster.spec.autoscaling={"enabled":false,"maxReplicas":4}']),
        "ResgateCluster",
    )
    assert cluster["spec"]["replicas"] == 3


def test_an_explicit_otlp_endpoint_wins_over_the_charts_jaeger() -> None:
    cluster = one(
        render(
            sets=[
                "resgateCluster.enabled=true",
                NATS,
                "jaeger.enabled=true",
                "resgateCluster.spec.tracing.otlpEndpoint=http://collector.obs:4318",
            ],
            set_json=["resgateCluster.spec.tracing.samplerRatio=0.05"],
        ),
        "ResgateCluster",
    )
    assert cluster["spec"]["tracing"] == {"otlpEndpoint": "http://collector.obs:4318", "samplerRatio": 0.05}
    cluster = one(render(sets=["resgateCluster.enabled=true", NATS]), "ResgateCluster")
    assert "tracing" not in cluster["spec"], "no Jaeger, no tracing unless asked for"


def test_ingress_and_httproute_reach_the_gateways_with_long_timeouts() -> None:
    objects = render([FULL])
    ingress = one(objects, "Ingress", "edge")
    annotations = ingress["metadata"]["annotations"]
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-send-timeout"]) >= 3600
    (path,) = ingress["spec"]["rules"][0]["http"]["paths"]
    assert path["backend"]["service"] == {"name": "edge", "port": {"name": "http"}}
    assert not any("affinity" in key for key in annotations), "no sticky sessions"
    route = one(objects, "HTTPRoute", "edge")
    (rule,) = route["spec"]["rules"]
    assert rule["backendRefs"] == [{"name": "edge", "port": 8080}]
    assert rule["timeouts"] == {"request": "0s", "backendRequest": "0s"}
    assert route["spec"]["parentRefs"] == [{"name": "public", "namespace": "gateway-system"}]


def test_grafana_dashboard_configmap_carries_the_sidecar_label_and_the_json() -> None:
    objects = render()
    config_map = one(objects, "ConfigMap", "rel-pyresgate-dashboard")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    shipped = json.loads(config_map["data"]["pyresgate.json"])
    assert shipped == json.loads((CHART / "files/dashboards/pyresgate.json").read_text())
    assert not find(render([NAMESPACED]), "ConfigMap")


def test_helm_test_pod_gets_the_gateway_service_with_the_gateway_image() -> None:
    assert not find(render(), "Pod"), "no ResgateCluster, no test"
    objects = render([FULL])
    pod = one(objects, "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    (container,) = pod["spec"]["containers"]
    assert container["image"] == "ghcr.io/pyresgate/pyresgate:0.1.0"
    assert container["command"] == ["python3", "-c"]
    assert container["args"][1] == f"http://edge.{NAMESPACE}.svc:8080/api/helm/test"
    assert pod["spec"]["restartPolicy"] == "Never"


def test_notes_say_what_to_do_next() -> None:
    out = helm("install", "rel", str(CHART), "--dry-run=client", "-n", NAMESPACE, "-f", str(FULL)).stdout
    notes = out.split("NOTES:", 1)[1]
    assert f"kubectl -n {NAMESPACE} wait rgc/edge --for=condition=Ready" in notes
    assert f"kubectl -n {NAMESPACE} port-forward service/rel-pyresgate-jaeger 16686:16686" in notes
    assert "helm test rel" in notes
    assert "no sticky sessions" in notes
    bare = helm("install", "rel", str(CHART), "--dry-run=client", "-n", NAMESPACE).stdout
    assert "resgateCluster.enabled=true" in bare.split("NOTES:", 1)[1]


# --- bad values ------------------------------------------------------------------------------------------

BAD_VALUES = [
    (["operator.replicas=0"], "/operator/replicas"),
    (["operator.replicas=3"], "/operator/replicas"),
    (["operator.replicas=2", "operator.peering.enabled=false"], "/operator/replicas"),
    (["operator.watchNamespaces={Apps}"], "/operator/watchNamespaces/0"),
    (["operator.livenessPort=70000"], "/operator/livenessPort"),
    (["operator.serviceMonitor.interval=often"], "/operator/serviceMonitor/interval"),
    (["image.pullPolicy=Sometimes"], "/image/pullPolicy"),
    (["image.repository=Not An Image"], "/image/repository"),
    (["resgateCluster.name=Edge_1"], "/resgateCluster/name"),
    (["resgateCluster.spec.nats.urls={http://nats:4222}"], "/resgateCluster/spec/nats/urls/0"),
    (["resgateCluster.spec.replicas=-1"], "/resgateCluster/spec/replicas"),
    (["jaeger.samplerRatio=2"], "/jaeger/samplerRatio"),
    (["cleanup.finalizerWaitSeconds=0"], "/cleanup/finalizerWaitSeconds"),
    # --set makes 0.5 a string: the schema says to use --set-json (or a values file) for numbers
    (["resgateCluster.spec.tracing.samplerRatio=0.5"], "/resgateCluster/spec/tracing/samplerRatio"),
    (["resgateCluster.spec.tracing.protocol=udp"], "/resgateCluster/spec/tracing/protocol"),
    (["httpRoute.enabled=true"], "/httpRoute/parentRefs"),
    (["ingress.hosts[0].paths[0].pathType=Regex"], "/ingress/hosts/0/paths/0/pathType"),
    (["replicaCount=3"], "additional properties 'replicaCount' not allowed"),
    (["operator.replica=2"], "additional properties 'replica' not allowed"),
    # rules the templates check, with their own messages
    (["resgateCluster.enabled=true"], "resgateCluster.spec.nats needs urls"),
    (
        ["resgateCluster.enabled=true", NATS, "resgateCluster.spec.nats.serviceRef.name=nats"],
        "set either urls or serviceRef, not both",
    ),
    (["ingress.enabled=true"], "set resgateCluster.enabled=true"),
    (
        ["resgateCluster.enabled=true", NATS, "operator.watchNamespaces={apps}"],
        "which operator.watchNamespaces [apps] does not list",
    ),
    (
        ["operator.serviceAccount.create=false"],
        "operator.serviceAccount.name is required when operator.serviceAccount.create is false",
    ),
]


@pytest.mark.parametrize(("sets", "message"), BAD_VALUES, ids=[" ".join(s) for s, _ in BAD_VALUES])
def test_bad_values_are_rejected_with_a_clear_message(sets: list[str], message: str) -> None:
    args = ["template", "rel", str(CHART)]
    for item in sets:
        args += ["--set", item]
    proc = helm(*args, check=False)
    assert proc.returncode != 0, f"{sets} was accepted"
    assert message in proc.stderr, proc.stderr
    assert "panic" not in proc.stderr
