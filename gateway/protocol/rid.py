"""Resource IDs: validation, name/query split, ``{cid}`` expansion and client method parsing.

Called by the value codec (references), the WebSocket request dispatcher (``parse_method``), the
HTTP URL mapping and everything that builds NATS subjects (``expand_cid``, ``subject_fits``).
Pure: no I/O. The rules reproduce resgate 1.8.0 exactly (res-protocol.md §1.1, §1.5, §2.2).
"""

from __future__ import annotations

import re
from typing import Final, NamedTuple

from gateway import constants

#: Client actions that carry a rid (``version`` carries none and is handled apart).
_RID_ACTIONS: Final = frozenset({"get", "subscribe", "unsubscribe", "call", "auth", "new"})
#: Actions whose method name follows the rid after the last dot.
_METHOD_ACTIONS: Final = frozenset({"call", "auth"})


#: One part of a resource name or a method name: printable ASCII without the separator ``.``, the
#: wildcards ``*`` and ``>``, or ``?`` (0x21-0x7e minus 0x2a, 0x2e, 0x3e, 0x3f).
_PART = r"[\x21-\x29\x2b-\x2d\x2f-\x3d\x40-\x7e]+"
#: A regular expression rather than a loop over the characters: every request and reference is
#: checked, and the loop cost a microsecond per rid.
_RID_WITH_QUERY = re.compile(rf"{_PART}(?:\.{_PART})*(?:\?.*)?", re.DOTALL)
_RID = re.compile(rf"{_PART}(?:\.{_PART})*")
_VALID_PART = re.compile(_PART)


def is_valid_rid(rid: str, allow_query: bool = True) -> bool:
    """Whether ``rid`` is a valid resource ID (resgate ``IsValidRID``).

    The name must be non-empty dot-separated parts of printable ASCII without ``*`` or ``>``.
    Everything after the first ``?`` is the query and is deliberately not validated.
    """
    return (_RID_WITH_QUERY if allow_query else _RID).fullmatch(rid) is not None


def is_valid_part(name: str) -> bool:
    """Whether ``name`` is a valid method/action name (resgate ``IsValidRIDPart``).

    Used for call/auth method names, the HTTP POST action segment and the put/patch/delete
    method settings; a method name can never contain a separator or a wildcard.
    """
    return _VALID_PART.fullmatch(name) is not None


def split(rid: str) -> tuple[str, str]:
    """Split a rid into (name, query) at the first ``?``; the query is ``""`` when absent or empty."""
    name, _, query = rid.partition("?")
    return name, query


def expand_cid(rid: str, cid: str) -> str:
    """Replace every ``{cid}`` tag by the connection ID (done before talking to services)."""
    if constants.CID_PLACEHOLDER not in rid:
        return rid  # the common case: no copy
    return rid.replace(constants.CID_PLACEHOLDER, cid)


def subject_fits(subject: str, reply: str) -> bool:
    """Whether a PUB of ``subject`` with ``reply`` fits the NATS control line.

    A longer control line makes the NATS server drop the whole connection, so callers check
    this before publishing and answer ``system.subjectTooLong`` instead.
    """
    return len(subject) + len(reply) <= constants.NATS_MAX_CONTROL_LINE


class ParsedMethod(NamedTuple):
    """A client request method split into its parts.

    ``action`` is one of version/get/subscribe/unsubscribe/call/auth/new; ``rid`` is ``""`` for
    version; ``method`` is set for call and auth only. A named tuple: immutable (parsed methods are
    shared, see ``parse_method``) and several times cheaper to build than a frozen dataclass.
    """

    action: str
    rid: str
    method: str | None = None


#: Methods parsed lately: clients repeat the same methods (a call on the same resource, the same
#: subscriptions after a reconnect). Bounded: emptied when full, and long methods are not kept
#: (a client could otherwise make it hold thousands of huge strings).
_PARSED: dict[str, ParsedMethod | None] = {}
_PARSED_MAX = 4096
_PARSED_MAX_LENGTH = 256


def parse_method(method: str) -> ParsedMethod | None:
    """Parse a WebSocket request method (res-protocol.md §2.2); ``None`` means invalid request.

    Called by the client request dispatcher, which answers ``None`` with system.invalidRequest.
    """
    try:
        return _PARSED[method]
    except KeyError:
        pass
    parsed = _parse_method(method)
    if len(method) <= _PARSED_MAX_LENGTH:
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.clear()
        _PARSED[method] = parsed
    return parsed


def _parse_method(method: str) -> ParsedMethod | None:
    action, dot, rid = method.partition(".")
    if not dot:
        return ParsedMethod("version", "") if method == "version" else None
    res_method: str | None = None
    if action in _METHOD_ACTIONS:
        # The method follows the LAST dot, even when that dot is inside the query.
        rid, dot, res_method = rid.rpartition(".")
        if not dot or not is_valid_part(res_method):
            return None
    if action not in _RID_ACTIONS or not is_valid_rid(rid, allow_query=True):
        return None
    return ParsedMethod(action, rid, res_method)
