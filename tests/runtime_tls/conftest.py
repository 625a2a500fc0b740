"""Fixtures for the TLS and NATS-credentials tests: test PKI, and nats-server processes with a config file
(TLS with client-certificate verification, operator mode with ``.creds`` users, user/password).

Each server is started once per module on free ports and stopped by its PID (``NatsServer.stop``).
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import pytest

from tests.runtime_tls.pki import CA, CertFiles, NatsOperator, issue_cert, make_ca
from tests.support.fakeservice import SERVICE_SUBJECTS, FakeService
from tests.support.gatewayrunner import GatewayHandle, start_gateway, tear_down
from tests.support.logguard import ErrorLog
from tests.support.natsserver import START_TIMEOUT, NatsServer, _accepts, find_nats_server, free_port


def start_configured_nats(config: str, host: str = "127.0.0.1") -> NatsServer:
    """A nats-server with ``config`` (without listen/http lines: added here on free ports)."""
    log_dir = tempfile.TemporaryDirectory(prefix="pyresgate-nats-tls-")
    port, monitor_port = free_port(host), free_port(host)
    conf = Path(log_dir.name) / "server.conf"
    conf.write_text(f"listen: {host}:{port}\nhttp: {host}:{monitor_port}\n{config}")
    log_path = Path(log_dir.name) / "nats-server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [find_nats_server(), "-c", str(conf)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    server = NatsServer(host, port, monitor_port, process, log_path, log_dir)
    deadline = time.monotonic() + START_TIMEOUT
    while not (_accepts(host, port) and _accepts(host, monitor_port)):
        if process.poll() is not None or time.monotonic() > deadline:
            tail = server.log_tail()
            server.stop()
            raise RuntimeError(f"configured nats-server did not start:\n{tail}")
        time.sleep(0.02)
    return server


@dataclass
class Pki:
    dir: Path
    ca: CA
    server: CertFiles
    client: CertFiles


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    ca = make_ca(directory)
    return Pki(
        directory,
        ca,
        issue_cert(directory, ca, "nats-server", server=True, client=False),
        issue_cert(directory, ca, "nats-client", server=False, client=True),
    )


@pytest.fixture(scope="module")
def tls_nats(pki: Pki) -> Iterator[NatsServer]:
    """nats-server requiring TLS and a client certificate signed by the test CA."""
    server = start_configured_nats(
        "tls {\n"
        f'  cert_file: "{pki.server.cert}"\n'
        f'  key_file: "{pki.server.key}"\n'
        f'  ca_file: "{pki.ca.path}"\n'
        "  verify: true\n"
        "  timeout: 2\n"
        "}\n"
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def operator() -> NatsOperator:
    return NatsOperator()


@pytest.fixture(scope="module")
def creds_nats(operator: NatsOperator) -> Iterator[NatsServer]:
    """nats-server in operator mode (MEMORY resolver preloaded with the test account)."""
    server = start_configured_nats(operator.server_config())
    try:
        yield server
    finally:
        server.stop()


USER, PASSWORD = "gwuser", "s3cret"


@pytest.fixture(scope="module")
def userpass_nats() -> Iterator[NatsServer]:
    server = start_configured_nats(f'authorization {{\n  user: "{USER}"\n  password: "{PASSWORD}"\n}}\n')
    try:
        yield server
    finally:
        server.stop()


class OptionsService(FakeService):
    """A FakeService whose NATS connection takes extra nats-py options (TLS context, credentials)."""

    def __init__(self, nats_url: str, monitor_url: str | None = None, **options: Any) -> None:
        super().__init__(nats_url, monitor_url)
        self.options = options

    async def start(self) -> OptionsService:
        self.nc = await nats.connect(
            self.nats_url,
            name=self.name,
            no_echo=True,
            allow_reconnect=False,
            connect_timeout=2,
            **self.options,
        )
        await self.add_subject(*SERVICE_SUBJECTS)
        return self


@pytest.fixture
async def gateways(errors: ErrorLog) -> AsyncIterator[list[GatewayHandle]]:
    """Handles appended here are torn down like ``gateway_factory``'s (clients closed, stop in 3 s)."""
    handles: list[GatewayHandle] = []
    try:
        yield handles
    finally:
        await tear_down(handles)


async def start_on(handles: list[GatewayHandle], nats_url: str, **overrides: Any) -> GatewayHandle:
    handle = await start_gateway(nats_url, **overrides)
    handles.append(handle)
    return handle
