"""The resource cache shared by all connections (resgate's rescache).

Called by client subscriptions (``subscribe``/``unsubscribe``), and by ``gateway.app`` for every
``event.*`` and ``system.reset`` message. One ``Entry`` per resource name owns the NATS subscription
``event.<name>.*`` and the name's resources: the base resource and its query variants.

Everything here is plain synchronous code on the event loop, so each mutation is atomic; replies and
events arrive through the MQ in wire order. Cached data is replaced, never mutated, so snapshots
handed to subscribers stay valid.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from typing import Any, Protocol

from gateway.cache.events import ResourceEvent
from gateway.cache.throttle import UNLIMITED, Throttle
from gateway.mq.base import MQ
from gateway.protocol import diff, errors, patterns, service, values
from gateway.protocol.errors import ResError
from gateway.telemetry import tracing

log = logging.getLogger(__name__)

_STATE_EVENTS = frozenset(("change", "add", "remove", "delete"))


class Subscriber(Protocol):
    """A client subscription as the cache sees it."""

    def loaded(self, res: Resource) -> None: ...
    def load_failed(self, err: ResError) -> None: ...
    def on_event(self, ev: ResourceEvent) -> None: ...
    def reset_access(self, throttle: Throttle) -> None: ...


class Resource:
    """One cached model or collection: the base resource of a name, or one query variant."""

    __slots__ = ("data", "deleted", "entry", "is_model", "query", "resetting", "subscribers")

    def __init__(self, entry: Entry, query: str, is_model: bool, data: Any) -> None:
        self.entry = entry
        self.query = query  # normalized query; "" for the base resource
        self.is_model = is_model
        self.data = data  # dict (model) or list (collection) of RES values; replaced on change
        self.subscribers: set[Subscriber] = set()
        self.resetting = 0  # system.reset get requests in flight; state events are dropped meanwhile
        self.deleted = False


class _Load:
    """A get request in flight and the subscribers waiting for it."""

    __slots__ = ("reaccess", "waiters")

    def __init__(self, waiter: Subscriber) -> None:
        self.waiters = [waiter]
        self.reaccess = False  # a reaccess event arrived meanwhile; applied once loaded


class Entry:
    """Everything cached under one resource name (resgate's EventSubscription)."""

    __slots__ = ("base", "handle", "held", "holds", "links", "name", "pending", "queries", "timer", "users")

    def __init__(self, name: str) -> None:
        self.name = name
        self.handle: Any = None  # MQ subscription of event.<name>.*
        self.base: Resource | None = None  # the real base resource, once loaded
        self.queries: dict[str, Resource] = {}  # normalized query -> query resource
        self.links: dict[str, Resource] = {}  # raw client query -> resource it resolved to
        self.pending: dict[str, _Load] = {}  # raw query -> get in flight
        self.users = 0  # subscribers registered or waiting; 0 starts the eviction timer
        self.timer: asyncio.TimerHandle | None = None
        self.held: list[tuple[str, bytes]] | None = None  # events held during a query event
        self.holds = 0  # query replies still awaited

    def resources(self) -> list[Resource]:
        out = [self.base] if self.base is not None else []
        out.extend(self.queries.values())
        return out


class Cache:
    """Resource name -> Entry, kept current from service events."""

    def __init__(self, mq: MQ, *, eviction_delay: float, reset_throttle: int = 0) -> None:
        self._mq = mq
        self._delay = eviction_delay
        self._reset_throttle = reset_throttle
        self._entries: dict[str, Entry] = {}
        self._deprecated: set[tuple[str, str]] = set()
        #: Called with the number of subscriptions each applied event is passed to (metrics).
        self.on_dispatch: Callable[[int], None] = _ignore_count

    def __len__(self) -> int:
        return len(self._entries)

    def has(self, name: str) -> bool:
        return name in self._entries

    def peek(self, name: str, query: str) -> Resource | None:
        """The loaded resource a (name, raw query) resolves to, without subscribing; None if not
        cached (or still loading)."""
        entry = self._entries.get(name)
        return entry.links.get(query) if entry is not None else None

    def sizes(self) -> tuple[int, int]:
        """(cached resources, subscriptions on them), for metrics."""
        resources = subscriptions = 0
        for entry in self._entries.values():
            for res in entry.resources():
                resources += 1
                subscriptions += len(res.subscribers)
        return resources, subscriptions

    # -- subscribing ---------------------------------------------------------------------------

    def subscribe(self, sub: Subscriber, name: str, query: str, throttle: Throttle = UNLIMITED) -> None:
        """Register ``sub`` for (name, raw query); it gets ``loaded`` or ``load_failed``, maybe at once."""
        entry = self._entries.get(name)
        if entry is None:
            subject = "event." + name + ".*"
            if len(subject) > _MAX_SUBSCRIPTION:
                sub.load_failed(errors.ERR_SUBJECT_TOO_LONG)
                return
            entry = Entry(name)
            entry.handle = self._mq.subscribe(subject)
            self._entries[name] = entry
        entry.users += 1
        if entry.timer is not None:
            entry.timer.cancel()
            entry.timer = None
        res = entry.links.get(query)
        if res is not None:
            res.subscribers.add(sub)
            sub.loaded(res)
            return
        load = entry.pending.get(query)
        if load is not None:
            load.waiters.append(sub)
            return
        entry.pending[query] = _Load(sub)
        if throttle.limit <= 0:
            self._send_get(entry, query, throttle)  # no closure for the throttle when it is unlimited
        else:
            throttle.run(lambda: self._send_get(entry, query, throttle))

    def unsubscribe(self, sub: Subscriber, name: str, query: str, res: Resource | None) -> None:
        """Undo one ``subscribe`` (loaded or still waiting); unused resources are dropped later."""
        entry = self._entries.get(name)
        if entry is None:
            return
        if res is not None:
            res.subscribers.discard(sub)
            if res.query and not res.subscribers and entry.queries.get(res.query) is res:
                self._drop_resource(entry, res)
        else:
            load = entry.pending.get(query)
            if load is not None and sub in load.waiters:
                load.waiters.remove(sub)
        self._release(entry)

    def _release(self, entry: Entry) -> None:
        entry.users -= 1
        if entry.users <= 0 and entry.timer is None:
            loop = asyncio.get_running_loop()
            if self._delay > 0:
                entry.timer = loop.call_later(self._delay, self._evict, entry)
            else:
                entry.timer = loop.call_soon(self._evict, entry)  # type: ignore[assignment]

    def _evict(self, entry: Entry) -> None:
        entry.timer = None
        if entry.users > 0 or entry.pending or self._entries.get(entry.name) is not entry:
            return
        del self._entries[entry.name]
        # Its resources point back at the entry: let go of them so reference counting frees both
        # now (a cycle would wait for the garbage collector, which the gateway runs seldom).
        entry.base = None
        entry.queries.clear()
        entry.links.clear()
        self._mq.unsubscribe(entry.handle)
        log.debug("Evicted %s", entry.name)

    def _send_get(self, entry: Entry, query: str, throttle: Throttle) -> None:
        # (a partial rather than a closure: fewer objects per request in flight in a storm)
        on_reply = functools.partial(self._on_get_reply, entry, query, throttle)
        self._mq.request("get." + entry.name, service.get_payload(query), on_reply)

    def _on_get_reply(
        self, entry: Entry, query: str, throttle: Throttle, data: bytes | None, err: ResError | None
    ) -> None:
        throttle.done()
        self._on_get(entry, query, data, err)

    def _on_get(self, entry: Entry, query: str, data: bytes | None, err: ResError | None) -> None:
        load = entry.pending.pop(query, None)
        if load is None:
            return
        result, err = service.get_reply(data, err)
        if result is None:
            for w in load.waiters:
                entry.users -= 1
                w.load_failed(err or errors.ERR_INTERNAL_ERROR)
            entry.users += 1  # balance the release below
            self._release(entry)
            return
        res = self._adopt(entry, query, result)
        res.subscribers.update(load.waiters)
        for w in load.waiters:
            w.loaded(res)
        if not load.waiters and entry.users <= 0 and entry.timer is None:
            entry.users += 1
            self._release(entry)
        if load.reaccess:
            self._dispatch(res, ResourceEvent("reaccess", "reaccess"))

    def _adopt(self, entry: Entry, query: str, result: service.Resource) -> Resource:
        """Find or create the resource a get reply describes, and link the raw query to it."""
        nq = result.query
        if not nq:
            if entry.base is None:
                entry.base = Resource(entry, "", result.is_model, result.data)
            res = entry.base
            entry.links.setdefault("", res)
        else:
            found = entry.queries.get(nq)
            if found is None:
                found = Resource(entry, nq, result.is_model, result.data)
                entry.queries[nq] = found
            res = found
            entry.links[nq] = res
        entry.links[query] = res
        return res

    def _drop_resource(self, entry: Entry, res: Resource) -> None:
        if entry.base is res:
            entry.base = None
        elif entry.queries.get(res.query) is res:
            del entry.queries[res.query]
        for q in [q for q, r in entry.links.items() if r is res]:
            del entry.links[q]

    # -- events ----------------------------------------------------------------------------------

    def on_event(self, name: str, event: str, data: bytes) -> None:
        """Handle ``event.<name>.<event>`` from a service."""
        if tracing.enabled:
            tracing.service_event(self, name, event, data)
            return
        self.handle_event(name, event, data)

    def subscriber_count(self, name: str, event: str) -> int:
        """Subscriptions an event on ``name`` reaches (for tracing): the base resource's, or every
        query resource's for a query event."""
        entry = self._entries.get(name)
        if entry is None:
            return 0
        if event == "query":
            return sum(len(res.subscribers) for res in entry.queries.values())
        return len(entry.base.subscribers) if entry.base is not None else 0

    def handle_event(self, name: str, event: str, data: bytes) -> None:
        """``on_event`` without the tracing check."""
        entry = self._entries.get(name)
        if entry is None:
            return
        if entry.held is not None:
            entry.held.append((event, data))
            return
        if event == "query":
            self._on_query_event(entry, data)
            return
        res = entry.base
        if res is None:
            load = entry.pending.get("")
            if event == "reaccess" and load is not None:
                load.reaccess = True
            return
        try:
            payload = service.parse_payload(data)
        except service.InvalidEvent as exc:
            log.error("Invalid %s event payload for %s: %s", event, name, exc)
            return
        self.apply(res, event, payload)

    def apply(self, res: Resource, event: str, payload: Any) -> None:
        """Apply one service event to a resource and pass it to its subscribers."""
        if event in _STATE_EVENTS and res.resetting:
            return
        try:
            if event == "change":
                ev = self._change(res, payload)
            elif event == "add":
                ev = self._add(res, *service.decode_add(payload)) if self._is(res, False, event) else None
            elif event == "remove":
                ev = (
                    self._remove(res, service.decode_remove(payload)) if self._is(res, False, event) else None
                )
            elif event == "delete":
                self.delete(res)
                return
            elif event == "reaccess":
                ev = ResourceEvent("reaccess", "reaccess")
            else:
                ev = ResourceEvent("custom", event, payload)
        except service.InvalidEvent as exc:
            log.error("Invalid %s event for %s: %s", event, _rid(res), exc)
            return
        if ev is not None:
            self._dispatch(res, ev)

    def _dispatch(self, res: Resource, ev: ResourceEvent) -> None:
        subscribers = list(res.subscribers)
        self.on_dispatch(len(subscribers))
        for sub in subscribers:
            sub.on_event(ev)

    def _is(self, res: Resource, model: bool, event: str) -> bool:
        if res.is_model != model:
            log.error("%s event on %s %s", event, "collection" if model else "model", _rid(res))
            return False
        return True

    def _change(self, res: Resource, payload: Any) -> ResourceEvent | None:
        if not self._is(res, True, "change"):
            return None
        changes, legacy = service.decode_change(payload)
        if legacy:
            self._deprecate(res.entry.name, "legacy v1.0 change event (values not wrapped)")
        return self.change_values(res, changes)

    def change_values(self, res: Resource, changes: dict[str, Any]) -> ResourceEvent | None:
        """Apply property changes (DELETE removes); None when nothing actually changed."""
        old: dict[str, Any] = res.data
        changed: dict[str, Any] = {}
        for key, value in changes.items():
            if value is values.DELETE:
                if key in old:
                    changed[key] = value
            elif key not in old or not values.equal(old[key], value):
                changed[key] = value
        if not changed:
            return None
        new = dict(old)
        touches_refs = False
        for key, value in changed.items():
            if type(old.get(key)) is values.Ref or type(value) is values.Ref:
                touches_refs = True
            if value is values.DELETE:
                del new[key]
            else:
                new[key] = value
        added: tuple[str, ...] = ()
        removed: tuple[str, ...] = ()
        if touches_refs:
            before, after = values.hard_rids_of(old), values.hard_rids_of(new)
            added, removed = tuple(after - before), tuple(before - after)
        res.data = new
        return ResourceEvent("change", "change", {"values": changed}, new, added, removed)

    def _add(self, res: Resource, idx: int, value: Any) -> ResourceEvent | None:
        old: list[Any] = res.data
        if idx < 0 or idx > len(old):
            log.error("Add event idx %d out of range for %s", idx, _rid(res))
            return None
        new = old[:idx] + [value] + old[idx:]
        added: tuple[str, ...] = ()
        if type(value) is values.Ref and not value.soft and value.rid not in values.hard_rids_of(old):
            added = (value.rid,)
        res.data = new
        return ResourceEvent("add", "add", {"idx": idx, "value": value}, new, added)

    def _remove(self, res: Resource, idx: int) -> ResourceEvent | None:
        old: list[Any] = res.data
        if idx < 0 or idx >= len(old):
            log.error("Remove event idx %d out of range for %s", idx, _rid(res))
            return None
        value = old[idx]
        new = old[:idx] + old[idx + 1 :]
        removed: tuple[str, ...] = ()
        if type(value) is values.Ref and not value.soft and value.rid not in values.hard_rids_of(new):
            removed = (value.rid,)
        res.data = new
        return ResourceEvent("remove", "remove", {"idx": idx}, new, (), removed)

    def delete(self, res: Resource) -> None:
        """Drop a deleted resource; its subscribers get a delete event (and stop getting events)."""
        if res.deleted:
            return
        res.deleted = True
        self._drop_resource(res.entry, res)
        ev = ResourceEvent("delete", "delete")
        subscribers = list(res.subscribers)
        res.subscribers.clear()
        for sub in subscribers:
            sub.on_event(ev)

    def _deprecate(self, name: str, feature: str) -> None:
        service_name = name.split(".", 1)[0]
        if (service_name, feature) not in self._deprecated:
            self._deprecated.add((service_name, feature))
            log.error("Deprecated in service %s: %s", service_name, feature)

    def deprecate(self, name: str, feature: str) -> None:
        """Log a deprecation once per service and feature (used for legacy new-call results too)."""
        self._deprecate(name, feature)

    # -- query events ------------------------------------------------------------------------------

    def _on_query_event(self, entry: Entry, data: bytes) -> None:
        if not entry.queries:
            return
        try:
            payload = service.parse_payload(data)
        except service.InvalidEvent as exc:
            log.error("Invalid query event for %s: %s", entry.name, exc)
            return
        subject = payload.get("subject") if isinstance(payload, dict) else None
        if not isinstance(subject, str) or not subject:
            log.error("Query event for %s has no subject", entry.name)
            return
        targets = list(entry.queries.values())
        entry.holds += len(targets)
        if entry.held is None:
            entry.held = []
        for res in targets:
            self._send_query(entry, res, subject)

    def _send_query(self, entry: Entry, res: Resource, subject: str) -> None:
        def on_reply(data: bytes | None, err: ResError | None) -> None:
            try:
                self._on_query_reply(res, data, err)
            finally:
                entry.holds -= 1
                if entry.holds == 0:
                    self._release_held(entry)

        self._mq.request(subject, service.get_payload(res.query) if res.query else b'{"query":""}', on_reply)

    def _release_held(self, entry: Entry) -> None:
        held, entry.held = entry.held or [], None
        for i, (event, data) in enumerate(held):
            if entry.held is not None:  # a held query event started holding again
                entry.held.extend(held[i:])
                return
            self.on_event(entry.name, event, data)

    def _on_query_reply(self, res: Resource, data: bytes | None, err: ResError | None) -> None:
        result: Any = None
        if err is None:
            try:
                result = service.result_or_raise(data)
            except ResError as exc:
                err = exc
        if err is not None:
            if err.code == errors.NOT_FOUND:
                self.delete(res)
            elif err.code != errors.TIMEOUT:
                log.error("Query request for %s failed: %s", _rid(res), err.message)
            return
        if res.deleted:
            return
        try:
            self._apply_query_result(res, result)
        except (ResError, service.InvalidEvent) as exc:
            log.error("Invalid query response for %s: %s", _rid(res), exc)

    def _apply_query_result(self, res: Resource, result: Any) -> None:
        if result is None:
            return
        if not isinstance(result, dict):
            raise service.InvalidEvent("result is not an object")
        given = [k for k in ("events", "model", "collection") if result.get(k) is not None]
        if len(given) > 1:
            raise service.InvalidEvent("ambiguous query response: " + ", ".join(given))
        if "model" in given:
            if not res.is_model:
                raise service.InvalidEvent("model response for a collection")
            self._replace(res, service.decode_model(result["model"]))
        elif "collection" in given:
            if res.is_model:
                raise service.InvalidEvent("collection response for a model")
            self._replace(res, service.decode_collection(result["collection"]))
        elif "events" in given:
            events = result["events"]
            if not isinstance(events, list):
                raise service.InvalidEvent("events is not an array")
            for item in events:
                if res.deleted:
                    return
                if not isinstance(item, dict) or not isinstance(item.get("event"), str):
                    raise service.InvalidEvent("invalid event in query response")
                self.apply(res, item["event"], item.get("data"))

    def _replace(self, res: Resource, new: Any) -> None:
        """Turn a fresh copy of a resource into change or remove/add events."""
        if res.is_model:
            ev = self.change_values(res, diff.model_diff(res.data, new))
            if ev is not None:
                self._dispatch(res, ev)
            return
        for op, arg in diff.collection_diff(res.data, new):
            ev2 = self._add(res, arg["idx"], arg["value"]) if op == "add" else self._remove(res, arg["idx"])
            if ev2 is not None:
                self._dispatch(res, ev2)

    # -- system.reset ----------------------------------------------------------------------------

    def reset(self, resources: list[str], access: list[str]) -> None:
        """Re-fetch resources and re-check access on names matching the patterns."""
        res_patterns = _compile_all(resources)
        access_patterns = _compile_all(access)
        throttle = Throttle(self._reset_throttle)
        for entry in list(self._entries.values()):
            if _matches(res_patterns, entry.name):
                for res in entry.resources():
                    res.resetting += 1
                    throttle.run(_bind(self._send_reset_get, res, throttle))
            if _matches(access_patterns, entry.name):
                for res in entry.resources():
                    for sub in list(res.subscribers):
                        sub.reset_access(throttle)

    def refresh_all(self) -> None:
        """Re-fetch every cached resource (after the NATS connection was re-established, events
        may have been missed); clients get the differences as after ``system.reset``."""
        self.reset([">"], [])

    def _send_reset_get(self, res: Resource, throttle: Throttle) -> None:
        def on_reply(data: bytes | None, err: ResError | None) -> None:
            throttle.done()
            res.resetting -= 1
            self._on_reset_get(res, data, err)

        self._mq.request("get." + res.entry.name, service.get_payload(res.query), on_reply)

    def _on_reset_get(self, res: Resource, data: bytes | None, err: ResError | None) -> None:
        if res.deleted:
            return
        result, err = service.get_reply(data, err)
        if result is None:
            if err is not None and err.code == errors.NOT_FOUND:
                self.delete(res)
            else:
                log.error("Reset get for %s failed: %s", _rid(res), err.message if err else "")
            return
        if result.is_model != res.is_model:
            log.error("Reset get for %s changed the resource type", _rid(res))
            return
        self._replace(res, result.data)


def _ignore_count(n: int) -> None:
    pass


def _rid(res: Resource) -> str:
    return res.entry.name + ("?" + res.query if res.query else "")


#: Longest subscription subject the NATS server's control line takes.
_MAX_SUBSCRIPTION = 4096 - 2


def _compile_all(items: list[str]) -> list[patterns.Pattern]:
    out = []
    for item in items:
        if isinstance(item, str):
            p = patterns.compile(item)
            if p is not None:
                out.append(p)
    return out


def _matches(pats: list[patterns.Pattern], name: str) -> bool:
    return any(p.matches(name) for p in pats)


def _bind(fn: Callable[[Resource, Throttle], None], res: Resource, throttle: Throttle) -> Callable[[], None]:
    return lambda: fn(res, throttle)
