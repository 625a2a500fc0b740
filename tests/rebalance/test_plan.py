"""The rebalancing policy ``pyresgate_operator.rebalance.plan``, as properties (hypothesis).

Never sheds from a pod at or below the average; does nothing while the spread is within the
tolerance; one round sheds no more than the connections above the average; applying a plan and
planning again gives nothing (when the shed clients land on the emptier pods) or converges in a
bounded number of rounds (when they land round-robin, the busy pods included, as behind a Service).
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyresgate_operator.rebalance import level, plan, spread

counts_st = st.dictionaries(
    st.text("abcdefghij", min_size=1, max_size=3), st.integers(0, 20_000), max_size=12
)
tolerance_st = st.floats(0, 2, allow_nan=False)


def _avg(counts: dict[str, int]) -> float:
    return sum(counts.values()) / len(counts)


def _fill_emptiest(counts: dict[str, int], n: int) -> dict[str, int]:
    """``counts`` after ``n`` clients each joined the emptiest pod (ties: first name), in O(pods)."""
    low, high = min(counts.values()), min(counts.values()) + n
    while low < high:  # the highest level all pods can be raised to with n clients
        mid = (low + high + 1) // 2
        if sum(max(mid - c, 0) for c in counts.values()) <= n:
            low = mid
        else:
            high = mid - 1
    after = {pod: max(c, low) for pod, c in counts.items()}
    left = n - sum(after.values()) + sum(counts.values())
    for pod in sorted(pod for pod, c in after.items() if c == low)[:left]:
        after[pod] += 1
    return after


def _round_robin(counts: dict[str, int], n: int, turn: int) -> dict[str, int]:
    """``counts`` after ``n`` clients joined the pods in turn (sorted names), starting at ``turn``."""
    pods = sorted(counts)
    after = {pod: c + n // len(pods) for pod, c in counts.items()}
    for i in range(n % len(pods)):
        after[pods[(turn + i) % len(pods)]] += 1
    return after


@given(counts_st, tolerance_st)
def test_only_pods_above_the_average_shed_and_only_down_to_it(counts: dict[str, int], tol: float) -> None:
    targets = plan(counts, tol)
    for pod, target in targets.items():
        assert target >= _avg(counts), (pod, target)
        assert target < counts[pod], "a target at or above the count sheds nothing"
        assert target == level(counts, tol)
    assert set(targets) == {pod for pod, n in counts.items() if n > level(counts, tol)} or not targets


@given(counts_st, tolerance_st)
def test_nothing_to_do_within_tolerance(counts: dict[str, int], tol: float) -> None:
    targets = plan(counts, tol)
    if spread(counts) <= tol:
        assert targets == {}
    else:
        # Beyond the tolerance the busiest pod sheds unless the counts are too small to matter:
        # the level rounds up to the busiest pod's count only when avg * tolerance / 2 < 1.
        assert targets or _avg(counts) * tol / 2 < 1 or max(counts.values()) <= level(counts, tol)


@given(counts_st, tolerance_st)
def test_one_round_sheds_at_most_what_is_above_the_average(counts: dict[str, int], tol: float) -> None:
    targets = plan(counts, tol)
    shed = sum(counts[pod] - target for pod, target in targets.items())
    if counts:
        assert shed <= sum(max(n - _avg(counts), 0) for n in counts.values())
        assert shed <= sum(counts.values())


@settings(deadline=None)
@given(counts_st, tolerance_st)
def test_planning_after_the_shed_clients_filled_the_emptiest_pods_gives_nothing(
    counts: dict[str, int], tol: float
) -> None:
    targets = plan(counts, tol)
    shed = sum(counts[pod] - target for pod, target in targets.items())
    if counts:  # each reconnecting client lands on the emptiest pod
        after = _fill_emptiest({**counts, **targets}, shed)
        assert sum(after.values()) == sum(counts.values())
        assert plan(after, tol) == {}


@settings(deadline=None)
@given(counts_st, tolerance_st, st.integers(0, 11))
def test_round_robin_reconnects_converge(counts: dict[str, int], tol: float, start: int) -> None:
    after = dict(counts)
    turn = start
    rounds = 0
    while targets := plan(after, tol):
        rounds += 1
        assert rounds <= 400, f"no convergence: {after}"
        shed = sum(after[pod] - target for pod, target in targets.items())
        # Each reconnecting client lands on the next pod in turn, the busy ones included.
        after = _round_robin({**after, **targets}, shed, turn)
        turn += shed
    assert sum(after.values()) == sum(counts.values())
    assert max(after.values(), default=0) <= max(level(after, tol), 0) or spread(after) <= tol


def test_the_simulations_match_one_client_at_a_time() -> None:
    counts = {"a": 9, "b": 2, "c": 2, "d": 5}
    slow = dict(counts)
    for _ in range(7):
        slow[min(slow, key=lambda pod: (slow[pod], pod))] += 1
    assert _fill_emptiest(counts, 7) == slow == {"a": 9, "b": 6, "c": 5, "d": 5}
    assert _round_robin(counts, 6, 3) == {"a": 11, "b": 3, "c": 3, "d": 7}


def test_examples() -> None:
    # 2 -> 4 gateways with 2,000 clients: the two old pods come down to ceil(500 * 1.1) = 550.
    assert plan({"a": 1000, "b": 1000, "c": 0, "d": 0}, 0.2) == {"a": 550, "b": 550}
    assert spread({"a": 1000, "b": 1000, "c": 0, "d": 0}) == 1.0
    assert plan({"a": 110, "b": 100, "c": 90}, 0.2) == {}  # spread 0.1
    assert plan({"a": 130, "b": 100, "c": 70}, 0.2) == {"a": 110}  # spread 0.3; b is at the average
    assert plan({"a": 5}, 0.0) == {} and plan({}, 0.2) == {}
    assert plan({"a": 0, "b": 0}, 0.0) == {} and spread({"a": 0, "b": 0}) == 0.0


@pytest.mark.parametrize(
    ("counts", "tol"),
    [
        ({"a": -1, "b": 2}, 0.2),
        ({"a": 1.5, "b": 2}, 0.2),
        ({"a": True, "b": 2}, 0.2),
        ({"a": 1, "b": 2}, -0.1),
        ({"a": 1, "b": 2}, math.nan),
        ({"a": 1, "b": 2}, math.inf),
        ({"a": 1, "b": 2}, "0.2"),
    ],
)
def test_bad_input_is_a_value_error(counts: dict[str, int], tol: float) -> None:
    with pytest.raises(ValueError, match="must be"):
        plan(counts, tol)
