"""Differences between two versions of a model or collection, as RES events.

Called by the cache when a ``system.reset`` get response or a query-request response returns a
whole model/collection: the gateway turns the difference into ``change`` / ``remove`` / ``add``
events so subscribed clients see the same event stream resgate would send (res-protocol.md §5.8).
Pure: no I/O. Values compare with RES value equality (``values.equal``).
"""

from __future__ import annotations

from typing import Any

from gateway.protocol import values

#: One collection event: ("remove", {"idx": i}) or ("add", {"idx": i, "value": v}).
CollectionEvent = tuple[str, dict[str, Any]]


def model_diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The ``change`` event values turning ``old`` into ``new``; empty when nothing changed.

    New or changed properties carry their new value; vanished properties carry ``values.DELETE``.
    """
    changed = {k: v for k, v in new.items() if k not in old or not values.equal(old[k], v)}
    for k in old:
        if k not in new:
            changed[k] = values.DELETE
    return changed


def collection_diff(old: list[Any], new: list[Any]) -> list[CollectionEvent]:
    """The ``remove``/``add`` events turning ``old`` into ``new``, in resgate's exact order.

    Removes come first, highest original index first (so earlier indices stay valid); adds follow
    in ascending final index, each ``idx`` being the value's index in ``new``. Which items are kept
    is a longest common subsequence chosen with resgate's tie-breaking, so clients get identical
    events from either gateway.
    """
    start = _common_prefix(old, new)
    if start == len(old) == len(new):
        return []
    end = _common_suffix(old, new, start)
    removed, added = _lcs_edits(old[start : len(old) - end], new[start : len(new) - end])
    events: list[CollectionEvent] = [("remove", {"idx": start + i}) for i in removed]
    events.extend(("add", {"idx": start + j, "value": new[start + j]}) for j in added)
    return events


def _common_prefix(a: list[Any], b: list[Any]) -> int:
    n = 0
    limit = min(len(a), len(b))
    while n < limit and values.equal(a[n], b[n]):
        n += 1
    return n


def _common_suffix(a: list[Any], b: list[Any], start: int) -> int:
    """Length of the common tail, not reaching into the first ``start`` (already matched) items."""
    n = 0
    limit = min(len(a), len(b)) - start
    while n < limit and values.equal(a[-1 - n], b[-1 - n]):
        n += 1
    return n


def _lcs_edits(a: list[Any], b: list[Any]) -> tuple[list[int], list[int]]:
    """Indices of ``a`` to remove (descending) and of ``b`` to add (ascending).

    ``lcs[i][j]`` is the LCS length of ``a[:i]`` and ``b[:j]``. Walking back from the end, a
    match is kept; otherwise an add is preferred over a remove when both keep an LCS, which is the
    tie-break resgate uses and therefore decides the exact event sequence.
    """
    lcs = _lcs_table(a, b)
    removed: list[int] = []
    added: list[int] = []
    i, j = len(a), len(b)
    while i or j:
        if i and j and values.equal(a[i - 1], b[j - 1]):
            i -= 1
            j -= 1
        elif j and (not i or lcs[i][j - 1] >= lcs[i - 1][j]):
            j -= 1
            added.append(j)
        else:
            i -= 1
            removed.append(i)
    added.reverse()
    return removed, added


def _lcs_table(a: list[Any], b: list[Any]) -> list[list[int]]:
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a):
        row, below = table[i], table[i + 1]
        for j, y in enumerate(b):
            below[j + 1] = row[j] + 1 if values.equal(x, y) else max(below[j], row[j + 1])
    return table
