"""The service survives a NATS restart: it reconnects, resubscribes (nats-py does), sends
``system.reset`` for what it serves (events may have been lost meanwhile) and answers again; and
``start`` against a NATS that is not there fails quickly with an error instead of hanging.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from collections.abc import Iterator

import nats
import orjson
import pytest

from pyresgate.service import Service
from tests.service.library import Library
from tests.support.natsserver import find_nats_server, free_port


class RestartableNats:
    """A nats-server on a fixed loopback port that a test can stop and start again."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = [find_nats_server(), "-a", "127.0.0.1", "-p", str(self.port)]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("nats-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


@pytest.fixture
def own_nats() -> Iterator[RestartableNats]:
    server = RestartableNats()
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_service_reconnects_and_resets(own_nats: RestartableNats) -> None:
    lib = Library()
    await lib.svc.start(own_nats.url)
    peer = await nats.connect(own_nats.url, reconnect_time_wait=0.2, max_reconnect_attempts=-1)
    resets: asyncio.Queue[bytes] = asyncio.Queue()

    async def on_reset(msg: nats.aio.msg.Msg) -> None:
        await resets.put(msg.data)

    # Subscribed before the restart: nats-py renews it first thing on reconnecting, and the peer
    # retries every 0.2 s while the service waits 1 s between attempts.
    await peer.subscribe("system.reset", cb=on_reset)
    await peer.flush()
    try:
        own_nats.stop()
        await asyncio.sleep(0.5)
        own_nats.start()
        await asyncio.wait_for(_until_connected(peer), 15)
        reset = orjson.loads(await asyncio.wait_for(resets.get(), 15))
        assert "library.book.*" in reset["resources"] and "library.books" in reset["access"]
        reply = await peer.request("get.library.book.2", b"{}", timeout=5)
        assert orjson.loads(reply.data)["result"]["model"]["title"] == "Brave New World"
    finally:
        await peer.close()
        await lib.svc.stop()


async def _until_connected(nc: nats.aio.client.Client) -> None:
    while not nc.is_connected:
        await asyncio.sleep(0.05)


async def test_start_without_nats_fails_fast() -> None:
    svc = Service("nowhere")
    svc.handle("thing", get=lambda r: {"x": 1})
    started = time.monotonic()
    with pytest.raises(nats.errors.NoServersError):
        await svc.start(f"nats://127.0.0.1:{free_port()}")
    assert time.monotonic() - started < 15
