"""RES-Client codec: parse client request frames, encode responses and events.

Called by ``gateway.conn.connection`` for every WebSocket message. Pure: bytes in, bytes out.
Encodings are plain JSON texts; WebSocket framing is ``gateway.protocol.wsframe``'s job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from gateway import constants
from gateway.protocol import errors
from gateway.protocol.errors import ResError

MISSING: Any = object()
_MAX_ID = 2**64 - 1
_VERSION_RE = re.compile(r"(\d{1,3})\.(\d{1,3})\.(\d{1,3})")


@dataclass(slots=True)
class Request:
    """A client request: numeric ``id``, ``method`` string and optional ``params`` (MISSING)."""

    id: int
    method: str
    params: Any


def parse_request(data: bytes | str) -> Request | None:
    """Parse one client frame; ``None`` means "ignore silently" (resgate sends no response)."""
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(obj, dict):
        return None
    rid = obj.get("id")
    method = obj.get("method")
    # Notifications (no id) are unsupported; ids must be JSON integers in uint64 range.
    if type(rid) is not int or rid < 0 or rid > _MAX_ID or not isinstance(method, str):
        return None
    return Request(rid, method, obj.get("params", MISSING))


def parse_version(params: Any) -> int | None:
    """Client protocol version from ``version`` params; None leaves the connection's as it is."""
    if params is MISSING or params is None:
        return None
    if not isinstance(params, dict):
        raise errors.ERR_INVALID_PARAMS.copy()
    proto = params.get("protocol")
    if proto is None or proto == "":
        return None
    if not isinstance(proto, str):
        raise errors.ERR_INVALID_PARAMS.copy()
    m = _VERSION_RE.fullmatch(proto)
    if m is None:
        raise errors.ERR_INVALID_PARAMS.copy()
    major, minor, patch = (int(x) for x in m.groups())
    if major != 1:
        raise errors.ERR_UNSUPPORTED_PROTOCOL.copy()
    return major * 1_000_000 + minor * 1_000 + patch


def parse_unsubscribe_count(params: Any) -> int:
    """``count`` of an unsubscribe request (default 1); must be a positive JSON integer."""
    if params is MISSING or params is None:
        return 1
    if not isinstance(params, dict):
        raise errors.ERR_INVALID_PARAMS.copy()
    count = params.get("count")
    if count is None:
        return 1
    if type(count) is not int or count <= 0:
        raise errors.ERR_INVALID_PARAMS.copy()
    return count


def params_or_null(params: Any) -> Any:
    return None if params is MISSING else params


VERSION_RESULT = {"protocol": constants.PROTOCOL_VERSION}


#: Deepest nesting of params the gateway forwards. orjson reads 1024 levels but writes at most 254,
#: and params are written one level down in a service request; deeper ones would fail there.
MAX_PARAMS_DEPTH = 250


def too_deep(data: bytes | str, value: Any, limit: int = MAX_PARAMS_DEPTH) -> bool:
    """Whether ``value`` (parsed from the JSON text ``data``) nests deeper than ``limit``. Cheap for
    ordinary messages: the structure is only walked when ``data`` has that many brackets at all."""
    if len(data) < limit:  # fewer characters than that many brackets (every request of B3)
        return False
    if isinstance(data, str):
        brackets = data.count("[") + data.count("{")
    else:
        brackets = data.count(b"[") + data.count(b"{")
    if brackets < limit:
        return False
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return False


def result(req_id: int, value: Any) -> bytes:
    try:
        return orjson.dumps({"result": value, "id": req_id})
    except orjson.JSONEncodeError:  # a service result nested deeper than orjson writes
        return error(req_id, errors.internal_error("result cannot be encoded"))


def empty_result(req_id: int) -> bytes:
    # resgate omits "result" when a request has nothing to return (unsubscribe).
    return b'{"id":%d}' % req_id


def error(req_id: int, err: ResError) -> bytes:
    return orjson.dumps({"error": err.to_dict(), "id": req_id})


def event(name: str, data: Any) -> bytes:
    return orjson.dumps({"event": name, "data": data})
