"""Consistency under churn, the gateway's main invariant, as a hypothesis property.

A service mutates models and collections at random and publishes the matching events (and, now and
then, a ``system.reset`` or a NATS server restart), while clients subscribe, unsubscribe, reconnect,
get (over WebSocket and HTTP) and call at random moments. At the end:

* every client's view (what its subscribe responses gave it, plus its events applied in order)
  equals the service's data for every resource it still holds;
* no event reaches a client for a resource it does not hold;
* per resource, events come in the service's order (model changes carry a sequence number that must
  grow strictly);
* every ``get`` answer (WebSocket or HTTP) is a state the resource really had.

Each hypothesis example runs on its own event loop (``asyncio.run``) against one ``pyresgate`` process
and one nats-server for the whole test, so failing programs are shrunk as usual. Bounded: a few
examples, each of at most a few dozen steps, with hard time limits.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
import orjson
import pytest
import websockets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from tests.runtime.helpers import clean_env, pyresgate_command
from tests.support.cluster import NatsNode
from tests.support.fakeservice import HARNESS_PREFIX
from tests.support.natsserver import free_port
from tests.support.tasks import stop_tasks

MODELS = [f"test.m{i}" for i in range(3)]
COLLECTIONS = [f"test.c{i}" for i in range(2)]
RIDS = MODELS + COLLECTIONS
CLIENTS = 3
#: Hypothesis examples, and seconds one example may take at most.
EXAMPLES = 40
EXAMPLE_TIMEOUT = 30.0
#: Seconds a gateway process or a reconnect may take.
READY_TIMEOUT = 15.0
#: What the examples did, for the summary line (and the README's table).
STATS: dict[str, int] = {}


def _count(what: str, n: int = 1) -> None:
    STATS[what] = STATS.get(what, 0) + n


# --- the program hypothesis generates ------------------------------------------------------------

client_step = st.one_of(
    st.tuples(st.just("subscribe"), st.sampled_from(RIDS)),
    st.tuples(st.just("unsubscribe"), st.sampled_from(RIDS)),
    st.tuples(st.just("get"), st.sampled_from(RIDS)),
    st.tuples(st.just("http_get"), st.sampled_from(RIDS)),
    st.tuples(st.just("call"), st.sampled_from(RIDS)),
    st.tuples(st.just("reconnect"), st.just("")),
    st.tuples(st.just("pause"), st.just("")),
)
service_step = st.one_of(
    st.tuples(st.just("change"), st.sampled_from(MODELS), st.integers(0, 3), st.integers(-5, 5)),
    st.tuples(st.just("delete_key"), st.sampled_from(MODELS), st.integers(0, 3), st.just(0)),
    st.tuples(st.just("add"), st.sampled_from(COLLECTIONS), st.integers(0, 10), st.integers(-5, 5)),
    st.tuples(st.just("remove"), st.sampled_from(COLLECTIONS), st.integers(0, 10), st.just(0)),
    st.tuples(st.just("pause"), st.just(""), st.just(0), st.just(0)),
)
rare_step = st.tuples(st.sampled_from(["reset", "nats_restart"]), st.just(""), st.integers(0, 9), st.just(0))


@dataclass
class Program:
    clients: list[list[tuple[str, str]]]
    service: list[tuple[str, str, int, int]]


programs = st.builds(
    Program,
    clients=st.lists(st.lists(client_step, min_size=5, max_size=30), min_size=CLIENTS, max_size=CLIENTS),
    service=st.lists(st.one_of(*[service_step] * 8, rare_step), min_size=10, max_size=60),
)


# --- the service -------------------------------------------------------------------------------------


class Store:
    """The service's data and every state each resource had."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {rid: {"seq": 0} for rid in MODELS}
        self.data.update({rid: [] for rid in COLLECTIONS})
        self.history: dict[str, list[Any]] = {rid: [copy.deepcopy(v)] for rid, v in self.data.items()}


class ChurnService:
    """Holds the data, answers access/get/call from it, mutates it and publishes the events (each
    flushed, so an event is at the server before the next step), and remembers every state."""

    def __init__(self, nats_url: str, store: Store) -> None:
        self.nats_url = nats_url
        self.nc: NATS | None = None
        # The data outlives one example, as the gateway's cache does.
        self.data = store.data
        self.history = store.history
        #: Mutate without publishing (the events are lost, as while NATS is down); a system.reset
        #: or the gateway's re-fetch after reconnecting must then bring every view up to date.
        self.silent = False

    async def start(self) -> None:
        self.nc = await nats.connect(
            self.nats_url, name=f"{HARNESS_PREFIX}-churn", no_echo=True, max_reconnect_attempts=-1,
            reconnect_time_wait=0.05, connect_timeout=2,
        )  # fmt: skip
        for subject in ("access.>", "get.>", "call.>"):
            await self.nc.subscribe(subject, cb=self._on_request)
        await self.nc.flush(timeout=2)

    async def close(self) -> None:
        if self.nc is not None and not self.nc.is_closed:
            await self.nc.close()

    async def _on_request(self, msg: Msg) -> None:
        kind, _, rest = msg.subject.partition(".")
        if kind == "access":
            reply: Any = {"result": {"get": True, "call": "*"}}
        elif kind == "get":
            value = self.data.get(rest)
            key = "model" if isinstance(value, dict) else "collection"
            reply = {"result": {key: value}} if value is not None else {"error": {"code": "system.notFound"}}
        else:
            reply = {"result": None}
        with contextlib.suppress(Exception):
            await msg.respond(orjson.dumps(reply))

    async def _event(self, rid: str, name: str, payload: Any) -> None:
        assert self.nc is not None
        # Recorded first: a get answered while the publish is flushed already sees the new state.
        self.history[rid].append(copy.deepcopy(self.data[rid]))
        if self.silent:
            return
        await self.nc.publish(f"event.{rid}.{name}", orjson.dumps(payload))
        await self.nc.flush(timeout=5)

    async def mutate(self, kind: str, rid: str, a: int, b: int) -> None:
        if kind in ("change", "delete_key"):
            model = self.data[rid]
            key = f"k{a}"
            if kind == "delete_key" and key not in model:
                return
            model["seq"] += 1
            values: dict[str, Any] = {"seq": model["seq"]}
            if kind == "change":
                model[key] = values[key] = b
            else:
                del model[key]
                values[key] = {"action": "delete"}
            await self._event(rid, "change", {"values": values})
        elif kind == "add":
            coll = self.data[rid]
            idx = a % (len(coll) + 1)
            coll.insert(idx, b)
            await self._event(rid, "add", {"value": b, "idx": idx})
        elif kind == "remove":
            coll = self.data[rid]
            if not coll:
                return
            idx = a % len(coll)
            del coll[idx]
            await self._event(rid, "remove", {"idx": idx})

    async def reset(self) -> None:
        assert self.nc is not None
        await self.nc.publish("system.reset", orjson.dumps({"resources": ["test.>"]}))
        await self.nc.flush(timeout=5)


# --- a client that keeps one ordered record of what it got ----------------------------------------


class ViewClient:
    """A WebSocket client applying its subscribe results and events to its own view of the data."""

    def __init__(self, ws: websockets.ClientConnection, gateway: GatewayUnderTest) -> None:
        self.ws = ws
        self.gateway = gateway
        self.view: dict[str, Any] = {}
        self.held: set[str] = set()
        self.violations: list[str] = []
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._apply: dict[int, Callable[[dict[str, Any]], None]] = {}
        self._next = 1
        self._seq: dict[str, int] = {}
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def connect(cls, gateway: GatewayUnderTest) -> ViewClient:
        ws = await websockets.connect(gateway.ws_url, max_size=None, ping_interval=None, open_timeout=5)
        client = cls(ws, gateway)
        await client.request("version", {"protocol": "1.2.3"})
        return client

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(), 3)
        await stop_tasks(self._reader)

    async def _read(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for frame in self.ws:
                msg = orjson.loads(frame)
                if "event" in msg:
                    self._on_event(msg["event"], msg.get("data"))
                else:
                    # Applied here, in stream order: the events right behind a response must see it.
                    apply = self._apply.pop(msg["id"], None)
                    if apply is not None:
                        apply(msg)
                    fut = self._waiting.pop(msg["id"], None)
                    if fut is not None and not fut.done():
                        fut.set_result(msg)

    def _on_event(self, name: str, data: Any) -> None:
        _count("events applied")
        rid, _, event = name.rpartition(".")
        if rid not in self.held:
            self.violations.append(f"event {name} {data} for a resource not held")
            return
        value = self.view[rid]
        if event == "change":
            for key, new in data["values"].items():
                if isinstance(new, dict) and new.get("action") == "delete":
                    value.pop(key, None)
                else:
                    value[key] = new
            seq = data["values"].get("seq")
            if seq is not None:
                if seq <= self._seq.get(rid, -1):
                    self.violations.append(f"{rid}: seq {seq} after {self._seq[rid]}")
                self._seq[rid] = seq
        elif event == "add":
            value.insert(data["idx"], data["value"])
        elif event == "remove":
            del value[data["idx"]]
        else:
            self.violations.append(f"unexpected event {name} {data}")

    async def request(
        self, method: str, params: Any = None, apply: Callable[[dict[str, Any]], None] | None = None
    ) -> dict[str, Any]:
        """Send a request; ``apply`` runs on the response before any later message is read."""
        req_id = self._next
        self._next += 1
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[req_id] = fut
        if apply is not None:
            self._apply[req_id] = apply
        msg: dict[str, Any] = {"id": req_id, "method": method}
        if params is not None:
            msg["params"] = params
        await self.ws.send(orjson.dumps(msg))
        return await asyncio.wait_for(fut, 10)

    def _take(self, rid: str, result: dict[str, Any]) -> Any:
        for group in ("models", "collections"):
            if rid in result.get(group, {}):
                return result[group][rid]
        return None

    async def step(self, kind: str, rid: str, history: dict[str, list[Any]]) -> None:
        if kind == "subscribe" and rid not in self.held:

            def subscribed(resp: dict[str, Any]) -> None:
                if "result" in resp:  # an error (service unavailable during a restart) holds nothing
                    self.view[rid] = self._take(rid, resp["result"])
                    self.held.add(rid)
                    self._seq.pop(rid, None)
                    if rid in MODELS:
                        self._seq[rid] = self.view[rid]["seq"]

            await self.request(f"subscribe.{rid}", apply=subscribed)
        elif kind == "unsubscribe" and rid in self.held:

            def unsubscribed(resp: dict[str, Any]) -> None:
                if "error" in resp:
                    self.violations.append(f"unsubscribe {rid}: {resp}")
                self.held.discard(rid)
                self.view.pop(rid, None)

            await self.request(f"unsubscribe.{rid}", apply=unsubscribed)
        elif kind == "get":
            resp = await self.request(f"get.{rid}")
            if "result" in resp and rid not in self.held:
                got = self._take(rid, resp["result"])
                if got not in history[rid]:
                    self.violations.append(f"get {rid} gave {got}, never a state of it")
        elif kind == "http_get":
            status, body = await self.gateway.http_get(rid)
            if status == 200 and orjson.loads(body) not in history[rid]:
                self.violations.append(f"HTTP GET {rid} gave {body!r}, never a state of it")
        elif kind == "call":
            resp = await self.request(f"call.{rid}.noop")
            # While NATS restarts: unavailable (gateway without NATS) or not found (no responders
            # yet: the service has not reconnected); nothing else.
            if "error" in resp and resp["error"]["code"] not in (
                "system.serviceUnavailable",
                "system.notFound",
            ):
                self.violations.append(f"call {rid}: {resp}")
        elif kind == "pause":
            await asyncio.sleep(0.005)


# --- the gateway process -------------------------------------------------------------------------


@dataclass
class GatewayUnderTest:
    """A ``pyresgate`` process started and stopped synchronously (examples run on their own loops)."""

    nats_url: str
    port: int = field(default_factory=free_port)
    admin_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    _log_dir: tempfile.TemporaryDirectory[str] = field(
        default_factory=lambda: tempfile.TemporaryDirectory(prefix="pyresgate-churn-")
    )

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    def log(self) -> str:
        return (Path(self._log_dir.name) / "gw.log").read_text(errors="replace")[-4000:]

    def start(self) -> None:
        cmd = [*pyresgate_command(), "-n", self.nats_url, "-i", "127.0.0.1", "-p", str(self.port),
               "--adminport", str(self.admin_port), "-r", "1000", "--cacheevictiondelay", "200"]  # fmt: skip
        with open(Path(self._log_dir.name) / "gw.log", "wb") as log:
            self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=clean_env())
        self.wait_ready()

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/readyz", timeout=1) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while not self.ready():
            assert self.process is not None and self.process.poll() is None, self.log()
            assert time.monotonic() < deadline, f"gateway not ready\n{self.log()}"
            time.sleep(0.02)

    async def wait_unready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while await asyncio.to_thread(self.ready):
            assert time.monotonic() < deadline, f"gateway still ready without NATS\n{self.log()}"
            await asyncio.sleep(0.02)

    async def http_get(self, rid: str) -> tuple[int, bytes]:
        url = f"http://127.0.0.1:{self.port}/api/{rid.replace('.', '/')}"

        def get() -> tuple[int, bytes]:
            try:
                with urllib.request.urlopen(url, timeout=5) as resp:
                    return resp.status, resp.read()
            except urllib.error.HTTPError as exc:
                return exc.code, exc.read()

        return await asyncio.to_thread(get)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
        self._log_dir.cleanup()


# --- running one program -----------------------------------------------------------------------------


async def _run_service(svc: ChurnService, gw: GatewayUnderTest, node: NatsNode, steps: list[Any]) -> None:
    for kind, rid, a, b in steps:
        _count(f"service {kind}")
        if kind == "pause":
            await asyncio.sleep(0.005)
        elif kind == "reset":
            await _silently(svc, a)
            await svc.reset()
        elif kind == "nats_restart":
            await asyncio.to_thread(node.kill)
            await gw.wait_unready()
            await _silently(svc, a)  # changed while NATS is away: only the re-fetch tells the gateway
            await asyncio.to_thread(node.start)
            await asyncio.to_thread(gw.wait_ready)
            deadline = time.monotonic() + READY_TIMEOUT
            assert svc.nc is not None
            while not svc.nc.is_connected:
                assert time.monotonic() < deadline, "service did not reconnect"
                await asyncio.sleep(0.02)
        else:
            await svc.mutate(kind, rid, a, b)


async def _silently(svc: ChurnService, seed: int) -> None:
    """Change every resource without publishing events."""
    svc.silent = True
    try:
        for i, rid in enumerate(RIDS):
            kind = ("change", "delete_key") if rid in MODELS else ("add", "remove")
            await svc.mutate(kind[(seed + i) % 2], rid, seed + i, seed - i)
            await svc.mutate("change" if rid in MODELS else "add", rid, seed, i)
    finally:
        svc.silent = False
    _count("silent changes", 2 * len(RIDS))


async def _run_client(client_box: list[ViewClient], gw: GatewayUnderTest, steps: list[Any],
                      svc: ChurnService, retired: list[ViewClient]) -> None:  # fmt: skip
    for kind, rid in steps:
        _count(f"client {kind}")
        if kind == "reconnect":
            await client_box[0].close()
            retired.append(client_box[0])
            client_box[0] = await ViewClient.connect(gw)
        else:
            await client_box[0].step(kind, rid, svc.history)


async def _quiesce(clients: list[ViewClient], svc: ChurnService) -> None:
    """Every event the service published has reached every client: a last change of a sentinel
    model that all clients hold arrives after all of them (one service connection, in order)."""
    for client in clients:
        if "test.m0" not in client.held:
            await client.step("subscribe", "test.m0", svc.history)
    await svc.mutate("change", "test.m0", 99, 1)
    seq = svc.data["test.m0"]["seq"]
    deadline = time.monotonic() + 10
    for client in clients:
        while client._seq.get("test.m0", -1) < seq:
            assert time.monotonic() < deadline, "sentinel event not delivered"
            await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)


async def _run_program(program: Program, gw: GatewayUnderTest, node: NatsNode, store: Store) -> None:
    svc = ChurnService(gw.nats_url, store)
    await svc.start()
    boxes = [[await ViewClient.connect(gw)] for _ in range(CLIENTS)]
    retired: list[ViewClient] = []  # clients that reconnected: their views end, their checks count
    try:
        await asyncio.gather(
            _run_service(svc, gw, node, program.service),
            *(
                _run_client(box, gw, steps, svc, retired)
                for box, steps in zip(boxes, program.clients, strict=True)
            ),
        )
        clients = [box[0] for box in boxes]
        await _quiesce(clients, svc)
        for client in retired:
            assert client.violations == [], f"a client before reconnecting: {client.violations}"
        for n, client in enumerate(clients):
            assert client.violations == [], f"client {n}: {client.violations}"
            _count("views compared", len(client.held))
            for rid in client.held:
                assert client.view[rid] == svc.data[rid], (
                    f"client {n} {rid}: {client.view[rid]} != {svc.data[rid]}"
                )
    finally:
        for box in boxes:
            await box[0].close()
        await svc.close()


@pytest.fixture(scope="module")
def churn_env() -> Iterator[tuple[GatewayUnderTest, NatsNode]]:
    node = NatsNode.create("churn").start()
    gw = GatewayUnderTest(node.url)
    try:
        gw.start()
        yield gw, node
    finally:
        gw.stop()
        node.close()


@pytest.mark.timeout(EXAMPLES * EXAMPLE_TIMEOUT + 60)
def test_views_equal_the_service_data_under_churn_restarts_and_resets(
    churn_env: tuple[GatewayUnderTest, NatsNode],
) -> None:
    gw, node = churn_env
    store = Store()

    @settings(
        max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )  # fmt: skip
    @given(program=programs)
    def check(program: Program) -> None:
        if not node.running:  # a failed example may have left NATS down
            node.start()
        gw.wait_ready()

        async def bounded() -> None:
            await asyncio.wait_for(_run_program(program, gw, node, store), EXAMPLE_TIMEOUT)

        asyncio.run(bounded())

    check()
    print("churn:", ", ".join(f"{k} {v}" for k, v in sorted(STATS.items())))
    assert gw.process is not None and gw.process.poll() is None, gw.log()
