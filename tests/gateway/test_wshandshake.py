"""The upgrade parser of the served-here path (gateway.web.wshandshake) on its own: which heads it
takes, and that everything else is left to aiohttp (None) rather than half-understood."""

from __future__ import annotations

import base64
import hashlib

from hypothesis import given
from hypothesis import strategies as st

from gateway.web.wshandshake import accept_key, parse_upgrade

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


def test_rfc_example_accept_key() -> None:
    assert accept_key(KEY) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # RFC 6455 section 1.3
    expected = base64.b64encode(hashlib.sha1(KEY.encode() + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
    assert accept_key(KEY).encode() == expected


@given(st.permutations(HEADERS), st.booleans())
def test_any_order_and_case_is_taken(headers: list[str], upper: bool) -> None:
    lines = [h.upper() if upper and not h.startswith("Sec-WebSocket-Key") else h for h in headers]
    found = parse_upgrade(_head(lines), b"/ws", compression=False)
    assert found is not None
    assert found.raw_path == "/ws?a=1" and found.host.lower() == "127.0.0.1:8080"
    assert found.accept == accept_key(KEY)
    assert b"Sec-WebSocket-Accept: " + found.accept.encode() in found.response()


def test_deflate_offer_is_left_to_aiohttp_only_when_compression_is_on() -> None:
    assert parse_upgrade(_head(HEADERS), b"/ws", compression=True) is None
    assert parse_upgrade(_head(HEADERS[:5]), b"/ws", compression=True) is not None


def test_connection_with_several_options() -> None:
    headers = [h if not h.startswith("Connection") else "Connection: keep-alive, Upgrade" for h in HEADERS]
    assert parse_upgrade(_head(headers), b"/ws", compression=False) is not None


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
]


def test_heads_left_to_aiohttp() -> None:
    for head in LEFT_TO_AIOHTTP:
        assert parse_upgrade(head, b"/ws", compression=False) is None, head


@given(st.binary(max_size=300))
def test_random_heads_never_raise(noise: bytes) -> None:
    head = _head(HEADERS[:5]) + b"\r\nX: " + noise
    found = parse_upgrade(head, b"/ws", compression=False)
    assert found is None or found.headers["X"] == noise.decode("ascii").strip(" \t")
