"""Value helpers for models, collections and events: references, data values and the delete action.

Called by service authors when they build models, collections and change events. They produce the
plain JSON shapes of the protocol (res-protocol.md §1.3), so a model stays an ordinary ``dict``.
"""

from __future__ import annotations

from typing import Any, Final

from gateway.protocol import rid as ridlib

#: The change-event value that deletes a model property.
DELETE: Final[dict[str, str]] = {"action": "delete"}


def ref(rid: str) -> dict[str, Any]:
    """A reference to the resource ``rid``; the gateway loads it and sends it along to clients."""
    return {"rid": _checked(rid)}


def soft_ref(rid: str) -> dict[str, Any]:
    """A soft reference: sent to clients as a rid only, never followed by the gateway."""
    return {"rid": _checked(rid), "soft": True}


def data_value(value: Any) -> dict[str, Any]:
    """A data value: a JSON object or array (or primitive) delivered to clients as it is."""
    return {"data": value}


def _checked(rid: str) -> str:
    if not isinstance(rid, str) or not ridlib.is_valid_rid(rid):
        raise ValueError(f"invalid resource ID {rid!r}")
    return rid
