"""Unit tests of the subscription-graph walks (gateway.conn.graph), without sockets or NATS."""

from __future__ import annotations

from typing import Any

from gateway.conn import graph
from gateway.conn.subscription import FAILED, LOADING, READY, ClientSub
from gateway.protocol import errors, values


class _Conn:
    """Just what ClientSub reads from its connection at construction."""

    cid = "c1"


def _sub(
    rid: str, state: str = READY, data: Any = None, refs: tuple[str, ...] = (), sent: bool = False
) -> ClientSub:
    sub = ClientSub(_Conn(), rid)  # type: ignore[arg-type]
    sub.state = state
    sub.data = {} if data is None else data
    sub.is_model = isinstance(sub.data, dict)
    sub.refs = set(refs)
    sub.sent = sent
    return sub


def _subs(*subs: ClientSub) -> dict[str, ClientSub]:
    return {s.rid: s for s in subs}


def test_first_loading_finds_a_loading_descendant_and_ignores_held_subtrees() -> None:
    a = _sub("a", refs=("b",))
    b = _sub("b", refs=("c",))
    c = _sub("c", state=LOADING)
    assert graph.first_loading(_subs(a, b, c), [a]) is c
    b.sent = True  # the client holds b (and so what it references): nothing to wait for
    assert graph.first_loading(_subs(a, b, c), [a]) is None


def test_resource_set_includes_each_unheld_resource_once_and_errors_every_time() -> None:
    a = _sub("a", data={"x": 1, "b": values.Ref({"rid": "b"}, "b", False)}, refs=("b", "err"))
    b = _sub("b", data=[1, values.Ref({"rid": "a"}, "a", False)], refs=("a",))  # cycle back to a
    err = _sub("err", state=FAILED)
    err.err = errors.ERR_NOT_FOUND
    subs = _subs(a, b, err)
    groups, sent = graph.resource_set(subs, [a], legacy=False)
    assert groups == {
        "models": {"a": a.data},
        "collections": {"b": b.data},
        "errors": {"err": {"code": "system.notFound", "message": "Not found"}},
    }
    assert sent == [a, b] and a.sent and b.sent and not err.sent
    again, sent_again = graph.resource_set(subs, [a], legacy=False)
    assert again == {} and sent_again == []  # held now; a held parent is not walked again


def test_resource_set_renders_soft_references_and_data_for_legacy_clients() -> None:
    soft = values.Ref({"rid": "x", "soft": True}, "x", True)
    data = values.Data({"data": {"k": 1}})
    a = _sub("a", data={"s": soft, "d": data, "p": 12})
    groups, _ = graph.resource_set(_subs(a), [a], legacy=True)
    assert groups == {"models": {"a": {"s": "x", "d": "[Data]", "p": 12}}}


def test_reachable_follows_references_and_only_held_ones_when_asked() -> None:
    a = _sub("a", refs=("b",), sent=True)
    b = _sub("b", refs=("c",), sent=False)
    c = _sub("c", sent=True)
    subs = _subs(a, b, c)
    assert graph.reachable(subs, [a]) == {a, b, c}
    # c is no longer reachable for the client through data it holds (b was never sent).
    assert graph.reachable(subs, [a], only_sent=True) == {a}


def test_resource_set_of_one_resource_without_references_matches_the_walk() -> None:
    """The single-root shortcut (a subscribe of a resource without references) gives what the
    general walk gives: one group, the root marked held, nothing for a held, failed or loading root."""
    soft = values.Ref({"rid": "x", "soft": True}, "x", True)
    for data in ({"a": 1, "s": soft}, [1, soft], {}):
        for legacy in (False, True):
            quick = _sub("r", data=data)
            walked = _sub("r", data=data)
            helper = _sub("h")  # a second root sends the same resource through the general walk
            helper.sent = True
            groups, sent = graph.resource_set(_subs(quick), [quick], legacy=legacy)
            expected, expected_sent = graph.resource_set(
                _subs(walked, helper), [walked, helper], legacy=legacy
            )
            assert groups == expected and sent == [quick] and expected_sent == [walked] and quick.sent
    for state in (LOADING, FAILED):
        sub = _sub("r", state=state)
        sub.err = errors.ERR_NOT_FOUND
        groups, sent = graph.resource_set(_subs(sub), [sub], legacy=False)
        assert sent == [] and not sub.sent
        assert groups == ({"errors": {"r": errors.ERR_NOT_FOUND.to_dict()}} if state == FAILED else {})
    held = _sub("r", sent=True)
    assert graph.resource_set(_subs(held), [held], legacy=False) == ({}, [])
