"""Helpers for the catalog §4.1 sequence sets (SUB-03, usable for HGET-02) and reference walks.

``RequestPool`` collects the gateway's NATS requests order-free and hands out the one on a given subject
when a step needs it. ``expected_set`` computes the resource set a client must receive for a rid, given
the rids it already holds, by walking the fixture references (non-soft) of §4.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tests.support.fakeservice import FakeService, Request
from tests.support.fixtures import (
    COLLECTIONS,
    ERRORS,
    LEGACY_120_COLLECTIONS,
    LEGACY_120_MODELS,
    MODELS,
    client_collection,
    client_model,
)


class RequestPool:
    """NATS requests collected in any order; ``take(subject)`` waits (bounded) for one on ``subject``."""

    def __init__(self, svc: FakeService) -> None:
        self.svc = svc
        self.buffer: list[Request] = []

    async def take(self, subject: str, timeout: float = 1.0) -> Request:
        try:
            async with asyncio.timeout(timeout):
                while True:
                    for i, req in enumerate(self.buffer):
                        if req.subject == subject:
                            return self.buffer.pop(i)
                    self.buffer.append(await self.svc._queue.get())
        except TimeoutError:
            raise AssertionError(
                f"no NATS request on {subject!r} within {timeout}s; have {[r.subject for r in self.buffer]}"
            ) from None

    def assert_empty(self) -> None:
        left = self.buffer + self.svc.pending()
        assert not left, f"unexpected NATS requests {left!r}"


def _references(rid: str) -> list[str]:
    """Non-soft reference targets in the fixture data of ``rid`` (in data order)."""
    if rid in MODELS:
        values: list[Any] = list(MODELS[rid].values())
    elif rid in COLLECTIONS:
        values = list(COLLECTIONS[rid])
    else:
        return []
    return [v["rid"] for v in values if isinstance(v, dict) and "rid" in v and not v.get("soft")]


def reachable(rid: str) -> list[str]:
    """``rid`` and every resource reachable through non-soft fixture references (each once)."""
    seen: list[str] = []
    stack = [rid]
    while stack:
        cur = stack.pop()
        if cur in seen:
            continue
        seen.append(cur)
        stack.extend(_references(cur))
    return seen


def expected_set(rid: str, held: set[str], version: str = "1.999.999") -> dict[str, Any]:
    """The resource set for subscribing ``rid`` when the client already holds ``held``; adds to ``held``
    the resources delivered (errors are never held)."""
    legacy = version == "1.2.0"
    out: dict[str, Any] = {}
    for cur in reachable(rid):
        if cur in held:
            continue
        if cur in ERRORS:
            out.setdefault("errors", {})[cur] = dict(ERRORS[cur])
            continue
        held.add(cur)
        if cur in MODELS:
            data = LEGACY_120_MODELS[cur] if legacy and cur in LEGACY_120_MODELS else client_model(cur)
            out.setdefault("models", {})[cur] = data
        else:
            data = (
                LEGACY_120_COLLECTIONS[cur]
                if legacy and cur in LEGACY_120_COLLECTIONS
                else client_collection(cur)
            )
            out.setdefault("collections", {})[cur] = data
    return out
