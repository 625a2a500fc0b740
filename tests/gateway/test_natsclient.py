"""NatsMQ's own publish path (batched PUBs written behind nats-py) keeps nats-py's safety checks."""

from __future__ import annotations

import asyncio

import nats

from gateway.mq.natsclient import NatsMQ
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
