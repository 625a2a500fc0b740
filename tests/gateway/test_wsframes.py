"""The client frame reader (gateway.web.wsframes) on its own: any split of a valid stream gives the
same messages; malformed input gives the close code RFC 6455 prescribes, once, and never an exception.

Frames are built here the way a client masks them (random masks); the sink records what the reader
reports.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.web import wsframes
from gateway.web.wsframes import FrameReader


class Recorder:
    """A ``FrameSink`` that keeps what it was told."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.pings: list[bytes] = []
        self.closes: list[tuple[int | None, bytes]] = []
        self.errors: list[int] = []

    def on_message(self, data: bytes) -> None:
        self.messages.append(data)

    def on_ping(self, payload: bytes) -> None:
        self.pings.append(payload)

    def on_close(self, code: int | None, reason: bytes) -> None:
        self.closes.append((code, reason))

    def on_error(self, code: int, reason: str) -> None:
        self.errors.append(code)


def frame(opcode: int, payload: bytes, *, fin: bool = True, mask: bytes | None = None, b0: int = 0) -> bytes:
    """A client frame (masked unless ``mask`` is b"")."""
    first = (0x80 if fin else 0) | opcode | b0
    n = len(payload)
    masked = 0 if mask == b"" else 0x80
    if n < 126:
        head = bytes((first, masked | n))
    elif n < 1 << 16:
        head = bytes((first, masked | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((first, masked | 127)) + n.to_bytes(8, "big")
    if mask == b"":
        return head + payload
    key = mask if mask is not None else os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def read(data: bytes, max_size: int = 1 << 20, splits: list[int] | None = None) -> Recorder:
    rec = Recorder()
    reader = FrameReader(rec, max_size)
    cuts = sorted({c for c in (splits or []) if 0 < c < len(data)})
    start = 0
    for cut in [*cuts, len(data)]:
        reader.feed(data[start:cut])
        start = cut
    return rec


# -- valid streams ------------------------------------------------------------------------------------

_texts = st.text(max_size=300).map(lambda s: s.encode())
_binaries = st.binary(max_size=300)
_messages = st.lists(st.one_of(_texts, _binaries, st.binary(min_size=126, max_size=70_000)), max_size=6)


@st.composite
def streams(draw: st.DrawFn) -> tuple[bytes, list[bytes], int]:
    """Bytes of several messages, each cut into random fragments with pings between them; the
    messages and the number of pings."""
    messages = draw(_messages)
    out: list[bytes] = []
    pings = 0
    for message in messages:
        is_text = draw(st.booleans()) and _is_utf8(message)
        opcode = 1 if is_text else 2
        cuts = sorted(draw(st.lists(st.integers(0, len(message)), max_size=4)))
        pieces = [message[a:b] for a, b in zip([0, *cuts], [*cuts, len(message)], strict=True)]
        for i, piece in enumerate(pieces):
            out.append(frame(opcode if i == 0 else 0, piece, fin=i == len(pieces) - 1))
            if draw(st.booleans()):
                out.append(frame(9, b"p%d" % pings))
                pings += 1
    return b"".join(out), messages, pings


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True


@settings(max_examples=150, deadline=None)
@given(streams(), st.lists(st.integers(0, 200_000), max_size=20))
def test_any_split_of_a_valid_stream_gives_the_same_messages(
    stream: tuple[bytes, list[bytes], int], splits: list[int]
) -> None:
    data, messages, pings = stream
    rec = read(data, splits=splits)
    assert rec.messages == messages
    assert rec.pings == [b"p%d" % i for i in range(pings)]
    assert rec.errors == [] and rec.closes == []


def test_one_byte_at_a_time() -> None:
    data = frame(1, b'{"id":1}') + frame(2, b"x" * 300) + frame(8, (1000).to_bytes(2, "big") + b"bye")
    rec = read(data, splits=list(range(len(data))))
    assert rec.messages == [b'{"id":1}', b"x" * 300]
    assert rec.closes == [(1000, b"bye")]


def test_a_64_bit_length_message() -> None:
    payload = os.urandom(70_000)
    assert read(frame(2, payload)).messages == [payload]


def test_close_without_code_and_what_follows_is_ignored() -> None:
    rec = read(frame(8, b"") + frame(1, b"after"))
    assert rec.closes == [(None, b"")] and rec.messages == []


def test_pong_is_ignored() -> None:
    rec = read(frame(10, b"x") + frame(1, b"a"))
    assert rec.messages == [b"a"] and rec.pings == []


# -- malformed input ----------------------------------------------------------------------------------

MALFORMED = [
    ("unmasked", frame(1, b"hi", mask=b""), 1002),
    ("rsv1", frame(1, b"hi", b0=0x40), 1002),
    ("rsv3", frame(1, b"hi", b0=0x10), 1002),
    ("opcode 3", frame(3, b"hi"), 1002),
    ("opcode 11", frame(11, b""), 1002),
    ("continuation first", frame(0, b"hi"), 1002),
    ("text inside fragmented", frame(1, b"a", fin=False) + frame(1, b"b"), 1002),
    ("fragmented ping", frame(9, b"", fin=False), 1002),
    ("long ping", frame(9, b"x" * 126), 1002),
    ("invalid utf-8", frame(1, b"\xff\xfe"), 1007),
    ("invalid utf-8 across fragments", frame(1, b"\xe2\x82", fin=False) + frame(0, b"\x28"), 1007),
    ("close 1-byte payload", frame(8, b"\x03"), 1002),
    ("close code 1005", frame(8, (1005).to_bytes(2, "big")), 1002),
    ("close code 999", frame(8, (999).to_bytes(2, "big")), 1002),
    ("close code 5000", frame(8, (5000).to_bytes(2, "big")), 1002),
    ("close reason not utf-8", frame(8, (1000).to_bytes(2, "big") + b"\xff"), 1007),
    ("too big", frame(2, b"x" * 2000), 1009),
    ("too big across fragments", frame(2, b"x" * 800, fin=False) + frame(0, b"x" * 800), 1009),
]


@pytest.mark.parametrize(
    ("data", "code"), [(d, c) for _, d, c in MALFORMED], ids=[n for n, _, _ in MALFORMED]
)
def test_malformed_frames_give_the_prescribed_code(data: bytes, code: int) -> None:
    rec = read(data + frame(1, b"after"), max_size=1024)
    assert rec.errors == [code] and rec.messages == []


def test_too_big_is_refused_from_the_header_alone() -> None:
    """A client announcing 2**62 bytes is refused before sending any of them."""
    rec = read(bytes((0x82, 0xFF)) + (1 << 62).to_bytes(8, "big"), max_size=1024)
    assert rec.errors == [1009]


def test_a_message_of_exactly_the_limit_is_accepted() -> None:
    assert read(frame(2, b"x" * 1024), max_size=1024).messages == [b"x" * 1024]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.lists(st.integers(0, 400), max_size=8))
def test_random_bytes_never_raise(data: bytes, splits: list[int]) -> None:
    rec = read(data, max_size=4096, splits=splits)
    assert len(rec.errors) + len(rec.closes) <= 1


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=1, max_size=200), st.binary(min_size=4, max_size=4))
def test_unmask_is_its_own_inverse(payload: bytes, mask: bytes) -> None:
    masked = wsframes.unmask(payload, mask)
    assert masked == bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    assert wsframes.unmask(masked, mask) == payload


def test_many_tiny_fragments_make_one_message() -> None:
    rec = Recorder()
    reader = FrameReader(rec, 1024)
    reader.feed(
        frame(2, b"a", fin=False) + frame(0, b"", fin=False) * 10_000 + frame(0, b"x", fin=False) * 1000
    )
    reader.feed(frame(0, b"b"))
    assert rec.messages == [b"a" + b"x" * 1000 + b"b"]
