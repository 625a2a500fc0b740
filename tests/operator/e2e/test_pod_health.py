"""Crashed and stuck gateways: the fake node simulates CrashLoopBackOff and unready pods on request."""

from __future__ import annotations

from tests.operator.e2e import rgc
from tests.operator.e2e.conftest import settle
from tests.support import k8s


def test_crash_looping_pod_degrades_and_is_replaced(kubectl: k8s.Kubectl, namespace: str) -> None:
    kubectl.apply(rgc.manifest("edge", namespace, replicas=3))
    rgc.wait_ready(kubectl, "edge", namespace, replicas=3)
    victim = rgc.pods(kubectl, "edge", namespace)[0]["metadata"]["name"]
    kubectl.run("annotate", "pod", victim, "-n", namespace, "fake-kubelet/crashloop=true")

    event = rgc.wait_event(kubectl, "edge", namespace, "CrashLoopBackOff")
    assert event["type"] == "Warning" and victim in event["message"]
    replaced = rgc.wait_event(kubectl, "edge", namespace, "ReplacedPod")
    assert victim in replaced["message"]
    k8s.wait_until(
        lambda: victim not in {pod["metadata"]["name"] for pod in rgc.pods(kubectl, "edge", namespace)},
        what="crash-looping pod gone",
    )
    cluster = rgc.wait_ready(kubectl, "edge", namespace, replicas=3)
    assert cluster["status"]["podReplacements"] == 1
    rgc.wait_condition(kubectl, "edge", namespace, "Degraded", "False")
    rgc.wait_event(kubectl, "edge", namespace, "Recovered")


def test_pod_unready_too_long_while_others_are_ready_is_replaced(
    kubectl: k8s.Kubectl, namespace: str
) -> None:
    kubectl.apply(rgc.manifest("edge", namespace, replicas=2, unhealthyPodTimeout="3s"))
    rgc.wait_ready(kubectl, "edge", namespace, replicas=2)
    victim = rgc.pods(kubectl, "edge", namespace)[0]["metadata"]["name"]
    kubectl.run("annotate", "pod", victim, "-n", namespace, "fake-kubelet/unready=true")
    replaced = rgc.wait_event(kubectl, "edge", namespace, "ReplacedPod", timeout=60)
    assert victim in replaced["message"] and "Unready" in replaced["message"]
    rgc.wait_ready(kubectl, "edge", namespace, replicas=2)


def test_all_gateways_unready_means_nats_is_lost_and_no_pod_is_replaced(
    kubectl: k8s.Kubectl, namespace: str
) -> None:
    kubectl.apply(rgc.manifest("edge", namespace, replicas=2, unhealthyPodTimeout="5s"))
    rgc.wait_ready(kubectl, "edge", namespace, replicas=2)
    names = {pod["metadata"]["name"] for pod in rgc.pods(kubectl, "edge", namespace)}
    selector = rgc.SELECTOR.format(name="edge")
    kubectl.run(
        "annotate", "pods", "-n", namespace, "-l", selector, "fake-kubelet/unready=true"
    )  # both at once
    cluster = rgc.wait_condition(
        kubectl, "edge", namespace, "NatsConnected", "False", reason="NoGatewayConnected"
    )
    assert "nats://nats.messaging:4222" in rgc.condition(cluster, "NatsConnected")["message"]
    assert rgc.condition(cluster, "Ready")["status"] == "False"
    rgc.wait_event(kubectl, "edge", namespace, "NatsDisconnected")
    settle(12)  # more than twice the timeout: nothing may be evicted while no gateway is ready
    assert {pod["metadata"]["name"] for pod in rgc.live_pods(kubectl, "edge", namespace)} == names
    assert not [event for event in rgc.events(kubectl, "edge", namespace) if event["reason"] == "ReplacedPod"]

    kubectl.run("annotate", "pods", "-n", namespace, "-l", selector, "fake-kubelet/unready-")
    rgc.wait_condition(kubectl, "edge", namespace, "NatsConnected", "True")
    rgc.wait_ready(kubectl, "edge", namespace, replicas=2)
