"""A client's subscription to one resource, as one connection sees it (resgate's Subscription).

Owned by ``gateway.conn.connection.Connection`` (one per client rid); registered with the cache as
a ``Subscriber``. It holds the snapshot of the resource the client has (or will get), the
references in it, the cached access result, and the events waiting to be sent: events are held
until the client has the resource, while references an event introduced are loading, and while a
direct subscription's access is re-checked.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gateway.cache.events import ResourceEvent
from gateway.cache.throttle import UNLIMITED, Throttle
from gateway.protocol import errors, values
from gateway.protocol import rid as ridlib
from gateway.protocol.errors import ResError
from gateway.protocol.service import Access

if TYPE_CHECKING:
    from gateway.cache.cache import Resource
    from gateway.conn.connection import Connection

LOADING, READY, FAILED, DELETED = "loading", "ready", "failed", "deleted"

AccessCallback = Callable[[Access | None, ResError | None], None]


class ClientSub:
    """Subscription state for one client rid on one connection."""

    __slots__ = (
        "access",
        "access_waiters",
        "conn",
        "data",
        "direct",
        "disposed",
        "err",
        "is_model",
        "listeners",
        "name",
        "query",
        "queue",
        "reaccessing",
        "refs",
        "registered",
        "res",
        "rid",
        "sent",
        "state",
        "throttle",
        "waiting",
    )

    def __init__(self, conn: Connection, rid: str) -> None:
        self.conn = conn
        self.rid = rid  # as the client (or the referencing resource) spells it
        self.name, self.query = ridlib.split(ridlib.expand_cid(rid, conn.cid))
        self.direct = 0  # subscribe/resource-response count; the client's own subscriptions
        self.state = LOADING
        self.err: ResError | None = None
        self.res: Resource | None = None
        self.is_model = True
        self.data: Any = None  # snapshot the client has, or will be sent
        self.refs: set[str] = set()  # rids of hard references in data
        self.sent = False  # the client holds this resource (mirrors the client library's cache)
        self.queue: deque[ResourceEvent] = deque()
        self.waiting = False  # an event is waiting for the references it introduced
        self.reaccessing = False  # access of a direct subscription is being re-checked
        self.access: Access | None = None
        self.access_waiters: list[AccessCallback] | None = None
        self.listeners: list[Callable[[], None]] = []  # called when loading ends
        self.throttle: Throttle = UNLIMITED
        self.registered = False  # subscribed in the cache
        self.disposed = False

    # -- loading ---------------------------------------------------------------------------------

    def load(self, throttle: Throttle) -> None:
        self.state = LOADING
        self.err = None
        self.throttle = throttle
        self.registered = True
        self.conn.cache.subscribe(self, self.name, self.query, throttle)

    def loaded(self, res: Resource) -> None:
        self.res = res
        self.is_model = res.is_model
        self.data = res.data
        self.refs = values.hard_rids_of(res.data)
        self.state = READY
        if self.refs:
            self.conn.add_refs(self, self.refs)
        self._notify()

    def load_failed(self, err: ResError) -> None:
        self.registered = False  # the cache has already forgotten us
        self.state = FAILED
        self.err = err
        self._notify()

    def _notify(self) -> None:
        if not self.listeners:
            return
        listeners, self.listeners = self.listeners, []
        for fn in listeners:
            fn()

    def dispose(self) -> None:
        """Forget the subscription: leave the cache, drop queued events, wake waiters."""
        self.disposed = True
        self.queue.clear()
        if self.registered:
            self.registered = False
            self.conn.cache.unsubscribe(self, self.name, self.query, self.res)
        self._notify()

    # -- events ----------------------------------------------------------------------------------

    def on_event(self, ev: ResourceEvent) -> None:
        if ev.plain and self.sent and not (self.queue or self.waiting or self.reaccessing or self.disposed):
            # The hot path of fan-out: the shared frame goes straight out.
            if ev.data is not None:
                self.data = ev.data
            self.conn.send(ev.frame(self.rid, self.conn.legacy))
            return
        if self.disposed:
            return
        if self.queue or self._blocked():
            self.queue.append(ev)
        else:
            self._process(ev)

    def _blocked(self) -> bool:
        return not self.sent or self.waiting or self.reaccessing

    def flush(self) -> None:
        """Deliver queued events until one has to wait again."""
        while self.queue and not self._blocked() and not self.disposed:
            self._process(self.queue.popleft())

    def _process(self, ev: ResourceEvent) -> None:
        kind = ev.kind
        if kind == "custom":
            self.conn.send(ev.frame(self.rid, self.conn.legacy))
        elif kind == "reaccess":
            self.recheck_access(UNLIMITED)
        elif kind == "delete":
            self._deleted()
        else:
            self._state_event(ev)

    def _state_event(self, ev: ResourceEvent) -> None:
        self.data = ev.data
        children: list[ClientSub] = []
        if ev.added:
            self.refs.update(ev.added)
            children = self.conn.add_refs(self, ev.added)
        if ev.removed:
            self.refs.difference_update(ev.removed)
        unsent = [c for c in children if not c.sent]
        if unsent:
            self.waiting = True
            self.conn.when_loaded(unsent, lambda: self._send_with_resources(ev, unsent))
        else:
            self.conn.send(ev.frame(self.rid, self.conn.legacy))
        if ev.removed:
            self.conn.collect_garbage()

    def _send_with_resources(self, ev: ResourceEvent, children: list[ClientSub]) -> None:
        self.waiting = False
        if self.disposed:
            return
        payload = dict(ev.legacy_payload() if self.conn.legacy else ev.payload)
        sent = self.conn.send_with_resources(self.rid + "." + ev.name, payload, children)
        for sub in sent:
            sub.flush()
        self.flush()

    def _deleted(self) -> None:
        self.conn.send_event(self.rid + ".delete", None)
        self.state = DELETED
        self.registered = False
        if self.res is not None:
            self.conn.cache.unsubscribe(self, self.name, self.query, self.res)
        self.queue.clear()
        if self.direct > 0:
            self.direct = 0
            self.conn.send_event(self.rid + ".unsubscribe", {"reason": errors.ERR_DELETED.to_dict()})
        self.conn.collect_garbage()

    # -- access ----------------------------------------------------------------------------------

    def get_access(self, callback: AccessCallback) -> None:
        """The cached access result, or one shared access request."""
        if self.access is not None:
            callback(self.access, None)
            return
        if self.access_waiters is not None:
            self.access_waiters.append(callback)
            return
        self.access_waiters = [callback]
        self.conn.request_access(self.name, self.query, self._on_access)

    def _on_access(self, access: Access | None, err: ResError | None) -> None:
        waiters, self.access_waiters = self.access_waiters or [], None
        if access is not None:
            self.access = access
        elif err is not None and err.code == errors.ACCESS_DENIED:
            self.access = Access()
        for fn in waiters:
            fn(access, err)

    def recheck_access(self, throttle: Throttle) -> None:
        """Forget the cached access; a direct subscription asks again (events wait meanwhile)."""
        self.access = None
        if self.direct <= 0 or self.reaccessing or self.disposed:
            return
        self.reaccessing = True

        def done(access: Access | None, err: ResError | None) -> None:
            throttle.done()
            self.reaccessing = False
            if self.disposed:
                return
            if access is not None and access.get:
                self.access = access
            else:
                self._revoke(err or errors.ERR_ACCESS_DENIED)
            if not self.disposed:
                self.flush()

        throttle.run(lambda: self.get_access(done))

    def reset_access(self, throttle: Throttle) -> None:
        self.recheck_access(throttle)

    def _revoke(self, reason: ResError) -> None:
        if self.direct > 0:
            self.direct = 0
            self.conn.send_event(self.rid + ".unsubscribe", {"reason": reason.to_dict()})
        self.conn.collect_garbage()
