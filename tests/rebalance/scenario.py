"""A scale-out scenario with real ``pyresgate`` processes, for the rebalancing test and benchmark.

Used by ``tests/rebalance/test_scale_out.py`` and ``bench/rebalance.py``. Pieces: gateway processes
on loopback (``tests.runtime.helpers.GatewayProcess``), a round-robin TCP proxy standing in for the
Service (``tests.support.tcpproxy``), a service on NATS whose resource ``test.counter`` is
``{"seq": n}`` and which publishes ``change`` events n+1, n+2, ... at a steady rate, and clients that
reconnect and resubscribe as resclient does (``tests.support.resubscriber``). ``rebalance`` runs
``pyresgate_operator.rebalance.rebalance_once`` rounds as the operator would.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any, Self

import aiohttp
import nats
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from pyresgate_operator.rebalance import RebalanceResult, rebalance_once, spread

from tests.runtime.helpers import GatewayProcess, port_accepts
from tests.support.fakeservice import HARNESS_PREFIX
from tests.support.resubscriber import Resubscriber
from tests.support.tasks import stop_tasks
from tests.support.tcpproxy import RoundRobinProxy

RID = "test.counter"
#: Seconds a gateway process gets to become ready (generous: the machine may be busy).
START_TIMEOUT = 30.0
#: Clients connecting at the same time (the rest wait), so start-up does not swamp the machine.
CONNECT_BATCH = 100


class CounterService:
    """``test.counter`` = ``{"seq": n}``; ``publish`` makes n+1 the value and sends it as a change event.

    Answers access and get requests straight from the nats-py callbacks (no flush per reply), so a
    thousand clients resubscribing at once are served in milliseconds rather than queueing behind
    each other until the gateways' request timeout.
    """

    def __init__(self, nats_url: str) -> None:
        self.nats_url = nats_url
        self.seq = 0
        self.published = 0
        self.requests = 0
        self._nc: NATS | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> Self:
        self._nc = await nats.connect(self.nats_url, name=HARNESS_PREFIX + "-counter")
        await self._nc.subscribe(f"access.{RID}", cb=self._on_access)
        await self._nc.subscribe(f"get.{RID}", cb=self._on_get)
        await self._nc.flush()
        return self

    async def _on_access(self, msg: Msg) -> None:
        self.requests += 1
        await msg.respond(b'{"result":{"get":true}}')

    async def _on_get(self, msg: Msg) -> None:
        self.requests += 1
        await msg.respond(b'{"result":{"model":{"seq":%d}}}' % self.seq)

    async def publish(self) -> None:
        assert self._nc is not None
        self.seq += 1  # new subscribers get this value from now on
        await self._nc.publish(f"event.{RID}.change", b'{"values":{"seq":%d}}' % self.seq)
        self.published += 1

    def start_publishing(self, per_second: float) -> None:
        async def loop() -> None:
            while True:
                await self.publish()
                await asyncio.sleep(1 / per_second)

        self._task = asyncio.ensure_future(loop())

    async def stop_publishing(self) -> None:
        if self._task is not None:
            await stop_tasks(self._task)
            self._task = None
        if self._nc is not None and self._nc.is_connected:
            await self._nc.flush()

    async def close(self) -> None:
        await self.stop_publishing()
        if self._nc is not None:
            await self._nc.close()


@dataclass
class Round:
    """One rebalance round as seen from outside: when it started and what ``rebalance_once`` did."""

    at: float
    result: RebalanceResult


@dataclass
class Scenario:
    """Gateways behind the proxy, the counter service and the clients; ``close`` stops all of it."""

    nats_url: str
    session: aiohttp.ClientSession
    service: CounterService
    proxy: RoundRobinProxy
    gateways: list[GatewayProcess] = field(default_factory=list)
    clients: list[Resubscriber] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    rounds: list[Round] = field(default_factory=list)

    @classmethod
    async def start(cls, nats_url: str, gateways: int) -> Scenario:
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, force_close=True))
        service = await CounterService(nats_url).start()
        proxy = await RoundRobinProxy([]).start()
        scenario = cls(nats_url, session, service, proxy)
        try:
            await scenario.add_gateways(gateways)
        except BaseException:
            await scenario.close()
            raise
        return scenario

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.proxy.port}/"

    @property
    def endpoints(self) -> dict[str, str]:
        return {f"gw-{i}": gw.admin_url for i, gw in enumerate(self.gateways)}

    async def add_gateways(self, n: int, timeout: float = START_TIMEOUT) -> None:
        """Start ``n`` more gateways and put them behind the proxy once ready (a scale-out)."""
        spawned = [await GatewayProcess.spawn([], nats_url=self.nats_url) for _ in range(n)]
        self.gateways.extend(spawned)  # killed by close() whatever happens next
        for gw in spawned:
            await gw.wait_ready(timeout)
            assert await port_accepts(gw.port), f"client port {gw.port} not accepting\n{gw.log()}"
        for gw in spawned:
            self.proxy.add_backend(gw.port)

    async def connect_clients(
        self, n: int, *, delay: float, retry: float, jitter: float = 0.5, timeout: float
    ) -> None:
        """Start ``n`` clients and wait until all are subscribed."""
        for i in range(n):
            client = Resubscriber(
                self.url,
                RID,
                self.session,
                delay=delay,
                retry=retry,
                max_delay=max(2.0, delay),
                jitter=jitter,
                seed=i,
            )
            self.clients.append(client)
            self.tasks.append(asyncio.ensure_future(client.run()))
            if (i + 1) % CONNECT_BATCH == 0:
                await self.wait_subscribed(timeout)
        await self.wait_subscribed(timeout)

    def subscribed(self) -> int:
        return sum(c.subscribed for c in self.clients)

    async def wait_subscribed(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.subscribed() < len(self.clients):
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.subscribed()} of {len(self.clients)} clients subscribed")
            await asyncio.sleep(0.05)

    async def status(self) -> list[dict[str, Any]]:
        """Each gateway's ``GET /connections``."""

        async def one(gw: GatewayProcess) -> dict[str, Any]:
            async with self.session.get(gw.admin_url + "/connections") as resp:
                assert resp.status == 200, await resp.text()
                body: dict[str, Any] = await resp.json()
                return body

        return list(await asyncio.gather(*(one(gw) for gw in self.gateways)))

    async def counts(self) -> list[int]:
        return [s["connections"] for s in await self.status()]

    async def rebalance(
        self, tolerance: float, max_shed_per_second: float, *, timeout: float, settle: float
    ) -> bool:
        """Rounds of ``rebalance_once`` until one finds nothing to shed with every client back.

        After a round that asked for shedding it waits until no gateway sheds and every client is
        subscribed again, as an operator whose rounds are further apart than a shed takes would.
        Returns whether it converged within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            at = time.monotonic()
            result = await rebalance_once(self.endpoints, tolerance, max_shed_per_second, self.session)
            self.rounds.append(Round(at, result))
            everyone = sum(result.counts.values()) == len(self.clients)
            if result.balanced and everyone and spread(result.counts) <= tolerance:
                return True
            await asyncio.sleep(settle)
            while time.monotonic() < deadline:
                states = await self.status()
                if not any(s["shedding"] for s in states) and self.subscribed() == len(self.clients):
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(settle)
        return False

    def shed_closes(self) -> list[float]:
        """Monotonic times of every 1001 close the clients saw, sorted."""
        return sorted(t for c in self.clients for t, code in c.closes if code == 1001)

    async def close(self) -> None:
        for client in self.clients:
            with contextlib.suppress(Exception):
                await client.stop()
        await stop_tasks(*self.tasks)
        await self.proxy.close()
        for gw in self.gateways:
            await gw.kill()
        await self.service.close()
        await self.session.close()


def max_in_window(times: list[float], window: float = 1.0) -> int:
    """The most events of ``times`` (sorted) within any half-open interval of ``window`` seconds."""
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] >= window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best
