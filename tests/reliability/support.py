"""Tools of the reliability tests: a raw WebSocket client that can stop reading, a model service
that records who asked, a fast event publisher, and process memory readings.

``RawWS`` speaks just enough RFC 6455 over a plain socket with a tiny receive buffer: it upgrades,
sends masked text frames, reads a few replies, and then simply stops reading, which is what a
stalled browser tab or a client behind a dead link looks like to the gateway. ``ModelService``
answers access/get/call from a dict of models on its own NATS connection and records the cid of
every access request (so a test can match the gateway's log lines to a client). ``Publisher``
publishes many events on one connection with one flush at the end.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket
import struct
import time
import zlib
from pathlib import Path
from typing import Any, Self

import nats
import orjson
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from tests.support.fakeservice import HARNESS_PREFIX

#: Receive buffer of a stalled client: small, so the kernel absorbs little of what the gateway sends.
STALLED_RCVBUF = 4096


def rss_bytes(pid: int) -> int:
    """Resident set size of process ``pid`` (Linux ``/proc``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def _mask(payload: bytes, key: bytes) -> bytes:
    return bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def client_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """A masked client frame (FIN set)."""
    key = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return head + key + _mask(payload, key)


class RawWS:
    """A minimal WebSocket client on a non-blocking socket (see the module docstring)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buf = b""
        self._next_id = 1
        self._inflate = zlib.decompressobj(-zlib.MAX_WBITS)  # permessage-deflate, context takeover

    @classmethod
    async def connect(
        cls, port: int, *, rcvbuf: int | None = STALLED_RCVBUF, extensions: str | None = None
    ) -> Self:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # before connect: sets the window
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        await asyncio.wait_for(loop.sock_connect(sock, ("127.0.0.1", port)), 5)
        key = base64.b64encode(os.urandom(16)).decode()
        head = (
            f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        )
        if extensions:
            head += f"Sec-WebSocket-Extensions: {extensions}\r\n"
        await loop.sock_sendall(sock, (head + "\r\n").encode())
        ws = cls(sock)
        status = await ws._read_until(b"\r\n\r\n")
        assert status.startswith(b"HTTP/1.1 101"), status[:200]
        return ws

    @classmethod
    async def connect_raw(cls, port: int, *, rcvbuf: int | None = STALLED_RCVBUF) -> Self:
        """A plain TCP connection (no upgrade), for HTTP clients that stop reading."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port)), 5)
        return cls(sock)

    async def _recv(self, timeout: float) -> bytes:
        data = await asyncio.wait_for(asyncio.get_running_loop().sock_recv(self.sock, 65536), timeout)
        if not data:
            raise ConnectionError("closed by the gateway")
        return data

    async def _read_until(self, marker: bytes, timeout: float = 5.0) -> bytes:
        while marker not in self._buf:
            self._buf += await self._recv(timeout)
        head, _, self._buf = self._buf.partition(marker)
        return head

    async def _read_exact(self, n: int, timeout: float) -> bytes:
        while len(self._buf) < n:
            self._buf += await self._recv(timeout)
        data, self._buf = self._buf[:n], self._buf[n:]
        return data

    async def read_frame(self, timeout: float = 5.0) -> tuple[int, bytes]:
        """(opcode, payload) of the next server frame (unmasked, not fragmented by the gateway),
        inflated when it is compressed."""
        b0, b1 = await self._read_exact(2, timeout)
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", await self._read_exact(2, timeout))
        elif n == 127:
            (n,) = struct.unpack("!Q", await self._read_exact(8, timeout))
        payload = await self._read_exact(n, timeout)
        if b0 & 0x40:  # RSV1: a compressed message
            payload = self._inflate.decompress(payload + b"\x00\x00\xff\xff")
        return b0 & 0x0F, payload

    async def send_json(self, method: str, params: Any = None) -> int:
        req_id = self._next_id
        self._next_id += 1
        msg: dict[str, Any] = {"id": req_id, "method": method}
        if params is not None:
            msg["params"] = params
        await self.send_raw(client_frame(orjson.dumps(msg)))
        return req_id

    async def send_raw(self, data: bytes) -> None:
        await asyncio.wait_for(asyncio.get_running_loop().sock_sendall(self.sock, data), 5)

    async def request(self, method: str, params: Any = None, timeout: float = 5.0) -> dict[str, Any]:
        """Send a request and read frames until its response (events before it are dropped)."""
        req_id = await self.send_json(method, params)
        deadline = time.monotonic() + timeout
        while True:
            opcode, payload = await self.read_frame(max(deadline - time.monotonic(), 0.01))
            if opcode == 0x1:
                msg = orjson.loads(payload)
                if msg.get("id") == req_id:
                    return dict(msg)

    async def closed_by_peer(self, timeout: float) -> bool:
        """Read (and drop) everything until the gateway closes or resets the socket; False on timeout."""
        deadline = time.monotonic() + timeout
        loop = asyncio.get_running_loop()
        while time.monotonic() < deadline:
            try:
                data = await asyncio.wait_for(loop.sock_recv(self.sock, 1 << 20), deadline - time.monotonic())
            except TimeoutError:
                return False
            except OSError:
                return True
            if not data:
                return True
        return False

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


class ModelService:
    """Answers access (everything allowed), get (from ``models``) and call (``null``) at once, and
    records the cid of every access request in arrival order (``cids``)."""

    def __init__(self, nats_url: str, models: dict[str, Any] | None = None) -> None:
        self.nats_url = nats_url
        self.models: dict[str, Any] = dict(models or {})
        self.cids: list[str] = []
        self.requests = 0
        #: What calls answer.
        self.call_result: Any = None
        self.nc: NATS | None = None

    async def start(self) -> Self:
        self.nc = await nats.connect(
            self.nats_url, name=f"{HARNESS_PREFIX}-model-service", no_echo=True, max_reconnect_attempts=-1,
            reconnect_time_wait=0.1, connect_timeout=2,
        )  # fmt: skip
        for subject in ("access.>", "get.>", "call.>", "auth.>"):
            await self.nc.subscribe(subject, cb=self._on_request)
        await self.nc.flush(timeout=2)
        return self

    async def close(self) -> None:
        if self.nc is not None and not self.nc.is_closed:
            await self.nc.close()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _on_request(self, msg: Msg) -> None:
        self.requests += 1
        kind, _, rid = msg.subject.partition(".")
        if kind == "access":
            with contextlib.suppress(Exception):
                self.cids.append(orjson.loads(msg.data)["cid"])
            reply: Any = {"result": {"get": True, "call": "*"}}
        elif kind == "get":
            data = self.models.get(rid)
            if data is None:
                reply = {"error": {"code": "system.notFound", "message": "Not found"}}
            else:
                reply = {"result": {"collection" if isinstance(data, list) else "model": data}}
        else:
            reply = {"result": self.call_result}
        with contextlib.suppress(Exception):
            await msg.respond(orjson.dumps(reply))


class Publisher:
    """Publishes events on its own NATS connection; ``flood`` sends many with one flush."""

    def __init__(self, nc: NATS) -> None:
        self.nc = nc

    @classmethod
    async def connect(cls, nats_url: str) -> Self:
        nc = await nats.connect(
            nats_url, name=f"{HARNESS_PREFIX}-publisher", no_echo=True, connect_timeout=2,
            pending_size=256 * 1024 * 1024,
        )  # fmt: skip
        return cls(nc)

    async def publish(self, subject: str, payload: Any) -> None:
        await self.nc.publish(subject, orjson.dumps(payload))

    async def flush(self) -> None:
        await self.nc.flush(timeout=10)

    async def close(self) -> None:
        if not self.nc.is_closed:
            await self.nc.close()


async def metrics(admin_url: str) -> str:
    """The admin listener's /metrics text."""
    from tests.runtime.helpers import http_get

    status, body, _ = await http_get(admin_url + "/metrics")
    assert status == 200, status
    return body
