"""Walks over one connection's subscription graph (subscriptions linked by hard references).

Called by ``gateway.conn.connection``. Plain functions over the connection's ``rid -> ClientSub``
map, so the rules for "what is still loading", "what goes into a resource set" and "what is still
reachable" can be read (and tested) apart from the request handling.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.conn.subscription import FAILED, LOADING, READY, ClientSub
from gateway.protocol import errors, values

Subs = Mapping[str, ClientSub]


def _children(subs: Subs, sub: ClientSub) -> list[ClientSub]:
    return [c for r in sub.refs if (c := subs.get(r)) is not None]


def first_loading(subs: Subs, roots: list[ClientSub]) -> ClientSub | None:
    """A subscription still loading among those a response for ``roots`` would include (the client
    does not hold them yet), or None when all are loaded or failed."""
    seen: set[ClientSub] = set()
    stack = list(roots)
    while stack:
        sub = stack.pop()
        if sub in seen or sub.disposed:
            continue
        seen.add(sub)
        if sub.state == LOADING:
            return sub
        if sub.state == READY and not sub.sent:
            stack.extend(_children(subs, sub))
    return None


def resource_set(
    subs: Subs, roots: list[ClientSub], *, legacy: bool
) -> tuple[dict[str, Any], list[ClientSub]]:
    """The resource set for ``roots``: every loaded resource reachable from them that the client does
    not hold (marked held now, and returned so their queued events can follow), plus failed ones
    under ``errors`` (never held). Empty groups are left out."""
    if len(roots) == 1:
        only = roots[0]
        if only.state == READY and not only.sent and not only.refs and not only.disposed:
            # The usual subscribe: one resource without references (no walk, one group).
            only.sent = True
            if only.is_model:
                data = values.legacy_model(only.data) if legacy else only.data
                return {"models": {only.rid: data}}, [only]
            data = values.legacy_collection(only.data) if legacy else only.data
            return {"collections": {only.rid: data}}, [only]
    models: dict[str, Any] = {}
    collections: dict[str, Any] = {}
    errs: dict[str, Any] = {}
    sent: list[ClientSub] = []
    seen: set[ClientSub] = set()
    stack = list(reversed(roots))
    while stack:
        sub = stack.pop()
        if sub in seen or sub.disposed:
            continue
        seen.add(sub)
        if sub.state == FAILED:
            errs[sub.rid] = (sub.err or errors.ERR_NOT_FOUND).to_dict()
            continue
        if sub.state != READY or sub.sent:
            continue
        sub.sent = True
        sent.append(sub)
        if sub.is_model:
            models[sub.rid] = values.legacy_model(sub.data) if legacy else sub.data
        else:
            collections[sub.rid] = values.legacy_collection(sub.data) if legacy else sub.data
        stack.extend(_children(subs, sub))
    groups: dict[str, Any] = {}
    if models:
        groups["models"] = models
    if collections:
        groups["collections"] = collections
    if errs:
        groups["errors"] = errs
    return groups, sent


def reachable(subs: Subs, roots: list[ClientSub], *, only_sent: bool = False) -> set[ClientSub]:
    """Subscriptions reachable from ``roots``; with ``only_sent``, through held ones only (what the
    client itself can still reach through the data it was given)."""
    out: set[ClientSub] = set()
    stack = roots
    while stack:
        sub = stack.pop()
        if sub in out or (only_sent and not sub.sent):
            continue
        out.add(sub)
        stack.extend(_children(subs, sub))
    return out
