"""The chart on a real Kubernetes control plane (../shared/k8s: kube-apiserver, etcd, controller-manager,
scheduler and a fake node that reports pods running but runs nothing).

One story, in order: ``helm install`` (the real helm binary) installs the CRDs, the operator and a
ResgateCluster; the operator pod is scheduled and reported running; the operator, run on the host as a
real ``pyresgate-operator`` process with the arguments of the chart's StatefulSet and the token of the
chart's ServiceAccount, reconciles the ResgateCluster to Ready; ``helm upgrade`` with a changed gateway
setting rolls the gateways; ``helm uninstall`` (its pre-delete hook run on the host with the hook's own
ServiceAccount) removes everything but the CRDs; ``kubectl apply -f manifests/`` gives the same objects
as the Helm install.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.chart.helm import CHART, HELM_TIMEOUT, ROOT, helm, require_helm
from tests.chart.kube import Cluster, HostProcess, operator_argv, wait_for
from tests.support.natsserver import free_port

RELEASE = "pyresgate"
NAMESPACE = "pyresgate-system"
GATEWAYS = "edge"
CRDS = ("resgateclusters.pyresgate.io", "clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev")
#: Seconds the operator gets to bring the gateways to Ready (and to roll them).
RECONCILE_TIMEOUT = 90.0
VALUES = {
    "resgateCluster": {
        "enabled": True,
        "name": GATEWAYS,
        "spec": {
            "replicas": 2,
            "nats": {"urls": ["nats://nats.messaging:4222"]},
            "gateway": {"requestTimeout": 3000},
        },
    },
}

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    require_helm()
    running = Cluster.up()
    try:
        yield running
    finally:
        running.down()


@pytest.fixture(scope="module")
def story(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """State shared by the steps below (each step needs the previous one); stops the host operator."""
    state: dict[str, Any] = {"dir": tmp_path_factory.mktemp("story")}
    try:
        yield state
    finally:
        operator: HostProcess | None = state.get("operator")
        if operator is not None:
            operator.stop()


def helm_on(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    return helm(*args, env=cluster.env)


def condition(obj: dict[str, Any] | None, kind: str) -> dict[str, Any] | None:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond["type"] == kind:
            found: dict[str, Any] = cond
            return found
    return None


def ready_resgatecluster(cluster: Cluster) -> dict[str, Any] | None:
    rgc = cluster.get("-n", NAMESPACE, "resgatecluster", GATEWAYS)
    cond = condition(rgc, "Ready")
    if (
        rgc
        and cond
        and cond["status"] == "True"
        and cond["observedGeneration"] == rgc["metadata"]["generation"]
    ):
        found: dict[str, Any] = rgc
        return found
    return None


HELM_ONLY_LABELS = ("helm.sh/chart", "app.kubernetes.io/managed-by")


def without_helm_labels(value: Any) -> Any:
    """``value`` with Helm's own labels removed from every ``labels`` map in it (pod templates too)."""
    if isinstance(value, dict):
        return {
            key: (
                {k: v for k, v in item.items() if k not in HELM_ONLY_LABELS}
                if key == "labels" and isinstance(item, dict)
                else without_helm_labels(item)
            )
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [without_helm_labels(item) for item in value]
    return value


def comparable(obj: dict[str, Any]) -> dict[str, Any]:
    """An object without what the API server, Helm or kubectl add: what the user asked for."""
    meta = obj["metadata"]
    annotations = {
        k: v for k, v in (meta.get("annotations") or {}).items() if not k.startswith("meta.helm.sh/")
    }
    body = {k: v for k, v in obj.items() if k not in ("metadata", "status")}
    kept = {"name": meta["name"], "namespace": meta.get("namespace"), "labels": meta.get("labels") or {}}
    result: dict[str, Any] = without_helm_labels({**kept, "annotations": annotations, **body})
    return result


def manifest_objects() -> list[tuple[str, str, str | None]]:
    docs = yaml.safe_load_all((ROOT / "manifests" / "02-operator.yaml").read_text())
    return [(d["kind"], d["metadata"]["name"], d["metadata"].get("namespace")) for d in docs if d]


def live(cluster: Cluster, kind: str, name: str, namespace: str | None) -> dict[str, Any] | None:
    args = ["-n", namespace] if namespace else []
    found: dict[str, Any] | None = cluster.get(*args, kind, name)
    return found


def test_helm_install_runs_the_operator_pod(cluster: Cluster, story: dict[str, Any]) -> None:
    values = story["dir"] / "values.yaml"
    values.write_text(yaml.safe_dump(VALUES))
    story["values"] = values
    helm_on(
        cluster,
        "install",
        RELEASE,
        str(CHART),
        "-n",
        NAMESPACE,
        "--create-namespace",
        "-f",
        str(values),
        "--wait",
        "--timeout",
        "2m",
    )
    status = json.loads(helm_on(cluster, "status", RELEASE, "-n", NAMESPACE, "-o", "json").stdout)
    assert status["info"]["status"] == "deployed"
    for crd in CRDS:
        established = condition(cluster.get("crd", crd), "Established")
        assert established and established["status"] == "True", crd
    pod = wait_for(
        "the operator pod running and ready",
        lambda: (
            (p := cluster.get("-n", NAMESPACE, "pod", "pyresgate-operator-0"))
            and p["status"].get("phase") == "Running"
            and (condition(p, "Ready") or {}).get("status") == "True"
            and p
        ),
    )
    assert pod["spec"]["nodeName"] == "fake-node-1"
    assert pod["spec"]["serviceAccountName"] == "pyresgate-operator"
    assert pod["metadata"]["labels"]["apps.kubernetes.io/pod-index"] == "0", "the priority comes from it"
    role = cluster.get("clusterrole", "pyresgate-operator")
    source = yaml.safe_load((ROOT / "operator/config/rbac/clusterrole.yaml").read_text())
    assert role["rules"] == source["rules"]
    assert cluster.get("clusterkopfpeering", "pyresgate-operator")
    # what `kubectl apply -f manifests/` must give again, at the end
    story["helm_objects"] = {key: comparable(live(cluster, *key)) for key in manifest_objects()}


def test_operator_reconciles_the_resgatecluster_to_ready(cluster: Cluster, story: dict[str, Any]) -> None:
    statefulset = cluster.get("-n", NAMESPACE, "statefulset", "pyresgate-operator")
    (container,) = statefulset["spec"]["template"]["spec"]["containers"]
    token = cluster.token_kubeconfig(NAMESPACE, statefulset["spec"]["template"]["spec"]["serviceAccountName"])
    who = cluster.kubectl("auth", "whoami", "-o", "json", kubeconfig=token).stdout
    assert json.loads(who)["status"]["userInfo"]["username"] == (
        f"system:serviceaccount:{NAMESPACE}:pyresgate-operator"
    )
    argv = operator_argv(container, free_port(), free_port())
    story["operator"] = operator = HostProcess(argv, token, story["dir"] / "operator.log")
    try:
        rgc = wait_for("ResgateCluster Ready", lambda: ready_resgatecluster(cluster), RECONCILE_TIMEOUT, 1.0)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\noperator log:\n{operator.tail()}") from None
    assert rgc["status"]["readyReplicas"] == 2
    deployment = cluster.get("-n", NAMESPACE, "deployment", GATEWAYS)
    assert deployment["metadata"]["ownerReferences"][0]["uid"] == rgc["metadata"]["uid"]
    assert (
        deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        == "ghcr.io/pyresgate/pyresgate:0.1.0"
    )
    config = cluster.get("-n", NAMESPACE, "configmap", f"{GATEWAYS}-config")
    assert json.loads(next(iter(config["data"].values())))["requestTimeout"] == 3000
    assert operator.proc.poll() is None, operator.tail()


def replica_sets(cluster: Cluster) -> set[str]:
    items = cluster.get("-n", NAMESPACE, "replicaset", "-l", "app.kubernetes.io/instance=" + GATEWAYS)[
        "items"
    ]
    return {rs["metadata"]["name"] for rs in items}


def test_helm_upgrade_with_a_new_gateway_setting_rolls_the_gateways(
    cluster: Cluster, story: dict[str, Any]
) -> None:
    assert "operator" in story, "needs the running operator of the previous step"
    deployment = cluster.get("-n", NAMESPACE, "deployment", GATEWAYS)
    old_hash = deployment["spec"]["template"]["metadata"]["annotations"]["pyresgate.io/config-hash"]
    old_sets = replica_sets(cluster)
    helm_on(
        cluster,
        "upgrade",
        RELEASE,
        str(CHART),
        "-n",
        NAMESPACE,
        "--reuse-values",
        "--set",
        "resgateCluster.spec.gateway.requestTimeout=7000",
        "--wait",
        "--timeout",
        "2m",
    )

    def rolled() -> dict[str, Any] | None:
        found = cluster.get("-n", NAMESPACE, "deployment", GATEWAYS)
        annotations = found["spec"]["template"]["metadata"]["annotations"]
        return found if annotations["pyresgate.io/config-hash"] != old_hash else None

    wait_for("a new config hash on the gateways' pod template", rolled, RECONCILE_TIMEOUT, 1.0)
    new_sets = wait_for("a new ReplicaSet", lambda: (s := replica_sets(cluster)) - old_sets and s, 30)
    assert old_sets < new_sets
    wait_for(
        "ResgateCluster Ready after the rollout",
        lambda: ready_resgatecluster(cluster),
        RECONCILE_TIMEOUT,
        1.0,
    )
    config = cluster.get("-n", NAMESPACE, "configmap", f"{GATEWAYS}-config")
    assert json.loads(next(iter(config["data"].values())))["requestTimeout"] == 7000
    assert (
        json.loads(helm_on(cluster, "status", RELEASE, "-n", NAMESPACE, "-o", "json").stdout)["version"] == 2
    )


def run_cleanup_hook(cluster: Cluster, story: dict[str, Any]) -> str:
    """Play the node's part for the pre-delete hook's pod: run its container on the host, report its end."""
    pod = wait_for(
        "the pre-delete hook's pod",
        lambda: (
            (
                items := cluster.get("-n", NAMESPACE, "pod", "-l", "app.kubernetes.io/component=cleanup")[
                    "items"
                ]
            )
            and items[0]
        ),
        60,
    )
    (container,) = pod["spec"]["containers"]
    assert container["command"] == ["python3", "-c"]
    token = cluster.token_kubeconfig(NAMESPACE, pod["spec"]["serviceAccountName"])
    hook = HostProcess([sys.executable, "-c", *container["args"]], token, story["dir"] / "hook.log")
    try:
        code = hook.proc.wait(120)
    finally:
        hook.stop()
    phase = "Succeeded" if code == 0 else "Failed"
    cluster.kubectl(
        "-n", NAMESPACE, "annotate", "pod", pod["metadata"]["name"], f"fake-kubelet/phase={phase}"
    )
    assert code == 0, hook.tail()
    return hook.tail()


def test_helm_uninstall_removes_everything_but_the_crds(cluster: Cluster, story: dict[str, Any]) -> None:
    assert "operator" in story, "needs the running operator of the previous steps"
    uninstall = subprocess.Popen(
        [str(require_helm()), "uninstall", RELEASE, "-n", NAMESPACE, "--wait", "--timeout", "3m"],
        env={"KUBECONFIG": str(cluster.kubeconfig), "PATH": "/usr/bin:/bin", "HOME": str(story["dir"])},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        hook_log = run_cleanup_hook(cluster, story)
        out, _ = uninstall.communicate(timeout=HELM_TIMEOUT)
    finally:
        if uninstall.poll() is None:
            uninstall.kill()
            uninstall.wait(10)
    assert uninstall.returncode == 0, out
    assert "is gone" in hook_log and "removing its finalizers" not in hook_log, "the operator released it"
    story.pop("operator").stop()
    assert cluster.get("-n", NAMESPACE, "resgatecluster", GATEWAYS) is None
    wait_for(
        "the gateways garbage-collected",
        lambda: cluster.get("-n", NAMESPACE, "deployment", GATEWAYS) is None,
        60,
    )

    def left_behind() -> list[str]:
        # every object of the chart and of the operator says part-of=pyresgate
        kinds = "all,serviceaccount,configmap,secret,role,rolebinding,job,poddisruptionbudget"
        items = cluster.get("-n", NAMESPACE, kinds, "-l", "app.kubernetes.io/part-of=pyresgate")["items"]
        return [f"{o['kind']}/{o['metadata']['name']}" for o in items]

    try:
        wait_for("nothing of the release left in its namespace", lambda: not left_behind() or None, 60)
    except AssertionError:
        raise AssertionError(f"left behind: {left_behind()}") from None
    for kind, name in (
        ("clusterrole", "pyresgate-operator"),
        ("clusterrolebinding", "pyresgate-operator"),
        ("clusterkopfpeering", "pyresgate-operator"),
    ):
        assert cluster.get(kind, name) is None, f"{kind}/{name} left behind"
    for crd in CRDS:
        assert cluster.get("crd", crd), f"Helm keeps CRDs: {crd} must still be there"


def test_kubectl_apply_of_the_manifests_gives_the_same_objects(
    cluster: Cluster, story: dict[str, Any]
) -> None:
    manifests = ROOT / "manifests"
    cluster.kubectl("apply", "--server-side", "-f", str(manifests / "00-crds.yaml"))
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", *(f"crd/{c}" for c in CRDS))
    cluster.kubectl("apply", "--server-side", "-f", str(manifests))
    for key, from_helm in story["helm_objects"].items():
        applied = wait_for(f"{key} applied", lambda key=key: live(cluster, *key), 30)
        assert comparable(applied) == from_helm, f"{key} differs between helm install and manifests/"
    wait_for(
        "the operator pod of the manifests running",
        lambda: (
            (p := cluster.get("-n", NAMESPACE, "pod", "pyresgate-operator-0"))
            and (condition(p, "Ready") or {}).get("status") == "True"
        ),
    )


def test_uninstall_hook_removes_the_finalizer_when_no_operator_does(
    cluster: Cluster, story: dict[str, Any]
) -> None:
    """The hook's fallback: with no operator running, the ResgateCluster is released after the wait."""
    cluster.kubectl("create", "namespace", "orphans")
    orphan = {
        "apiVersion": "pyresgate.io/v1alpha1",
        "kind": "ResgateCluster",
        "metadata": {"name": "orphan", "namespace": "orphans", "finalizers": ["pyresgate.io/operator"]},
        "spec": {"nats": {"urls": ["nats://nats.messaging:4222"]}},
    }
    cluster.kubectl("apply", "-f", "-", stdin=json.dumps(orphan))
    script = (CHART / "files" / "delete-resgatecluster.py").read_text()
    hook = HostProcess(
        [sys.executable, "-c", script, "orphans", "orphan", "3"],
        cluster.kubeconfig,
        story["dir"] / "orphan.log",
    )
    try:
        assert hook.proc.wait(60) == 0, hook.tail()
    finally:
        hook.stop()
    assert "removing its finalizers" in hook.tail()
    assert cluster.get("-n", "orphans", "resgatecluster", "orphan") is None


def test_a_namespaced_release_works_with_roles_only(cluster: Cluster, story: dict[str, Any]) -> None:
    """operator.watchNamespaces: Roles and a KopfPeering in the namespace, nothing cluster-wide, and the
    operator (its token, its arguments) still reconciles the release's ResgateCluster to Ready."""
    values = story["dir"] / "scoped.yaml"
    values.write_text(
        yaml.safe_dump(
            {
                "operator": {"watchNamespaces": ["team-a"]},
                "resgateCluster": {
                    "enabled": True,
                    "name": "scoped",
                    "spec": VALUES["resgateCluster"]["spec"],
                },
            }
        )
    )
    helm_on(
        cluster, "install", "scoped", str(CHART), "-n", "team-a", "--create-namespace", "-f", str(values),
        "--wait", "--timeout", "2m",
    )  # fmt: skip
    assert cluster.get("clusterrole", "scoped-pyresgate-operator") is None
    assert cluster.get("-n", "team-a", "role", "scoped-pyresgate-operator")
    assert cluster.get("-n", "team-a", "kopfpeering", "pyresgate-operator")
    statefulset = cluster.get("-n", "team-a", "statefulset", "scoped-pyresgate-operator")
    (container,) = statefulset["spec"]["template"]["spec"]["containers"]
    assert "--namespace=team-a" in container["args"]
    token = cluster.token_kubeconfig("team-a", "scoped-pyresgate-operator")
    denied = cluster.kubectl("auth", "can-i", "list", "resgateclusters", "-A", kubeconfig=token, check=False)
    assert denied.stdout.strip() == "no", "no cluster-wide rights"
    operator = HostProcess(
        operator_argv(container, free_port(), free_port()), token, story["dir"] / "scoped-operator.log"
    )
    try:

        def ready() -> bool:
            cond = condition(cluster.get("-n", "team-a", "resgatecluster", "scoped"), "Ready")
            return bool(cond and cond["status"] == "True")

        try:
            wait_for("the namespaced ResgateCluster Ready", ready, RECONCILE_TIMEOUT, 1.0)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\noperator log:\n{operator.tail()}") from None
        assert "Forbidden" not in operator.tail(20_000), operator.tail()
    finally:
        operator.stop()
