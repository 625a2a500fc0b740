"""Misbehaving services, against a real ``pyresgate`` process: a service that hangs, answers late
(after the request timeout), answers twice, answers garbage, crashes mid request, or floods events
for resources nobody holds. Each time the client gets the error the protocol prescribes (or
exactly one answer), the gateway's NATS connection is the same one as before, and another client's
subscription keeps getting events.

``FaultyService`` is a service on its own NATS connection whose call methods are the faults.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Self

import nats
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from tests.reliability.support import Publisher, rss_bytes
from tests.runtime.conftest import GatewayStarter
from tests.support.cluster import NatsNode, http_json
from tests.support.fakeservice import HARNESS_PREFIX
from tests.support.tasks import stop_tasks
from tests.support.wsclient import WSClient, assert_error, assert_result

#: Request timeout of the gateway under test (ms), short so the hang and late cases are quick.
TIMEOUT_MS = 300
#: Events for resources nobody holds, and the memory they may leave behind.
UNHELD_EVENTS = 20_000
RSS_GROWTH_MAX = 8 * 1024 * 1024


class FaultyService:
    """access: all allowed; get ``test.model``: ``{"n": 0}``; ``call.test.model.<fault>``: the fault."""

    def __init__(self, nats_url: str) -> None:
        self.nats_url = nats_url
        self.nc: NATS | None = None
        self.crash_next = asyncio.Event()
        self._late: set[asyncio.Task[None]] = set()

    async def start(self) -> Self:
        self.nc = await nats.connect(
            self.nats_url, name=f"{HARNESS_PREFIX}-faulty", no_echo=True, connect_timeout=2
        )
        for subject in ("access.>", "get.>", "call.>"):
            await self.nc.subscribe(subject, cb=self._on_request)
        await self.nc.flush(timeout=2)
        return self

    async def close(self) -> None:
        await stop_tasks(*self._late)
        if self.nc is not None and not self.nc.is_closed:
            await self.nc.close()

    async def _on_request(self, msg: Msg) -> None:
        kind, _, rest = msg.subject.partition(".")
        if kind == "access":
            await msg.respond(b'{"result":{"get":true,"call":"*"}}')
        elif kind == "get":
            if rest == "test.garbage":
                await msg.respond(b'{"result":{"model":{"a":')
            elif rest == "test.deep":
                await msg.respond(b'{"result":{"model":{"a":{"data":' + b"[" * 300 + b"]" * 300 + b"}}}}")
            else:
                await msg.respond(b'{"result":{"model":{"n":0}}}')
        else:
            await self._call(msg, rest.rpartition(".")[2])

    async def _call(self, msg: Msg, fault: str) -> None:
        if fault == "hang":
            return
        if fault == "late":
            task = asyncio.get_running_loop().create_task(self._answer_later(msg))
            self._late.add(task)
            task.add_done_callback(self._late.discard)
        elif fault == "twice":
            await msg.respond(b'{"result":{"first":true}}')
            await msg.respond(b'{"result":{"second":true}}')
        elif fault == "garbage":
            await msg.respond(b"\xff\xfe{not json")
        elif fault == "wrongshape":
            await msg.respond(b'{"result":1,"error":{"code":7}}')
        elif fault == "deep":  # JSON a reader takes (depth 300 < 1024) but orjson cannot write back
            await msg.respond(b'{"result":' + b"[" * 300 + b"]" * 300 + b"}")
        elif fault == "crash":
            self.crash_next.set()  # the test closes this service's connection without an answer
        else:
            await msg.respond(b'{"result":{"ok":true}}')

    async def _answer_later(self, msg: Msg) -> None:
        await asyncio.sleep(TIMEOUT_MS * 2 / 1000)
        with contextlib.suppress(Exception):
            await msg.respond(b'{"result":{"late":true}}')


def _gateway_connection(monitor_url: str) -> dict[str, Any]:
    conns = [c for c in http_json(f"{monitor_url}/connz")["connections"] if c.get("name") == "pyresgate"]
    assert len(conns) == 1, conns
    return dict(conns[0])


async def _check_bystander(bystander: WSClient, pub: Publisher, n: int) -> None:
    await pub.publish("event.test.model.change", {"values": {"n": n}})
    await pub.flush()
    await bystander.expect_event("test.model.change", {"values": {"n": n}}, timeout=10)


async def test_hanging_late_double_garbage_and_crashing_services_get_prescribed_errors(
    nats_node: NatsNode, start_gateway: GatewayStarter
) -> None:
    svc = await FaultyService(nats_node.url).start()
    gw = await start_gateway(nats_node.url, "-r", str(TIMEOUT_MS))
    bystander = await WSClient.connect(gw.ws_url)
    client = await WSClient.connect(gw.ws_url)
    pub = await Publisher.connect(nats_node.url)
    try:
        assert_result(await bystander.request("version", {"protocol": "1.2.3"}))
        assert_result(await client.request("version", {"protocol": "1.2.3"}))
        assert_result(await bystander.request("subscribe.test.model"))
        nats_cid = _gateway_connection(nats_node.monitor_url)["cid"]

        assert_error(await client.request("call.test.model.hang", timeout=3), "system.timeout")
        assert_error(await client.request("call.test.model.late", timeout=3), "system.timeout")
        await asyncio.sleep(TIMEOUT_MS * 2 / 1000)  # the late answer arrives now: ignored
        assert_result(await client.request("call.test.model.twice"), {"payload": {"first": True}})
        assert_error(await client.request("call.test.model.garbage"), "system.internalError")
        assert_error(await client.request("call.test.model.wrongshape"), "system.internalError")
        assert_error(await client.request("subscribe.test.garbage"), "system.internalError")
        assert_error(await client.request("call.test.model.deep"), "system.internalError")
        assert_error(await client.request("subscribe.test.deep"), "system.internalError")
        deep = b"[" * 300 + b"]" * 300
        await pub.nc.publish("event.test.model.custom", deep)  # a custom event nobody can be sent
        await pub.nc.publish("event.test.model.change", b'{"values":{"n":' + deep + b"}}")
        await _check_bystander(bystander, pub, 1)

        pending = await client.send("call.test.model.crash")
        await asyncio.wait_for(svc.crash_next.wait(), 3)
        await svc.close()  # crashed mid request: no answer will come
        assert_error(await pending.response(timeout=3), "system.timeout")
        assert_error(
            await client.request("call.test.model.ok", timeout=3), "system.notFound"
        )  # no responders

        svc = await FaultyService(nats_node.url).start()  # the service restarts
        assert_result(await client.request("call.test.model.ok"), {"payload": {"ok": True}})
        await _check_bystander(bystander, pub, 2)
        await asyncio.sleep(0.1)
        client.assert_not_broken()  # in particular: no second response to "twice" or "late"
        bystander.assert_not_broken()
        assert client.pending_events() == []
        assert _gateway_connection(nats_node.monitor_url)["cid"] == nats_cid, "NATS connection was dropped"
        assert gw.returncode is None
        log = gw.log(100_000)
        assert "Traceback" not in log, log
        errors = [line for line in log.splitlines() if "[ERR]" in line]
        assert all("Invalid" in line and "nested too deeply" in line for line in errors), log
    finally:
        await client.close()
        await bystander.close()
        await pub.close()
        await svc.close()


async def test_a_flood_of_events_for_resources_nobody_holds_changes_nothing(
    nats_node: NatsNode, start_gateway: GatewayStarter
) -> None:
    svc = await FaultyService(nats_node.url).start()
    gw = await start_gateway(nats_node.url)
    client = await WSClient.connect(gw.ws_url)
    pub = await Publisher.connect(nats_node.url)
    try:
        assert_result(await client.request("subscribe.test.model"))
        await _check_bystander(client, pub, 1)  # (0 is the model's value: no change, no event)
        baseline = rss_bytes(gw.pid)
        for i in range(UNHELD_EVENTS):
            await pub.publish(f"event.test.unheld{i % 100}.change", {"values": {"n": i}})
            await pub.publish(f"event.test.model{i % 10}.change", {"values": {"n": i}})
            if i % 2000 == 0:
                await pub.flush()
        await pub.publish("system.reset", {"resources": ["test.unheld.>"]})
        await _check_bystander(client, pub, 2)
        assert client.pending_events() == []  # nothing for the resources it does not hold
        assert rss_bytes(gw.pid) - baseline < RSS_GROWTH_MAX
    finally:
        await client.close()
        await pub.close()
        await svc.close()
