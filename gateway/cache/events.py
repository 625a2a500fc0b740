"""A resource event after the cache applied it: what changed, and its client frames.

Made by ``gateway.cache.cache``, consumed by client subscriptions. Frames are encoded lazily once
per (client rid, legacy rendering) and shared by every subscriber that uses the same rid.
"""

from __future__ import annotations

from typing import Any

from gateway.protocol import client, values, wsframe

_PLAIN_KINDS = frozenset(("change", "add", "remove", "custom"))


class ResourceEvent:
    """One event on one cached resource; immutable once made."""

    __slots__ = ("_frames", "added", "data", "kind", "name", "payload", "plain", "removed")

    def __init__(
        self,
        kind: str,
        name: str,
        payload: Any = None,
        data: Any = None,
        added: tuple[str, ...] = (),
        removed: tuple[str, ...] = (),
    ) -> None:
        self.kind = kind  # change, add, remove, delete, reaccess or custom
        self.name = name  # the event name clients see after "<rid>."
        self.payload = payload  # client event data (latest protocol rendering)
        self.data = data  # the resource's data after the event (change/add/remove)
        self.added = added  # hard references the event introduced
        self.removed = removed  # hard references the event dropped
        #: Sent as it is to every ready subscriber: no references to load or release, no access work.
        self.plain = kind in _PLAIN_KINDS and not added and not removed
        self._frames: dict[tuple[str, bool], bytes] = {}

    def frame(self, rid: str, legacy: bool) -> bytes:
        """The WebSocket frame of this event for a client naming the resource ``rid``."""
        key = (rid, legacy)
        frame = self._frames.get(key)
        if frame is None:
            data = self.legacy_payload() if legacy else self.payload
            frame = wsframe.text(client.event(rid + "." + self.name, data))
            self._frames[key] = frame
        return frame

    def legacy_payload(self) -> Any:
        """Payload for clients older than 1.2.1 (soft references and data values rendered)."""
        if self.kind == "change":
            return {"values": values.legacy_model(self.payload["values"])}
        if self.kind == "add":
            return {"idx": self.payload["idx"], "value": values.legacy(self.payload["value"])}
        return self.payload
