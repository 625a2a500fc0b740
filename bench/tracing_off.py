"""Cost of the tracing hooks when tracing is off (issue: "when off, the hot paths pay nothing
measurable"). Times the gateway's own request handling with the hook in place against the same
handling with the hook bypassed, in-process, with a sink that discards frames.

    python bench/tracing_off.py [--n 200000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from gateway.cache.cache import Cache
from gateway.conn.connection import Connection
from gateway.protocol import client
from gateway.protocol import rid as ridlib
from gateway.telemetry import tracing


class _Sink:
    def send(self, frame: bytes) -> None:
        pass


class _MQ:
    def request(self, *args: Any, **kwargs: Any) -> None:
        pass

    def subscribe(self, subject: str) -> int:
        return 0

    def unsubscribe(self, handle: Any) -> None:
        pass

    def publish(self, subject: str, payload: bytes) -> None:
        pass


def _time(fn: Any, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e9


async def main(n: int, rounds: int) -> None:
    assert not tracing.enabled
    mq = _MQ()
    conn = Connection(cid="bench", cache=Cache(mq, eviction_delay=5), mq=mq, sink=_Sink())  # type: ignore[arg-type]
    frame = b'{"id":1,"method":"version","params":{"protocol":"1.2.3"}}'

    def with_hook() -> None:
        conn.handle_message(frame)

    def without_hook() -> None:  # Connection.handle_message minus its tracing check, by hand
        req = client.parse_request(frame)
        if req is None:
            return
        parsed = ridlib.parse_method(req.method)
        if parsed is None:
            return
        if parsed.action != "version":
            conn.count_request(parsed.action)
        conn._dispatch(req, parsed)

    hooked, bare = [], []
    for _ in range(rounds):
        hooked.append(_time(with_hook, n))
        bare.append(_time(without_hook, n))
    h, b = statistics.median(hooked), statistics.median(bare)
    print(
        f"version request, tracing off, hook in place : {h:8.1f} ns  (runs: {', '.join(f'{x:.0f}' for x in hooked)})"
    )
    print(
        f"version request, hook bypassed              : {b:8.1f} ns  (runs: {', '.join(f'{x:.0f}' for x in bare)})"
    )
    print(f"difference: {h - b:+.1f} ns per request ({(h - b) / b * 100:+.2f} %)")
    check = _time(lambda: tracing.enabled, n)
    print(f"one 'tracing.enabled' check (incl. the lambda call): {check:.1f} ns")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=9)
    args = ap.parse_args()
    asyncio.run(main(args.n, args.rounds))
