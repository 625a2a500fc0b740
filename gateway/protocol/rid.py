"""Resource IDs: validation, name/query split, ``{cid}`` expansion and client method parsing.

Called by the value codec (references), the WebSocket request dispatcher (``parse_method``), the
HTTP URL mapping and everything that builds NATS subjects (``expand_cid``, ``subject_fits``).
Pure: no I/O. The rules reproduce resgate 1.8.0 exactly (res-protocol.md §1.1, §1.5, §2.2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from gateway import constants

#: Client actions that carry a rid (``version`` carries none and is handled apart).
_RID_ACTIONS: Final = frozenset({"get", "subscribe", "unsubscribe", "call", "auth", "new"})
#: Actions whose method name follows the rid after the last dot.
_METHOD_ACTIONS: Final = frozenset({"call", "auth"})


def is_valid_rid(rid: str, allow_query: bool = True) -> bool:
    """Whether ``rid`` is a valid resource ID (resgate ``IsValidRID``).

    The name must be non-empty dot-separated parts of printable ASCII without ``*`` or ``>``.
    Everything after the first ``?`` is the query and is deliberately not validated.
    """
    start = True  # True at the beginning of a part: an empty part is an error
    for ch in rid:
        if ch == "?":
            return allow_query and not start
        if ch < "!" or ch > "~" or ch == "*" or ch == ">":
            return False
        if ch == ".":
            if start:
                return False
            start = True
        else:
            start = False
    return not start


def is_valid_part(name: str) -> bool:
    """Whether ``name`` is a valid method/action name (resgate ``IsValidRIDPart``).

    Used for call/auth method names, the HTTP POST action segment and the put/patch/delete
    method settings; a method name can never contain a separator or a wildcard.
    """
    if not name:
        return False
    for ch in name:
        if ch < "!" or ch > "~" or ch in ".*>?":
            return False
    return True


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


@dataclass(frozen=True, slots=True)
class ParsedMethod:
    """A client request method split into its parts.

    ``action`` is one of version/get/subscribe/unsubscribe/call/auth/new; ``rid`` is ``""`` for
    version; ``method`` is set for call and auth only.
    """

    action: str
    rid: str
    method: str | None = None


def parse_method(method: str) -> ParsedMethod | None:
    """Parse a WebSocket request method (res-protocol.md §2.2); ``None`` means invalid request.

    Called by the client request dispatcher, which answers ``None`` with system.invalidRequest.
    """
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
