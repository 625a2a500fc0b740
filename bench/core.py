#!/usr/bin/env python3
"""In-process CPU cost of the gateway's core per subscription and per call, without sockets.

    python bench/core.py [--rounds 15] [--subs 2000] [--calls 2000]

What ``bench/run.py`` B5C and B3 measure end to end, minus the WebSocket front end, the sockets and
the other processes: client frames go straight to ``Connection.handle_message``, and the NATS
traffic stays in this process. The real ``NatsMQ`` encodes its batched PUB/SUB commands for a
transport that keeps them; a small RES service here reads those PUB commands and answers each the
way bench/load.mjs does, as ``MSG`` bytes through the real ``natsparser`` fast path into
``NatsMQ._on_wire``. So every line of the connection, cache, NATS client and protocol code of a
subscribe or a call runs, and nothing else does.

Why: on a 2-core machine shared with other work, B5C and B3 figures swing by 20 % from run to run,
far more than a change of a microsecond per operation. Here one round is a fixed batch of work in
one thread, and the minimum over the rounds (the round least disturbed by other processes) is
stable to a few per cent, so a change to the core can be measured apart from the front end. To
compare two trees, run this script from each (``PYTHONPATH=<tree>``); both must have the same
``NatsMQ`` internals that ``_connect`` sets up below.

Reported: µs of this process's CPU time per subscription (B5C shape: distinct uncached resources,
one access and one get request each, 5 per connection), also split into its phases, and per call
(B3 shape: a call on a subscribed model, access cached); the fake service's own time is measured
apart and left out.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import time
from typing import Any

from nats.aio.client import Client as NatsClient

from gateway import cli
from gateway.cache.cache import Cache
from gateway.conn.connection import Connection
from gateway.mq import natsparser
from gateway.mq.natsclient import NatsMQ

REPLY_ACCESS = b'{"result":{"get":true,"call":"*"}}'
REPLY_NULL = b'{"result":null}'
INBOX_SID = 1


class Transport:
    """Keeps what NatsMQ writes; ``take`` hands it to the service."""

    def __init__(self) -> None:
        self.out: list[bytes] = []

    def writelines(self, data: list[bytes]) -> None:
        self.out.extend(data)

    def take(self) -> list[bytes]:
        out, self.out = self.out, []
        return out


class Sink:
    """A connection's outgoing frames: counted, kept until the round ends."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def send(self, frame: bytes) -> None:
        self.frames.append(frame)


def answer(commands: list[bytes]) -> bytes:
    """The service: a MSG reply for every PUB with a reply subject (SUB/UNSUB are ignored)."""
    out = []
    for cmd in commands:
        if not cmd.startswith((b"PUB ", b"HPUB ")):  # (HPUB with tracing on: headers it ignores)
            continue
        head, _, _ = cmd.partition(b"\r\n")
        _, subject, reply = head.split(b" ")[:3]
        if subject.startswith(b"access."):
            data = REPLY_ACCESS
        elif subject.startswith(b"get."):
            rid = subject[4:].decode()
            data = b'{"result":{"model":{"rid":"%s"}}}' % rid.encode()
        else:
            data = REPLY_NULL
        out.append(b"MSG %s %d %d\r\n%s\r\n" % (reply, INBOX_SID, len(data), data))
    return b"".join(out)


def _connect(mq: NatsMQ, loop: asyncio.AbstractEventLoop, transport: Transport) -> None:
    """The state ``NatsMQ.connect`` leaves behind, on a transport that keeps what is written."""
    from gateway.mq.deadlines import Deadlines

    nc: Any = mq._nc
    nc._status = NatsClient.CONNECTED
    nc._transport = transport
    nc._flush_queue = asyncio.Queue()
    nc._max_payload = 1024 * 1024
    nc._pending = []
    nc._subs[INBOX_SID] = object()
    nc._sid = INBOX_SID
    mq._loop = loop
    mq._deadlines = Deadlines(loop, mq._on_deadline, mq._pending)
    mq._inbox_prefix = "_INBOX.bench."
    mq._inbox_prefix_b = b"_INBOX.bench."
    mq._inbox_sid = INBOX_SID


async def turn() -> None:
    """Let the loop run what the last step scheduled (NatsMQ's flush, deferred answers)."""
    for _ in range(3):
        await asyncio.sleep(0)


class Harness:
    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.transport = Transport()
        self.mq = NatsMQ(request_timeout=5.0, on_message=lambda subject, data: None)
        _connect(self.mq, loop, self.transport)
        self.cache = Cache(self.mq, eviction_delay=0)  # type: ignore[arg-type]
        self.service_s = 0.0  # CPU time spent in ``answer`` and feeding the parser

    def connection(self, n: int) -> tuple[Connection, Sink]:
        sink = Sink()
        conn = Connection(cid=f"cid{n:016d}", cache=self.cache, mq=self.mq, sink=sink)  # type: ignore[arg-type]
        return conn, sink

    async def exchange(self) -> None:
        """Send what is queued, answer it, deliver the answers; until nothing is left."""
        for _ in range(10):
            await turn()
            commands = self.transport.take()
            if not commands:
                return
            t0 = time.process_time()
            data = answer(commands)
            self.service_s += time.process_time() - t0
            natsparser._parse_messages(data, self.mq._on_wire)


#: Phases of a subscribe round, in order (see ``subscribe_round``).
PHASES = ("request", "flush", "reply", "answer")


async def subscribe_round(h: Harness, round_no: int, subs: int) -> dict[str, float]:
    """``subs`` subscriptions to distinct uncached resources, 5 per connection (protocol 1.2.3, as
    B5C's clients). CPU seconds per phase: the subscribe requests (up to the queued NATS commands),
    the NATS flush (encoding them), the replies (parsing and applying them), and the answers the
    connections send once access and data are both in (deferred by one loop turn)."""
    conns = [h.connection(round_no * subs + i) for i in range(subs // 5)]
    for conn, sink in conns:
        conn.handle_message(b'{"id":1,"method":"version","params":{"protocol":"1.2.3"}}')
    await h.exchange()
    gc.collect()
    t0 = time.process_time()
    for i, (conn, _) in enumerate(conns):
        for k in range(5):
            rid = f"bench.r{round_no}.c{i}.{k}"
            conn.handle_message(b'{"id":%d,"method":"subscribe.%s"}' % (k + 2, rid.encode()))
    t1 = time.process_time()
    h.mq._flush_soon()
    commands = h.transport.take()
    t2 = time.process_time()
    data = answer(commands)
    t3 = time.process_time()
    natsparser._parse_messages(data, h.mq._on_wire)
    t4 = time.process_time()
    await turn()
    t5 = time.process_time()
    for conn, sink in conns:
        answers = sink.frames[1:]
        assert len(answers) == 5 and all(b'"models"' in f for f in answers), sink.frames[:2]
        conn.close()
    await h.exchange()
    return {"request": t1 - t0, "flush": t2 - t1, "reply": t4 - t3, "answer": t5 - t4}


async def call_round(h: Harness, conns: list[tuple[Connection, Sink]], calls: int) -> float:
    """``calls`` call requests spread over ``conns`` (each subscribed to the model); CPU s."""
    per = calls // len(conns)
    gc.collect()
    t0 = time.process_time()
    for req in range(per):
        for conn, _ in conns:
            conn.handle_message(b'{"id":%d,"method":"call.test.model.set","params":{"v":1}}' % (req + 10))
        await h.exchange()
    spent = time.process_time() - t0
    for _, sink in conns:
        assert len(sink.frames) == per and b'"payload":null' in sink.frames[-1], sink.frames[-1:]
        sink.frames.clear()
    return spent


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    h = Harness()
    # (with tracing on, a subscription finishes in a task, which the phases below do not wait for)
    traced = args.tracing != "off"
    rounds = [] if traced else [await subscribe_round(h, r, args.subs) for r in range(args.rounds)]
    conns = [h.connection(10**9 + i) for i in range(50)]
    for conn, _ in conns:
        conn.handle_message(b'{"id":1,"method":"version","params":{"protocol":"1.2.3"}}')
        conn.handle_message(b'{"id":2,"method":"subscribe.test.model"}')
    await h.exchange()
    for _, sink in conns:
        sink.frames.clear()
    call_times = []
    call_service = []
    for _ in range(args.rounds):
        before = h.service_s
        call_times.append(await call_round(h, conns, args.calls))
        call_service.append(h.service_s - before)
    per_call = [(t - s) * 1e6 / args.calls for t, s in zip(call_times, call_service, strict=True)]
    result: dict[str, Any] = {}
    if rounds:
        per_sub = [sum(r.values()) * 1e6 / args.subs for r in rounds]
        result["subscribe"] = {"min": min(per_sub), "median": statistics.median(per_sub)}
        result["subscribe phases (min)"] = {p: min(r[p] for r in rounds) * 1e6 / args.subs for p in PHASES}
    result["call"] = {"min": min(per_call), "median": statistics.median(per_call)}
    return result


def _trace(sampler: str) -> None:
    """Tracing on, as B7 runs it: OTLP/HTTP export (encoded in its thread, whose CPU time counts
    here too) to a client that drops the bytes, and the sampler ``sampler``."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import sampling

    from gateway.telemetry import tracing

    class Dropping:
        def export(self, data: bytes) -> None:
            pass

        def shutdown(self) -> None:
            pass

    exporter = OTLPSpanExporter(endpoint="http://127.0.0.1:9/v1/traces")
    exporter._client = Dropping()  # type: ignore[assignment]
    samplers = {
        "always_on": sampling.ALWAYS_ON,
        "ratio": sampling.ParentBased(sampling.TraceIdRatioBased(0.01)),
        "sampled_out": sampling.ParentBased(sampling.TraceIdRatioBased(0.0)),
    }
    tracing.setup(exporter=exporter, sampler=samplers[sampler])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--subs", type=int, default=2000, help="subscriptions per round (multiple of 5)")
    ap.add_argument("--calls", type=int, default=2000, help="calls per round (multiple of 50)")
    ap.add_argument(
        "--tracing",
        choices=("off", "ratio", "always_on", "sampled_out"),
        default="off",
        help="tracing as B7 runs it: off, 1 %% parent-based head sampling (ratio), or always_on; "
        "or sampled_out (ratio 0: the cost of the sampled-out path alone, no randomly recorded call)",
    )
    args = ap.parse_args()
    if args.tracing != "off":
        _trace(args.tracing)
    return cli._run_loop(_report(args))  # on uvloop, with the garbage collector tuned as pyresgate runs


async def _report(args: argparse.Namespace) -> int:
    result = await main_async(args)
    for name, figures in result.items():
        shown = "  ".join(f"{key} {value:.2f}" for key, value in figures.items())
        print(f"{name:22s} core CPU µs per operation: {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
