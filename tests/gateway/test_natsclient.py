"""NatsMQ's own publish path (batched PUBs written behind nats-py) keeps nats-py's safety checks."""

from __future__ import annotations

import asyncio

import nats

from gateway.mq import natsclient
from gateway.mq.natsclient import LeanSubscription, NatsMQ
from gateway.protocol import errors
from gateway.protocol.errors import ResError
from tests.support.natsserver import NatsServer


async def test_subject_with_whitespace_fails_the_request_and_injects_nothing(nats_server: NatsServer) -> None:
    """A subject with a space or CRLF would corrupt (or inject into) the protocol line: the request
    fails with an internal error, and a request in the same batch still goes out and gets its reply."""
    svc = await nats.connect(nats_server.url)

    async def answer(msg: nats.aio.msg.Msg) -> None:
        await msg.respond(b'{"result":"ok"}')

    await svc.subscribe("call.good", cb=answer)
    injected = await svc.subscribe("injected")
    await svc.flush()
    mq = NatsMQ(request_timeout=1.0, on_message=lambda subject, data: None)
    await mq.connect([nats_server.url])
    loop = asyncio.get_running_loop()
    bad: asyncio.Future[tuple[bytes | None, ResError | None]] = loop.create_future()
    good: asyncio.Future[tuple[bytes | None, ResError | None]] = loop.create_future()
    mq.request("call.x 0\r\nPUB injected", b"{}", lambda d, e: bad.set_result((d, e)))
    mq.request("call.good", b"{}", lambda d, e: good.set_result((d, e)))
    data, err = await asyncio.wait_for(bad, 2)
    assert data is None and err is not None and err.code == errors.INTERNAL_ERROR
    assert await asyncio.wait_for(good, 2) == (b'{"result":"ok"}', None)
    await asyncio.sleep(0.1)
    assert injected.pending_msgs == 0
    await mq.close()
    await svc.close()


async def test_subscribe_and_unsubscribe_ride_the_batched_write_path(nats_server: NatsServer) -> None:
    """A subscribe queued with publishes in one loop turn is written with them (no task hop): it is a
    lean entry in nats-py's table, its messages arrive, and after the unsubscribe they stop. A
    subscription subject nats-py would refuse sends that batch down the awaited path instead, where
    it fails alone and the batch's publish still goes out."""
    svc = await nats.connect(nats_server.url)
    seen = await svc.subscribe("bench.out")
    await svc.flush()
    got: list[tuple[str, bytes]] = []
    mq = NatsMQ(request_timeout=1.0, on_message=lambda subject, data: got.append((subject, data)))
    await mq.connect([nats_server.url])
    handle = mq.subscribe("event.a.*")
    mq.publish("bench.out", b"1")
    await _next_turn(mq)
    subs = [s for s in mq._nc._subs.values() if s.subject == "event.a.*"]
    assert len(subs) == 1 and isinstance(subs[0], LeanSubscription)
    assert not mq._slow_busy and mq._outgoing == []
    await svc.publish("event.a.change", b"x")
    await svc.flush()
    for _ in range(100):
        if got:
            break
        await asyncio.sleep(0.01)
    assert got == [("event.a.change", b"x")]
    mq.unsubscribe(handle)
    await _next_turn(mq)
    assert not [s for s in mq._nc._subs.values() if s.subject == "event.a.*"]
    await svc.publish("event.a.change", b"y")
    await svc.flush()
    await asyncio.sleep(0.1)
    assert got == [("event.a.change", b"x")]

    mq.subscribe("bad subject.*")  # whitespace: nats-py refuses it; only that subscribe fails
    mq.publish("bench.out", b"2")
    await mq.sync()
    assert not [s for s in mq._nc._subs.values() if " " in s.subject]
    assert [(await seen.next_msg(1)).data for _ in range(2)] == [b"1", b"2"]
    await mq.close()
    await svc.close()


async def _next_turn(mq: NatsMQ) -> None:
    """Let the queued batch go out the way the gateway's own code does (one loop turn), not by
    ``mq.sync()``, which sends through the awaited path; then a PING/PONG round trip so the server
    has processed it."""
    await asyncio.sleep(0)
    await mq._nc.flush()


def test_sampled_out_ids_make_the_same_hpub_as_their_traceparent_and_the_task_path_reads_them() -> None:
    """Tracing hands a sampled-out request's trace over as its ids (an int: trace id, span id): the
    HPUB command is the one its ``traceparent`` as a dict makes, and nats-py's own ``publish`` (the
    task path) gets that ``traceparent`` as a dict."""
    trace_id, span_id = 0x0AF7651916CD43DD8448EB211C80319C, 0x00B7AD6B71692033
    headers = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-00b7ad6b71692033-02"}
    ids = trace_id << 64 | span_id
    block = b"NATS/1.0\r\ntraceparent: %s\r\n\r\n" % headers["traceparent"].encode()
    as_dict = natsclient._pub_command("call.a.b.m", b"_INBOX.x.1", b"{}", headers)
    assert natsclient._pub_command("call.a.b.m", b"_INBOX.x.1", b"{}", ids) == as_dict
    assert as_dict.startswith(b"HPUB call.a.b.m _INBOX.x.1 %d %d\r\n" % (len(block), len(block) + 2))
    assert natsclient._traceparent(ids) == headers["traceparent"]
