"""OTLP trace export requests written directly in the protobuf wire format, from lean spans.

``gateway.telemetry.spanexport`` calls ``OtlpTraceEncoder.encode`` in its export thread for every
batch of ``LeanSpan``; the bytes go to the configured OTLP exporter's transport (HTTP/protobuf as
they are, gRPC after one C-level parse). The OpenTelemetry exporter would first build an SDK
``ReadableSpan`` per span and then a tree of protobuf message objects field by field (some 30 µs a
span on this machine, holding the GIL); here the resource and the instrumentation scope are encoded
once per encoder, span names (with the kind), attribute key/value pairs and a span's whole set of
attributes once per distinct (string) value, and a span is a join of a few byte strings.

The output is what ``opentelemetry.exporter.otlp.proto.common``'s ``encode_spans`` produces for the
same spans (the same fields and values, decoded with opentelemetry-proto's classes; checked by
tests/telemetry/test_lean_export.py): a ``Status`` on every span (empty when unset) and span
``flags`` saying whether the parent is remote. Messages (opentelemetry/proto/...):

    ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
    ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; string schema_url = 3; }
    ScopeSpans { InstrumentationScope scope = 1; repeated Span spans = 2; string schema_url = 3; }
    Span { bytes trace_id = 1; bytes span_id = 2; string trace_state = 3; bytes parent_span_id = 4;
           string name = 5; SpanKind kind = 6; fixed64 start_time_unix_nano = 7;
           fixed64 end_time_unix_nano = 8; repeated KeyValue attributes = 9; repeated Event events = 11;
           Status status = 15; fixed32 flags = 16; }
    Event { fixed64 time_unix_nano = 1; string name = 2; repeated KeyValue attributes = 3; }
    Status { string message = 2; StatusCode code = 3; }
    KeyValue { string key = 1; AnyValue value = 2; }
    AnyValue { oneof { string string_value = 1; bool bool_value = 2; int64 int_value = 3;
               double double_value = 4; ArrayValue array_value = 5; KeyValueList kvlist_value = 6;
               bytes bytes_value = 7; } }
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from gateway.telemetry.leanspan import LeanSpan

#: Varints of the lengths that occur in practice, precomputed.
_SMALL_VARINTS = [bytes([n]) if n < 0x80 else bytes([(n & 0x7F) | 0x80, n >> 7]) for n in range(0x4000)]
#: Encoded (key, value) attribute fields and (name, kind) fields kept, at most (then started afresh).
CACHE_LIMIT = 4096

_times = struct.Struct("<BQBQ").pack  # fields 7 and 8 (fixed64), tag bytes included
_fixed64 = struct.Struct("<Q").pack
_double = struct.Struct("<d").pack
#: Span.flags (field 16, fixed32): SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK, plus IS_REMOTE for a remote parent.
_FLAGS_LOCAL = b"\x85\x01" + struct.pack("<I", 0x100)
_FLAGS_REMOTE = b"\x85\x01" + struct.pack("<I", 0x300)
_STATUS_UNSET = b"\x7a\x00"
#: An unset status and the flags, the usual end of a span.
_UNSET_LOCAL = _STATUS_UNSET + _FLAGS_LOCAL
_UNSET_REMOTE = _STATUS_UNSET + _FLAGS_REMOTE


def varint(n: int) -> bytes:
    """Protobuf base-128 varint of ``n`` (negative numbers as 64-bit two's complement)."""
    if 0 <= n < 0x4000:
        return _SMALL_VARINTS[n]
    n &= (1 << 64) - 1
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: its tag byte(s), the payload's length, the payload."""
    return tag + varint(len(payload)) + payload


def any_value(value: Any) -> bytes:
    """An AnyValue message for an attribute value (the types the SDK's encoder accepts)."""
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, str):
        return field(b"\x0a", value.encode("utf-8", "surrogatepass"))
    if isinstance(value, int):
        return b"\x18" + varint(value)
    if isinstance(value, float):
        return b"\x21" + _double(value)
    if isinstance(value, bytes):
        return field(b"\x3a", value)
    if value is None:
        return b""
    if isinstance(value, Mapping):
        return field(b"\x32", b"".join(field(b"\x0a", key_value(str(k), v)) for k, v in value.items()))
    if isinstance(value, Sequence):
        return field(b"\x2a", b"".join(field(b"\x0a", any_value(v)) for v in value))
    raise TypeError(f"cannot encode attribute value of type {type(value).__name__}")


def key_value(key: str, value: Any) -> bytes:
    """A KeyValue message."""
    return field(b"\x0a", key.encode()) + field(b"\x12", any_value(value))


def attributes_fields(tag: bytes, attributes: Mapping[str, Any] | None) -> bytes:
    """Repeated KeyValue fields ``tag`` (uncached: the resource, the scope, events)."""
    if not attributes:
        return b""
    return b"".join(field(tag, key_value(k, v)) for k, v in attributes.items())


class OtlpTraceEncoder:
    """Encodes batches of lean spans of one resource and instrumentation scope. Used by one export
    thread at a time (its caches are not locked)."""

    def __init__(
        self,
        resource_attributes: Mapping[str, Any],
        resource_schema_url: str | None,
        scope_name: str,
        scope_version: str | None,
        scope_schema_url: str | None = None,
        scope_attributes: Mapping[str, Any] | None = None,
    ) -> None:
        resource = attributes_fields(b"\x0a", resource_attributes)
        self._resource = field(b"\x0a", resource)  # ResourceSpans.resource
        self._resource_tail = field(b"\x1a", resource_schema_url.encode()) if resource_schema_url else b""
        scope = field(b"\x0a", scope_name.encode())
        if scope_version:
            scope += field(b"\x12", scope_version.encode())
        scope += attributes_fields(b"\x1a", scope_attributes)
        self._scope = field(b"\x0a", scope)  # ScopeSpans.scope
        self._scope_tail = field(b"\x1a", scope_schema_url.encode()) if scope_schema_url else b""
        self._heads: dict[str, tuple[int, bytes]] = {}  # name: (kind, name and kind fields)
        self._last_trace_id = 0
        self._last_trace_field = b""
        self._attributes: dict[tuple[str, str], bytes] = {}  # (key, value): KeyValue field
        self._blocks: dict[tuple[tuple[str, Any], ...], bytes] = {}  # a span's attributes: their fields

    def encode(self, spans: Iterable[LeanSpan]) -> bytes:
        """An ExportTraceServiceRequest with ``spans``, serialised."""
        body = b"".join([self.span(s) for s in spans])
        scope_spans = self._scope + body + self._scope_tail
        resource_spans = self._resource + field(b"\x12", scope_spans) + self._resource_tail
        return field(b"\x0a", resource_spans)

    def span(self, s: LeanSpan) -> bytes:
        """One ``ScopeSpans.spans`` field."""
        trace_id = s.trace_id
        if trace_id != self._last_trace_id:  # (a request's spans usually end one after the other)
            self._last_trace_id = trace_id
            self._last_trace_field = b"\x0a\x10" + trace_id.to_bytes(16, "big") + b"\x12\x08"
        parts = [self._last_trace_field + s.span_id.to_bytes(8, "big")]
        append = parts.append
        if s.trace_state:
            append(field(b"\x1a", s.trace_state.to_header().encode()))
        if s.parent_id:
            append(b"\x22\x08" + s.parent_id.to_bytes(8, "big"))
        name = s.name
        head = self._heads.get(name)
        if head is None or head[0] != s.kind:
            head = (s.kind, field(b"\x2a", name.encode("utf-8", "surrogatepass")) + b"\x30" + varint(s.kind))
            if len(self._heads) >= CACHE_LIMIT:
                self._heads.clear()
            self._heads[name] = head
        append(head[1])
        append(_times(0x39, s.start_ns, 0x41, s.end_ns))
        attributes = s.attributes
        if attributes:
            items = tuple(attributes.items())
            block = self._blocks.get(items)
            if block is None:
                block = self._attributes_block(items)
            append(block)
        if s.events:
            parts.extend(field(b"\x5a", _event(*event)) for event in s.events)
        if s.status:
            status = b"\x18" + varint(s.status)
            if s.status_message:
                status = field(b"\x12", s.status_message.encode("utf-8", "surrogatepass")) + status
            append(field(b"\x7a", status))
            append(_FLAGS_REMOTE if s.remote_parent else _FLAGS_LOCAL)
        else:
            append(_UNSET_REMOTE if s.remote_parent else _UNSET_LOCAL)
        body = b"".join(parts)
        n = len(body)
        return b"\x12" + (_SMALL_VARINTS[n] if n < 0x4000 else varint(n)) + body

    def _attributes_block(self, items: tuple[tuple[str, Any], ...]) -> bytes:
        """The attribute fields of a span, kept for the next span with the same attributes when every
        value is a string (True == 1 == 1.0: a cached block of strings can only match strings)."""
        cache = self._attributes
        parts = []
        strings = True
        for kv in items:
            if type(kv[1]) is not str:
                parts.append(field(b"\x4a", key_value(*kv)))
                strings = False
                continue
            encoded = cache.get(kv)
            if encoded is None:
                encoded = field(b"\x4a", key_value(*kv))
                if len(cache) >= CACHE_LIMIT:
                    cache.clear()
                cache[kv] = encoded
            parts.append(encoded)
        block = b"".join(parts)
        if strings:
            if len(self._blocks) >= CACHE_LIMIT:
                self._blocks.clear()
            self._blocks[items] = block
        return block


def _event(name: str, time_ns: int, attributes: Mapping[str, Any]) -> bytes:
    return (
        b"\x09" + _fixed64(time_ns) + field(b"\x12", name.encode()) + attributes_fields(b"\x1a", attributes)
    )
