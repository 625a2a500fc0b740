"""The handler registry: which handlers serve which resource pattern, and the lookup by resource name.

Filled by ``Service.handle`` and its decorators; read by the dispatcher for every request. When several
patterns match a name the most specific wins (literal parts before ``$tag``/``*``, ``>`` last), as in
go-res, so ``library.book.special`` can have its own handlers beside ``library.book.$id``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pyresgate.service import pattern as patternlib
from pyresgate.service.requests import AccessRequest, AuthRequest, CallRequest, GetRequest

AccessHandler = Callable[[AccessRequest], Awaitable[Any] | Any]
GetHandler = Callable[[GetRequest], Awaitable[Any] | Any]
CallHandler = Callable[[CallRequest], Awaitable[Any] | Any]
AuthHandler = Callable[[AuthRequest], Awaitable[Any] | Any]
GetKind = Literal["model", "collection", "any"]


@dataclass(slots=True)
class Handlers:
    """Everything registered for one pattern."""

    pattern: patternlib.HandlerPattern
    access: AccessHandler | None = None
    get: GetHandler | None = None
    get_kind: GetKind = "any"
    calls: dict[str, CallHandler] = field(default_factory=dict)
    auths: dict[str, AuthHandler] = field(default_factory=dict)


class Mux:
    """Patterns and their handlers, most specific first."""

    def __init__(self) -> None:
        self._entries: dict[str, Handlers] = {}
        self._ordered: list[Handlers] = []

    def entry(self, full_pattern: str) -> Handlers:
        """The handlers of ``full_pattern``, created empty on first use; ``ValueError`` if invalid."""
        found = self._entries.get(full_pattern)
        if found is None:
            found = Handlers(patternlib.compile(full_pattern))
            self._entries[full_pattern] = found
            self._ordered = sorted(self._entries.values(), key=lambda h: h.pattern.rank(), reverse=True)
        return found

    def find(self, name: str, want: Callable[[Handlers], bool]) -> tuple[Handlers, dict[str, str]] | None:
        """The most specific entry matching ``name`` for which ``want`` holds, with its tag values."""
        for handlers in self._ordered:
            if not want(handlers):
                continue
            params = handlers.pattern.match(name)
            if params is not None:
                return handlers, params
        return None

    def all(self) -> list[Handlers]:
        return list(self._ordered)
