"""Tests for gateway.protocol.patterns: the system.reset resource patterns.

Catalog rows PAT-01..04 (61rescache_resourcepattern_test.go), numbered in the order listed.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.protocol import patterns

_PAT_01 = [
    "test",
    "test.model",
    "test.model.foo",
    "test$.model",
    "$test.model",
    ">",
    "test.>",
    "test.model.>",
    "*",
    "test.*",
    "*.model",
    "test.*.foo",
    "test.model.*",
    "*.model.foo",
    "test.*.*",
    "test.*.>",
]
_PAT_02 = [
    "",
    ".",
    ".test",
    "test.",
    "test..foo",
    "*test",
    "test*",
    "test.*foo",
    "test.foo*",
    "test.**.foo",
    ">test",
    "test>",
    "test.>foo",
    "test.foo>",
    "test.>.foo",
    "test.$foo>",
    "test.$foo*",
    "test.foo?",
    "test. .foo",
    "test.\x127.foo",
    "test.räv",
]
_PAT_03 = [
    ("test", "test"),
    ("test.model", "test.model"),
    ("test.model.foo", "test.model.foo"),
    ("test$.model", "test$.model"),
    ("$foo.model", "$foo.model"),
    (">", "test.model.foo"),
    ("test.>", "test.model.foo"),
    ("test.model.>", "test.model.foo"),
    ("*", "test"),
    ("test.*", "test.model"),
    ("*.model", "test.model"),
    ("test.*.foo", "test.model.foo"),
    ("test.model.*", "test.model.foo"),
    ("*.model.foo", "test.model.foo"),
    ("test.*.*", "test.model.foo"),
    ("test.*.>", "test.model.foo"),
]
_PAT_04 = [
    ("", ""),
    ("", "test"),
    ("test", "test.model"),
    ("test.model", "test.mode"),
    ("test.model.foo", "test.model"),
    ("test.model.foo", "test.mode.foo"),
    ("test", "testing"),
    ("testing", "test"),
    ("foo", "bar"),
    (">", ""),
    ("test.>", "test"),
    ("test.model.>", "test.model"),
    ("*", "test.model"),
    ("test.*", "test.model.foo"),
    ("*.model", "test"),
    ("test.*.foo", "test.model"),
    ("test.model.*", "test.model"),
    ("*.model.foo", "test.model"),
    ("test.*.*", "test.model"),
    ("foo.*", "bar.model"),
    ("*.bar", "foo.baz"),
    ("test.*.>", "test.model"),
]


def _ids(prefix: str, rows: Sequence[object]) -> list[str]:
    return [f"{prefix}.{n:02d}" for n in range(1, len(rows) + 1)]


def test_pat_row_counts_match_catalog() -> None:
    assert [len(r) for r in (_PAT_01, _PAT_02, _PAT_03, _PAT_04)] == [16, 21, 16, 22]


@pytest.mark.parametrize("pattern", _PAT_01, ids=_ids("PAT-01", _PAT_01))
def test_pat_01_valid_patterns_compile(pattern: str) -> None:
    assert patterns.compile(pattern) is not None


@pytest.mark.parametrize("pattern", _PAT_02, ids=_ids("PAT-02", _PAT_02))
def test_pat_02_invalid_patterns_are_rejected(pattern: str) -> None:
    assert patterns.compile(pattern) is None


@pytest.mark.parametrize(("pattern", "name"), _PAT_03, ids=_ids("PAT-03", _PAT_03))
def test_pat_03_matching_names(pattern: str, name: str) -> None:
    compiled = patterns.compile(pattern)
    assert compiled is not None
    assert compiled.matches(name)


@pytest.mark.parametrize(("pattern", "name"), _PAT_04, ids=_ids("PAT-04", _PAT_04))
def test_pat_04_non_matching_names(pattern: str, name: str) -> None:
    # An invalid pattern (the empty one) never matches anything: it is ignored by the caller.
    compiled = patterns.compile(pattern)
    assert compiled is None or not compiled.matches(name)


@pytest.mark.parametrize(
    ("pattern", "name"),
    [("test.model", "test.model?q=1"), ("test.*", "test.model?a.b.c"), ("test.>", "test.m?x")],
)
def test_query_is_not_part_of_the_match(pattern: str, name: str) -> None:
    compiled = patterns.compile(pattern)
    assert compiled is not None and compiled.matches(name)


def test_wildcards_never_match_an_empty_part() -> None:
    compiled = patterns.compile("test.*")
    assert compiled is not None and not compiled.matches("test.")


_PART = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters=".*>?"),
    min_size=1,
    max_size=5,
)
_NAME_PARTS = st.lists(_PART, min_size=1, max_size=5)


@given(_NAME_PARTS)
def test_a_name_is_a_pattern_matching_exactly_itself(parts: list[str]) -> None:
    name = ".".join(parts)
    compiled = patterns.compile(name)
    assert compiled is not None
    assert compiled.matches(name)
    assert not compiled.matches(name + ".x")
    assert not compiled.matches(name + "x")


@given(_NAME_PARTS, st.data())
def test_wildcards_match_what_they_replace(parts: list[str], data: st.DataObject) -> None:
    star = data.draw(st.integers(0, len(parts) - 1))
    starred = [*parts[:star], "*", *parts[star + 1 :]]
    one = patterns.compile(".".join(starred))
    assert one is not None and one.matches(".".join(parts))
    cut = data.draw(st.integers(0, len(parts) - 1))
    tail = patterns.compile(".".join([*parts[:cut], ">"]))
    assert tail is not None and tail.matches(".".join(parts))
    assert not tail.matches(".".join(parts[:cut]))
