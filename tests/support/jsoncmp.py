"""JSON deep-equality for test assertions.

Python's ``==`` treats ``True == 1`` and ``1 == 1.0``; JSON comparison in the catalog is "key order free,
numbers compared by value" but a boolean is never a number. Used by every assertion helper in
``tests/support``.
"""

from __future__ import annotations

import json
from typing import Any


def json_equal(a: Any, b: Any) -> bool:
    """Deep-equal JSON values: dict key order free, ints and floats equal by value, bools distinct."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def dumps(value: Any) -> str:
    """Compact, key-sorted JSON for assertion messages."""
    try:
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def assert_json_equal(actual: Any, expected: Any, what: str = "value") -> None:
    if not json_equal(actual, expected):
        raise AssertionError(f"{what} mismatch:\n  expected {dumps(expected)}\n  actual   {dumps(actual)}")


_MISSING = object()


def lookup(obj: Any, path: str) -> Any:
    """Value at dotted ``path`` (``"a.b"``; list indexes as digits), or a private missing marker."""
    cur = obj
    for part in path.split(".") if path else []:
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            return _MISSING
    return cur


def has_path(obj: Any, path: str) -> bool:
    return lookup(obj, path) is not _MISSING
