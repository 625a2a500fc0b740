"""The container image, run for real: ``localhost/pyresgate:dev`` as ``.ci/image.sh`` built it.

Containers run with podman (runc) on the host network, hardened as the issue asks (read-only root, uid
10001, every capability dropped, no new privileges), against the session's real nats-server on
127.0.0.1 and a fake RES service on it; clients are real HTTP and WebSocket clients. Each test removes
only the containers it named (``tests/image/podman.py``).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from tests.image.conftest import GatewayContainer
from tests.image.podman import HARDENED, Containers, gateway_env, image_inspect, podman
from tests.runtime.helpers import http_get
from tests.support.fakeservice import FakeService
from tests.support.natsserver import NatsServer, free_port
from tests.support.wsclient import WSClient

#: Seconds for one request through the containerised gateway (the machine is shared and busy).
REQUEST_TIMEOUT = 5.0
#: Upper bound of the image size (bytes): the Debian base is ~120 MB, the venv ~230 MB.
MAX_IMAGE_SIZE = 500_000_000
HEALTHCHECK = ("/opt/pyresgate/bin/python3", "/opt/pyresgate-app/healthcheck.py")


async def _answer_get(service: FakeService, rid: str, model: dict[str, Any], access: bool = True) -> None:
    """Answer the access (when ``access``) and get requests the gateway sends for ``rid``."""
    reqs = await service.requests(2 if access else 1, timeout=REQUEST_TIMEOUT)
    if access:
        await reqs.get(f"access.{rid}").ok({"get": True})
    await reqs.get(f"get.{rid}").ok({"model": model})


# --- the image itself ------------------------------------------------------------------------------


def test_image_metadata_and_size(image: str, capsys: pytest.CaptureFixture[str]) -> None:
    info = image_inspect()
    config = info["Config"]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["/opt/pyresgate-app/bin/pyresgate-entrypoint"]
    assert config["Cmd"] == ["pyresgate"]
    assert {"8080/tcp", "9090/tcp"} <= set(config.get("ExposedPorts") or {})
    assert info["Healthcheck"]["Test"] == ["CMD", *HEALTHCHECK]  # podman: beside Config
    labels = info["Labels"] or {}
    assert labels["org.opencontainers.image.title"] == "pyresgate"
    assert labels["org.opencontainers.image.version"] == "0.1.0"
    assert labels["org.opencontainers.image.licenses"] == "MIT"
    assert labels["org.opencontainers.image.base.name"]
    assert len(labels["org.opencontainers.image.revision"]) in (40, len("unknown"))
    size = int(info["Size"])
    with capsys.disabled():
        print(
            f"\n[image] {image}: {size / 1e6:.0f} MB ({size} bytes), base {labels['org.opencontainers.image.base.name']}"
        )
    assert size < MAX_IMAGE_SIZE, f"image is {size / 1e6:.0f} MB"


def test_entry_points_start(containers: Containers) -> None:
    """The operator's and the gateway's console scripts are on PATH and start (``--help``/``--version``),
    and gateway flags alone run the gateway (the entry point puts ``pyresgate`` in front)."""
    operator = containers.run_once("--network=none", *HARDENED, image_args=("pyresgate-operator", "--help"))
    assert operator.returncode == 0, operator.stderr
    assert "usage: pyresgate-operator" in operator.stdout
    version = containers.run_once("--network=none", *HARDENED, image_args=("--version",))
    assert version.returncode == 0, version.stderr
    assert version.stdout.startswith("pyresgate v0.1.0 (resgate v1.8.0 compatible)")
    # Tracing is part of the image: the SDK and both OTLP exporters import.
    otel = containers.run_once("--network=none", *HARDENED, image_args=(
        "python3", "-c", ("import opentelemetry.sdk.trace, opentelemetry.exporter.otlp.proto.http.trace_exporter,"
                          " opentelemetry.exporter.otlp.proto.grpc.trace_exporter")))  # fmt: skip
    assert otel.returncode == 0, otel.stderr


def test_defaults_out_of_the_box(containers: Containers) -> None:
    """No settings at all, hardened, in a network namespace of its own (nothing on 127.0.0.1:4222): the
    gateway starts its embedded nats-server (files in /tmp only), listens on the default ports, and the
    health check finds the admin listener on the default 9090."""
    container = containers.run("--network=none", *HARDENED)
    deadline = time.monotonic() + 30.0
    health = podman("healthcheck", "run", container.name, check=False)
    while health.returncode != 0 and time.monotonic() < deadline and container.running():
        time.sleep(0.2)
        health = podman("healthcheck", "run", container.name, check=False)
    assert health.returncode == 0, container.logs()
    logs = container.logs()
    assert "started an embedded nats-server" in logs and "Serving admin on port 9090" in logs, logs
    assert "Listening on http://0.0.0.0:8080" in logs, logs


# --- the hardened gateway container (default command, RESGATE_* variables) --------------------------


async def test_gateway_answers_http_and_websocket(
    gateway_container: GatewayContainer, service: FakeService
) -> None:
    model = {"name": "in a container", "n": 1}
    get = asyncio.ensure_future(http_get(f"{gateway_container.http_url}/api/image/http", REQUEST_TIMEOUT))
    await _answer_get(service, "image.http", model)
    status, body, _ = await get
    assert status == 200 and json.loads(body) == model, (status, body)

    client = await WSClient.connect(gateway_container.ws_url)
    try:
        pending = await client.send("subscribe.image.ws")
        await _answer_get(service, "image.ws", model)
        result = await pending.result(timeout=REQUEST_TIMEOUT)
        assert result["models"]["image.ws"] == model, result
        # An event from the service reaches the client through the container.
        await service.event("image.ws", "change", {"values": {"n": 2}})
        await client.expect_event("image.ws.change", {"values": {"n": 2}}, timeout=REQUEST_TIMEOUT)
        assert not client.broken
    finally:
        await client.close()


def test_healthcheck_passes_and_follows_the_admin_port(gateway_container: GatewayContainer) -> None:
    container = gateway_container.container
    # The admin port is not the default 9090 here: the check found it through RESGATE_ADMIN_PORT.
    assert gateway_container.admin_port != 9090
    done = podman("healthcheck", "run", container.name, check=False)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert container.inspect("{{.State.Health.Status}}") == "healthy"
    # Pointed at a port where nothing listens, the same check fails.
    closed = free_port()
    failed = container.exec(*HEALTHCHECK, env={"RESGATE_ADMIN_PORT": str(closed)})
    assert failed.returncode == 1
    assert f"unhealthy: GET /healthz on 127.0.0.1:{closed} failed" in failed.stderr


def test_runs_as_uid_10001_without_privileges(gateway_container: GatewayContainer) -> None:
    container = gateway_container.container
    status = container.exec("cat", "/proc/1/status")
    assert status.returncode == 0, status.stderr
    fields = dict(line.split(":", 1) for line in status.stdout.splitlines() if ":" in line)
    assert fields["Uid"].split() == ["10001"] * 4
    assert fields["Gid"].split() == ["10001"] * 4
    assert int(fields["CapEff"], 16) == 0 and int(fields["CapBnd"], 16) == 0
    assert fields["NoNewPrivs"].strip() == "1"
    # PID 1 is the gateway itself (the entry point exec'd it), so it gets SIGTERM directly.
    cmdline = container.exec("cat", "/proc/1/cmdline").stdout.split("\0")
    assert cmdline[:2] == ["/opt/pyresgate/bin/python3", "/opt/pyresgate-app/bin/pyresgate"], cmdline


async def test_writes_nothing_outside_tmp(
    gateway_container: GatewayContainer, service: FakeService, containers: Containers
) -> None:
    """The root filesystem is read-only and, after serving, differs from the image only where podman
    itself changes every container (compared with an idle container of the same image)."""
    container = gateway_container.container
    get = asyncio.ensure_future(http_get(f"{gateway_container.http_url}/api/image/diff", REQUEST_TIMEOUT))
    await _answer_get(service, "image.diff", {"x": 1})
    assert (await get)[0] == 200
    refused = await asyncio.to_thread(container.exec, "sh", "-c", "echo x > /opt/pyresgate-app/x")
    assert refused.returncode != 0 and "Read-only file system" in refused.stderr
    assert (await asyncio.to_thread(container.exec, "sh", "-c", "echo x > /tmp/x")).returncode == 0

    idle = await containers.arun("--network=host", *HARDENED, image_args=("sleep", "60"))
    baseline = await asyncio.to_thread(idle.diff)
    changed = await asyncio.to_thread(container.diff)
    assert {p for p in changed - baseline if not p.startswith("/tmp")} == set(), (changed, baseline)


# --- OpenTelemetry from the container -----------------------------------------------------------------


@pytest.fixture
async def otlp_sink() -> AsyncIterator[tuple[int, list[tuple[str, str]]]]:
    """An OTLP/HTTP receiver on 127.0.0.1: ``(port, [(service.name, span name), ...])``."""
    spans: list[tuple[str, str]] = []

    async def traces(request: web.Request) -> web.Response:
        req = trace_service_pb2.ExportTraceServiceRequest()
        req.ParseFromString(await request.read())
        for rs in req.resource_spans:
            names = [a.value.string_value for a in rs.resource.attributes if a.key == "service.name"]
            for ss in rs.scope_spans:
                spans.extend((names[0] if names else "", s.name) for s in ss.spans)
        body = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
        return web.Response(body=body, content_type="application/x-protobuf")

    app = web.Application()
    app.router.add_post("/v1/traces", traces)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield port, spans
    finally:
        await runner.cleanup()


async def test_tracing_exports_spans_from_the_container(
    containers: Containers,
    nats_server: NatsServer,
    service: FakeService,
    otlp_sink: tuple[int, list[tuple[str, str]]],
) -> None:
    """RESGATE_TRACING=true in the image: the default OTLP http/protobuf exporter sends the spans of an
    HTTP request to a collector, with the service name from OTEL_SERVICE_NAME."""
    sink_port, spans = otlp_sink
    port, admin_port = free_port(), free_port()
    env = gateway_env(
        nats_server.url,
        port,
        admin_port,
        RESGATE_TRACING="true",
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{sink_port}",
        OTEL_SERVICE_NAME="pyresgate-image-test",
        OTEL_BSP_SCHEDULE_DELAY="100",
    )
    container = await containers.arun("--network=host", *HARDENED, *env)
    await asyncio.to_thread(container.wait_ready, admin_port)
    get = asyncio.ensure_future(http_get(f"http://127.0.0.1:{port}/api/image/traced", REQUEST_TIMEOUT))
    await _answer_get(service, "image.traced", {"t": 1})
    assert (await get)[0] == 200
    deadline = time.monotonic() + 10.0
    while ("pyresgate-image-test", "HTTP GET") not in spans and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert ("pyresgate-image-test", "HTTP GET") in spans, f"{spans}\n{container.logs()}"
    assert ("pyresgate-image-test", "NATS get.image.traced") in spans, spans


# --- a mounted config file, and stopping -----------------------------------------------------------------


@pytest.mark.parametrize("as_the_operator_does", [False, True], ids=["mounted-file", "operator-args"])
async def test_config_file_health_and_graceful_stop(
    containers: Containers,
    nats_server: NatsServer,
    service: FakeService,
    tmp_path: Path,
    as_the_operator_does: bool,
) -> None:
    """A config file at /etc/pyresgate/config.json configures the gateway without any variable: mounted
    alone (the entry point finds it), or as the operator's Deployment has it (a read-only directory
    mount, ``args: [--config, <file>]`` and no command, so the entry point puts ``pyresgate`` in front).
    The health check reads its adminPort too; SIGTERM (podman stop) stops the gateway cleanly."""
    port, admin_port = free_port(), free_port()
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"natsUrl": nats_server.url, "addr": "127.0.0.1", "port": port,
                                  "adminPort": admin_port}))  # fmt: skip
    os.chmod(config, 0o644)
    os.chmod(tmp_path, 0o755)
    if as_the_operator_does:
        mount, image_args = f"{tmp_path}:/etc/pyresgate:ro", ("--config", "/etc/pyresgate/config.json")
    else:
        mount, image_args = f"{config}:/etc/pyresgate/config.json:ro", ()
    container = await containers.arun("--network=host", *HARDENED, "--volume", mount, image_args=image_args)
    await asyncio.to_thread(container.wait_ready, admin_port)
    get = asyncio.ensure_future(http_get(f"http://127.0.0.1:{port}/api/image/file", REQUEST_TIMEOUT))
    await _answer_get(service, "image.file", {"f": 1})
    assert (await get)[0] == 200

    health = await asyncio.to_thread(podman, "healthcheck", "run", container.name, check=False)
    assert health.returncode == 0, health.stderr

    start = time.monotonic()
    await asyncio.to_thread(podman, "stop", "--time", "20", container.name)
    took = time.monotonic() - start
    assert container.inspect("{{.State.ExitCode}}") == "0", container.logs()
    assert took < 15, f"podman stop took {took:.1f} s (SIGKILL after the grace period?)"
    assert "Received SIGTERM, stopping" in container.logs()
