"""Handler patterns: matching, placeholder values, precedence and validation (pure, no I/O)."""

from __future__ import annotations

import pytest

from pyresgate.service import pattern
from pyresgate.service.mux import Mux


@pytest.mark.parametrize(
    ("text", "name", "params"),
    [
        ("library.book.$id", "library.book.42", {"id": "42"}),
        ("library.book.$id", "library.book", None),
        ("library.book.$id", "library.book.1.x", None),
        ("library.*.$id", "library.film.7", {"id": "7"}),
        ("library.>", "library.a.b.c", {}),
        ("library.>", "library", None),
        ("library", "library", {}),
        ("a.$x.b.$y", "a.1.b.2", {"x": "1", "y": "2"}),
    ],
)
def test_match(text: str, name: str, params: dict[str, str] | None) -> None:
    assert pattern.compile(text).match(name) == params


@pytest.mark.parametrize("text", ["", "a..b", "a.>.b", "a.$", "a.$x.$x", "a b", "a.b*", "a?b"])
def test_invalid_patterns_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        pattern.compile(text)


def test_most_specific_pattern_wins() -> None:
    mux = Mux()
    for text in ("library.>", "library.book.$id", "library.book.special"):
        mux.entry(text)
    found = mux.find("library.book.special", lambda h: True)
    assert found is not None and found[0].pattern.text == "library.book.special"
    found = mux.find("library.book.9", lambda h: True)
    assert found is not None and found[0].pattern.text == "library.book.$id"
    found = mux.find("library.shelf.9", lambda h: True)
    assert found is not None and found[0].pattern.text == "library.>"


def test_reset_pattern_reads_tags_as_wildcards() -> None:
    assert pattern.compile("library.book.$id").as_reset_pattern() == "library.book.*"
    assert pattern.compile("library.>").as_reset_pattern() == "library.>"
    assert pattern.join("library", "") == "library" and pattern.join("", "x.y") == "x.y"
