"""Connection rebalancing: which gateway pods should shed WebSockets after a scale-out, and asking them.

Called by the operator's rebalance timer (``spec.autoscaling.rebalance``, issue 11) with each ready
pod's admin base URL; ``plan`` is pure and holds the policy, ``rebalance_once`` does one round of
I/O: read every pod's ``GET /connections``, plan, and ``POST /shed`` to the busiest pods. A shed
client reconnects through the Service and lands, most likely, on an emptier pod.

Policy (see docs/autoscaling.md for the reasoning and the measurements):

- spread = ``max / avg - 1`` over the pods' connection counts (0 when there are none). Nothing is
  shed while ``spread <= tolerance``.
- Otherwise every pod above the level ``ceil(avg * (1 + tolerance / 2))`` is asked to come down to
  that level; no other pod is touched, so a pod at or below the average never sheds. Aiming at the
  middle of the tolerance band rather than at the average leaves room for the shed clients the
  Service sends straight back to a busy pod, so the next round usually finds the spread within the
  tolerance instead of overshooting and shedding again (hysteresis against ping-pong).
- Bounded: one round sheds at most the connections above that level, which is less than the sum of
  the counts above the average; the gateways close them at no more than ``max_shed_per_second`` in
  total (the rate is split among the shedding pods).
- Idempotent: the gateway's ``POST /shed`` sets a target, it does not add to one, so a repeated or
  overlapping round asks for the same state again.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp

from pyresgate_operator import health
from pyresgate_operator.spec import ClusterSpec

#: Seconds one admin request may take before the pod is reported unreachable for this round.
REQUEST_TIMEOUT = 2.0


def spread(counts: Mapping[str, int]) -> float:
    """``max / avg - 1`` of the counts: 0 when balanced (or empty, or all zero)."""
    total = sum(counts.values())
    if not counts or total == 0:
        return 0.0
    return max(counts.values()) * len(counts) / total - 1


def level(counts: Mapping[str, int], tolerance: float) -> int:
    """The count the busiest pods are brought down to: ``ceil(avg * (1 + tolerance / 2))``."""
    if not counts:
        return 0
    avg = sum(counts.values()) / len(counts)
    # Rounded first so that float noise (100 * 1.1 = 110.00000000000001) does not add one.
    return math.ceil(round(avg * (1 + tolerance / 2), 9))


def plan(counts: Mapping[str, int], tolerance: float) -> dict[str, int]:
    """Target connection count per pod that should shed (empty: nothing to do).

    ``counts``: pod → current WebSocket count (integers >= 0); ``tolerance``: allowed spread, a
    finite number >= 0. Raises ValueError on anything else.
    """
    _check(counts, tolerance)
    if len(counts) < 2 or spread(counts) <= tolerance:
        return {}
    keep = level(counts, tolerance)
    return {pod: keep for pod, n in sorted(counts.items()) if n > keep}


def _check(counts: Mapping[str, int], tolerance: float) -> None:
    if isinstance(tolerance, bool) or not isinstance(tolerance, int | float) or not math.isfinite(tolerance):
        raise ValueError(f"tolerance must be a finite number, got {tolerance!r}")
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance!r}")
    for pod, n in counts.items():
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"connection count of {pod!r} must be an integer >= 0, got {n!r}")


@dataclasses.dataclass
class RebalanceResult:
    """What one round saw and did (the operator turns it into Events and metrics)."""

    #: pod → WebSocket count read from its admin endpoint (reachable pods only).
    counts: dict[str, int]
    #: pod → target it was asked to shed down to.
    targets: dict[str, int]
    #: pod → closes per second it was given (their sum is at most max_shed_per_second).
    rates: dict[str, float]
    #: pod → why it was skipped or its shed request failed.
    errors: dict[str, str]
    #: Pods that were still shedding from an earlier round although this round wants nothing from
    #: them; they were told to stop (``DELETE /shed``), so the total rate stays bounded.
    stopped: list[str] = dataclasses.field(default_factory=list)

    @property
    def spread(self) -> float:
        return spread(self.counts)

    @property
    def shed_requested(self) -> int:
        """Connections this round asked the pods to close."""
        return sum(self.counts[pod] - target for pod, target in self.targets.items() if pod in self.counts)

    @property
    def balanced(self) -> bool:
        """Nothing to shed and every pod answered."""
        return not self.targets and not self.errors


async def rebalance_once(
    endpoints: Mapping[str, str],
    tolerance: float,
    max_shed_per_second: float,
    session: aiohttp.ClientSession,
) -> RebalanceResult:
    """One round: read each pod's count, plan, ask the busiest pods to shed.

    ``endpoints``: pod → admin base URL (``http://10.0.0.5:9090``). A pod that cannot be reached or
    answers nonsense is left out of the plan and reported in ``errors``; nothing here raises for a
    pod's failure.
    """
    if not math.isfinite(max_shed_per_second) or max_shed_per_second <= 0:
        raise ValueError(f"max_shed_per_second must be a finite number > 0, got {max_shed_per_second!r}")
    pods = sorted(endpoints)
    replies = await asyncio.gather(*(_status(session, endpoints[pod]) for pod in pods))
    counts: dict[str, int] = {}
    shedding: set[str] = set()
    errors: dict[str, str] = {}
    for pod, reply in zip(pods, replies):
        if isinstance(reply, str):
            errors[pod] = reply
            continue
        counts[pod] = reply[0]
        if reply[1]:
            shedding.add(pod)
    targets = plan(counts, tolerance)
    rates = {pod: max_shed_per_second / len(targets) for pod in targets}
    # Stop what an earlier round started and this one does not want, before asking for more, so
    # the pods shedding at any moment share at most max_shed_per_second.
    stopped = sorted(shedding - set(targets))
    problems = await asyncio.gather(*(_stop(session, endpoints[pod]) for pod in stopped))
    problems += await asyncio.gather(
        *(_shed(session, endpoints[pod], targets[pod], rates[pod]) for pod in targets)
    )
    for pod, problem in zip([*stopped, *targets], problems):
        if problem is not None:
            errors[pod] = problem
    return RebalanceResult(counts=counts, targets=targets, rates=rates, errors=errors, stopped=stopped)


async def _status(session: aiohttp.ClientSession, base: str) -> tuple[int, bool] | str:
    """``(connections, shedding)`` from ``GET /connections``, or why not."""
    try:
        async with session.get(base.rstrip("/") + "/connections", timeout=_timeout()) as resp:
            if resp.status != 200:
                return f"GET /connections: HTTP {resp.status}"
            body: Any = await resp.json(content_type=None)
    except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
        return f"GET /connections: {type(exc).__name__}: {exc}"
    n = body.get("connections") if isinstance(body, dict) else None
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        return f"GET /connections: no connection count in {str(body)[:200]!r}"
    return n, body.get("shedding") is True


async def _shed(session: aiohttp.ClientSession, base: str, target: int, rate: float) -> str | None:
    """``POST /shed``; None when accepted, else why not."""
    return await _call(session, "POST", base, {"target": target, "rate": rate})


async def _stop(session: aiohttp.ClientSession, base: str) -> str | None:
    """``DELETE /shed`` (stop shedding); None when done, else why not."""
    return await _call(session, "DELETE", base, None)


async def _call(session: aiohttp.ClientSession, method: str, base: str, body: object) -> str | None:
    try:
        async with session.request(method, base.rstrip("/") + "/shed", json=body, timeout=_timeout()) as resp:
            if resp.status == 200:
                return None
            return f"{method} /shed: HTTP {resp.status}: {(await resp.text())[:200]}"
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        return f"{method} /shed: {type(exc).__name__}: {exc}"


def _timeout() -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)


def pod_endpoints(pods: Sequence[Mapping[str, Any]], *, desired: int) -> dict[str, str] | None:
    """Admin base URL of every gateway pod, or None while the set of pods is in flux.

    Counts are only comparable once every desired pod is ready and none is terminating (a rollout
    or a scale step still moves clients by itself). The admin port is read from each pod's own
    container port named ``admin``, so a pod keeps its URL across a change of ``adminPort``.
    """
    live = [pod for pod in pods if not health.is_terminating(pod)]
    if len(live) != len(pods) or len(live) != desired:
        return None
    endpoints: dict[str, str] = {}
    for pod in live:
        ready = health.is_ready(pod)
        ip = pod.get("status", {}).get("podIP")
        port = next(
            (
                item["containerPort"]
                for container in pod.get("spec", {}).get("containers") or []
                for item in container.get("ports") or []
                if item.get("name") == "admin"
            ),
            None,
        )
        if not ready or not ip or port is None:
            return None
        host = f"[{ip}]" if ":" in ip else ip
        endpoints[pod["metadata"]["name"]] = f"http://{host}:{port}"
    return endpoints


async def round_for(
    cluster: ClusterSpec, pods: Sequence[Mapping[str, Any]], session: aiohttp.ClientSession
) -> RebalanceResult | None:
    """One rebalancing round for a ResgateCluster, or None when it has nothing to compare yet
    (rebalancing off, fewer than two pods, or pods still coming and going)."""
    scaling = cluster.autoscaling
    if scaling is None or not scaling.rebalance:
        return None
    endpoints = pod_endpoints(pods, desired=cluster.replicas)
    if endpoints is None or len(endpoints) < 2:
        return None
    return await rebalance_once(endpoints, scaling.tolerance, scaling.max_shed_per_second, session)


def describe(result: RebalanceResult, *, max_shed_per_second: float) -> str:
    """The Event message of a round that asked pods to shed."""
    asks = ", ".join(f"{pod} {result.counts[pod]}→{target}" for pod, target in sorted(result.targets.items()))
    return (
        f"connection spread {result.spread:.2f} above tolerance: asked {asks} "
        f"({result.shed_requested} connections, at most {max_shed_per_second:g}/s in all)"
    )
