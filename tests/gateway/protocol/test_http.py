"""Tests for gateway.protocol.http: URL <-> rid mapping, status codes, header names, json/jsonflat bodies.

Catalog rows covered at the mapping/encoding level (the HTTP round trip itself is tested by the
black-box catalog suite): HGET-01.02-06, HGET-02.L01-L30 (both encodings, bodies of catalog §5.14),
HGET-03/04 and HGET-08 (query appended raw), HGET-07/HPOST-07 (long rids map, then fail the subject
length check), HPOST-04.02-08, HPOST-01 (POST query), HPOST-02.11 and HMETA-01.06 (Location paths).
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.protocol import errors, values
from gateway.protocol import http as httplib
from gateway.protocol import rid as ridlib
from tests.support.fixtures import HTTP_GET_BODIES

API = "/api/"

# --- URL -> rid ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rest",
    [
        pytest.param("", id="HGET-01.02"),
        pytest.param("test.model", id="HGET-01.03"),
        pytest.param("test/model/", id="HGET-01.04"),
        pytest.param("test//model", id="HGET-01.05"),
        pytest.param("test/mådel/action", id="HGET-01.06"),
        pytest.param("test/m%C3%A5del/action", id="HGET-01.06-escaped"),
        pytest.param("/test/model", id="leading-slash"),
        pytest.param("test/%2A/model", id="escaped-wildcard"),
        pytest.param("test/%3E", id="escaped-full-wildcard"),
        pytest.param("test/a%20b", id="escaped-space"),
        pytest.param("test/%FF", id="not-utf8"),
        pytest.param("test/%", id="bad-escape-end"),
        pytest.param("test/%4", id="bad-escape-short"),
        pytest.param("test/%zz", id="bad-escape-hex"),
        pytest.param("%3Fq", id="query-without-name"),
    ],
)
def test_invalid_paths_map_to_no_rid(rest: str) -> None:
    assert httplib.path_to_rid(rest, "") is None


@pytest.mark.parametrize(
    ("rest", "raw_query", "rid"),
    [
        ("test/model", "", "test.model"),
        ("test", "", "test"),
        pytest.param("test/model", "q=foo&f=bar", "test.model?q=foo&f=bar", id="HGET-03"),
        pytest.param("test/collection", "q=foo&f=bar", "test.collection?q=foo&f=bar", id="HGET-04"),
        ("test/model", "q=a%20b+c", "test.model?q=a%20b+c"),  # query stays undecoded
        ("test/a+b", "", "test.a+b"),  # '+' is not a space in a path
        ("test/%7Bcid%7D", "", "test.{cid}"),
        ("test/a%2Fb", "", "test.a/b"),
        ("test/%24x%40y", "", "test.$x@y"),
        ("test/model%3Ffoo=bar", "", "test.model?foo=bar"),  # how rid_to_path writes query rids
        ("a/b%3Fx=1/2", "", "a.b?x=1.2"),
        ("test/%C3%A5", "", None),  # decodes to non-ASCII: invalid rid
    ],
)
def test_paths_map_to_rids(rest: str, raw_query: str, rid: str | None) -> None:
    assert httplib.path_to_rid(rest, raw_query) == rid


def test_hget_08_long_query_is_fine() -> None:
    query = "q=" + "a" * 10000
    assert httplib.path_to_rid("test/model", query) == "test.model?" + query


def test_hget_07_long_rid_maps_but_does_not_fit_a_subject() -> None:
    rid = httplib.path_to_rid("test/" + "a" * 10000, "")
    assert rid == "test." + "a" * 10000
    assert not ridlib.subject_fits("get." + rid, "_INBOX.x")


@pytest.mark.parametrize(
    "rest",
    [
        pytest.param("", id="HPOST-04.02"),
        pytest.param("action", id="HPOST-04.03"),
        pytest.param("test.model/action", id="HPOST-04.04"),
        pytest.param("test/model/action/", id="HPOST-04.05"),
        pytest.param("test//model/action", id="HPOST-04.06"),
        pytest.param("test/model/äction", id="HPOST-04.07"),
        pytest.param("test/mådel/action", id="HPOST-04.08"),
        pytest.param("test/model/%C3%A4ction", id="HPOST-04.07-escaped"),
        pytest.param("test/model/a%2Eb", id="dot-in-method"),
        pytest.param("test/model/a%3Fb", id="question-mark-in-method"),
        pytest.param("test/model/%", id="bad-escape"),
        pytest.param("/method", id="empty-rid"),
    ],
)
def test_invalid_post_paths_map_to_nothing(rest: str) -> None:
    assert httplib.path_to_rid_action(rest, "") is None


@pytest.mark.parametrize(
    ("rest", "raw_query", "expected"),
    [
        ("test/model/method", "", ("test.model", "method")),
        pytest.param("test/model/method", "q=foo&f=bar", ("test.model?q=foo&f=bar", "method"), id="HPOST-01"),
        pytest.param("test/" + "a" * 10000, "", ("test", "a" * 10000), id="HPOST-08"),
        ("test/collection/new", "", ("test.collection", "new")),
        ("test/model/%24set", "", ("test.model", "$set")),
    ],
)
def test_post_paths_map_to_rid_and_method(rest: str, raw_query: str, expected: tuple[str, str]) -> None:
    assert httplib.path_to_rid_action(rest, raw_query) == expected


# --- rid -> URL ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rid", "path"),
    [
        pytest.param("test.model", "/api/test/model", id="HPOST-02.11"),
        pytest.param("test.redirect", "/api/test/redirect", id="HMETA-01.06"),
        ("test.err.notFound", "/api/test/err/notFound"),
        ("test.model?foo=bar", "/api/test/model%3Ffoo=bar"),
        ("a.b?x=1.2", "/api/a/b%3Fx=1/2"),
        ("test.{cid}", "/api/test/%7Bcid%7D"),
        ("t.-_~$&+:=@", "/api/t/-_~$&+:=@"),
        ("t.a/b;c,d", "/api/t/a%2Fb%3Bc%2Cd"),
        ("t.!'()\"#%<[\\]^`|", "/api/t/%21%27%28%29%22%23%25%3C%5B%5C%5D%5E%60%7C"),
        ("t.x?a b", "/api/t/x%3Fa%20b"),
        ("t.x?å", "/api/t/x%3F%C3%A5"),
    ],
)
def test_rid_to_path(rid: str, path: str) -> None:
    assert httplib.rid_to_path(rid, API) == path


def test_rid_to_path_uses_the_given_prefix() -> None:
    assert httplib.rid_to_path("test.model", "/") == "/test/model"


_SEGMENT = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters=".*>?"),
    min_size=1,
    max_size=6,
)


@given(st.lists(_SEGMENT, min_size=1, max_size=5))
def test_rid_path_round_trip(parts: list[str]) -> None:
    rid = ".".join(parts)
    path = httplib.rid_to_path(rid, API)
    assert path.startswith(API)
    assert httplib.path_to_rid(path[len(API) :], "") == rid


@given(st.lists(_SEGMENT, min_size=1, max_size=4), st.text(max_size=8))
def test_query_rid_path_round_trip(parts: list[str], query: str) -> None:
    # Dots in the query become slashes and come back as dots: the href still names the same rid.
    rid = ".".join(parts) + "?" + query
    assert httplib.path_to_rid(httplib.rid_to_path(rid, API)[len(API) :], "") == rid


# --- status codes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (errors.NOT_FOUND, 404),
        (errors.METHOD_NOT_FOUND, 404),
        (errors.TIMEOUT, 404),
        (errors.ACCESS_DENIED, 401),
        (errors.METHOD_NOT_ALLOWED, 405),
        (errors.INTERNAL_ERROR, 500),
        (errors.SERVICE_UNAVAILABLE, 503),
        (errors.FORBIDDEN, 403),
        (errors.SUBJECT_TOO_LONG, 414),
        (errors.INVALID_PARAMS, 400),
        (errors.INVALID_QUERY, 400),
        (errors.BAD_REQUEST, 400),
        (errors.INVALID_REQUEST, 400),
        (errors.NOT_IMPLEMENTED, 400),
        ("system.custom", 400),
        ("custom.error", 400),
        ("", 400),
    ],
)
def test_status_for_code(code: str, status: int) -> None:
    assert httplib.status_for_code(code) == status


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (401, errors.ERR_ACCESS_DENIED),
        (402, errors.ERR_ACCESS_DENIED),
        (407, errors.ERR_ACCESS_DENIED),
        (403, errors.ERR_FORBIDDEN),
        (451, errors.ERR_FORBIDDEN),
        (404, errors.ERR_NOT_FOUND),
        (410, errors.ERR_NOT_FOUND),
        (405, errors.ERR_METHOD_NOT_ALLOWED),
        (408, errors.ERR_TIMEOUT),
        (504, errors.ERR_TIMEOUT),
        (400, errors.ERR_BAD_REQUEST),
        (418, errors.ERR_BAD_REQUEST),
        (499, errors.ERR_BAD_REQUEST),
        (501, errors.ERR_NOT_IMPLEMENTED),
        (503, errors.ERR_SERVICE_UNAVAILABLE),
        (500, errors.ERR_INTERNAL_ERROR),
        (507, errors.ERR_INTERNAL_ERROR),
        (599, errors.ERR_INTERNAL_ERROR),
    ],
)
def test_error_for_meta_status(status: int, error: errors.ResError) -> None:
    assert httplib.error_for_meta_status(status) == error


# --- header names ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "canonical"),
    [
        ("test-header", "Test-Header"),  # HMETA-01.02
        ("Test-Header", "Test-Header"),
        ("sec-websocket-key", "Sec-Websocket-Key"),
        ("SEC-WEBSOCKET-KEY", "Sec-Websocket-Key"),
        ("set-cookie", "Set-Cookie"),
        ("x-forwarded-for", "X-Forwarded-For"),
        ("content-md5", "Content-Md5"),
        ("-foo--bar-", "-Foo--Bar-"),
        ("1abc-2def", "1abc-2def"),
        ("a_b-c.d", "A_b-C.d"),
        ("", ""),
        ("test header", "test header"),  # a space: left alone
        ("test:header", "test:header"),  # not a token byte
        ("tést-header", "tést-header"),  # non-ASCII
        ("x-(y)", "x-(y)"),
    ],
)
def test_canonical_header_key(key: str, canonical: str) -> None:
    assert httplib.canonical_header_key(key) == canonical


# --- json / jsonflat: fixtures of catalog §4 --------------------------------------------------------

_MODELS = {
    "test.model": '{"string":"foo","int":42,"bool":true,"null":null}',
    "test.model.parent": '{"name":"parent","child":{"rid":"test.model"}}',
    "test.model.secondparent": '{"name":"secondparent","child":{"rid":"test.model"}}',
    "test.model.grandparent": '{"name":"grandparent","child":{"rid":"test.model.parent"}}',
    "test.model.brokenchild": '{"name":"brokenchild","child":{"rid":"test.err.notFound"}}',
    "test.model.soft": '{"name":"soft","child":{"rid":"test.model","soft":true}}',
    "test.model.soft.parent": '{"name":"softparent","child":{"rid":"test.model.soft","soft":false}}',
    "test.model.data": '{"name":"data","primitive":{"data":12},"object":{"data":{"foo":["bar"]}},'
    '"array":{"data":[{"foo":"bar"}]}}',
    "test.model.data.parent": '{"name":"dataparent","child":{"rid":"test.model.data"}}',
    "test.m.a": '{"a":{"rid":"test.m.a"}}',
    "test.m.b": '{"c":{"rid":"test.m.c"}}',
    "test.m.c": '{"b":{"rid":"test.m.b"}}',
    "test.m.d": '{"e":{"rid":"test.m.e"},"f":{"rid":"test.m.f"}}',
    "test.m.e": '{"d":{"rid":"test.m.d"}}',
    "test.m.f": '{"d":{"rid":"test.m.d"}}',
    "test.m.g": '{"e":{"rid":"test.m.e"},"f":{"rid":"test.m.f"}}',
    "test.m.h": '{"e":{"rid":"test.m.e"}}',
}
_COLLECTIONS = {
    "test.collection": '["foo",42,true,null]',
    "test.collection.parent": '["parent",{"rid":"test.collection"}]',
    "test.collection.secondparent": '["secondparent",{"rid":"test.collection"}]',
    "test.collection.grandparent": '["grandparent",{"rid":"test.collection.parent"}]',
    "test.collection.brokenchild": '["brokenchild",{"rid":"test.err.notFound"}]',
    "test.collection.soft": '["soft",{"rid":"test.collection","soft":true}]',
    "test.collection.soft.parent": '["softparent",{"rid":"test.collection.soft","soft":false}]',
    "test.collection.data": '["data",{"data":12},{"data":{"foo":["bar"]}},{"data":[{"foo":"bar"}]}]',
    "test.collection.data.parent": '["dataparent",{"rid":"test.collection.data"}]',
    "test.collection.empty": "[]",
    "test.c.a": '[{"rid":"test.c.a"}]',
    "test.c.b": '[{"rid":"test.c.c"}]',
    "test.c.c": '[{"rid":"test.c.b"}]',
    "test.c.d": '[{"rid":"test.c.e"},{"rid":"test.c.f"}]',
    "test.c.e": '[{"rid":"test.c.d"}]',
    "test.c.f": '[{"rid":"test.c.d"}]',
    "test.c.g": '[{"rid":"test.c.e"},{"rid":"test.c.f"}]',
    "test.c.h": '[{"rid":"test.c.e"}]',
}
_ERRORS = {"test.err.notFound": errors.ERR_NOT_FOUND}


def _lookup(rid: str) -> httplib.Resource:
    if rid in _MODELS:
        raw = orjson.loads(_MODELS[rid])
        return ("model", {k: values.decode(v) for k, v in raw.items()})
    if rid in _COLLECTIONS:
        return ("collection", [values.decode(v) for v in orjson.loads(_COLLECTIONS[rid])])
    return ("error", _ERRORS[rid])


# HGET-02.Lnn: the resource whose body is checked at the first response of SUB-03 sequence Lnn.
_SEQUENCE_TARGETS = [
    "test.model",
    "test.model.parent",
    "test.model.grandparent",
    "test.model.parent",  # L04: parent, then secondparent (not reached over HTTP)
    "test.model.brokenchild",
    "test.model.soft",
    "test.model.soft.parent",
    "test.model.data",
    "test.model.data.parent",
    "test.m.a",
    "test.m.b",
    "test.m.d",
    "test.m.g",
    "test.m.d",  # L14: d, then h
    "test.collection",
    "test.collection.parent",
    "test.collection.grandparent",
    "test.collection.parent",  # L18
    "test.collection.brokenchild",
    "test.collection.soft",
    "test.collection.soft.parent",
    "test.collection.data",
    "test.collection.data.parent",
    "test.c.a",
    "test.c.b",
    "test.c.d",
    "test.c.g",
    "test.c.d",  # L28: d, then h
    "test.model.parent",  # L29/L30 collapse to L02 over HTTP
    "test.model.parent",
]
_ENCODERS = {"json": httplib.encode_json, "jsonFlat": httplib.encode_jsonflat}


def _hget_02_params() -> list[Any]:
    rows = [
        pytest.param(rid, enc, id=f"HGET-02.L{n:02d}.{enc}")
        for n, rid in enumerate(_SEQUENCE_TARGETS, 1)
        for enc in _ENCODERS
    ]
    # Table rows not reached as a first response: second subscriptions of L04, L14, L28.
    extra = ["test.model.secondparent", "test.m.h", "test.collection.secondparent", "test.c.h"]
    rows += [pytest.param(rid, enc, id=f"HGET-02.{rid}.{enc}") for rid in extra for enc in _ENCODERS]
    return rows


@pytest.mark.parametrize(("rid", "encoding"), _hget_02_params())
def test_hget_02_encoded_bodies(rid: str, encoding: str) -> None:
    expected = HTTP_GET_BODIES[rid][0 if encoding == "json" else 1]
    assert _ENCODERS[encoding](rid, _lookup, API) == orjson.loads(expected)


def test_every_table_body_is_checked() -> None:
    reached = {p.values[0] for p in _hget_02_params()}
    assert reached == set(HTTP_GET_BODIES)


def test_hget_04_query_collection_body_is_the_collection() -> None:
    assert httplib.encode_json("test.collection", _lookup, API) == ["foo", 42, True, None]


def test_empty_collection_and_error_root() -> None:
    assert httplib.encode_jsonflat("test.collection.empty", _lookup, API) == []
    assert httplib.encode_json("test.err.notFound", _lookup, API) == errors.ERR_NOT_FOUND.to_dict()


def test_encoding_uses_the_api_path_for_hrefs() -> None:
    body = httplib.encode_json("test.model.soft", _lookup, "/")
    assert body == {"name": "soft", "child": {"href": "/test/model"}}


def test_error_data_is_kept() -> None:
    err = errors.ResError("custom.error", "Custom error", {"x": 1})

    def lookup(rid: str) -> httplib.Resource:
        return ("model", {"c": values.Ref({"rid": "t.e"}, "t.e", False)}) if rid == "t.m" else ("error", err)

    assert httplib.encode_jsonflat("t.m", lookup, API) == {"c": err.to_dict()}
    assert httplib.encode_json("t.m", lookup, API) == {"c": {"href": "/api/t/e", "error": err.to_dict()}}


def test_query_reference_href() -> None:
    def lookup(rid: str) -> httplib.Resource:
        if rid == "test.model.query.parent":
            return (
                "model",
                {"child": values.Ref({"rid": "test.model?foo=bar"}, "test.model?foo=bar", False)},
            )
        return ("model", {"a": 1})

    assert httplib.encode_json("test.model.query.parent", lookup, API) == {
        "child": {"href": "/api/test/model%3Ffoo=bar", "model": {"a": 1}}
    }


def test_encoders_do_not_mutate_the_resources() -> None:
    before = _lookup("test.model.data")
    httplib.encode_json("test.model.data.parent", _lookup, API)
    assert before == _lookup("test.model.data")


@pytest.mark.parametrize(
    "rid", ["test.model.parent", "test.model.brokenchild", "test.m.a", "test.m.b", "test.collection.soft"]
)
def test_protocol_digest_4_5_examples(rid: str) -> None:
    json_body, flat_body = HTTP_GET_BODIES[rid]
    assert httplib.encode_json(rid, _lookup, API) == orjson.loads(json_body)
    assert httplib.encode_jsonflat(rid, _lookup, API) == orjson.loads(flat_body)
