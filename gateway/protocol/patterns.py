"""Resource name patterns with NATS-style wildcards (``*`` one part, ``>`` one or more trailing parts).

Called by the cache when handling ``system.reset`` (``resources`` and ``access`` lists) to pick
the cached resource names to refresh. Pure: no I/O. Rules: res-protocol.md §1.6; invalid patterns
are reported as ``None`` so the caller can silently ignore them, as resgate does.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.protocol import rid as ridlib

_ONE = "*"
_TAIL = ">"


@dataclass(frozen=True, slots=True)
class Pattern:
    """A compiled pattern: its literal/``*`` parts and whether it ends with ``>``."""

    parts: tuple[str, ...]
    tail: bool

    def matches(self, name: str) -> bool:
        """Whether the resource ``name`` matches; a query (after ``?``) is never part of the match."""
        name = name.partition("?")[0]
        if not name:
            return False
        got = name.split(".")
        want = len(self.parts)
        # ``>`` needs at least one part beyond the fixed ones; otherwise the counts must agree.
        count_ok = len(got) > want if self.tail else len(got) == want
        if not count_ok:
            return False
        for p, g in zip(self.parts, got):
            if not g or (p != _ONE and p != g):
                return False
        return True


def compile(pattern: str) -> Pattern | None:
    """Compile ``pattern``, or return ``None`` when it is not a valid resource pattern.

    Named like ``re.compile`` and meant to be called qualified (``patterns.compile``).
    """
    if not pattern:
        return None
    parts = pattern.split(".")
    tail = parts[-1] == _TAIL
    if tail:
        parts.pop()
    for part in parts:
        if not _valid_part(part):
            return None
    return Pattern(tuple(parts), tail)


def _valid_part(part: str) -> bool:
    """A lone ``*``, or a literal part with the characters a rid part may have (parts come from
    splitting on ``.``, so the method-name rule of ``rid.is_valid_part`` is exactly this one)."""
    return part == _ONE or ridlib.is_valid_part(part)
