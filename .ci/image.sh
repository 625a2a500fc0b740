#!/usr/bin/env bash
# CI step of the container image (called by .ci/run before the test suite; fine to run by hand as root).
#
# 1. installs podman, runc and mmdebstrap from Debian when missing (runc: Debian's crun refuses the
#    hybrid cgroup layout of these machines, see ../shared/containers.md);
# 2. makes the base image with mmdebstrap (Debian trixie, minbase, python3 + venv + CA certificates) and
#    imports it as localhost/debian-python:trixie; the tarball is cached and reused for a week;
# 3. builds the Dockerfile with --build-arg BASE=<that image> as localhost/pyresgate:dev.
#
# Everything goes into the podman storage of ../shared/k8s (through its `cluster podman` wrapper), so the
# Kubernetes end-to-end tests can run pods from the image; no registry is ever contacted (--pull=never).
# tests/image/ then runs the image. Environment knobs: PYRESGATE_K8S_DIR (where shared/k8s is),
# PYRESGATE_IMAGE (tag), PYRESGATE_IMAGE_CACHE (tarball cache), PYRESGATE_BASE_MAX_AGE_DAYS (7).
set -euo pipefail
cd "$(dirname "$0")/.."

K8S_DIR=${PYRESGATE_K8S_DIR:-../shared/k8s}
IMAGE=${PYRESGATE_IMAGE:-localhost/pyresgate:dev}
BASE_IMAGE=localhost/debian-python:trixie
CACHE=${PYRESGATE_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pyresgate-image}
MAX_AGE_DAYS=${PYRESGATE_BASE_MAX_AGE_DAYS:-7}
# What the base is made of; its hash names the tarball, so a change here rebuilds it.
MMDEBSTRAP_ARGS=(
  --variant=minbase --include=python3,python3-venv,ca-certificates
  # no documentation, manual pages or translations (as Debian's own slim images), copyrights kept
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*'
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright'
  trixie
)

log() { echo "image.sh: $*" >&2; }
podman_k8s() { "$K8S_DIR/cluster" podman "$@"; }

# Under CI a missing prerequisite is an error; on a developer machine the step is skipped (and so are
# the tests in tests/image/ that run containers, with a message saying how to get them).
cannot() {
  if [ "${CI:-}" = true ]; then log "$1"; exit 1; fi
  log "skipped: $1"
  exit 0
}
[ -x "$K8S_DIR/cluster" ] || cannot "$K8S_DIR/cluster not found (set PYRESGATE_K8S_DIR to the shared/k8s directory)"
[ "$(id -u)" = 0 ] || cannot "needs root (podman as root, mmdebstrap, apt-get)"

missing=()
for tool in podman runc mmdebstrap; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc mmdebstrap >/dev/null
fi

# --- base image ---------------------------------------------------------------------------------
key=$(printf '%s\n' "${MMDEBSTRAP_ARGS[@]}" | sha256sum | cut -c1-16)
tarball="$CACHE/debian-python-trixie-$key.tar"
mkdir -p "$CACHE"
if [ -f "$tarball" ] && [ -n "$(find "$tarball" -mtime "+$((MAX_AGE_DAYS - 1))")" ]; then
  log "base tarball older than $MAX_AGE_DAYS days: making it again (security updates)"
  rm -f "$tarball"
fi
if [ ! -f "$tarball" ]; then
  start=$SECONDS
  part="$tarball.part.$$" # a run of its own at the same time writes its own file; the last mv wins
  trap 'rm -f "$part"' EXIT
  mmdebstrap --quiet --format=tar "${MMDEBSTRAP_ARGS[@]}" "$part"
  mv "$part" "$tarball"
  log "mmdebstrap: $tarball in $((SECONDS - start)) s"
fi
# The image carries the tarball's key and time, so it is imported again only when the tarball changed.
stamp="$key-$(stat -c %Y "$tarball")"
have=$(podman_k8s image inspect --format '{{ index .Labels "org.pyresgate.base-stamp" }}' "$BASE_IMAGE" \
  2>/dev/null || true)
if [ "$have" != "$stamp" ]; then
  podman_k8s import --quiet \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' --change 'CMD ["/bin/bash"]' \
    --change "LABEL org.pyresgate.base-stamp=$stamp" \
    "$tarball" "$BASE_IMAGE" >/dev/null
  log "imported $BASE_IMAGE ($stamp)"
fi

# --- the image ----------------------------------------------------------------------------------
version=$(awk -F'"' '/^version = /{print $2; exit}' pyproject.toml)  # (no pipe: pipefail)
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
created=$(git log -1 --format=%cI 2>/dev/null || date -u +%Y-%m-%dT%H:%M:%SZ)
previous=$(podman_k8s image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
start_ns=$(date +%s%N)
# The CA bundle mount lets pip inside RUN steps verify the package index; it never lands in the image.
# --label as well as the build args: podman 4.3 (buildah) reuses a cached LABEL step whose build args
# changed, so the labels from the Dockerfile alone would keep an earlier revision.
labels=()
for kv in "version=$version" "revision=$revision" "created=$created" "base.name=$BASE_IMAGE"; do
  labels+=(--label "org.opencontainers.image.$kv")
done
podman_k8s build --pull=never --format docker --quiet \
  --build-arg "BASE=$BASE_IMAGE" --build-arg "VERSION=$version" \
  --build-arg "REVISION=$revision" --build-arg "CREATED=$created" "${labels[@]}" \
  -v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro \
  -t "$IMAGE" . >/dev/null
elapsed_ms=$((($(date +%s%N) - start_ns) / 1000000))
# The image the tag named before, if this build replaced it (not if it is still tagged or used elsewhere).
current=$(podman_k8s image inspect --format '{{.Id}}' "$IMAGE")
if [ -n "$previous" ] && [ "$previous" != "$current" ]; then
  podman_k8s rmi "$previous" >/dev/null 2>&1 || true
fi
size=$(podman_k8s image inspect --format '{{.Size}}' "$IMAGE")
log "built $IMAGE from $BASE_IMAGE in $((elapsed_ms / 1000)).$(printf %03d $((elapsed_ms % 1000))) s; size $((size / 1000000)) MB ($size bytes)"
