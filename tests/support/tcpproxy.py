"""A round-robin TCP proxy on loopback: the stand-in for a Kubernetes Service in front of gateways.

Used by the rebalancing tests (``tests/rebalance/``) and ``bench/rebalance.py``. Each accepted
connection goes to the next backend port in turn (kube-proxy picks at random; round-robin is the
deterministic version of the same spread); backends can be added while it runs, as endpoints appear
when pods become ready. Bytes are copied both ways unchanged; when either side closes, so does the
other.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Self

from tests.support.tasks import stop_tasks

#: Bytes read per chunk in each direction.
_CHUNK = 65536
#: Seconds to reach a backend before the client's connection is dropped.
CONNECT_TIMEOUT = 2.0


class RoundRobinProxy:
    """Listens on 127.0.0.1:``port`` and spreads connections over ``backends`` (ports on 127.0.0.1)."""

    def __init__(self, backends: list[int]) -> None:
        self.backends = list(backends)
        self.port = 0
        self.accepted = 0
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()

    async def start(self) -> Self:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0, backlog=4096)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def add_backend(self, port: int) -> None:
        self.backends.append(port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        await stop_tasks(*self._pipes)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        backend = self.backends[self.accepted % len(self.backends)]
        self.accepted += 1
        try:
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", backend), CONNECT_TIMEOUT
            )
        except (OSError, TimeoutError):
            writer.close()
            return
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.ensure_future(_pipe(src, dst))
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)


async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    try:
        while data := await src.read(_CHUNK):
            dst.write(data)
            await dst.drain()
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        dst.close()
        with contextlib.suppress(Exception):
            await dst.wait_closed()
