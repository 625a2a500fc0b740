"""pyresgate_operator.health: which gateway pods are unhealthy (CrashLoopBackOff; unready past the timeout
while another gateway is ready) and which one, at most, to replace now (never while one terminates).
"""

from __future__ import annotations

from datetime import timedelta

from pyresgate_operator import health

from tests.operator import samples
from tests.operator.samples import NOW, pod

TIMEOUT = 300


def _problems(*pods: dict[str, object]) -> list[health.PodProblem]:
    return health.problems(list(pods), now=NOW, unready_timeout=TIMEOUT)


def test_healthy_pods_have_no_problems() -> None:
    assert _problems(pod("a"), pod("b", restarts=3)) == []
    assert _problems() == []


def test_crash_loop_is_a_problem_whatever_the_other_pods_do() -> None:
    found = _problems(pod("a", ready=False, crash_loop=True, restarts=4))
    assert found == [
        health.PodProblem("a", health.CRASH_LOOP, "container gateway is in CrashLoopBackOff after 4 restarts")
    ]
    assert _problems(pod("a"), pod("b", ready=False, crash_loop=True, restarts=1))[0].pod == "b"


def test_other_waiting_reasons_are_not_a_crash_loop() -> None:
    starting = pod("a", ready=False, since=NOW - timedelta(seconds=10))
    starting["status"]["containerStatuses"][0]["state"] = {"waiting": {"reason": "ContainerCreating"}}
    pulling = pod("b", ready=False, since=NOW - timedelta(seconds=10))
    pulling["status"]["containerStatuses"][0]["state"] = {"waiting": {"reason": "ImagePullBackOff"}}
    assert _problems(starting, pulling, pod("c")) == []


def test_unready_past_the_timeout_while_another_is_ready_is_stuck() -> None:
    stuck = pod("b", ready=False, since=NOW - timedelta(seconds=TIMEOUT + 1))
    found = _problems(pod("a"), stuck)
    assert found == [
        health.PodProblem(
            "b", health.STUCK_UNREADY, f"unready for {TIMEOUT + 1}s while other gateways are ready"
        )
    ]


def test_unready_within_the_timeout_is_not_yet_a_problem() -> None:
    assert _problems(pod("a"), pod("b", ready=False, since=NOW - timedelta(seconds=TIMEOUT))) == []
    assert _problems(pod("a"), pod("b", ready=False, since=NOW - timedelta(seconds=5))) == []


def test_when_no_gateway_is_ready_nats_is_the_cause_and_no_pod_is_stuck() -> None:
    long_ago = NOW - timedelta(hours=2)
    assert _problems(pod("a", ready=False, since=long_ago), pod("b", ready=False, since=long_ago)) == []


def test_a_terminating_pod_neither_has_problems_nor_counts_as_the_ready_one() -> None:
    long_ago = NOW - timedelta(hours=2)
    leaving = pod("a", terminating=True)
    assert _problems(leaving, pod("b", ready=False, since=long_ago)) == []
    assert _problems(pod("c", ready=False, crash_loop=True, terminating=True)) == []


def test_unready_time_falls_back_to_the_pods_creation() -> None:
    young = pod("b", ready=False, created=NOW - timedelta(seconds=30))
    old = pod("c", ready=False, created=NOW - timedelta(hours=1))
    for item in (young, old):
        item["status"]["conditions"] = [c for c in item["status"]["conditions"] if c["type"] != "Ready"]
    assert [problem.pod for problem in _problems(pod("a"), young, old)] == ["c"]
    unknown = pod("d", ready=False)
    unknown["status"]["conditions"] = []
    del unknown["metadata"]["creationTimestamp"]
    assert _problems(pod("a"), unknown) == []


def test_one_pod_is_replaced_at_a_time_and_never_while_another_terminates() -> None:
    long_ago = NOW - timedelta(hours=2)
    pods = [pod("a"), pod("b", ready=False, since=long_ago), pod("c", ready=False, crash_loop=True)]
    found = _problems(*pods)
    assert {problem.pod for problem in found} == {"b", "c"}
    first = health.pod_to_replace(pods, found)
    assert first is not None and first == found[0]
    # The replaced pod terminates: the other problem waits, however bad.
    pods = [pod(name, terminating=True) if name == first.pod else item for name, item in zip("abc", pods)]
    found = _problems(*pods)
    assert [problem.pod for problem in found] == [name for name in "bc" if name != first.pod]
    assert health.pod_to_replace(pods, found) is None
    # It is gone (its replacement is starting): now the next one.
    pods = [item for item in pods if item["metadata"]["name"] != first.pod]
    pods.append(pod("d", ready=False, since=NOW - timedelta(seconds=3)))
    found = _problems(*pods)
    second = health.pod_to_replace(pods, found)
    assert second is not None and second.pod != first.pod and second.pod in "bc"


def test_nothing_to_replace_without_problems() -> None:
    assert health.pod_to_replace([pod("a")], []) is None


def test_readiness_restarts_and_termination_are_read_from_the_pod() -> None:
    assert health.is_ready(pod("a"))
    assert not health.is_ready(pod("a", ready=False))
    assert not health.is_ready({"metadata": {"name": "x"}})
    assert health.restarts(pod("a", restarts=7)) == 7
    two = pod("a", restarts=2)
    two["status"]["containerStatuses"].append({"name": "sidecar", "restartCount": 3})
    assert health.restarts(two) == 5
    assert health.restarts({"metadata": {}, "status": {}}) == 0
    assert health.is_terminating(pod("a", terminating=True))
    assert not health.is_terminating(pod("a"))
    assert health.parse_time(samples.stamp(NOW)) == NOW
