"""Bad references and specs only the operator can judge: a clear condition, never a crash loop."""

from __future__ import annotations

import base64

from tests.operator.e2e import rgc
from tests.operator.e2e.conftest import settle
from tests.support import k8s


def test_missing_secret_blocks_with_a_clear_condition_until_it_exists(
    kubectl: k8s.Kubectl, namespace: str
) -> None:
    nats = {"urls": ["nats://nats.messaging:4222"], "tlsSecret": {"name": "nats-client-tls"}}
    kubectl.apply(rgc.manifest("edge", namespace, replicas=1, nats=nats))
    cluster = rgc.wait_condition(kubectl, "edge", namespace, "Degraded", "True", reason="SecretNotFound")
    ready = rgc.condition(cluster, "Ready")
    assert ready["status"] == "False" and ready["reason"] == "SecretNotFound"
    assert f"Secret {namespace}/nats-client-tls" in ready["message"]
    assert kubectl.get("deployment", "edge", namespace) is None
    rgc.wait_event(kubectl, "edge", namespace, "SecretNotFound")

    partial = {"tls.crt": "Y2VydA==", "tls.key": "a2V5"}
    kubectl.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "nats-client-tls", "namespace": namespace},
                   "data": partial})  # fmt: skip
    cluster = rgc.wait_condition(kubectl, "edge", namespace, "Degraded", "True", reason="SecretKeyNotFound")
    assert "ca.crt" in rgc.condition(cluster, "Degraded")["message"]

    full = {**partial, "ca.crt": base64.b64encode(b"ca").decode()}
    kubectl.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "nats-client-tls", "namespace": namespace},
                   "data": full})  # fmt: skip
    rgc.wait_ready(kubectl, "edge", namespace, replicas=1)
    mounts = kubectl.get("deployment", "edge", namespace)["spec"]["template"]["spec"]["containers"][0][
        "volumeMounts"
    ]  # type: ignore[index]
    assert {"name": "nats-tls", "mountPath": "/etc/pyresgate/nats-tls", "readOnly": True} in mounts


def test_nats_service_reference_resolves_to_its_dns_name(kubectl: k8s.Kubectl, namespace: str) -> None:
    nats = {"serviceRef": {"name": "nats"}}
    kubectl.apply(rgc.manifest("edge", namespace, replicas=1, nats=nats))
    cluster = rgc.wait_condition(kubectl, "edge", namespace, "Degraded", "True", reason="NatsServiceNotFound")
    assert f"NATS Service {namespace}/nats" in rgc.condition(cluster, "Degraded")["message"]

    kubectl.apply({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "nats", "namespace": namespace},
        "spec": {"selector": {"app": "nats"}, "ports": [{"name": "monitor", "port": 8222}, {"name": "client", "port": 4223}]},
    })  # fmt: skip
    cluster = rgc.wait_ready(kubectl, "edge", namespace, replicas=1)
    assert cluster["status"]["natsUrl"] == f"nats://nats.{namespace}.svc:4223"


def test_gateway_settings_the_gateway_refuses_are_an_invalid_spec(
    kubectl: k8s.Kubectl, namespace: str
) -> None:
    kubectl.apply(rgc.manifest("edge", namespace, replicas=1, gateway={"headerAuth": "auth"}))
    cluster = rgc.wait_condition(kubectl, "edge", namespace, "Degraded", "True", reason="InvalidSpec")
    message = rgc.condition(cluster, "Degraded")["message"]
    assert "headerAuth" in message and "<resource ID>.<method>" in message
    event = rgc.wait_event(kubectl, "edge", namespace, "InvalidSpec")
    assert event["type"] == "Warning"
    assert kubectl.get("deployment", "edge", namespace) is None

    kubectl.apply(rgc.manifest("edge", namespace, replicas=1, gateway={"headerAuth": "auth.jwt.header"}))
    rgc.wait_ready(kubectl, "edge", namespace, replicas=1)
    settle(1)
    assert rgc.condition(kubectl.get("resgatecluster", "edge", namespace), "Degraded")["status"] == "False"
