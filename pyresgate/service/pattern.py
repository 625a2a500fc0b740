"""Handler patterns: resource names with ``$tag`` placeholders and NATS-style wildcards.

Called by the handler registry (``mux``) to pick the handler of an incoming request's resource name and
to pull the placeholder values out of it. ``*`` and ``$tag`` each match one part, ``>`` (last only) one
or more parts. Validation reuses the gateway's pattern codec (``gateway.protocol.patterns``) after the
tags are read as ``*``, so both sides agree on what a valid part is.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.protocol import patterns

_ONE = "*"
_TAIL = ">"
_TAG = "$"

# Rank of a part kind when two patterns match one name: literal beats one-part wildcard/tag beats ``>``.
_LITERAL_RANK = 2
_ONE_RANK = 1


@dataclass(frozen=True, slots=True)
class HandlerPattern:
    """A compiled handler pattern: literal parts, tags (``$id``), ``*`` and a trailing ``>``."""

    text: str
    parts: tuple[str, ...]
    tail: bool

    def match(self, name: str) -> dict[str, str] | None:
        """The placeholder values if ``name`` (a resource name, no query) matches, else ``None``."""
        got = name.split(".") if name else []
        want = len(self.parts)
        if (len(got) <= want) if self.tail else (len(got) != want):
            return None
        params: dict[str, str] = {}
        for pat, part in zip(self.parts, got):
            if not part:
                return None
            if pat.startswith(_TAG):
                params[pat[1:]] = part
            elif pat != _ONE and pat != part:
                return None
        return params

    def rank(self) -> tuple[int, ...]:
        """Sort key: the more specific pattern (literal parts first, ``>`` last) ranks higher."""
        ranks = tuple(
            _LITERAL_RANK if p != _ONE and not p.startswith(_TAG) else _ONE_RANK for p in self.parts
        )
        return ranks + ((0,) if self.tail else (_LITERAL_RANK + 1,))

    def as_reset_pattern(self) -> str:
        """The pattern as ``system.reset`` reads it (tags become ``*``)."""
        parts = [_ONE if p.startswith(_TAG) else p for p in self.parts]
        if self.tail:
            parts.append(_TAIL)
        return ".".join(parts)


def compile(text: str) -> HandlerPattern:
    """Compile a full handler pattern (service name already joined); ``ValueError`` when invalid.

    Named like ``re.compile`` and meant to be called qualified (``pattern.compile``).
    """
    if not text:
        raise ValueError("empty resource pattern")
    parts = text.split(".")
    tags = [p[1:] for p in parts if p.startswith(_TAG)]
    if any(not t for t in tags):
        raise ValueError(f"invalid resource pattern {text!r}: empty $tag")
    if len(set(tags)) != len(tags):
        raise ValueError(f"invalid resource pattern {text!r}: repeated $tag")
    as_wild = ".".join(_ONE if p.startswith(_TAG) else p for p in parts)
    if patterns.compile(as_wild) is None or any(_TAIL in p for p in parts[:-1]):
        raise ValueError(f"invalid resource pattern {text!r}")
    tail = parts[-1] == _TAIL
    if tail:
        parts.pop()
    return HandlerPattern(text, tuple(parts), tail)


def join(service_name: str, pattern: str) -> str:
    """The full pattern of ``pattern`` registered on a service called ``service_name``."""
    if not service_name:
        return pattern
    return f"{service_name}.{pattern}" if pattern else service_name
