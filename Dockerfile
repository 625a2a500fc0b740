# pyresgate container image: the gateway (`pyresgate`, the default command) and the Kubernetes operator
# (`pyresgate-operator`). Build:  docker build -t pyresgate .   or   podman build --format docker ...
# (docs/container.md: options, running it read-only, the CI build with a local Debian base).
#
# BASE is any Debian-like image with python3 >= 3.11 and its venv module: python:3.12-slim by default,
# in CI a Debian trixie made by mmdebstrap (its interpreter is /usr/bin/python3; everything below uses
# `python3` from PATH and then the venv's own paths, so both work).
ARG BASE=python:3.12-slim

# --- build: the wheel, and a venv with the locked dependencies and that wheel ----------------------------
FROM ${BASE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1
# Locks first: this layer (the slow one: downloads) is rebuilt only when a lock changes.
# --require-hashes --no-deps: exactly the locked files, nothing resolved here (scripts/lock-deps.sh).
COPY requirements/build.lock requirements/runtime.lock /src/requirements/
RUN python3 -m venv /opt/build \
 && /opt/build/bin/pip install --require-hashes --no-deps -r /src/requirements/build.lock \
 && python3 -m venv /opt/pyresgate \
 && /opt/pyresgate/bin/pip install --require-hashes --no-deps -r /src/requirements/runtime.lock
COPY pyproject.toml README.md /src/
COPY gateway /src/gateway
COPY operator /src/operator
WORKDIR /src
# The project's own wheel with the locked setuptools (no build isolation: nothing fetched here), then
# checked: every requirement of the installed set must be met by the locked packages.
RUN /opt/build/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /dist . \
 && /opt/pyresgate/bin/pip install --no-deps --no-index /dist/pyresgate-*.whl \
 && /opt/pyresgate/bin/pip check \
 && /opt/pyresgate/bin/pip uninstall --yes pip \
 && /opt/pyresgate/bin/python -c "import gateway.cli, pyresgate_operator.cli, opentelemetry.sdk.trace"
COPY --chmod=0755 scripts/container-entrypoint.sh /opt/pyresgate/bin/pyresgate-entrypoint
COPY --chmod=0644 scripts/container_healthcheck.py /opt/pyresgate/healthcheck.py

# --- runtime: the base plus the venv, run as an unprivileged numeric user ------------------------------
FROM ${BASE}
# A passwd/group entry for uid 10001 (name lookups, $HOME); any other uid works as well (OpenShift).
RUN echo 'pyresgate:x:10001:10001:pyresgate:/tmp:/usr/sbin/nologin' >> /etc/passwd \
 && echo 'pyresgate:x:10001:' >> /etc/group
COPY --from=build /opt/pyresgate /opt/pyresgate
# Read-only root friendly: no bytecode written at run time (pip compiled it at install), HOME in /tmp
# (kubeconfig lookups, libraries' caches), temporary files in /tmp (embedded nats-server, workers).
ENV PATH=/opt/pyresgate/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HOME=/tmp TMPDIR=/tmp LANG=C.UTF-8
USER 10001:10001
WORKDIR /tmp
# Client port (WebSocket + HTTP API), admin port (/healthz, /readyz, /metrics); the gateway's defaults.
EXPOSE 8080 9090
# /healthz on the admin port, which follows RESGATE_ADMIN_PORT and RESGATE_ADDR (python: no curl here).
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/opt/pyresgate/bin/python3", "/opt/pyresgate/healthcheck.py"]
ENTRYPOINT ["/opt/pyresgate/bin/pyresgate-entrypoint"]
CMD ["pyresgate"]

# Last, so that a new revision only rebuilds this metadata layer.
ARG BASE
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=
LABEL org.opencontainers.image.title="pyresgate" \
      org.opencontainers.image.description="Realtime + REST API gateway for the RES protocol (drop-in for resgate) and its Kubernetes operator" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.base.name="${BASE}"
