"""gateway.mq.deadlines: one timer for many request deadlines."""

from __future__ import annotations

import asyncio

from gateway.mq.deadlines import Deadlines


async def test_each_deadline_expires_once_in_order_and_not_early() -> None:
    loop = asyncio.get_running_loop()
    live: dict[bytes, object] = {}
    fired: list[tuple[bytes, float, float]] = []
    d = Deadlines(loop, lambda token, deadline: fired.append((token, deadline, loop.time())), live)
    start = loop.time()
    for i, delay in enumerate([0.05, 0.01, 0.03, 0.03, 0.0]):
        token = b"t%d" % i
        live[token] = None
        d.set(token, start + delay)
    await asyncio.sleep(0.12)
    assert [t for t, _, _ in fired] == [b"t4", b"t1", b"t2", b"t3", b"t0"]
    for _, deadline, at in fired:
        assert deadline <= at <= deadline + 0.05
    d.close()


async def test_a_moved_deadline_reports_both_entries_for_the_owner_to_tell_apart() -> None:
    loop = asyncio.get_running_loop()
    fired: list[tuple[bytes, float]] = []
    d = Deadlines(loop, lambda token, deadline: fired.append((token, deadline)), {b"a": None})
    first = loop.time() + 0.01
    later = loop.time() + 0.04
    d.set(b"a", first)
    d.set(b"a", later)
    await asyncio.sleep(0.08)
    assert fired == [(b"a", first), (b"a", later)]
    d.close()


async def test_stale_entries_are_compacted() -> None:
    loop = asyncio.get_running_loop()
    live: dict[bytes, object] = {}
    d = Deadlines(loop, lambda token, deadline: None, live)
    for i in range(20_000):
        token = b"%d" % i
        live[token] = None
        d.set(token, loop.time() + 60)
        del live[token]  # answered at once, as most requests are
    assert len(d) < 2_000
    d.close()


async def test_close_stops_the_timer() -> None:
    loop = asyncio.get_running_loop()
    fired: list[bytes] = []
    d = Deadlines(loop, lambda token, deadline: fired.append(token), {b"x": None})
    d.set(b"x", loop.time() + 0.01)
    d.close()
    await asyncio.sleep(0.03)
    assert fired == []


async def test_entries_of_answered_requests_expire_without_a_call() -> None:
    loop = asyncio.get_running_loop()
    live: dict[bytes, object] = {b"open": None}
    fired: list[bytes] = []
    d = Deadlines(loop, lambda token, deadline: fired.append(token), live)
    d.set(b"answered", loop.time() + 0.01)
    d.set(b"open", loop.time() + 0.01)
    await asyncio.sleep(0.05)
    assert fired == [b"open"]
    assert len(d) == 0
    d.close()
