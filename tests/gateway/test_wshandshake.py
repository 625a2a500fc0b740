"""The handshake of the served-here path (gateway.web.wshandshake) behind the head reader that parses
each head once (gateway.web.fasthttp.HeadReader): which heads it takes, and that everything else is
left to aiohttp (or refused by the reader, as before) rather than half-understood."""

from __future__ import annotations

import base64
import hashlib

from hypothesis import assume, given
from hypothesis import strategies as st

from gateway.web.fasthttp import HeadReader, Take
from gateway.web.wshandshake import Upgrade, accept, accept_key

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
HEADERS = [
    "Host: 127.0.0.1:8080",
    "Upgrade: websocket",
    "Connection: Upgrade",
    f"Sec-WebSocket-Key: {KEY}",
    "Sec-WebSocket-Version: 13",
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
    "User-Agent: test",
]


def _head(headers: list[str], line: str = "GET /ws?a=1 HTTP/1.1") -> bytes:
    return "\r\n".join([line, *headers]).encode("latin-1")


def served_here(head: bytes, ws_path: bytes, compression: bool) -> Upgrade | None:
    """What the served-here path makes of a head (without its blank line, as FrontProtocol frames it):
    the reader's decision, then the handshake on what it parsed; None is aiohttp's (or a refusal)."""
    reader = HeadReader(b"/api/", ws_path)
    if reader.read(head + b"\r\n\r\n") is not Take.WEBSOCKET:
        return None
    return accept(reader.target.decode("ascii"), reader.headers, compression)


def test_rfc_example_accept_key() -> None:
    assert accept_key(KEY) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # RFC 6455 section 1.3
    expected = base64.b64encode(hashlib.sha1(KEY.encode() + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
    assert accept_key(KEY).encode() == expected


@given(st.permutations(HEADERS), st.booleans())
def test_any_order_and_case_is_taken(headers: list[str], upper: bool) -> None:
    lines = [h.upper() if upper and not h.startswith("Sec-WebSocket-Key") else h for h in headers]
    found = served_here(_head(lines), b"/ws", compression=False)
    assert found is not None
    assert found.raw_path == "/ws?a=1" and found.host.lower() == "127.0.0.1:8080"
    assert found.accept == accept_key(KEY)
    assert b"Sec-WebSocket-Accept: " + found.accept.encode() in found.response()


def test_deflate_offer_is_left_to_aiohttp_only_when_compression_is_on() -> None:
    assert served_here(_head(HEADERS), b"/ws", compression=True) is None
    assert served_here(_head(HEADERS[:5]), b"/ws", compression=True) is not None


def test_connection_with_several_options() -> None:
    headers = [h if not h.startswith("Connection") else "Connection: keep-alive, Upgrade" for h in HEADERS]
    assert served_here(_head(headers), b"/ws", compression=False) is not None


LEFT_TO_AIOHTTP = [
    _head(HEADERS, "GET /other HTTP/1.1"),
    _head(HEADERS, "GET /ws\t HTTP/1.1"),
    _head(HEADERS, "GET  /ws HTTP/1.1"),
    _head(HEADERS, "GET /ws HTTP/1.0"),
    _head(HEADERS, "HEAD /ws HTTP/1.1"),
    _head([*HEADERS, "X-Bad: caf\u00e9"]),
    _head([*HEADERS, "X-Bare: a\nb"]),
    _head([*HEADERS, "X-Bare: a\rb"]),
    _head([*HEADERS, " folded"]),
    _head([*HEADERS, "Bad Name: x"]),
    _head([*HEADERS, "Content-Length: 0"]),
    _head([*HEADERS, "Host: second"]),
    _head([*HEADERS, "Origin: a", "Origin: b"]),
    _head([h for h in HEADERS if not h.startswith("Host")] + ["Sec-WebSocket-Version: 13"]),
    _head([h for h in HEADERS if not h.startswith("Sec-WebSocket-Key")] + ["Sec-WebSocket-Key: short"]),
    _head([h for h in HEADERS if not h.startswith("Sec-WebSocket-Key")] + [f"Sec-WebSocket-Key: {KEY[:-2]}"]),
    # Taken by llhttp and so worth pinning: aiohttp's before the head was parsed once, still aiohttp's.
    _head(HEADERS, "GET /ws  HTTP/1.1"),
    _head([*HEADERS, "Upgrade: websocket"]),
    _head([*HEADERS, "Connection: Upgrade"]),
    _head([*HEADERS, "Sec-WebSocket-Version: 13"]),
    _head([*HEADERS, "Sec-WebSocket-Protocol: chat"]),
    _head([*HEADERS, "Transfer-Encoding: chunked"]),
    _head([*HEADERS, "Expect: 100-continue"]),
    _head([*HEADERS, "TE: trailers"]),
    _head([*HEADERS, "Trailer: X"]),
    _head([h for h in HEADERS if not h.startswith("Sec-WebSocket-Version")] + ["Sec-WebSocket-Version: 8"]),
    _head([h for h in HEADERS if not h.startswith("Upgrade")] + ["Upgrade: h2c"]),
    _head([h for h in HEADERS if not h.startswith("Connection")] + ["Connection: upgraded"]),
    # Refused by llhttp (strict mode) before the handshake: bytes outside visible ASCII in the target.
    _head(HEADERS, "GET /ws?\x7f HTTP/1.1"),
    _head(HEADERS, "GET /ws?\xe9 HTTP/1.1"),
    _head([*HEADERS, "X-Del: a\x7fb"]),
]


def test_heads_left_to_aiohttp() -> None:
    for head in LEFT_TO_AIOHTTP:
        assert served_here(head, b"/ws", compression=False) is None, head


@given(st.binary(max_size=300))
def test_random_heads_never_raise(noise: bytes) -> None:
    head = _head(HEADERS[:5]) + b"\r\nX: " + noise
    assume((head + b"\r\n\r\n").find(b"\r\n\r\n") == len(head))  # FrontProtocol frames at the first one
    found = served_here(head, b"/ws", compression=False)
    assert found is None or found.headers["X"] == noise.decode("ascii").strip(" \t")
