# pyresgate container image: the gateway (`pyresgate`, the default command) and the Kubernetes operator
# (`pyresgate-operator`). Build:  docker build -t pyresgate .   or   podman build --format docker ...
# (docs/container.md: options, running it read-only, the CI build with a local Debian base).
#
# BASE is any Debian-like image with python3 >= 3.11 and its venv module: python:3.12-slim by default,
# in CI a Debian trixie made by mmdebstrap (its interpreter is /usr/bin/python3; everything below uses
# `python3` from PATH and then the venv's own paths, so both work).
ARG BASE=python:3.12-slim

# --- build: a venv with the locked dependencies, and the project's wheel installed beside it -----------
FROM ${BASE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1
# Dependencies first: this layer (the slow one: downloads) is rebuilt only when a lock changes, and the
# runtime stage's copy of it stays cached too. --require-hashes --no-deps: exactly the locked files,
# nothing resolved here (scripts/lock-deps.sh). /opt/build's pip installs into the runtime venv
# (--python), so that venv never holds pip.
COPY requirements/build.lock requirements/runtime.lock /src/requirements/
RUN python3 -m venv /opt/build \
 && /opt/build/bin/pip install --require-hashes --no-deps -r /src/requirements/build.lock \
 && python3 -m venv --without-pip /opt/pyresgate \
 && /opt/build/bin/pip --python /opt/pyresgate/bin/python3 install --require-hashes --no-deps \
      -r /src/requirements/runtime.lock
COPY pyproject.toml README.md /src/
COPY gateway /src/gateway
COPY operator /src/operator
WORKDIR /src
# The project's wheel, built with the locked setuptools (no build isolation: nothing fetched), goes to
# /opt/pyresgate-app (a source change rebuilds only this small layer); its console scripts run the venv's
# interpreter. Then checked: every requirement is met by the locked packages, and the entry points import.
RUN /opt/build/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /dist . \
 && /opt/build/bin/pip --python /opt/pyresgate/bin/python3 install --no-deps --no-index \
      --target /opt/pyresgate-app /dist/pyresgate-*.whl \
 && PYTHONPATH=/opt/pyresgate-app /opt/build/bin/pip --python /opt/pyresgate/bin/python3 check \
 && PYTHONPATH=/opt/pyresgate-app /opt/pyresgate/bin/python3 -c \
      "import gateway.cli, pyresgate_operator.cli, opentelemetry.sdk.trace"

# --- runtime: the base plus the venv and the app, run as an unprivileged numeric user -------------------
FROM ${BASE}
# A passwd/group entry for uid 10001 (name lookups, $HOME); any other uid works as well (OpenShift).
RUN echo 'pyresgate:x:10001:10001:pyresgate:/tmp:/usr/sbin/nologin' >> /etc/passwd \
 && echo 'pyresgate:x:10001:' >> /etc/group
COPY --from=build /opt/pyresgate /opt/pyresgate
COPY --from=build /opt/pyresgate-app /opt/pyresgate-app
# Copied here rather than in the build stage, so that changing them does not copy the venv again.
COPY --chmod=0755 scripts/container-entrypoint.sh /opt/pyresgate-app/bin/pyresgate-entrypoint
COPY --chmod=0644 scripts/container_healthcheck.py /opt/pyresgate-app/healthcheck.py
# Read-only root friendly: no bytecode written at run time (pip compiled it at install), HOME in /tmp
# (kubeconfig lookups, libraries' caches), temporary files in /tmp (embedded nats-server, workers).
ENV PATH=/opt/pyresgate-app/bin:/opt/pyresgate/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONPATH=/opt/pyresgate-app PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HOME=/tmp TMPDIR=/tmp \
    LANG=C.UTF-8
USER 10001:10001
WORKDIR /tmp
# Client port (WebSocket + HTTP API), admin port (/healthz, /readyz, /metrics); the gateway's defaults.
EXPOSE 8080 9090
# /healthz on the admin port, found as the gateway finds it: RESGATE_ADMIN_PORT / RESGATE_ADDR, else the
# config file, else 9090 (scripts/container_healthcheck.py; python, as there is no curl here).
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/opt/pyresgate/bin/python3", "/opt/pyresgate-app/healthcheck.py"]
ENTRYPOINT ["/opt/pyresgate-app/bin/pyresgate-entrypoint"]
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
