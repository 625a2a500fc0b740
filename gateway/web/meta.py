"""Reply ``meta`` (status and headers) applied to HTTP responses: pure merge and status rules.

Used by the HTTP API front end (``web/api.py``) and by the WebSocket header-auth upgrade. Rules:
res-protocol.md §3.9 (meta object, protected headers, merge priority) and §4.6 (error bodies for a
4xx/5xx meta status). Pure: no I/O, no logging; callers log invalid statuses themselves.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final, Literal

from gateway.protocol import http
from gateway.protocol.errors import ResError

#: Header names a service can never set through meta (canonical form).
PROTECTED_HEADERS: Final = frozenset(
    {
        "Sec-Websocket-Extensions",
        "Sec-Websocket-Protocol",
        "Access-Control-Allow-Credentials",
        "Access-Control-Allow-Origin",
        "Content-Type",
    }
)
#: The one header whose values from several responses accumulate instead of replacing.
SET_COOKIE: Final = "Set-Cookie"

#: Headers in canonical form, each with its values in order.
Header = dict[str, list[str]]
StatusKind = Literal["none", "redirect", "error", "invalid"]


def canonical(header: Mapping[str, Iterable[str]] | None) -> Header:
    """``header`` with Go-canonical names; values of names that collide after canonicalisation
    are concatenated in the order given."""
    out: Header = {}
    for key, values in (header or {}).items():
        out.setdefault(http.canonical_header_key(key), []).extend(values)
    return out


def merge(into: Header, header: Mapping[str, Iterable[str]] | None) -> Header:
    """Merge one response's meta ``header`` into ``into`` (mutated and returned).

    Call in priority order (auth, then access, then call): a later response replaces a header an
    earlier one set, except ``Set-Cookie`` whose values accumulate. Protected headers are dropped.
    """
    for key, values in canonical(header).items():
        if key in PROTECTED_HEADERS:
            continue
        if key == SET_COOKIE:
            into.setdefault(key, []).extend(values)
        else:
            into[key] = list(values)
    return into


def status_kind(status: int) -> StatusKind:
    """How a meta ``status`` is honoured: 0 (absent) ``none``; 300-399 ``redirect`` and 400-599
    ``error`` (both answered at once); anything else ``invalid`` (ignored; callers log it)."""
    if status == 0:
        return "none"
    if 300 <= status < 400:
        return "redirect"
    if 400 <= status < 600:
        return "error"
    return "invalid"


def redirect_location(header: Mapping[str, list[str]], resource: str | None, api_path: str) -> str | None:
    """``Location`` of a 3xx meta response: the merged meta header if set, else the path of the
    ``resource`` rid in the same response, else none."""
    values = header.get("Location")
    if values:
        return None  # already among the merged headers, sent as they are
    if resource is not None:
        return http.rid_to_path(resource, api_path)
    return None


def status_error(status: int, err: ResError | None) -> ResError:
    """Body of a 4xx/5xx meta response: the response's own error, else one derived from ``status``."""
    return err if err is not None else http.error_for_meta_status(status)


__all__ = [
    "PROTECTED_HEADERS",
    "SET_COOKIE",
    "Header",
    "StatusKind",
    "canonical",
    "merge",
    "redirect_location",
    "status_error",
    "status_kind",
]
