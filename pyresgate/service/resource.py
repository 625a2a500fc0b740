"""A resource as its service sees it: identity (rid, name, query, placeholder values) and its events.

Created by ``Service.with_resource`` and, as the base of every request object, by the request
dispatcher. The event helpers publish ``event.<name>.<event>`` (res-protocol.md §3.5) through the
service's NATS connection; called from the resource's serial worker they reach the gateway in order
with the resource's responses.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, Protocol

import orjson

from gateway.protocol import rid as ridlib

if TYPE_CHECKING:
    from pyresgate.service.queryevent import QueryRequest

#: Event names the protocol gives a meaning of its own; ``event()`` refuses them (use the helpers).
RESERVED_EVENTS: Final = frozenset(
    {"add", "change", "create", "delete", "patch", "reset", "reaccess", "remove", "unsubscribe", "query"}
)

QueryCallback = Callable[["QueryRequest"], Awaitable[None] | None]


class Core(Protocol):
    """What a resource needs from its service (``Service`` implements it)."""

    async def publish(self, subject: str, payload: bytes) -> None: ...

    async def start_query_listener(self, resource_name: str, callback: QueryCallback) -> str: ...


class Resource:
    """A resource of the service: ``rid`` is ``name`` plus ``?query`` when it has one."""

    def __init__(self, core: Core, rid: str, path_params: Mapping[str, str] | None = None) -> None:
        self._core = core
        self.rid = rid
        self.resource_name, self.query = ridlib.split(rid)
        self.path_params: dict[str, str] = dict(path_params or {})

    def path_param(self, key: str) -> str:
        """The value of the placeholder ``$key`` of the handler pattern; ``KeyError`` when absent."""
        return self.path_params[key]

    async def event(self, name: str, payload: Any = None) -> None:
        """A custom event: forwarded unchanged to every client subscribed to the resource."""
        if name in RESERVED_EVENTS or not ridlib.is_valid_part(name):
            raise ValueError(f"invalid custom event name {name!r}")
        await self._publish_event(name, payload)

    async def change_event(self, values: Mapping[str, Any]) -> None:
        """A model change; ``values`` maps properties to new values or ``DELETE``. Empty: nothing sent."""
        if not isinstance(values, Mapping):
            raise TypeError("change_event values must be a mapping")
        if values:
            await self._publish_event("change", {"values": dict(values)})

    async def add_event(self, value: Any, idx: int) -> None:
        """A collection add: ``value`` inserted at ``idx`` (0 <= idx <= length)."""
        await self._publish_event("add", {"value": value, "idx": _index(idx)})

    async def remove_event(self, idx: int) -> None:
        """A collection remove of the value at ``idx``."""
        await self._publish_event("remove", {"idx": _index(idx)})

    async def delete_event(self) -> None:
        """The resource is gone: clients get ``delete`` and are unsubscribed."""
        await self._publish_event("delete", None)

    async def create_event(self) -> None:
        """The resource came into being (informative; the gateway forwards it if loaded)."""
        await self._publish_event("create", None)

    async def reaccess_event(self) -> None:
        """Access to the resource changed: the gateway re-checks the clients' access."""
        await self._publish_event("reaccess", None)

    async def query_event(self, callback: QueryCallback) -> None:
        """Ask the gateway to re-query every cached query of this resource name.

        ``callback`` is called once per cached query with a ``QueryRequest`` telling what changed for that
        query (events, or the whole new model/collection to diff). It runs on this resource's worker.
        """
        subject = await self._core.start_query_listener(self.resource_name, callback)
        await self._publish_event("query", {"subject": subject})

    async def _publish_event(self, name: str, payload: Any) -> None:
        if self.query:
            raise ValueError(f"events go to the resource name, not to the query resource {self.rid!r}")
        body = b"" if payload is None else orjson.dumps(payload)
        await self._core.publish(f"event.{self.resource_name}.{name}", body)


def _index(idx: int) -> int:
    if isinstance(idx, bool) or not isinstance(idx, int) or idx < 0:
        raise ValueError(f"invalid index {idx!r}: must be an int >= 0")
    return idx
