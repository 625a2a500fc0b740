"""Tests for gateway.protocol.rid: rid/method-name validation, split, {cid}, subject length, method parsing.

Catalog rows CODEC-01.* (17codec_test.go, TestIsValidRID) are numbered in the order the catalog lists
them: 01-09 valid, 10-39 invalid with allowQuery, 40-57 invalid without allowQuery.
INV-01.* (16invalid_request_test.go) are checked at the parsing level: each method is rejected.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway import constants
from gateway.protocol import rid as ridlib
from gateway.protocol.rid import ParsedMethod
from tests.support.fixtures import INVALID_METHODS

# --- CODEC-01 -------------------------------------------------------------------------------

_VALID = [
    "test",
    "test.model",
    "test.model._foo_",
    "test.model.<foo",
    "test.model.23",
    "test.model.23?",
    "test.model.23?foo=bar",
    "test.model.23?foo=test.bar",
    "test.model.23?foo=*&?",
]
_INVALID_NAMES = [
    ".test.model",
    "test..model",
    "test.model.",
    ".test.model",  # duplicated in resgate's table
    "test\tmodel",
    "test\nmodel",
    "test\rmodel",
    "test model",
    "test\ufffdmodel",
    "täst.model",
    "test.*.model",
    "test.>.model",
    "test.model.>",
]
_INVALID = ["", ".test", "test.", *_INVALID_NAMES]
_WITH_QUERY = [name + "?foo=test.bar" for name in ["", *_INVALID_NAMES]]
_INVALID_WITH_QUERY = _INVALID + _WITH_QUERY
_INVALID_WITHOUT_QUERY = _VALID[5:] + _WITH_QUERY


def _ids(first: int, count: int) -> list[str]:
    return [f"CODEC-01.{n:02d}" for n in range(first, first + count)]


def test_codec_01_row_counts_match_catalog() -> None:
    assert (len(_VALID), len(_INVALID_WITH_QUERY), len(_INVALID_WITHOUT_QUERY)) == (9, 30, 18)


@pytest.mark.parametrize("rid", _VALID, ids=_ids(1, 9))
def test_codec_01_valid_rids(rid: str) -> None:
    assert ridlib.is_valid_rid(rid, allow_query=True)
    assert ridlib.is_valid_rid(rid)  # allow_query defaults to True


@pytest.mark.parametrize("rid", _INVALID_WITH_QUERY, ids=_ids(10, 30))
def test_codec_01_invalid_rids(rid: str) -> None:
    assert not ridlib.is_valid_rid(rid, allow_query=True)


@pytest.mark.parametrize("rid", _INVALID_WITHOUT_QUERY, ids=_ids(40, 18))
def test_codec_01_invalid_rids_when_query_not_allowed(rid: str) -> None:
    assert not ridlib.is_valid_rid(rid, allow_query=False)


@pytest.mark.parametrize("rid", _VALID[:5])
def test_names_without_query_stay_valid_when_query_not_allowed(rid: str) -> None:
    assert ridlib.is_valid_rid(rid, allow_query=False)


# --- §1.1 examples and checklist A.1-2 ----------------------------------------------------------


@pytest.mark.parametrize("ch", "$%{}<#/@_-:!\"&'()+,;=[\\]^`|~")
def test_any_printable_ascii_but_wildcards_is_allowed_in_a_part(ch: str) -> None:
    assert ridlib.is_valid_rid(f"test.a{ch}b")
    assert ridlib.is_valid_rid(f"test.{ch}")


@pytest.mark.parametrize("ch", ["*", ">", " ", "\x00", "\x7f", "\x80", "é", "\u2028"])
def test_wildcards_controls_and_non_ascii_are_rejected_in_a_name(ch: str) -> None:
    assert not ridlib.is_valid_rid(f"test.a{ch}b")


@pytest.mark.parametrize("rid", ["?foo", "test.model.?foo=bar", "?"])
def test_query_must_follow_a_complete_name(rid: str) -> None:
    assert not ridlib.is_valid_rid(rid)


@pytest.mark.parametrize("query", ["", "a b", "*>", "ä", "\t\n", "..", "?x?y", "{cid}"])
def test_query_content_is_not_validated(query: str) -> None:
    assert ridlib.is_valid_rid("test.model?" + query)
    assert not ridlib.is_valid_rid("test.model?" + query, allow_query=False)


_PART = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters=".*>?"),
    min_size=1,
    max_size=8,
)
_NAME = st.lists(_PART, min_size=1, max_size=5).map(".".join)
_ORACLE = re.compile(r"[!-~]+", re.ASCII)


@given(name=_NAME, query=st.none() | st.text(max_size=10))
def test_generated_rids_are_valid(name: str, query: str | None) -> None:
    rid = name if query is None else f"{name}?{query}"
    assert ridlib.is_valid_rid(rid)
    assert ridlib.is_valid_rid(rid, allow_query=False) == (query is None)


@given(st.text(max_size=16))
def test_validity_agrees_with_a_regex_statement_of_the_rule(rid: str) -> None:
    name, sep, _ = rid.partition("?")
    parts = name.split(".")
    expected = all(_ORACLE.fullmatch(p) and not set(p) & set("*>") for p in parts)
    assert ridlib.is_valid_rid(rid) == expected
    assert ridlib.is_valid_rid(rid, allow_query=False) == (expected and not sep)


# --- method names (checklist A.3) --------------------------------------------------------------


@pytest.mark.parametrize("name", ["method", "set", "new", "a", "$m_1-x", "!~", "{cid}", "#<@/"])
def test_valid_method_names(name: str) -> None:
    assert ridlib.is_valid_part(name)


@pytest.mark.parametrize(
    "name", ["", "a.b", "a*", ">", "m?", "methöd", "a b", "a\tb", "\x00", "\x7f", "a\ufffd"]
)
def test_invalid_method_names(name: str) -> None:
    assert not ridlib.is_valid_part(name)


# --- split / {cid} / subject length --------------------------------------------------------------


@pytest.mark.parametrize(
    ("rid", "expected"),
    [
        ("test.model", ("test.model", "")),
        ("test.model?", ("test.model", "")),
        ("test.model?q=1", ("test.model", "q=1")),
        ("test.model?q=a?b.c", ("test.model", "q=a?b.c")),
    ],
)
def test_split_at_first_question_mark(rid: str, expected: tuple[str, str]) -> None:
    assert ridlib.split(rid) == expected


def test_expand_cid_replaces_every_tag() -> None:
    assert ridlib.expand_cid("test.{cid}.x?u={cid}", "abc") == "test.abc.x?u=abc"


def test_expand_cid_returns_same_object_without_tag() -> None:
    rid = "test.model"
    assert ridlib.expand_cid(rid, "abc") is rid


def test_expand_cid_leaves_near_misses_alone() -> None:
    assert ridlib.expand_cid("test.{CID}.{cid", "abc") == "test.{CID}.{cid"


def test_subject_fits_up_to_the_nats_control_line_limit() -> None:
    limit = constants.NATS_MAX_CONTROL_LINE
    reply = "_INBOX.abcdefghijklmnopqrstuv"
    assert ridlib.subject_fits("a" * (limit - len(reply)), reply)
    assert not ridlib.subject_fits("a" * (limit - len(reply) + 1), reply)


# --- method parsing (checklist B.15-18, INV-01) ----------------------------------------------------


@pytest.mark.parametrize("method", INVALID_METHODS, ids=[f"INV-01.{n:02d}" for n in range(1, 25)])
def test_inv_01_invalid_methods_are_rejected(method: str) -> None:
    assert ridlib.parse_method(method) is None


@pytest.mark.parametrize(
    "method",
    [
        "version.x",
        "Version",
        "version ",
        "get",
        "get.",
        "subscribe",
        "call.",
        "call..m",
        "auth.test.",
        "GET.test.model",
        "new.test.model.",
        "unsubscribe.?q",
    ],
)
def test_other_invalid_methods_are_rejected(method: str) -> None:
    assert ridlib.parse_method(method) is None


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("version", ParsedMethod("version", "")),
        ("get.test.model", ParsedMethod("get", "test.model")),
        ("subscribe.test.model?q=a.b", ParsedMethod("subscribe", "test.model?q=a.b")),
        ("unsubscribe.test", ParsedMethod("unsubscribe", "test")),
        ("new.test.collection", ParsedMethod("new", "test.collection")),
        ("call.test.model.set", ParsedMethod("call", "test.model", "set")),
        ("auth.test.login", ParsedMethod("auth", "test", "login")),
        ("call.test.model?q=1.2.method", ParsedMethod("call", "test.model?q=1.2", "method")),
        ("call.test.model?.m", ParsedMethod("call", "test.model?", "m")),
        ("get.test.{cid}", ParsedMethod("get", "test.{cid}")),
    ],
)
def test_valid_methods_are_parsed(method: str, expected: ParsedMethod) -> None:
    assert ridlib.parse_method(method) == expected


@given(
    action=st.sampled_from(["call", "auth"]),
    name=_NAME,
    query=st.none() | st.text(max_size=8),
    res_method=_PART,
)
def test_call_method_is_taken_after_the_last_dot(
    action: str, name: str, query: str | None, res_method: str
) -> None:
    rid = name if query is None else f"{name}?{query}"
    assert ridlib.parse_method(f"{action}.{rid}.{res_method}") == ParsedMethod(action, rid, res_method)


@given(action=st.sampled_from(["get", "subscribe", "unsubscribe", "new"]), name=_NAME)
def test_rid_actions_round_trip(action: str, name: str) -> None:
    assert ridlib.parse_method(f"{action}.{name}") == ParsedMethod(action, name)


def test_parsed_methods_are_remembered_within_a_bound() -> None:
    """parse_method keeps what it parsed (clients repeat methods), invalid ones included, and empties
    its memory when full rather than growing with every distinct rid."""
    first = ridlib.parse_method("call.test.memo.set")
    assert first == ParsedMethod("call", "test.memo", "set")
    assert ridlib.parse_method("call.test.memo.set") is first
    assert ridlib.parse_method("call.test.memo.bad*") is None
    assert ridlib.parse_method("call.test.memo.bad*") is None
    for n in range(ridlib._PARSED_MAX + 10):
        assert ridlib.parse_method(f"get.test.memo.{n}") == ParsedMethod("get", f"test.memo.{n}")
    assert len(ridlib._PARSED) <= ridlib._PARSED_MAX
    long_method = "get.test." + "x" * ridlib._PARSED_MAX_LENGTH
    assert ridlib.parse_method(long_method) == ParsedMethod("get", long_method[4:])
    assert long_method not in ridlib._PARSED  # long methods are parsed every time, never kept
