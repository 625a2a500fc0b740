"""examples/kubernetes/dev/ (NATS to try pyresgate with, and development values for the chart) is valid:
NATS against Kubernetes' schemas (strict, three versions), the values against the chart (``helm lint``).
The ResgateCluster examples beside it are checked by tests/operator/test_crd.py.
"""

from __future__ import annotations

import json
from typing import Any

import kubernetes_validate
import yaml

from tests.chart.helm import CHART, ROOT, helm, require_helm

DEV = ROOT / "examples" / "kubernetes" / "dev"


def crd_schema() -> dict[str, Any]:
    """The ResgateCluster's openAPIV3Schema, its RE2 patterns made Python ones (``^(?i)`` -> ``(?i)^``)."""
    crd = yaml.safe_load((ROOT / "operator/config/crd/resgateclusters.pyresgate.io.yaml").read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    fixed: dict[str, Any] = json.loads(json.dumps(schema).replace('"^(?i)', '"(?i)^'))
    return fixed


def test_the_nats_example_is_valid() -> None:
    docs = [d for d in yaml.safe_load_all((DEV / "nats.yaml").read_text()) if d]
    assert {d["kind"] for d in docs} == {"Namespace", "Deployment", "Service"}
    for doc in docs:
        for version in ("1.34.0", "1.35.0", "1.36.0"):
            kubernetes_validate.validate(doc, version, strict=True)


def test_the_development_values_install_cleanly() -> None:
    require_helm()
    out = helm("lint", "--strict", str(CHART), "-f", str(DEV / "values.yaml")).stdout
    assert "0 chart(s) failed" in out
