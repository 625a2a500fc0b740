"""Fixtures of the reliability tests: the runtime tests' gateway processes and killable nats-servers
(re-exported, so ``tests/reliability`` starts and stops real processes exactly as ``tests/runtime`` does),
and the ``soak`` marker: long runs that are skipped unless selected with ``-m soak``.
"""

from __future__ import annotations

import pytest

from tests.runtime.conftest import cluster, gateways, nats_node, start_gateway

__all__ = ["cluster", "gateways", "nats_node", "start_gateway"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "soak: long reliability run, only with -m soak")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "soak" in (config.getoption("markexpr", "") or ""):
        return
    skip = pytest.mark.skip(reason="soak test: run with -m soak")
    for item in items:
        if item.get_closest_marker("soak") is not None:
            item.add_marker(skip)
