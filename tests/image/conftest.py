"""Fixtures of the image tests: the built image (or a skip saying how to build it) and its containers.

The container tests need root, podman, runc and ``localhost/pyresgate:dev`` in the shared/k8s podman
storage, which ``.ci/image.sh`` provides. Without them they skip on a developer machine; under CI
(``CI=true``) they fail instead, since CI must really run them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.image.podman import HARDENED, IMAGE, Container, Containers, gateway_env, unavailable_reason
from tests.support.natsserver import NatsServer, free_port


@pytest.fixture(scope="session")
def image() -> str:
    """The image's name, once it is known to be there."""
    reason = unavailable_reason()
    if reason is not None:
        how = f"{reason}; build it with `bash .ci/image.sh` as root (installs podman, runc, mmdebstrap)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the container image tests: {how}")
        pytest.skip(how)
    return IMAGE


@pytest.fixture
def containers(image: str) -> Iterator[Containers]:
    """Containers a test starts; removed (by name) at teardown."""
    started = Containers()
    try:
        yield started
    finally:
        started.remove_all()


@dataclass
class GatewayContainer:
    container: Container
    port: int
    admin_port: int

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"


@pytest.fixture(scope="module")
def gateway_container(image: str, nats_server: NatsServer) -> Iterator[GatewayContainer]:
    """The image's default command, hardened (read-only root, uid 10001, no capabilities, no new
    privileges), on the host network bound to 127.0.0.1, configured by RESGATE_* variables only, with
    the session's nats-server; ready (``/readyz`` 200) when yielded."""
    started = Containers()
    port, admin_port = free_port(), free_port()
    try:
        container = started.run("--network=host", *HARDENED, *gateway_env(nats_server.url, port, admin_port))
        container.wait_ready(admin_port)
        yield GatewayContainer(container, port, admin_port)
    finally:
        started.remove_all()
