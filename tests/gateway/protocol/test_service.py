"""Service codec unit tests: legacy change-event detection (catalog §5.17 CODEC-02)."""

from __future__ import annotations

import orjson
import pytest

from gateway.protocol import service

CODEC_02_ROWS = [
    (b" [}", False),
    (b'"foo"', False),
    (b'{ "foo": "bar", "faz": 42 }', True),
    (b'{ "values": {"action": "delete"}, "faz": 42 }', True),
    (b'{ "values": {"rid": "example.bar"}, "faz": 42 }', True),
    (b'{ "values": {"foo": "bar"}, "faz": 42 }', True),
    (b'{ "foo": "bar" }', True),
    (b'{ "values": "bar" }', True),
    (b' { "values": "bar" }', True),
    (b'\t\r\n { "values": "bar" }', True),
    (b'{ "values": { "foo": "bar" }}', False),
    (b'{ "values": { "foo": "bar", "faz": 42 }}', False),
    (b' { "values": { "foo": "bar" }}', False),
    (b'{ "values": { "action": "delete" }}', False),  # known false negative, as resgate
    (b'{ "values": { "rid": "example.foo" }}', False),  # known false negative, as resgate
]


@pytest.mark.parametrize(
    ("payload", "legacy"), CODEC_02_ROWS, ids=[f"CODEC-02.{i:02d}" for i in range(1, len(CODEC_02_ROWS) + 1)]
)
def test_codec_02_is_legacy_change_event(payload: bytes, legacy: bool) -> None:
    try:
        parsed = orjson.loads(payload)
    except orjson.JSONDecodeError:
        # Unparsable payloads are never legacy; the cache logs them as invalid events.
        with pytest.raises(service.InvalidEvent):
            service.parse_payload(payload)
        return
    assert service.is_legacy_change(parsed) is legacy
