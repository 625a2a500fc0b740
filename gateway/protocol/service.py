"""RES-Service codec: request payloads to services and decoding of their replies and events.

Called by the cache (get, events, query and reset replies) and by connections (access, call,
auth). Pure: bytes in, plain objects out; every malformed reply becomes ``system.internalError``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from gateway.protocol import client, errors, values
from gateway.protocol import rid as ridlib
from gateway.protocol.errors import ResError

MISSING: Any = object()


@dataclass(slots=True)
class Meta:
    """The ``meta`` object of a reply (protocol 1.2.3): HTTP status and headers."""

    status: int = 0
    header: dict[str, list[str]] = field(default_factory=dict)


@dataclass(slots=True)
class Reply:
    """A decoded call/auth reply: exactly one of result, resource rid or error is meaningful."""

    result: Any = MISSING
    resource: str | None = None
    error: ResError | None = None
    meta: Meta | None = None


@dataclass(slots=True)
class Access:
    """An access result: ``get`` permission and the ``call`` method list."""

    get: bool = False
    call: str = ""

    def can_call(self, method: str) -> bool:
        if self.call == "*":
            return True
        return bool(self.call) and method in self.call.split(",")


@dataclass(slots=True)
class Resource:
    """A get reply: a model (dict) or collection (list) of RES values, plus normalized query."""

    is_model: bool
    data: Any
    query: str = ""


def _loads(data: bytes | None) -> Any:
    if not data:
        raise errors.internal_error("empty response")
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise errors.internal_error(f"invalid JSON: {exc}") from None


def _optional_str(obj: dict[str, Any], key: str, what: str) -> str:
    """``obj[key]`` when it is a string, "" when absent or null; anything else is malformed."""
    value = obj.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise errors.internal_error(f"{what} is not a string")
    return value


def _decode_error(obj: Any) -> ResError:
    if not isinstance(obj, dict):
        raise errors.internal_error("error is not an object")
    _optional_str(obj, "code", "error code")
    _optional_str(obj, "message", "error message")
    return ResError.from_dict(obj)


def _decode_meta(obj: Any) -> Meta | None:
    if obj is None:
        return None
    if not isinstance(obj, dict):
        raise errors.internal_error("meta is not an object")
    meta = Meta()
    status = obj.get("status")
    if status is not None:
        if type(status) is not int:
            raise errors.internal_error("meta status is not an integer")
        meta.status = status
    header = obj.get("header")
    if header is not None:
        if not isinstance(header, dict):
            raise errors.internal_error("meta header is not an object")
        for k, v in header.items():
            if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
                raise errors.internal_error("meta header values must be string arrays")
            meta.header[k] = v
    return meta


def _only_result(obj: Any) -> bool:
    """Whether a parsed reply is ``{"result": ...}`` and nothing else: the reply of nearly every
    request, which needs none of the checks of the other forms."""
    return type(obj) is dict and len(obj) == 1 and "result" in obj


def plain_result(data: bytes | None) -> Any:
    """The result of a reply that is ``{"result": ...}`` and nothing else, or ``MISSING`` for any
    other reply (which ``decode_reply`` then decodes, errors included)."""
    if not data:
        return MISSING
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        return MISSING
    return obj["result"] if _only_result(obj) else MISSING


def decode_reply(data: bytes | None) -> Reply:
    """Decode a call/auth reply envelope (precedence: error, resource, result)."""
    obj = _loads(data)
    if _only_result(obj):
        return Reply(obj["result"])
    return _reply_of(obj)


def _reply_of(obj: Any) -> Reply:
    if not isinstance(obj, dict):
        raise errors.internal_error("response is not an object")
    reply = Reply(meta=_decode_meta(obj.get("meta")))
    if "error" in obj:
        reply.error = _decode_error(obj["error"])
        return reply
    if "resource" in obj:
        res = obj["resource"]
        rid = res.get("rid") if isinstance(res, dict) else None
        if not isinstance(rid, str) or not ridlib.is_valid_rid(rid, allow_query=True):
            raise errors.internal_error("invalid resource response")
        reply.resource = rid
        return reply
    if "result" not in obj:
        raise errors.internal_error("response missing result")
    reply.result = obj["result"]
    return reply


def reply_or_raise(data: bytes | None, err: ResError | None = None) -> Reply:
    """The decoded reply of a request; a failed request (``err``) or a service error is raised."""
    if err is not None:
        raise err.copy()  # (the NATS client's errors are the shared predefined ones: ResError.copy)
    reply = decode_reply(data)
    if reply.error is not None:
        raise reply.error
    return reply


def get_reply(data: bytes | None, err: ResError | None) -> tuple[Resource | None, ResError | None]:
    """A get request's outcome: (resource, None), or (None, why it failed or was malformed)."""
    if err is not None:
        return None, err
    try:
        return decode_get(data), None
    except ResError as exc:
        return None, exc


def result_or_raise(data: bytes | None) -> Any:
    """Decode a reply that must carry a result; a service error is raised as it is."""
    obj = _loads(data)
    if _only_result(obj):
        return obj["result"]
    reply = _reply_of(obj)
    if reply.error is not None:
        raise reply.error
    if reply.resource is not None:
        raise errors.internal_error("unexpected resource response")
    return reply.result


#: Deprecation logged (once per service) for a v1.1 new-call result.
LEGACY_NEW_RESULT = "legacy v1.1 new call result (result with rid)"


def legacy_new_rid(result: Any) -> str | None:
    """The rid string of a v1.1 new-call result ``{"rid": "<rid>"}`` (exactly that one key), or
    None when the result has another shape. The rid itself is not validated here."""
    if isinstance(result, dict) and len(result) == 1 and isinstance(result.get("rid"), str):
        rid: str = result["rid"]
        return rid
    return None


def decode_access_reply(data: bytes | None) -> tuple[Access | None, ResError | None, Meta | None]:
    """Like ``decode_access`` but keeps the reply's meta also when access failed (HTTP needs it)."""
    try:
        obj = _loads(data)
        if _only_result(obj):
            return access_from_result(obj["result"]), None, None
        reply = _reply_of(obj)
    except ResError as exc:
        return None, exc, None
    if reply.error is not None:
        return None, reply.error, reply.meta
    if reply.resource is not None:
        return None, errors.internal_error("unexpected resource response to access request"), reply.meta
    try:
        return access_from_result(reply.result), None, reply.meta
    except ResError as exc:
        return None, exc, reply.meta


def access_from_result(result: Any) -> Access:
    if result is None:
        return Access()
    if not isinstance(result, dict):
        raise errors.internal_error("access result is not an object")
    get = result.get("get", False)
    call = result.get("call", "")
    if get is None:
        get = False
    if call is None:
        call = ""
    if not isinstance(get, bool) or not isinstance(call, str):
        raise errors.internal_error("invalid access result")
    return Access(get, call)


def decode_get(data: bytes | None) -> Resource:
    """Decode a get reply into a model or collection of proper values."""
    result = result_or_raise(data)
    return resource_from_result(result)


def resource_from_result(result: Any) -> Resource:
    if not isinstance(result, dict):
        raise errors.internal_error("get result is not an object")
    query = _optional_str(result, "query", "query")
    model = result.get("model")
    coll = result.get("collection")
    if model is not None and coll is not None:
        raise errors.internal_error("response has both model and collection")
    if model is not None:
        return Resource(True, decode_model(model), query)
    if coll is not None:
        return Resource(False, decode_collection(coll), query)
    raise errors.internal_error("response has no model or collection")


#: The only types orjson parses JSON objects and arrays into; every other value is a primitive.
_CONTAINERS = (dict, list)


def decode_model(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise errors.internal_error("model is not an object")
    for v in raw.values():
        if type(v) in _CONTAINERS:
            break
    else:
        return raw  # primitives only: already proper values (``raw`` is the caller's own fresh parse)
    try:
        return {k: values.decode(v) for k, v in raw.items()}
    except values.InvalidValue as exc:
        raise errors.internal_error(str(exc)) from None


def decode_collection(raw: Any) -> list[Any]:
    if not isinstance(raw, list):
        raise errors.internal_error("collection is not an array")
    for v in raw:
        if type(v) in _CONTAINERS:
            break
    else:
        return raw  # primitives only, as in decode_model
    try:
        return [values.decode(v) for v in raw]
    except values.InvalidValue as exc:
        raise errors.internal_error(str(exc)) from None


# -- events ------------------------------------------------------------------------------------


class InvalidEvent(ValueError):
    """A malformed event payload; logged by the cache and dropped."""


def parse_payload(data: bytes) -> Any:
    """Parse an event payload; an empty payload is ``None``."""
    if not data:
        return None
    try:
        payload = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent(f"invalid JSON: {exc}") from None
    if client.too_deep(data, payload):  # it could not be written to clients (or into requests)
        raise InvalidEvent("nested too deeply")
    return payload


def is_legacy_change(payload: Any) -> bool:
    """Whether a parsed change payload uses the v1.0 form (the values map itself): anything but an
    object with exactly one key, ``values``, holding an object. Not an object at all: not legacy."""
    if not isinstance(payload, dict):
        return False
    return not (len(payload) == 1 and isinstance(payload.get("values"), dict))


def decode_change(payload: Any) -> tuple[dict[str, Any], bool]:
    """Values of a change event and whether the payload used the legacy v1.0 form."""
    if not isinstance(payload, dict):
        raise InvalidEvent("change payload is not an object")
    legacy = is_legacy_change(payload)
    raw = payload if legacy else payload["values"]
    try:
        return {k: values.decode(v, allow_delete=True) for k, v in raw.items()}, legacy
    except values.InvalidValue as exc:
        raise InvalidEvent(str(exc)) from None


def decode_add(payload: Any) -> tuple[int, Any]:
    if not isinstance(payload, dict):
        raise InvalidEvent("add payload is not an object")
    idx = payload.get("idx")
    if type(idx) is not int:
        raise InvalidEvent("add idx is not an integer")
    if "value" not in payload:
        raise InvalidEvent("add event has no value")
    try:
        return idx, values.decode(payload["value"])
    except values.InvalidValue as exc:
        raise InvalidEvent(str(exc)) from None


def decode_remove(payload: Any) -> int:
    if not isinstance(payload, dict):
        raise InvalidEvent("remove payload is not an object")
    idx = payload.get("idx")
    if type(idx) is not int:
        raise InvalidEvent("remove idx is not an integer")
    return idx


def encode(obj: dict[str, Any]) -> bytes:
    return orjson.dumps(obj)


def access_payload(cid: str, token: Any, query: str, is_http: bool) -> bytes:
    return access_payload_after(request_prefix(cid, token), query, is_http)


def request_prefix(cid: str, token: Any) -> bytes:
    """``{"cid":...,"token":...`` without the closing brace: the start of every access and call
    request of a connection, which keeps it while its token stays the same."""
    return orjson.dumps({"cid": cid, "token": token})[:-1]


def _tail(query: str, is_http: bool) -> bytes:
    if not query:
        return b',"isHttp":true}' if is_http else b"}"
    return b',"query":' + orjson.dumps(query) + (b',"isHttp":true}' if is_http else b"}")


def access_payload_after(prefix: bytes, query: str, is_http: bool) -> bytes:
    """``access_payload`` from the connection's ``request_prefix`` (same keys, same order)."""
    return prefix + _tail(query, is_http)


def call_payload_after(prefix: bytes, params: Any, query: str, is_http: bool) -> bytes:
    """``call_payload`` from the connection's ``request_prefix`` (same keys, same order)."""
    return prefix + b',"params":' + orjson.dumps(params) + _tail(query, is_http)


def get_payload(query: str) -> bytes:
    return orjson.dumps({"query": query}) if query else b"{}"


def call_payload(cid: str, token: Any, params: Any, query: str, is_http: bool) -> bytes:
    out: dict[str, Any] = {"cid": cid, "token": token, "params": params}
    if query:
        out["query"] = query
    if is_http:
        out["isHttp"] = True
    return orjson.dumps(out)


@dataclass(slots=True)
class RequestInfo:
    """What auth requests tell services about the HTTP request behind a connection."""

    header: dict[str, list[str]] = field(default_factory=dict)
    host: str = ""
    remote_addr: str = ""
    uri: str = ""


def auth_payload(
    cid: str,
    token: Any,
    params: Any,
    query: str,
    info: RequestInfo | None,
    *,
    is_http: bool = False,
    with_params: bool = True,
) -> bytes:
    out: dict[str, Any] = {"cid": cid, "token": token}
    if with_params:
        out["params"] = params
    if query:
        out["query"] = query
    if info is not None:
        if info.header:
            out["header"] = info.header
        if info.host:
            out["host"] = info.host
        if info.remote_addr:
            out["remoteAddr"] = info.remote_addr
        if info.uri:
            out["uri"] = info.uri
    if is_http:
        out["isHttp"] = True
    return orjson.dumps(out)
