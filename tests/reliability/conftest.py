"""Fixtures of the reliability tests: the runtime tests' gateway processes and killable nats-servers
(re-exported, so ``tests/reliability`` starts and stops real processes exactly as ``tests/runtime`` does).
"""

from __future__ import annotations

from tests.runtime.conftest import cluster, gateways, nats_node, start_gateway

__all__ = ["cluster", "gateways", "nats_node", "start_gateway"]
