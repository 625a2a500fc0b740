"""examples/kubernetes/ is valid: the ResgateClusters against the CRD's schema, NATS against Kubernetes'
schemas (strict, three versions), the development values file against the chart (``helm lint``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.chart.helm import CHART, ROOT, helm, require_helm

EXAMPLES = ROOT / "examples" / "kubernetes"
MANIFESTS = sorted(p for p in EXAMPLES.glob("*.yaml") if not p.name.startswith("values"))


def crd_schema() -> dict[str, Any]:
    """The ResgateCluster's openAPIV3Schema, its RE2 patterns made Python ones (``^(?i)`` -> ``(?i)^``)."""
    crd = yaml.safe_load((ROOT / "operator/config/crd/resgateclusters.pyresgate.io.yaml").read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    fixed: dict[str, Any] = json.loads(json.dumps(schema).replace('"^(?i)', '"(?i)^'))
    return fixed


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_example_objects_are_valid(path: Path) -> None:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    assert docs
    for doc in docs:
        if doc["kind"] == "ResgateCluster":
            jsonschema.validate(doc, crd_schema())
        else:
            for version in ("1.34.0", "1.35.0", "1.36.0"):
                kubernetes_validate.validate(doc, version, strict=True)


def test_the_development_values_install_cleanly() -> None:
    require_helm()
    out = helm("lint", "--strict", str(CHART), "-f", str(EXAMPLES / "values-dev.yaml")).stdout
    assert "0 chart(s) failed" in out
