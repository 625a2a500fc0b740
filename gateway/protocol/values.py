"""Resource values: primitives, references, soft references, data values and delete actions.

Called by the service codec (get responses, events) and by everything that encodes resources for
clients. Pure: no I/O.

Values are kept as ordinary JSON-shaped Python objects so a model or collection can be handed to
``orjson.dumps`` as it is, with two marker classes for the object forms:

* ``Ref``  - ``{"rid": ..., "soft": ...}`` as the service sent it (resgate forwards it verbatim);
* ``Data`` - ``{"data": <object or array>}``; a data-wrapped primitive is unwrapped on decoding.

Both subclass ``dict`` (orjson serialises dict subclasses natively) and carry their meaning in
attributes, so encoding needs no per-value conversion.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.protocol import rid as ridlib


class Ref(dict[str, Any]):
    """A resource reference; ``soft`` references are never followed by the gateway."""

    __slots__ = ("rid", "soft")

    def __init__(self, raw: dict[str, Any], rid: str, soft: bool) -> None:
        super().__init__(raw)
        self.rid = rid
        self.soft = soft

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Ref) and other.rid == self.rid and other.soft == self.soft

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    __hash__ = None


class Data(dict[str, Any]):
    """A data value wrapping a JSON object or array (opaque to the gateway)."""

    __slots__ = ()

    @property
    def inner(self) -> Any:
        return self["data"]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Data) and orjson.dumps(self) == orjson.dumps(other)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    __hash__ = None


class DeleteAction(dict[str, str]):
    """The ``{"action":"delete"}`` marker, legal only inside change-event values."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "DELETE"


DELETE = DeleteAction({"action": "delete"})

Value = None | bool | int | float | str | Ref | Data


class InvalidValue(ValueError):
    """A value that is not a proper RES value; the message says why."""


def decode(raw: Any, *, allow_delete: bool = False) -> Any:
    """Turn one parsed JSON value from a service into a RES value, or raise ``InvalidValue``."""
    if isinstance(raw, dict):
        return _decode_object(raw, allow_delete)
    if isinstance(raw, list):
        raise InvalidValue("arrays must be wrapped as data values")
    return raw


def _decode_object(raw: dict[str, Any], allow_delete: bool) -> Any:
    rid = raw.get("rid")
    if rid is not None:
        if not isinstance(rid, str) or not rid:
            raise InvalidValue("invalid resource reference rid")
        if "action" in raw or "data" in raw:
            raise InvalidValue("ambiguous value")
        soft = raw.get("soft", False)
        if soft is None:
            soft = False
        if not isinstance(soft, bool):
            raise InvalidValue("invalid soft flag")
        if not ridlib.is_valid_rid(rid, allow_query=True):
            raise InvalidValue(f"invalid resource reference: {rid}")
        return Ref(raw, rid, soft)
    if "rid" in raw:
        raise InvalidValue("invalid resource reference rid")
    action = raw.get("action")
    if action is not None or "action" in raw:
        if "data" in raw:
            raise InvalidValue("ambiguous value")
        if action != "delete":
            raise InvalidValue(f"invalid action: {action!r}")
        if not allow_delete:
            raise InvalidValue("unexpected delete action")
        return DELETE
    if "data" in raw:
        inner = raw["data"]
        if isinstance(inner, (dict, list)):
            return Data(raw) if len(raw) == 1 else Data({"data": inner})
        return inner
    raise InvalidValue("nested json object must be wrapped as a data value")


def equal(a: Any, b: Any) -> bool:
    """RES value equality: same kind and same content (``1`` and ``1.0`` or ``true`` differ)."""
    if type(a) is not type(b):
        return False
    return bool(a == b)


def hard_rids_of(values: Any) -> set[str]:
    """The rids of all non-soft references among a model's or collection's values."""
    items = values.values() if isinstance(values, dict) else values
    return {v.rid for v in items if type(v) is Ref and not v.soft}


def legacy(value: Any) -> Any:
    """Render a value for clients older than 1.2.1: soft ref -> rid string, data -> "[Data]"."""
    t = type(value)
    if t is Ref:
        return value.rid if value.soft else value
    if t is Data:
        return "[Data]"
    return value


def needs_legacy(values: Any) -> bool:
    """Whether any value renders differently for legacy clients."""
    items = values.values() if isinstance(values, dict) else values
    for v in items:
        t = type(v)
        if t is Data or (t is Ref and v.soft):
            return True
    return False


def legacy_model(model: dict[str, Any]) -> dict[str, Any]:
    return {k: legacy(v) for k, v in model.items()} if needs_legacy(model) else model


def legacy_collection(coll: list[Any]) -> list[Any]:
    return [legacy(v) for v in coll] if needs_legacy(coll) else coll
