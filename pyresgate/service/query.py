"""Query normalisation for query resources (``library.books?limit=5&start=0``).

Called by service authors' get and query handlers. The gateway caches a query resource under the
normalised query its service returns, so equivalent queries must normalise to the same string: here,
the URL-encoded pairs with the keys sorted (the order of repeated keys kept), unknown keys refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import parse_qsl, urlencode

from pyresgate.service.errors import ResError, invalid_query


def parse_query(query: str, allowed: Iterable[str] | None = None) -> dict[str, list[str]]:
    """The query's keys and their values (in order); ``system.invalidQuery`` for an unknown key or a
    pair that does not parse."""
    keep = None if allowed is None else set(allowed)
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError as exc:
        raise invalid_query(f"Invalid query: {exc}") from None
    out: dict[str, list[str]] = {}
    for key, value in pairs:
        if keep is not None and key not in keep:
            raise invalid_query(f"Invalid query: unknown key {key!r}")
        out.setdefault(key, []).append(value)
    return out


def normalize_query(query: str, allowed: Iterable[str] | None = None) -> str:
    """The canonical form of ``query``: pairs sorted by key, URL-encoded. Raises ``ResError``."""
    parsed = parse_query(query, allowed)
    return urlencode([(k, v) for k in sorted(parsed) for v in parsed[k]])


def int_param(parsed: dict[str, list[str]], key: str, default: int, lo: int, hi: int) -> int:
    """One integer value of a parsed query in ``[lo, hi]``, or ``default`` when the key is absent."""
    values = parsed.get(key)
    if not values:
        return default
    try:
        number = int(values[-1])
    except ValueError:
        raise invalid_query(f"Invalid query: {key} must be an integer") from None
    if not lo <= number <= hi:
        raise ResError("system.invalidQuery", f"Invalid query: {key} must be between {lo} and {hi}")
    return number
