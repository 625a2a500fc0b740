"""Invalid ResgateClusters are refused by the API server itself, with the schema's or CEL rule's message."""

from __future__ import annotations

from typing import Any

import pytest

from tests.operator.e2e import rgc
from tests.support import k8s

CASES: list[tuple[str, dict[str, Any], str]] = [
    ("no nats", {"nats": None}, "spec.nats: Required value"),
    ("urls and serviceRef", {"nats": {"urls": ["nats://a:4222"], "serviceRef": {"name": "nats"}}},
     "set exactly one of urls and serviceRef"),
    ("neither urls nor serviceRef", {"nats": {"credentialsSecret": {"name": "x"}}}, "set exactly one of urls and serviceRef"),
    ("http scheme", {"nats": {"urls": ["http://nats:4222"]}}, "spec.nats.urls[0]"),
    ("negative replicas", {"replicas": -1}, "spec.replicas"),
    ("admin port 0", {"gateway": {"adminPort": 0}}, "adminPort must not be 0"),
    ("port equals admin port", {"gateway": {"port": 9000, "adminPort": 9000}}, "port and adminPort must differ"),
    ("port out of range", {"gateway": {"port": 70000}}, "spec.gateway.port"),
    ("bad encoding", {"gateway": {"apiEncoding": "xml"}}, "spec.gateway.apiEncoding"),
    ("unknown gateway key", {"gateway": {"natsUrl": "nats://x:4222"}}, ".spec.gateway.natsUrl: field not declared in schema"),
    ("max below min", {"autoscaling": {"minReplicas": 5, "maxReplicas": 2, "targetCPUUtilization": 50}},
     "maxReplicas must be at least minReplicas"),
    ("no scaling target", {"autoscaling": {"maxReplicas": 4}}, "set targetCPUUtilization, targetConnectionsPerPod or both"),
    ("sampler above 1", {"tracing": {"otlpEndpoint": "http://jaeger:4318", "samplerRatio": 2}}, "spec.tracing.samplerRatio"),
    ("bad pull policy", {"image": {"pullPolicy": "Sometimes"}}, "spec.image.pullPolicy"),
    ("bad duration", {"unhealthyPodTimeout": "soon"}, "spec.unhealthyPodTimeout"),
]  # fmt: skip


@pytest.mark.parametrize(("spec", "message"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_api_server_rejects_invalid_resource(
    kubectl: k8s.Kubectl, namespace: str, spec: dict[str, Any], message: str
) -> None:
    body = rgc.manifest("bad", namespace, **spec)
    body["spec"] = {key: value for key, value in body["spec"].items() if value is not None}
    done = kubectl.run(
        "apply", "--server-side", "-f", "-", input=__import__("yaml").safe_dump(body), check=False
    )
    assert done.returncode != 0, f"accepted: {spec}"
    assert message in done.stderr, done.stderr
    assert kubectl.get("resgatecluster", "bad", namespace) is None


def test_kubectl_explain_describes_the_fields(kubectl: k8s.Kubectl, operator: object) -> None:
    text = kubectl.out("explain", "resgatecluster.spec.nats")
    assert "How the gateways reach NATS" in text and "serviceRef" in text and "credentialsSecret" in text
    text = kubectl.out("explain", "rgc.spec.gateway.requestTimeout")
    assert "Timeout of requests to services, milliseconds" in text
