"""manifests/ (the install without Helm) is what scripts/render-manifests.sh makes from the chart now,
and holds the install only: the CRDs, the namespace, the operator and its RBAC, nothing else.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import kubernetes_validate
import yaml

from tests.chart.helm import CHART, ROOT, require_helm

MANIFESTS = ROOT / "manifests"
SCRIPT = ROOT / "scripts" / "render-manifests.sh"
INSTALL_KINDS = {
    "CustomResourceDefinition",
    "Namespace",
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "ClusterKopfPeering",
    "StatefulSet",
    "Service",
}


def objects(directory: Path) -> list[dict[str, object]]:
    return [
        doc
        for path in sorted(directory.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]


def test_manifests_are_up_to_date(tmp_path: Path) -> None:
    helm = require_helm()
    subprocess.run(
        [str(SCRIPT), str(tmp_path)],
        check=True,
        timeout=120,
        env={"HELM": str(helm), "PATH": "/usr/bin:/bin"},
    )
    fresh = sorted(p.name for p in tmp_path.iterdir())
    assert fresh == sorted(p.name for p in MANIFESTS.iterdir()), (
        "manifests/ has other files than the script writes"
    )
    for name in fresh:
        assert (MANIFESTS / name).read_text() == (tmp_path / name).read_text(), (
            f"manifests/{name} is out of date: run scripts/render-manifests.sh"
        )


def test_manifests_hold_the_install_only() -> None:
    docs = objects(MANIFESTS)
    assert {d["kind"] for d in docs} == INSTALL_KINDS
    crds = [d for d in docs if d["kind"] == "CustomResourceDefinition"]
    chart_crds = [
        d for p in sorted((CHART / "crds").glob("*.yaml")) for d in yaml.safe_load_all(p.read_text())
    ]
    assert crds == chart_crds, "the CRDs are the chart's, unchanged"
    for doc in docs:
        labels = doc["metadata"].get("labels", {})  # type: ignore[union-attr]
        assert labels.get("app.kubernetes.io/managed-by") in (None, "kubectl"), "Helm does not manage these"
        assert "helm.sh/chart" not in labels
        if doc["kind"] != "ClusterKopfPeering":
            for version in ("1.34.0", "1.35.0", "1.36.0"):
                kubernetes_validate.validate(doc, version, strict=True)
