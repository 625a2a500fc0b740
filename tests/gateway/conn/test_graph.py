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
