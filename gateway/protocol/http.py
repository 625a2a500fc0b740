"""HTTP side of the RES protocol: URL <-> rid mapping, status codes, header names and GET body encodings.

Called by the HTTP API handler (``web/api.py``) and by anything producing ``Location``/``href``
values. Pure: no I/O, no web framework. Rules: res-protocol.md §4.2 (URL mapping), §4.5
(``json``/``jsonflat`` encodings), §4.6 (status codes), §3.3 (Go header canonicalisation).
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable
from typing import Any, Final, Literal

from gateway.protocol import errors, values
from gateway.protocol import rid as ridlib

# ---------------------------------------------------------------------------------------------
# URL <-> rid

#: A ``%`` not followed by two hex digits: Go refuses to unescape such a path.
_BAD_ESCAPE: Final = re.compile(r"%(?![0-9A-Fa-f]{2})")
#: Characters Go's ``url.PathEscape`` leaves alone besides letters, digits and ``-_.~``.
_PATH_SAFE: Final = "$&+:=@"


def path_to_rid(rest: str, raw_query: str) -> str | None:
    """The rid addressed by a GET/HEAD/PUT/PATCH/DELETE URL, or ``None`` (answered with 404).

    ``rest`` is the raw path after the API prefix; ``raw_query`` is appended undecoded.
    """
    parts = _decoded_parts(rest)
    if parts is None:
        return None
    return _join_rid(parts, raw_query)


def path_to_rid_action(rest: str, raw_query: str) -> tuple[str, str] | None:
    """(rid, method) addressed by a POST URL ``<rid path>/<method>``, or ``None`` (answered with 404)."""
    parts = _decoded_parts(rest)
    if parts is None or len(parts) < 2:
        return None
    method = parts.pop()
    if not ridlib.is_valid_part(method):
        return None
    rid = _join_rid(parts, raw_query)
    return None if rid is None else (rid, method)


def rid_to_path(rid: str, api_path: str) -> str:
    """The URL path of a rid (hrefs, ``Location``), as resgate builds it.

    The whole rid is escaped as one Go path segment, then every ``.`` becomes ``/``; so ``?`` is
    sent as ``%3F`` and dots in a query turn into slashes (a resgate quirk kept for compatibility;
    ``path_to_rid`` maps such a path back to the same rid).
    """
    return api_path + urllib.parse.quote(rid, safe=_PATH_SAFE).replace(".", "/")


def _decoded_parts(rest: str) -> list[str] | None:
    """The percent-decoded path segments, or ``None`` if the path cannot address a resource."""
    # A literal dot would be ambiguous with the separator, so resgate refuses it outright.
    if not rest or "." in rest:
        return None
    parts: list[str] = []
    for segment in rest.split("/"):
        if _BAD_ESCAPE.search(segment):
            return None
        # ``+`` stays a plus in a path; bytes that are not UTF-8 become U+FFFD, an invalid rid char.
        parts.append(urllib.parse.unquote(segment, errors="replace"))
    return parts


def _join_rid(parts: list[str], raw_query: str) -> str | None:
    rid = ".".join(parts)
    if raw_query:
        rid += "?" + raw_query
    return rid if ridlib.is_valid_rid(rid, allow_query=True) else None


# ---------------------------------------------------------------------------------------------
# Status codes

_STATUS_BY_CODE: Final[dict[str, int]] = {
    errors.NOT_FOUND: 404,
    errors.METHOD_NOT_FOUND: 404,
    errors.TIMEOUT: 404,  # resgate answers timeouts with 404, not 504
    errors.ACCESS_DENIED: 401,
    errors.METHOD_NOT_ALLOWED: 405,
    errors.INTERNAL_ERROR: 500,
    errors.SERVICE_UNAVAILABLE: 503,
    errors.FORBIDDEN: 403,
    errors.SUBJECT_TOO_LONG: 414,
}

_ERROR_BY_META_STATUS: Final[dict[int, errors.ResError]] = {
    401: errors.ERR_ACCESS_DENIED,
    402: errors.ERR_ACCESS_DENIED,
    407: errors.ERR_ACCESS_DENIED,
    403: errors.ERR_FORBIDDEN,
    451: errors.ERR_FORBIDDEN,
    404: errors.ERR_NOT_FOUND,
    410: errors.ERR_NOT_FOUND,
    405: errors.ERR_METHOD_NOT_ALLOWED,
    408: errors.ERR_TIMEOUT,
    504: errors.ERR_TIMEOUT,
    501: errors.ERR_NOT_IMPLEMENTED,
    503: errors.ERR_SERVICE_UNAVAILABLE,
}


def status_for_code(code: str) -> int:
    """HTTP status for an error body with this code; unknown and custom codes are 400."""
    return _STATUS_BY_CODE.get(code, 400)


def error_for_meta_status(status: int) -> errors.ResError:
    """The error body sent with a 4xx/5xx ``meta.status`` when the response carried no error.

    Callers pass 400-599 only; the HTTP status stays the meta status itself.
    """
    known = _ERROR_BY_META_STATUS.get(status)
    if known is not None:
        return known
    return errors.ERR_BAD_REQUEST if 400 <= status < 500 else errors.ERR_INTERNAL_ERROR


# ---------------------------------------------------------------------------------------------
# Header names

#: Bytes allowed in an HTTP header token (RFC 7230 ``tchar``).
_TOKEN_CHARS: Final = frozenset(
    "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)


def canonical_header_key(key: str) -> str:
    """Go's ``textproto.CanonicalMIMEHeaderKey``: ``sec-websocket-key`` -> ``Sec-Websocket-Key``.

    Services receive header names (auth ``header``) and send meta headers in this form, so names
    must be canonicalised exactly as resgate does. A key with a space or a non-token byte is
    returned unchanged.
    """
    if any(ch not in _TOKEN_CHARS for ch in key):
        return key
    out: list[str] = []
    upper = True  # the first letter and every letter after '-' are upper case
    for ch in key:
        out.append(ch.upper() if upper else ch.lower())
        upper = ch == "-"
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# GET body encodings

#: What a lookup returns for a loaded rid: its kind and content (values as ``values.decode`` makes them).
Resource = (
    tuple[Literal["model"], dict[str, Any]]
    | tuple[Literal["collection"], list[Any]]
    | tuple[Literal["error"], errors.ResError]
)
#: Returns the loaded resource of a rid; the HTTP handler has loaded every referenced rid before.
Lookup = Callable[[str], Resource]


def encode_json(root: str, lookup: Lookup, api_path: str) -> Any:
    """The ``json`` body: references become ``{"href", "model"|"collection"|"error"}`` objects."""
    return _Encoder(lookup, api_path, flat=False).resource(root)[1]


def encode_jsonflat(root: str, lookup: Lookup, api_path: str) -> Any:
    """The ``jsonflat`` body: references are replaced inline by the referenced resource or error."""
    return _Encoder(lookup, api_path, flat=True).resource(root)[1]


class _Encoder:
    """Walks one resource tree; ``ancestors`` holds the rids being expanded on the current path.

    Only ancestors count as cycles, so a resource referenced from two branches is expanded in
    both (as resgate does), while a reference back up the path becomes a bare ``href``.
    """

    def __init__(self, lookup: Lookup, api_path: str, *, flat: bool) -> None:
        self.lookup = lookup
        self.api_path = api_path
        self.flat = flat
        self.ancestors: set[str] = set()

    def resource(self, rid: str) -> tuple[str, Any]:
        """(kind, encoded content) of ``rid``."""
        kind, body = self.lookup(rid)
        if isinstance(body, errors.ResError):
            return kind, body.to_dict()
        self.ancestors.add(rid)
        try:
            if isinstance(body, dict):
                return kind, {k: self.value(v) for k, v in body.items()}
            return kind, [self.value(v) for v in body]
        finally:
            self.ancestors.discard(rid)

    def value(self, v: Any) -> Any:
        if isinstance(v, values.Ref):
            return self.reference(v)
        if isinstance(v, values.Data):
            return v.inner
        return v

    def reference(self, ref: values.Ref) -> Any:
        href = rid_to_path(ref.rid, self.api_path)
        if ref.soft or ref.rid in self.ancestors:
            return {"href": href}
        kind, content = self.resource(ref.rid)
        return content if self.flat else {"href": href, kind: content}
