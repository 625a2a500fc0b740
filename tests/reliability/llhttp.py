"""aiohttp's C request parser (llhttp) as an oracle for the HTTP tests: the messages it reads from a
byte stream, or its refusal.

Used by ``test_fastpath_differential`` (does the fast path read a head as llhttp does?) and
``test_http_corpus`` (does llhttp read a hidden request as a request of its own?). Importing this
module skips the calling test module where aiohttp was built without its C parser.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.http_exceptions import HttpProcessingError

_http_parser = pytest.importorskip(
    "aiohttp._http_parser", reason="aiohttp built without its C (llhttp) parser"
)

__all__ = ["HttpProcessingError", "read_messages"]


class _Protocol:
    """Enough of a protocol for the parser and its payload readers (which pause and resume it)."""

    _reading_paused = False

    def pause_reading(self) -> None:
        pass

    def resume_reading(self, resume_parser: bool = True) -> None:
        pass


def read_messages(stream: bytes) -> tuple[list[tuple[Any, Any]], bool]:
    """The (message, payload) pairs llhttp reads from ``stream`` and whether it switched protocols;
    raises ``HttpProcessingError`` (BadHttpMessage and kin) where llhttp refuses the stream."""
    loop = asyncio.new_event_loop()
    try:
        parser = _http_parser.HttpRequestParser(
            _Protocol(), loop, 2**16, max_line_size=1 << 20, max_field_size=1 << 20
        )
        messages, upgraded, _tail = parser.feed_data(stream)
        return list(messages), bool(upgraded)
    finally:
        loop.close()
