"""Tests for gateway.protocol.diff: model change values and resgate's collection add/remove sequences.

The pinned sequences are those of the algorithm in res-protocol.md §5.8 (resgate's), including the
three examples given there.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.protocol import diff, values
from gateway.protocol.values import DELETE, Data, Ref


def _ref(rid: str, *, soft: bool = False, raw: dict[str, Any] | None = None) -> Ref:
    return Ref(raw or {"rid": rid, "soft": soft}, rid, soft)


# --- models ---------------------------------------------------------------------------------------


def test_model_diff_of_equal_models_is_empty() -> None:
    model = {"a": 1, "b": "x", "c": None, "r": _ref("test.m"), "d": Data({"data": [1]})}
    same = {"a": 1, "b": "x", "c": None, "r": _ref("test.m", raw={"rid": "test.m"}), "d": Data({"data": [1]})}
    assert diff.model_diff(model, same) == {}


def test_model_diff_reports_new_changed_and_deleted_props() -> None:
    old = {"string": "foo", "int": 42, "bool": True, "null": None}
    new = {"string": "bar", "int": 42, "bool": True, "extra": 1}
    assert diff.model_diff(old, new) == {"string": "bar", "null": DELETE, "extra": 1}


def test_model_diff_deleted_value_is_the_delete_marker() -> None:
    assert diff.model_diff({"a": 1}, {})["a"] is DELETE


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (1, 1.0),
        (1, True),
        (0, False),
        (None, False),
        ("1", 1),
        (_ref("a"), _ref("a", soft=True)),
        (_ref("a"), _ref("b")),
        (Data({"data": [1]}), Data({"data": [1.0]})),
        (Data({"data": {"a": 1}}), Data({"data": [1]})),
    ],
)
def test_model_diff_uses_res_value_equality(old: Any, new: Any) -> None:
    assert diff.model_diff({"v": old}, {"v": new}) == {"v": new}


# --- collections: §5.8 examples and pinned sequences ------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "events"),
    [
        pytest.param(
            ["foo", 42, True, None],
            [42, "new", True, None],
            [("remove", {"idx": 0}), ("add", {"idx": 1, "value": "new"})],
            id="doc-remove-first-add-middle",
        ),
        pytest.param(
            ["foo", 42, True, None],
            ["foo", "bar", 42, True],
            [("remove", {"idx": 3}), ("add", {"idx": 1, "value": "bar"})],
            id="doc-remove-last-add-middle",
        ),
        pytest.param(
            ["a", "b"],
            ["b", "a"],
            [("remove", {"idx": 0}), ("add", {"idx": 1, "value": "a"})],
            id="doc-swap",
        ),
        pytest.param(
            ["a", "b", "c"],
            ["c", "b", "a"],
            [
                ("remove", {"idx": 1}),
                ("remove", {"idx": 0}),
                ("add", {"idx": 1, "value": "b"}),
                ("add", {"idx": 2, "value": "a"}),
            ],
            id="reverse",
        ),
        pytest.param(
            [1, 2, 3],
            [],
            [("remove", {"idx": 2}), ("remove", {"idx": 1}), ("remove", {"idx": 0})],
            id="clear",
        ),
        pytest.param(
            [], [1, 2], [("add", {"idx": 0, "value": 1}), ("add", {"idx": 1, "value": 2})], id="fill"
        ),
        pytest.param(
            [1, 1, 2], [2, 1, 1], [("remove", {"idx": 2}), ("add", {"idx": 0, "value": 2})], id="rotate"
        ),
        pytest.param(
            ["a", "b", "c", "d"],
            ["b", "x", "d", "a"],
            [
                ("remove", {"idx": 2}),
                ("remove", {"idx": 0}),
                ("add", {"idx": 1, "value": "x"}),
                ("add", {"idx": 3, "value": "a"}),
            ],
            id="mixed",
        ),
        pytest.param(
            [1, 2, 3, 4, 5],
            [1, 3, 5, 2, 4],
            [
                ("remove", {"idx": 3}),
                ("remove", {"idx": 1}),
                ("add", {"idx": 3, "value": 2}),
                ("add", {"idx": 4, "value": 4}),
            ],
            id="interleave",
        ),
        pytest.param(
            [1, True, 1.0],
            [1.0, 1, True],
            [("remove", {"idx": 2}), ("add", {"idx": 0, "value": 1.0})],
            id="kinds-differ",
        ),
        pytest.param([], [], [], id="empty"),
        pytest.param(["x", 1], ["x", 1], [], id="equal"),
    ],
)
def test_collection_diff_sequences(old: list[Any], new: list[Any], events: list[Any]) -> None:
    assert diff.collection_diff(old, new) == events


def test_collection_diff_compares_references_by_rid_and_softness() -> None:
    old = [_ref("a", raw={"rid": "a"}), _ref("b")]
    new = [_ref("a"), _ref("b", soft=True)]
    assert diff.collection_diff(old, new) == [("remove", {"idx": 1}), ("add", {"idx": 1, "value": new[1]})]


# --- collections: properties ------------------------------------------------------------------------

_ITEM = st.integers(0, 3) | st.sampled_from(["a", "b", "c"])
_LIST = st.lists(_ITEM, max_size=9)


def _apply(items: list[Any], events: list[diff.CollectionEvent]) -> list[Any]:
    out = list(items)
    for kind, payload in events:
        if kind == "remove":
            del out[payload["idx"]]
        else:
            assert 0 <= payload["idx"] <= len(out)
            out.insert(payload["idx"], payload["value"])
    return out


@given(_LIST, _LIST)
def test_applying_the_events_yields_the_new_collection(old: list[Any], new: list[Any]) -> None:
    events = diff.collection_diff(old, new)
    assert _apply(old, events) == new


@given(_LIST, _LIST)
def test_event_order_and_indices(old: list[Any], new: list[Any]) -> None:
    events = diff.collection_diff(old, new)
    kinds = [kind for kind, _ in events]
    assert kinds == sorted(kinds, key=lambda k: k == "add")  # removes before adds
    removes = [p["idx"] for k, p in events if k == "remove"]
    adds = [p["idx"] for k, p in events if k == "add"]
    assert removes == sorted(removes, reverse=True) and len(set(removes)) == len(removes)
    assert adds == sorted(adds) and len(set(adds)) == len(adds)
    for kind, payload in events:
        if kind == "add":
            assert values.equal(new[payload["idx"]], payload["value"])


@given(_LIST, _LIST)
def test_edit_count_is_minimal(old: list[Any], new: list[Any]) -> None:
    events = diff.collection_diff(old, new)
    assert len(events) == len(old) + len(new) - 2 * _lcs_length(old, new)


def _lcs_length(a: list[Any], b: list[Any]) -> int:
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if values.equal(x, y) else max(cur[j], prev[j + 1]))
        prev = cur
    return prev[-1]
