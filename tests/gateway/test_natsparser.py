"""gateway.mq.natsparser.FastParser: every message delivered once, whole and in order, however the
stream is cut into chunks, with the other operations left to nats-py's parser."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nats.errors import ProtocolError

from gateway.mq.natsparser import FastParser

Message = tuple[int, bytes, bytes, bytes, "bytes | None"]


class _Client:
    """Stands in for nats-py's client: records what its parser hands back to it."""

    def __init__(self) -> None:
        self.ops: list[Any] = []

    async def _process_msg(self, sid: int, subject: bytes, reply: bytes, data: bytes, headers: Any) -> None:
        self.ops.append(("msg", sid, subject, reply, data, headers))

    async def _process_ping(self) -> None:
        self.ops.append("ping")

    async def _process_pong(self) -> None:
        self.ops.append("pong")

    async def _process_info(self, info: Any) -> None:
        self.ops.append(("info", info))

    async def _process_err(self, err: str) -> None:
        self.ops.append(("err", err))


def _parser() -> tuple[FastParser, _Client]:
    client = _Client()

    def on_message(sid: int, subject: bytes, reply: bytes, data: bytes, headers: bytes | None) -> None:
        client.ops.append(("msg", sid, subject, reply, data, headers))

    return FastParser(client, on_message), client


def _wire(op: Any) -> bytes:
    if op == "ping":
        return b"PING\r\n"
    if op == "pong":
        return b"PONG\r\n"
    if op[0] == "info":
        return b'INFO {"server_id":"x"}\r\n'
    _, sid, subject, reply, data, headers = op
    reply_part = b" " + reply if reply else b""
    if headers is None:
        return b"MSG %s %d%s %d\r\n%s\r\n" % (subject, sid, reply_part, len(data), data)
    size = len(headers) + len(data)
    return b"HMSG %s %d%s %d %d\r\n%s%s\r\n" % (subject, sid, reply_part, len(headers), size, headers, data)


_subject = st.from_regex(rb"\A[a-z]{1,8}(\.[a-z0-9]{1,8}){0,3}\Z")
_message = st.tuples(
    st.just("msg"),
    st.integers(1, 10_000),
    _subject,
    st.one_of(st.just(b""), _subject),
    st.binary(max_size=300),
    st.one_of(
        st.none(), st.just(b"NATS/1.0 503\r\n\r\n"), st.just(b"NATS/1.0\r\nTraceparent: 00-ab\r\n\r\n")
    ),
)
_op = st.one_of(
    _message, _message, _message, st.just("ping"), st.just("pong"), st.just(("info", {"server_id": "x"}))
)


@settings(max_examples=300, deadline=None)
@given(ops=st.lists(_op, max_size=30), cuts=st.lists(st.integers(0, 10_000), max_size=12))
async def test_any_chunking_delivers_every_operation_in_order(ops: list[Any], cuts: list[int]) -> None:
    stream = b"".join(_wire(op) for op in ops)
    points = sorted({c % (len(stream) + 1) for c in cuts})
    parser, client = _parser()
    last = 0
    for point in [*points, len(stream)]:
        await parser.parse(stream[last:point])
        last = point
    assert client.ops == ops
    assert not parser.buf


async def test_reply_subject_and_headers_are_kept() -> None:
    parser, client = _parser()
    await parser.parse(b"MSG a.b 7 _INBOX.x.1 3\r\nabc\r\nHMSG c 8 16 18\r\nNATS/1.0 503\r\n\r\nzz\r\n")
    assert client.ops == [
        ("msg", 7, b"a.b", b"_INBOX.x.1", b"abc", None),
        ("msg", 8, b"c", b"", b"zz", b"NATS/1.0 503\r\n\r\n"),
    ]


@pytest.mark.parametrize(
    "line", [b"MSG a 1 2 3 4\r\n", b"MSG a x 3\r\n", b"HMSG a 1\r\n", b"MSG a b c d e f\r\n"]
)
async def test_malformed_message_lines_are_protocol_errors(line: bytes) -> None:
    parser, _ = _parser()
    with pytest.raises(ProtocolError):
        await parser.parse(line + b"abc\r\n")
