"""Killable nats-server processes and a real 3-node NATS cluster on loopback, for the runtime tests.

``NatsNode`` is one nats-server on fixed ports (client, monitoring, optionally cluster) that a test can
kill by its PID (SIGKILL: the gateway sees the TCP connection drop, as in a crash) and start again on the
same ports. ``NatsCluster`` starts three nodes with full-mesh routes and waits, through each node's
``/routez`` monitoring endpoint, until every node has a route to every other one. Every wait is bounded.
Only processes started here are signalled, always by PID.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.fakeservice import subject_matches
from tests.support.natsserver import _accepts, find_nats_server, free_port

#: Seconds a node gets to accept connections after it is spawned.
START_TIMEOUT = 10.0
#: Seconds a node gets to exit after SIGTERM before it is killed.
STOP_TIMEOUT = 5.0
#: Seconds the cluster gets to form its routes.
ROUTES_TIMEOUT = 10.0
#: Name of the test cluster.
CLUSTER_NAME = "pyresgate-test"


def http_json(url: str, timeout: float = 1.0) -> Any:
    """GET ``url`` and parse the JSON body (blocking; used on the monitoring endpoints)."""
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.loads(resp.read())


@dataclass
class NatsNode:
    """One nats-server on fixed ports; ``kill``/``start`` keep the ports so clients may come back."""

    name: str
    port: int
    monitor_port: int
    cluster_port: int | None = None
    routes: list[int] = field(default_factory=list)
    host: str = "127.0.0.1"
    process: subprocess.Popen[bytes] | None = None
    _log_dir: tempfile.TemporaryDirectory[str] = field(
        default_factory=lambda: tempfile.TemporaryDirectory(prefix="pyresgate-natsnode-"), repr=False
    )

    @classmethod
    def create(cls, name: str = "solo", *, cluster: bool = False) -> NatsNode:
        """A node on free ports (not started)."""
        return cls(name, free_port(), free_port(), free_port() if cluster else None)

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    @property
    def monitor_url(self) -> str:
        return f"http://{self.host}:{self.monitor_port}"

    @property
    def log_path(self) -> Path:
        return Path(self._log_dir.name) / f"{self.name}.log"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def command(self) -> list[str]:
        cmd = [find_nats_server(), "-a", self.host, "-p", str(self.port), "-m", str(self.monitor_port),
               "-n", self.name]  # fmt: skip
        if self.cluster_port is not None:
            cmd += ["--cluster", f"nats://{self.host}:{self.cluster_port}", "--cluster_name", CLUSTER_NAME]
            if self.routes:
                cmd += ["--routes", ",".join(f"nats://{self.host}:{p}" for p in self.routes)]
        return cmd

    def start(self) -> NatsNode:
        """Spawn the server and wait (bounded) until its client and monitoring ports accept."""
        assert not self.running, f"{self.name} already running"
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + START_TIMEOUT
        while not (_accepts(self.host, self.port) and _accepts(self.host, self.monitor_port)):
            if self.process.poll() is not None:
                raise RuntimeError(f"nats-server {self.name} exited with {self.process.returncode}:\n"
                                   f"{self.log_tail()}")  # fmt: skip
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"nats-server {self.name} not accepting after {START_TIMEOUT}s")
            time.sleep(0.02)
        return self

    def kill(self) -> None:
        """SIGKILL by PID (a crash: no lame-duck mode, connections just drop) and reap the process."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(STOP_TIMEOUT)

    def stop(self) -> None:
        """SIGTERM by PID, SIGKILL after STOP_TIMEOUT."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT)

    def close(self) -> None:
        self.stop()
        self._log_dir.cleanup()

    # Monitoring

    def monitor(self, endpoint: str) -> Any:
        return http_json(f"{self.monitor_url}/{endpoint}")

    def route_peers(self) -> set[str]:
        """Names of the servers this node has a route to."""
        body = self.monitor("routez")
        return {str(r.get("remote_name") or r.get("remote_id")) for r in body.get("routes") or []}

    def client_names(self) -> list[str]:
        """Names of the client connections open on this node."""
        body = self.monitor("connz?limit=10000")
        return [str(c.get("name", "")) for c in body.get("connections") or []]

    def has_interest(self, subject: str) -> bool:
        """Whether a subscription of a local client, or one routed from a peer, matches ``subject``."""
        subs: list[str] = []
        for conn in self.monitor("connz?subs=1&limit=10000").get("connections") or []:
            subs += conn.get("subscriptions_list") or []
        for route in self.monitor("routez?subs=1").get("routes") or []:
            if route.get("account") != "$SYS":
                subs += route.get("subscriptions_list") or []
        return any(subject_matches(pattern, subject) for pattern in subs)

    async def wait_interest(self, subject: str, timeout: float = 5.0) -> None:
        """Wait (bounded) until ``has_interest(subject)``; polls in a thread, so the loop keeps running."""
        deadline = time.monotonic() + timeout
        while not await asyncio.to_thread(self.has_interest, subject):
            if time.monotonic() > deadline:
                raise AssertionError(f"no interest in {subject!r} on {self.name} within {timeout}s")
            await asyncio.sleep(0.02)


class NatsCluster:
    """Three (or ``size``) nodes with full-mesh routes; ``nodes[i]`` by index, ``node(name)`` by name."""

    def __init__(self, size: int = 3) -> None:
        self.nodes = [NatsNode.create(f"n{i}", cluster=True) for i in range(size)]
        for node in self.nodes:
            node.routes = [n.cluster_port for n in self.nodes if n is not node and n.cluster_port is not None]

    @classmethod
    def start(cls, size: int = 3) -> NatsCluster:
        cluster = cls(size)
        try:
            for node in cluster.nodes:
                node.start()
            cluster.wait_routes()
        except BaseException:
            cluster.close()
            raise
        return cluster

    def node(self, name: str) -> NatsNode:
        return next(n for n in self.nodes if n.name == name)

    def urls(self, *nodes: NatsNode) -> str:
        """Comma-separated client URLs of ``nodes`` (default: all)."""
        return ",".join(n.url for n in (nodes or self.nodes))

    def wait_routes(self, timeout: float = ROUTES_TIMEOUT) -> None:
        """Wait until every running node has a route to every other running node."""
        deadline = time.monotonic() + timeout
        while True:
            running = [n for n in self.nodes if n.running]
            missing = {n.name: {m.name for m in running if m is not n} - n.route_peers() for n in running}
            if not any(missing.values()):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"cluster routes not up within {timeout}s, missing: {missing}")
            time.sleep(0.05)

    def node_with_client(self, name: str) -> NatsNode | None:
        """The running node that has a client connection called ``name``."""
        for node in self.nodes:
            if node.running and name in node.client_names():
                return node
        return None

    async def wait_node_with_client(self, name: str, *, not_on: NatsNode | None = None,
                                    timeout: float = 5.0) -> NatsNode:  # fmt: skip
        """Wait (bounded) until a running node other than ``not_on`` has a client called ``name``."""
        deadline = time.monotonic() + timeout
        while True:
            node = await asyncio.to_thread(self.node_with_client, name)
            if node is not None and node is not not_on:
                return node
            if time.monotonic() > deadline:
                raise AssertionError(f"no node has a client {name!r} within {timeout}s (last: {node})")
            await asyncio.sleep(0.05)

    def close(self) -> None:
        for node in self.nodes:
            node.close()


__all__ = ["NatsCluster", "NatsNode", "http_json"]
