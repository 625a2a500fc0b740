"""Query requests: the gateway's questions after a query event, one per cached query of a resource.

Created by ``Service`` when a request arrives on the temporary subject of a ``Resource.query_event``.
The callback tells what changed for ``query`` (the normalised query the get handler returned) either
as events (``change_event``, ``add_event``...) or as the whole new model/collection, which the gateway
diffs itself (res-protocol.md §3.6). Sending nothing means "no change".
"""

from __future__ import annotations

from typing import Any

from pyresgate.service.errors import ERR_NOT_FOUND, ResError, invalid_query
from pyresgate.service.reply import Replier
from pyresgate.service.resource import RESERVED_EVENTS


class QueryRequest:
    """One query of one resource name; answered once, after the callback returns."""

    def __init__(self, replier: Replier, resource_name: str, query: str) -> None:
        self._replier = replier
        self.resource_name = resource_name
        self.query = query
        self._events: list[dict[str, Any]] = []
        self._whole: dict[str, Any] | None = None

    @property
    def rid(self) -> str:
        return f"{self.resource_name}?{self.query}" if self.query else self.resource_name

    def change_event(self, values: dict[str, Any]) -> None:
        if values:
            self._event("change", {"values": values})

    def add_event(self, value: Any, idx: int) -> None:
        self._event("add", {"value": value, "idx": idx})

    def remove_event(self, idx: int) -> None:
        self._event("remove", {"idx": idx})

    def event(self, name: str, payload: Any = None) -> None:
        """A custom event for this query resource's subscribers."""
        if name in RESERVED_EVENTS:
            raise ValueError(f"invalid custom event name {name!r}")
        self._event(name, payload)

    def model(self, model: dict[str, Any]) -> None:
        """The query model's current state; the gateway sends clients the difference."""
        self._set_whole({"model": model})

    def collection(self, collection: list[Any]) -> None:
        """The query collection's current state; the gateway sends clients adds and removes."""
        self._set_whole({"collection": collection})

    async def not_found(self) -> None:
        """The query resource is gone (clients get ``delete``)."""
        await self._replier.error(ERR_NOT_FOUND)

    async def invalid_query(self, message: str = "") -> None:
        await self._replier.error(invalid_query(message))

    async def error(self, err: ResError) -> None:
        await self._replier.error(err)

    async def timeout(self, seconds: float) -> None:
        await self._replier.timeout(seconds)

    async def finish(self) -> None:
        """Send what the callback collected (called by the service after the callback)."""
        if self._replier.replied:
            return
        if self._whole is not None:
            await self._replier.result(self._whole)
        else:
            await self._replier.result({"events": self._events})

    def _event(self, name: str, data: Any) -> None:
        if self._whole is not None:
            raise ValueError("a query response has either events or a whole model/collection")
        entry: dict[str, Any] = {"event": name}
        if data is not None:
            entry["data"] = data
        self._events.append(entry)

    def _set_whole(self, whole: dict[str, Any]) -> None:
        if self._events or self._whole is not None:
            raise ValueError("a query response has either events or one whole model/collection")
        self._whole = whole
