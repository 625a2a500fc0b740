"""The operator's own Prometheus metrics: reconciles, their outcomes and durations, pod replacements.

Updated by ``reconcile`` and ``handlers``; served by ``serve`` on the operator's metrics port (the
``--metrics-port`` option of ``pyresgate-operator``).
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram, start_http_server

RECONCILES = Counter(
    "pyresgate_operator_reconciles",
    "Reconcile passes of ResgateCluster resources, by outcome (ok, error, invalid)",
    ["outcome"],
)
RECONCILE_SECONDS = Histogram(
    "pyresgate_operator_reconcile_duration_seconds",
    "Duration of one reconcile pass of a ResgateCluster",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
POD_REPLACEMENTS = Counter(
    "pyresgate_operator_pod_replacements",
    "Gateway pods deleted by the operator because they crash-looped or stayed unready",
    ["reason"],
)
APPLIES = Counter(
    "pyresgate_operator_applies",
    "Server-side applies of owned objects, by kind",
    ["kind"],
)
REBALANCE_ROUNDS = Counter(
    "pyresgate_operator_rebalance_rounds",
    "Connection rebalancing rounds, by outcome (balanced, shedding, unreachable: a pod did not answer)",
    ["outcome"],
)
REBALANCE_SHED = Counter(
    "pyresgate_operator_rebalance_shed_requested",
    "WebSocket connections the operator asked busy gateway pods to close (code 1001) to rebalance",
)


def serve(port: int) -> None:
    """Serve /metrics on ``port`` (all interfaces) from a background thread."""
    start_http_server(port)
