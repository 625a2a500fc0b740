"""The service codec's shortcuts give what the general code gives.

Request payloads built from a connection's cached ``{"cid":...,"token":...`` prefix must be the
bytes the dict encoding gives (services may compare them), and replies of the usual shape
``{"result": ...}`` (decoded without the general checks) and models or collections of primitives
only (returned as parsed) must decode as before.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.protocol import service, values
from gateway.protocol.errors import ResError

_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)


def _by_dict(cid: str, token: Any, query: str, is_http: bool, params: Any = service.MISSING) -> bytes:
    out: dict[str, Any] = {"cid": cid, "token": token}
    if params is not service.MISSING:
        out["params"] = params
    if query:
        out["query"] = query
    if is_http:
        out["isHttp"] = True
    return orjson.dumps(out)


@given(cid=st.text(max_size=20), token=_JSON, params=_JSON, query=st.text(max_size=10), is_http=st.booleans())
def test_payloads_from_a_prefix_are_the_dict_encodings(
    cid: str, token: Any, params: Any, query: str, is_http: bool
) -> None:
    prefix = service.request_prefix(cid, token)
    assert service.access_payload_after(prefix, query, is_http) == _by_dict(cid, token, query, is_http)
    assert service.access_payload(cid, token, query, is_http) == _by_dict(cid, token, query, is_http)
    expected_call = _by_dict(cid, token, query, is_http, params)
    assert service.call_payload_after(prefix, params, query, is_http) == expected_call
    assert service.call_payload(cid, token, params, query, is_http) == expected_call


@given(result=_JSON)
def test_result_only_replies_decode_as_their_result(result: Any) -> None:
    data = orjson.dumps({"result": result})
    assert service.decode_reply(data).result == result
    assert service.decode_reply(data).error is None and service.decode_reply(data).meta is None
    assert service.result_or_raise(data) == result


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b'{"result":1,"error":{"code":"x.y","message":"m"}}', "x.y"),  # error wins over result
        (b'{"error":{"code":"x.y","message":"m"}}', "x.y"),
        (b'{"resource":{"rid":"a.b"},"result":1}', "system.internalError"),  # resource: not a result
        (b'{"result":1,"meta":"bad"}', "system.internalError"),
        (b"[]", "system.internalError"),
        (b"", "system.internalError"),
    ],
)
def test_other_replies_still_take_the_general_checks(data: bytes, error: str) -> None:
    with pytest.raises(ResError) as caught:
        service.result_or_raise(data)
    assert caught.value.code == error


def test_access_replies_decode_alike_with_and_without_meta() -> None:
    plain = service.decode_access_reply(b'{"result":{"get":true,"call":"set"}}')
    with_meta = service.decode_access_reply(b'{"result":{"get":true,"call":"set"},"meta":{"status":200}}')
    assert plain[0] == with_meta[0] == service.Access(True, "set")
    assert plain[1] is None and plain[2] is None and with_meta[2] == service.Meta(200)
    bad = service.decode_access_reply(b'{"result":{"get":"yes"}}')
    assert bad[0] is None and bad[1] is not None and bad[1].code == "system.internalError"


@given(model=st.dictionaries(st.text(max_size=5), _JSON, max_size=5))
def test_models_decode_the_same_with_or_without_the_primitives_shortcut(model: dict[str, Any]) -> None:
    expected: Any
    try:
        expected = {k: values.decode(v) for k, v in model.items()}
    except values.InvalidValue:
        expected = None
    try:
        got: Any = service.decode_model(orjson.loads(orjson.dumps(model)))
    except ResError:
        got = None
    assert got == expected
    items = list(model.values())
    try:
        expected_list: Any = [values.decode(v) for v in items]
    except values.InvalidValue:
        expected_list = None
    try:
        got_list: Any = service.decode_collection(orjson.loads(orjson.dumps(items)))
    except ResError:
        got_list = None
    assert got_list == expected_list


@given(result=_JSON)
def test_plain_result_is_the_result_of_a_result_only_reply(result: Any) -> None:
    assert service.plain_result(orjson.dumps({"result": result})) == result


@pytest.mark.parametrize(
    "data",
    [
        None,
        b"",
        b"{broken",
        b"[]",
        b"{}",
        b'{"result":1,"meta":{}}',
        b'{"error":{"code":"x.y","message":"m"}}',
        b'{"resource":{"rid":"a.b"}}',
    ],
)
def test_plain_result_leaves_every_other_reply_to_decode_reply(data: bytes | None) -> None:
    assert service.plain_result(data) is service.MISSING
