#!/usr/bin/env python3
"""Scale-out with and without connection rebalancing: connection spread and client-visible gaps.

    .venv/bin/python bench/rebalance.py [--clients 2000] [--reconnect-delay 3] [--observe 90]

Per mode, fresh processes: a nats-server, 2 ``pyresgate`` gateways behind a round-robin TCP
proxy (the Service), ``--clients`` clients subscribed to a resource whose service publishes a
numbered change event ``--events`` times a second (2), and reconnecting as resclient does
(``--reconnect-delay`` seconds after a close, resclient's fixed 3 s by default). Then 2 more
gateways join the proxy and, for ``--observe`` seconds, the gateways' connection counts are
sampled every second:

- ``off``: nothing else happens (what an HPA alone gives: new pods get only new clients);
- ``on``: ``pyresgate_operator.rebalance.rebalance_once`` rounds (tolerance 0.2, 50 closes/s),
  each after the previous one's shedding finished and its clients came back, until one finds the
  spread within the tolerance.

Reported: the spread over time, time to balance, closes and their pace (as the gateways count
them, sampled by a separate process, and as the clients see them), the gaps (seconds from a close
to the next subscribe response, per shed client), and a correctness check (no skipped or repeated
event; every client ends on the service's current value). Writes a Markdown table on stdout for
docs/autoscaling.md. Talks only to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "operator")]

from pyresgate_operator.rebalance import spread

from tests.rebalance.scenario import Scenario, max_in_window
from tests.support.natsserver import NatsServer

TOLERANCE = 0.2
MAX_SHED_PER_SECOND = 50


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


async def sample(scenario: Scenario, timeline: list[tuple[float, list[int]]], t0: float) -> None:
    while True:
        counts = await scenario.counts()
        timeline.append((time.monotonic() - t0, counts))
        await asyncio.sleep(1.0)


def shed_sampler(urls: list[str], period: float = 0.1) -> None:
    """Child process (``--sample-shed``): every ``period`` s, print the time and the gateways' summed
    ``shedTotal``. Apart from the busy client process, so the gateways' real pace is what it sees."""
    import urllib.request

    while True:
        at, total = time.monotonic(), 0
        for url in urls:
            with urllib.request.urlopen(url + "/connections", timeout=2) as resp:
                total += json.loads(resp.read())["shedTotal"]
        print(f"{at:.4f} {total}", flush=True)
        time.sleep(period)


def max_shed_in(samples: list[tuple[float, int]], window: float) -> int:
    """Most closes between two samples at most ``window`` seconds apart (gateway-side counts)."""
    best, lo = 0, 0
    for hi in range(len(samples)):
        while samples[hi][0] - samples[lo][0] > window:
            lo += 1
        best = max(best, samples[hi][1] - samples[lo][1])
    return best


async def start_shed_sampler(scenario: Scenario) -> asyncio.subprocess.Process:
    urls = ",".join(gw.admin_url for gw in scenario.gateways)
    return await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--sample-shed", urls, stdout=asyncio.subprocess.PIPE
    )


async def stop_shed_sampler(proc: asyncio.subprocess.Process) -> list[tuple[float, int]]:
    proc.terminate()
    out, _ = await proc.communicate()
    samples = []
    for line in out.decode().splitlines():
        t, total = line.split()
        samples.append((float(t), int(total)))
    return samples


async def run_mode(rebalance: bool, args: argparse.Namespace) -> dict[str, Any]:
    server = NatsServer.start()
    scenario: Scenario | None = None
    try:
        scenario = await Scenario.start(server.url, 2)
        scenario.service.start_publishing(args.events)
        log(f"{'on' if rebalance else 'off'}: connecting {args.clients} clients")
        await scenario.connect_clients(
            args.clients, delay=args.reconnect_delay, retry=2.0, jitter=args.jitter, timeout=120
        )
        await scenario.add_gateways(2)
        t0 = time.monotonic()
        timeline: list[tuple[float, list[int]]] = []
        sampler = asyncio.ensure_future(sample(scenario, timeline, t0))
        shed_sampler_proc = await start_shed_sampler(scenario)
        balanced_after: float | None = None
        if rebalance:
            ok = await scenario.rebalance(TOLERANCE, MAX_SHED_PER_SECOND, timeout=args.observe, settle=0.3)
            balanced_after = time.monotonic() - t0 if ok else None
        await asyncio.sleep(max(args.observe - (time.monotonic() - t0), 0))
        sampler.cancel()
        shed_samples = await stop_shed_sampler(shed_sampler_proc)
        await scenario.service.stop_publishing()
        final = scenario.service.seq
        deadline = time.monotonic() + 30
        while any(c.seq != final for c in scenario.clients) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        clients = scenario.clients
        gaps = [g for c in clients for g in c.gaps]
        closes = scenario.shed_closes()
        counts = await scenario.counts()
        return {
            "mode": "on" if rebalance else "off",
            "timeline": timeline,
            "final_counts": counts,
            "final_spread": spread({str(i): n for i, n in enumerate(counts)}),
            "balanced_after": balanced_after,
            "rounds": len(scenario.rounds),
            "closes": len(closes),
            "clients_closed": sum(bool(c.closes) for c in clients),
            "max_closes_per_client": max((len(c.closes) for c in clients), default=0),
            "closes_max_1s": max_in_window(closes),
            "closes_max_5s": max_in_window(closes, 5.0),
            "gateway_shed_max_1s": max_shed_in(shed_samples, 1.0),
            "gateway_shed_max_5s": max_shed_in(shed_samples, 5.0),
            "gap_p50": pct(gaps, 0.5),
            "gap_p99": pct(gaps, 0.99),
            "gap_max": max(gaps, default=0.0),
            "gap_mean": statistics.fmean(gaps) if gaps else 0.0,
            "gap_client_seconds": sum(gaps),
            "subscribe_failures": sum(len(c.subscribe_failures) for c in clients),
            "errors": sum(len(c.errors) for c in clients),
            "behind": sum(c.seq != final for c in clients),
            "events": final,
        }
    finally:
        if scenario is not None:
            await scenario.close()
        server.stop()


def spread_at(timeline: list[tuple[float, list[int]]], at: float) -> str:
    for t, counts in timeline:
        if t >= at:
            return f"{spread({str(i): n for i, n in enumerate(counts)}):.2f} {counts}"
    return "-"


def report(results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    lines = [
        (
            f"{args.clients} clients, 2 → 4 gateways, reconnect delay {args.reconnect_delay:g} s"
            f" (± {args.jitter:.0%}), tolerance {TOLERANCE}, {MAX_SHED_PER_SECOND} closes/s,"
            f" {args.events:g} events/s, observed {args.observe:g} s after the scale-out."
        ),
        "",
        "| | rebalancing off | rebalancing on |",
        "|---|---|---|",
    ]
    by = {r["mode"]: r for r in results}
    off, on = by.get("off", {}), by.get("on", {})

    def row(name: str, fmt: Any) -> None:
        lines.append(f"| {name} | {fmt(off) if off else '-'} | {fmt(on) if on else '-'} |")

    for at in (0, 5, 10, 20, 30, 45, 60, 85):
        if at < args.observe:
            row(f"spread (max/avg - 1) and counts at {at} s", lambda r, at=at: spread_at(r["timeline"], at))
    row("final spread and counts", lambda r: f"{r['final_spread']:.2f} {r['final_counts']}")
    row(
        "balanced (spread <= tolerance) after",
        lambda r: "never" if r["balanced_after"] is None else f"{r['balanced_after']:.1f} s",
    )
    row("rebalance rounds", lambda r: str(r["rounds"]))
    row("1001 closes (clients disconnected; most for one client)",
        lambda r: f"{r['closes']} ({r['clients_closed']}; {r['max_closes_per_client']})")  # fmt: skip
    row(
        "shed in the busiest 1 s / 5 s, gateway-side (shedTotal sampled at 10 Hz)",
        lambda r: f"{r['gateway_shed_max_1s']} / {r['gateway_shed_max_5s']}",
    )
    row(
        "closes seen by the clients in the busiest 1 s / 5 s",
        lambda r: f"{r['closes_max_1s']} / {r['closes_max_5s']}",
    )
    row("gap per shed client p50 / p99 / max",
        lambda r: f"{r['gap_p50']:.2f} / {r['gap_p99']:.2f} / {r['gap_max']:.2f} s")  # fmt: skip
    row("client-seconds without a subscription", lambda r: f"{r['gap_client_seconds']:.0f}")
    row("failed subscribes (retried)", lambda r: str(r["subscribe_failures"]))
    row("skipped/repeated events; clients not on the last value",
        lambda r: f"{r['errors']}; {r['behind']} (of {r['events']} events)")  # fmt: skip
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--reconnect-delay", type=float, default=3.0)
    parser.add_argument("--jitter", type=float, default=0.0, help="reconnect delay spread (0.5 = ±50 %%)")
    parser.add_argument("--observe", type=float, default=90.0, help="seconds observed after the scale-out")
    parser.add_argument("--events", type=float, default=2.0, help="change events per second")
    parser.add_argument("--only", choices=["on", "off"])
    parser.add_argument("--sample-shed", help=argparse.SUPPRESS)  # internal: the sampler child
    args = parser.parse_args()
    if args.sample_shed:
        shed_sampler(args.sample_shed.split(","))
        return
    results = []
    for mode in ("off", "on"):
        if args.only in (None, mode):
            results.append(await run_mode(mode == "on", args))
            log(f"{mode}: { ({k: v for k, v in results[-1].items() if k != 'timeline'}) }")
    print(report(results, args))


if __name__ == "__main__":
    # The clients and the proxy share this process: uvloop's lighter I/O leaves them more CPU.
    try:
        import uvloop
    except ImportError:
        asyncio.run(main())
    else:
        uvloop.run(main())
