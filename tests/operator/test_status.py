"""pyresgate_operator.status and reconcile.transition_events: the ResgateCluster's status per the API
conventions (conditions Ready, Progressing, Degraded, NatsConnected with type, status, reason,
message, lastTransitionTime, observedGeneration) in each situation, and the Events of their changes.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyresgate_operator import build, health, status
from pyresgate_operator.reconcile import Event, transition_events

from tests.operator import crdschema, samples
from tests.operator.samples import NOW, deployment, pod

SELECTOR = build.selector_string(samples.owner())
URLS = ("nats://nats-0.messaging:4222", "nats://nats-1.messaging:4222")
LATER = NOW + timedelta(minutes=3)


def _observed(**overrides: Any) -> status.Observed:
    values: dict[str, Any] = {
        "generation": 4,
        "desired_replicas": 3,
        "selector": SELECTOR,
        "deployment": None,
        "pods": [],
        "config_hash": "ab" * 32,
        "nats_urls": URLS,
    }
    values.update(overrides)
    return status.Observed(**values)


def _compute(
    observed: status.Observed, previous: list[dict[str, Any]] | None = None, now: Any = NOW
) -> dict[str, Any]:
    return status.compute(observed, previous=previous or [], now=now)


def _conditions(result: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {cond["type"]: (cond["status"], cond["reason"]) for cond in result["conditions"]}


def _message(result: dict[str, Any], kind: str) -> str:
    return next(cond["message"] for cond in result["conditions"] if cond["type"] == kind)


def _status_schema_errors(result: dict[str, Any]) -> list[str]:
    resource = samples.load(samples.EXAMPLES / "resgatecluster-minimal.yaml")
    return crdschema.errors({**resource, "status": result})


ALL_READY = {
    "deployment": deployment(replicas=3, ready=3, updated=3),
    "pods": [pod("a", restarts=1), pod("b"), pod("c", restarts=2)],
}


def test_conditions_follow_the_api_conventions_and_fit_the_crds_status_schema() -> None:
    result = _compute(_observed(**ALL_READY))
    assert [cond["type"] for cond in result["conditions"]] == [
        "Ready",
        "Progressing",
        "Degraded",
        "NatsConnected",
    ]
    for cond in result["conditions"]:
        assert set(cond) == {
            "type",
            "status",
            "reason",
            "message",
            "lastTransitionTime",
            "observedGeneration",
        }
        assert cond["status"] in ("True", "False", "Unknown")
        assert cond["reason"][0].isupper() and cond["reason"].isalnum()
        assert cond["message"]
        assert cond["lastTransitionTime"] == "2026-12-01T12:00:00Z"
        assert cond["observedGeneration"] == 4
    assert _status_schema_errors(result) == []


def test_all_ready() -> None:
    result = _compute(_observed(**ALL_READY, pod_replacements=2))
    assert _conditions(result) == {
        "Ready": ("True", "AllReplicasReady"),
        "Progressing": ("False", "RolloutComplete"),
        "Degraded": ("False", "AsExpected"),
        "NatsConnected": ("True", "GatewaysConnected"),
    }
    assert _message(result, "Ready") == "3/3 gateways ready"
    assert _message(result, "NatsConnected") == "3 gateways connected to NATS"
    assert {key: value for key, value in result.items() if key != "conditions"} == {
        "observedGeneration": 4,
        "replicas": 3,
        "readyReplicas": 3,
        "updatedReplicas": 3,
        "selector": SELECTOR,
        "configHash": "ab" * 32,
        "natsUrl": ",".join(URLS),
        "restarts": 3,
        "podReplacements": 2,
    }


def test_no_deployment_yet() -> None:
    result = _compute(_observed())
    assert _conditions(result) == {
        "Ready": ("False", "ReplicasNotReady"),
        "Progressing": ("True", "RollingOut"),
        "Degraded": ("False", "AsExpected"),
        "NatsConnected": ("Unknown", "NoGateways"),
    }
    assert (result["replicas"], result["readyReplicas"], result["updatedReplicas"]) == (0, 0, 0)
    assert _message(result, "Ready") == "0/3 gateways ready, 0 updated"
    assert _status_schema_errors(result) == []


def test_rolling_out() -> None:
    rolling = deployment(replicas=3, ready=3, updated=1, current=4)
    pods = [pod("a"), pod("b"), pod("c"), pod("d", ready=False, since=NOW - timedelta(seconds=5))]
    result = _compute(_observed(deployment=rolling, pods=pods))
    assert _conditions(result) == {
        "Ready": ("False", "ReplicasNotReady"),
        "Progressing": ("True", "RollingOut"),
        "Degraded": ("False", "AsExpected"),
        "NatsConnected": ("True", "GatewaysConnected"),
    }
    assert _message(result, "Progressing") == "1/3 gateways updated, 3 ready"
    assert (result["replicas"], result["readyReplicas"], result["updatedReplicas"]) == (4, 3, 1)


def test_a_deployment_controller_that_has_not_seen_the_new_spec_is_still_rolling_out() -> None:
    stale = deployment(replicas=3, ready=3, updated=3, generation=5, observed_generation=4)
    result = _compute(_observed(deployment=stale, pods=ALL_READY["pods"]))
    assert _conditions(result)["Ready"] == ("False", "ReplicasNotReady")
    assert _conditions(result)["Progressing"] == ("True", "RollingOut")


def test_scaled_up_but_not_yet_ready() -> None:
    scaling = deployment(replicas=3, ready=3, updated=3)
    result = _compute(_observed(deployment=scaling, desired_replicas=5, pods=ALL_READY["pods"]))
    assert _conditions(result)["Ready"] == ("False", "ReplicasNotReady")
    assert _message(result, "Ready") == "3/5 gateways ready, 3 updated"


@pytest.mark.parametrize(
    ("reason", "message"),
    [
        ("InvalidSpec", 'gateway: invalid headerAuth setting ("x"): must be ...'),
        ("SecretNotFound", "Secret apps/nats-creds (named in spec.nats) does not exist"),
        ("NatsServiceNotFound", "NATS Service messaging/nats (spec.nats.serviceRef) does not exist"),
    ],
)
def test_blocked_says_why_in_ready_progressing_and_degraded(reason: str, message: str) -> None:
    result = _compute(_observed(**ALL_READY, blocked=(reason, message)))
    assert _conditions(result) == {
        "Ready": ("False", reason),
        "Progressing": ("False", "Blocked"),
        "Degraded": ("True", reason),
        "NatsConnected": ("True", "GatewaysConnected"),  # the running gateways are still wired
    }
    assert (
        _message(result, "Ready")
        == _message(result, "Degraded")
        == _message(result, "Progressing")
        == message
    )


def test_crash_loop_is_degraded_and_names_the_pods() -> None:
    pods = [
        pod("a"),
        pod("b", ready=False, crash_loop=True, restarts=6),
        pod("c", ready=False, crash_loop=True),
    ]
    found = health.problems(pods, now=NOW, unready_timeout=300)
    result = _compute(
        _observed(deployment=deployment(replicas=3, ready=1, updated=3), pods=pods, problems=found)
    )
    assert _conditions(result)["Degraded"] == ("True", "CrashLoopBackOff")
    assert _message(result, "Degraded") == "b, c: container gateway is in CrashLoopBackOff after 6 restarts"
    assert _conditions(result)["Ready"] == ("False", "ReplicasNotReady")
    assert result["restarts"] == 6


def test_stuck_pod_is_degraded() -> None:
    pods = [pod("a"), pod("b", ready=False, since=NOW - timedelta(minutes=10))]
    found = health.problems(pods, now=NOW, unready_timeout=300)
    result = _compute(
        _observed(deployment=deployment(replicas=2, ready=1, updated=2), pods=pods, problems=found)
    )
    assert _conditions(result)["Degraded"] == ("True", "Unready")
    assert _message(result, "Degraded") == "b: unready for 600s while other gateways are ready"


def test_no_gateway_ready_means_nats_is_not_connected() -> None:
    pods = [pod("a", ready=False), pod("b", ready=False)]
    result = _compute(_observed(deployment=deployment(replicas=2, ready=0, updated=2), pods=pods))
    assert _conditions(result)["NatsConnected"] == ("False", "NoGatewayConnected")
    message = _message(result, "NatsConnected")
    assert message == f"none of 2 gateways is ready: NATS ({', '.join(URLS)}) may be unreachable"


def test_zero_replicas_rolled_out_is_ready() -> None:
    result = _compute(_observed(desired_replicas=0, deployment=deployment(replicas=0, ready=0, updated=0)))
    assert _conditions(result)["Ready"] == ("True", "AllReplicasReady")
    assert _conditions(result)["NatsConnected"] == ("Unknown", "NoGateways")


def test_last_transition_time_moves_only_when_the_status_changes() -> None:
    first = _compute(_observed())
    # Same statuses later, one reason changed (Ready stays False): every time is kept.
    rolling = deployment(replicas=3, ready=1, updated=1)
    second = _compute(_observed(deployment=rolling, pods=[pod("a")]), first["conditions"], LATER)
    times = {cond["type"]: cond["lastTransitionTime"] for cond in second["conditions"]}
    assert times["Ready"] == times["Progressing"] == times["Degraded"] == samples.stamp(NOW)
    # NatsConnected went Unknown -> True: its time moves.
    assert times["NatsConnected"] == samples.stamp(LATER)
    # Everything ready: Ready and Progressing move, Degraded (still False) does not.
    third = _compute(_observed(**ALL_READY), second["conditions"], LATER + timedelta(minutes=1))
    times = {cond["type"]: cond["lastTransitionTime"] for cond in third["conditions"]}
    assert times["Ready"] == times["Progressing"] == samples.stamp(LATER + timedelta(minutes=1))
    assert times["Degraded"] == samples.stamp(NOW)
    assert times["NatsConnected"] == samples.stamp(LATER)


def test_observed_generation_is_the_current_one_on_every_condition() -> None:
    first = _compute(_observed(**ALL_READY))
    second = _compute(_observed(**ALL_READY, generation=5), first["conditions"], LATER)
    assert second["observedGeneration"] == 5
    assert {cond["observedGeneration"] for cond in second["conditions"]} == {5}
    assert {cond["lastTransitionTime"] for cond in second["conditions"]} == {samples.stamp(NOW)}


def test_condition_helper() -> None:
    made = status.condition("Ready", None, "Waiting", "m", generation=1, now="T2", previous=[])
    assert made == {
        "type": "Ready",
        "status": "Unknown",
        "reason": "Waiting",
        "message": "m",
        "observedGeneration": 1,
        "lastTransitionTime": "T2",
    }
    before = [{"type": "Ready", "status": "False", "lastTransitionTime": "T1"}]
    assert (
        status.condition("Ready", False, "R", "m", generation=1, now="T2", previous=before)[
            "lastTransitionTime"
        ]
        == "T1"
    )
    assert (
        status.condition("Ready", True, "R", "m", generation=1, now="T2", previous=before)[
            "lastTransitionTime"
        ]
        == "T2"
    )


# --- Events of condition changes -------------------------------------------------------------------


def _cond(kind: str, state: str, reason: str, message: str = "msg") -> dict[str, str]:
    return {"type": kind, "status": state, "reason": reason, "message": message}


def test_first_status_posts_events_only_for_what_needs_attention() -> None:
    quiet = [_cond("Ready", "False", "ReplicasNotReady"), _cond("Degraded", "False", "AsExpected")]
    assert transition_events([], quiet) == []
    loud = [_cond("Degraded", "True", "SecretNotFound", "Secret apps/x does not exist")]
    assert transition_events([], loud) == [Event("Warning", "SecretNotFound", "Secret apps/x does not exist")]


def test_transitions_become_events() -> None:
    before = [
        _cond("Ready", "False", "ReplicasNotReady"),
        _cond("Progressing", "True", "RollingOut"),
        _cond("Degraded", "True", "CrashLoopBackOff"),
        _cond("NatsConnected", "True", "GatewaysConnected"),
    ]
    after = [
        _cond("Ready", "True", "AllReplicasReady", "3/3 gateways ready"),
        _cond("Progressing", "False", "RolloutComplete"),
        _cond("Degraded", "False", "AsExpected", "no gateway pod needs attention"),
        _cond("NatsConnected", "False", "NoGatewayConnected", "none of 3 gateways is ready"),
    ]
    assert transition_events(before, after) == [
        Event("Normal", "Ready", "3/3 gateways ready"),
        Event("Normal", "Recovered", "no gateway pod needs attention"),
        Event("Warning", "NatsDisconnected", "none of 3 gateways is ready"),
    ]


def test_a_new_reason_for_degraded_is_a_new_warning_and_no_change_is_silent() -> None:
    before = [_cond("Degraded", "True", "CrashLoopBackOff")]
    after = [_cond("Degraded", "True", "Unready", "b: unready for 600s")]
    assert transition_events(before, after) == [Event("Warning", "Unready", "b: unready for 600s")]
    assert transition_events(after, after) == []
    result = _compute(_observed(**ALL_READY))
    assert (
        transition_events(
            result["conditions"], _compute(_observed(**ALL_READY), result["conditions"], LATER)["conditions"]
        )
        == []
    )


# --- any observation -------------------------------------------------------------------------------

_pods = st.lists(
    st.builds(
        lambda index, ready, crash, terminating, restarts, minutes: pod(
            f"gw-{index}",
            ready=ready and not crash,
            crash_loop=crash,
            terminating=terminating,
            restarts=restarts,
            since=NOW - timedelta(minutes=minutes),
        ),
        st.integers(0, 1000),
        st.booleans(),
        st.booleans(),
        st.booleans(),
        st.integers(0, 50),
        st.integers(0, 120),
    ),
    max_size=6,
    unique_by=lambda item: item["metadata"]["name"],
)


@st.composite
def _observations(draw: st.DrawFn) -> status.Observed:
    pods = draw(_pods)
    desired = draw(st.integers(0, 6))
    deployment_obj = draw(
        st.none()
        | st.builds(
            lambda replicas, ready, updated, lag: deployment(
                replicas=desired,
                current=replicas,
                ready=ready,
                updated=updated,
                generation=3,
                observed_generation=3 - lag,
            ),
            st.integers(0, 7),
            st.integers(0, 7),
            st.integers(0, 7),
            st.integers(0, 1),
        )
    )
    blocked = draw(
        st.none() | st.sampled_from([("InvalidSpec", "gateway: bad"), ("SecretNotFound", "no secret")])
    )
    return _observed(
        desired_replicas=desired,
        deployment=deployment_obj,
        pods=pods,
        problems=health.problems(pods, now=NOW, unready_timeout=300),
        blocked=blocked,
        generation=draw(st.integers(1, 10)),
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
@given(first=_observations(), second=_observations(), minutes=st.integers(0, 60))
def test_any_observation_gives_a_status_that_fits_the_schema_and_the_conventions(
    first: status.Observed, second: status.Observed, minutes: int
) -> None:
    before = _compute(first)
    later = NOW + timedelta(minutes=minutes)
    after = _compute(second, before["conditions"], later)
    assert _status_schema_errors(after) == []
    conditions = _conditions(after)
    assert list(conditions) == ["Ready", "Progressing", "Degraded", "NatsConnected"]
    # Ready only when not blocked and every desired gateway is ready on the current configuration.
    if conditions["Ready"][0] == "True":
        assert second.blocked is None and second.deployment is not None
        assert after["readyReplicas"] >= second.desired_replicas
    # Degraded exactly when blocked or a pod has a problem.
    assert (conditions["Degraded"][0] == "True") == bool(second.blocked or second.problems)
    # NATS is connected exactly when a pod is ready; unknown without pods.
    ready_pods = sum(health.is_ready(item) for item in second.pods)
    expected_nats = "Unknown" if not second.pods else "True" if ready_pods else "False"
    assert conditions["NatsConnected"][0] == expected_nats
    # lastTransitionTime moves exactly when the status does.
    old = {cond["type"]: cond for cond in before["conditions"]}
    for cond in after["conditions"]:
        moved = cond["status"] != old[cond["type"]]["status"]
        expected = samples.stamp(later) if moved else old[cond["type"]]["lastTransitionTime"]
        assert cond["lastTransitionTime"] == expected
        assert cond["observedGeneration"] == second.generation
