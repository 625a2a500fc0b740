"""The gateway's own spans in their lean form: what a span is on the hot path.

``gateway.telemetry.tracing`` creates a ``LeanSpan`` for every span it records and a ``Dropped`` for
every span the sampler leaves out; ``gateway.telemetry.spanexport`` queues ended lean spans and
``gateway.telemetry.otlpencode`` turns them into OTLP bytes off the event loop. A lean span is a
plain slots object: no lock, no span processor calls, no bounded-attributes wrapper, no context
objects. That is most of what recording a span costs in the OpenTelemetry SDK (20-35 µs a span
there; docs/tracing-overhead.md). ``get_span_context`` builds the SDK's ``SpanContext`` only when a
propagator or a custom sampler needs one.

Kinds are the OTLP wire values (``SpanKind`` in opentelemetry-proto), so encoding is a byte copy.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from typing import Any

#: OTLP span kinds (opentelemetry.proto.trace.v1.Span.SpanKind).
INTERNAL = 1
SERVER = 2
CLIENT = 3
PRODUCER = 4
CONSUMER = 5
#: OTLP status codes (opentelemetry.proto.trace.v1.Status.StatusCode).
STATUS_UNSET = 0
STATUS_ERROR = 2
#: W3C trace flags.
SAMPLED = 0x01
RANDOM_TRACE_ID = 0x02

_time_ns = time.time_ns


def _nowhere(span: LeanSpan) -> None:
    pass


#: Where ended sampled spans go; set by ``gateway.telemetry.tracing.setup`` (its export queues).
on_end: Callable[[LeanSpan], None] = _nowhere


class LeanSpan:
    """A recorded span. ``parent_id`` is 0 for a root; ``remote_parent`` says whether the parent came
    from another process (a client's or service's ``traceparent``). ``end`` is 0 until it ended."""

    __slots__ = (
        "attributes",
        "end_ns",
        "events",
        "flags",
        "kind",
        "name",
        "parent_id",
        "remote_parent",
        "span_id",
        "start_ns",
        "status",
        "status_message",
        "trace_id",
        "trace_state",
    )
    #: Spans of this process are local parents of their children.
    remote = False

    def __init__(
        self,
        name: str,
        kind: int,
        trace_id: int,
        span_id: int,
        parent_id: int,
        remote_parent: bool,
        flags: int,
        trace_state: Any,
    ) -> None:
        self.name = name
        self.kind = kind
        self.trace_id = trace_id
        self.span_id = span_id
        self.parent_id = parent_id
        self.remote_parent = remote_parent
        self.flags = flags
        self.trace_state = trace_state
        self.start_ns = _time_ns()
        self.end_ns = 0
        self.attributes: dict[str, Any] | None = None
        self.status = STATUS_UNSET
        self.status_message: str | None = None
        self.events: list[tuple[str, int, dict[str, Any]]] | None = None

    def __repr__(self) -> str:
        return f"LeanSpan({self.name!r}, {self.span_id:016x}<-{self.parent_id:016x})"

    def is_recording(self) -> bool:
        return True

    def end(self) -> None:
        """End the span and hand it to the exporters if it is sampled (``on_end``)."""
        self.end_ns = _time_ns()
        if self.flags & SAMPLED:
            on_end(self)

    def set_attribute(self, key: str, value: Any) -> None:
        attributes = self.attributes
        if attributes is None:
            self.attributes = {key: value}
        else:
            attributes[key] = value

    def set_attributes(self, attributes: dict[str, Any]) -> None:
        if self.attributes is None:
            self.attributes = dict(attributes)
        else:
            self.attributes.update(attributes)

    def set_error(self, message: str | None = None) -> None:
        self.status = STATUS_ERROR
        self.status_message = message or None

    def record_exception(self, exc: BaseException) -> None:
        """An ``exception`` event with the attributes the SDK's ``Span.record_exception`` gives it."""
        cls = type(exc)
        module = cls.__module__
        qualname = cls.__qualname__
        attributes = {
            "exception.type": f"{module}.{qualname}" if module and module != "builtins" else qualname,
            "exception.message": str(exc),
            "exception.stacktrace": "".join(traceback.format_exception(exc)),
            "exception.escaped": "False",
        }
        if self.events is None:
            self.events = []
        self.events.append(("exception", _time_ns(), attributes))

    def get_span_context(self) -> Any:
        return span_context(self.trace_id, self.span_id, self.flags, self.trace_state)


class Dropped:
    """A span the sampler left out: only what propagation and the children's sampling need."""

    __slots__ = ("flags", "span_id", "trace_id", "trace_state")
    remote = False

    def __init__(self, trace_id: int, span_id: int, flags: int, trace_state: Any = None) -> None:
        self.trace_id = trace_id
        self.span_id = span_id
        self.flags = flags
        self.trace_state = trace_state

    def is_recording(self) -> bool:
        return False

    def end(self, end_time: int | None = None) -> None:
        pass

    def set_attributes(self, attributes: dict[str, Any]) -> None:
        pass

    def get_span_context(self) -> Any:
        return span_context(self.trace_id, self.span_id, self.flags, self.trace_state)


class Remote:
    """A parent from another process: the span context a propagator extracted from ``traceparent``
    (``trace_id`` 0 when there was none), and the OpenTelemetry context it came in (``context``).
    ``carry`` is that context when the propagator must see it again to inject the headers of child
    requests (baggage, or a propagator other than W3C Trace Context), else None."""

    __slots__ = ("carry", "context", "flags", "remote", "span_id", "trace_id", "trace_state")

    def __init__(
        self,
        trace_id: int,
        span_id: int,
        flags: int,
        trace_state: Any,
        context: Any,
        carry: Any,
        remote: bool = True,
    ) -> None:
        self.trace_id = trace_id
        self.span_id = span_id
        self.flags = flags
        self.trace_state = trace_state
        self.context = context
        self.carry = carry
        self.remote = remote


def span_context(trace_id: int, span_id: int, flags: int, trace_state: Any, remote: bool = False) -> Any:
    """The OpenTelemetry ``SpanContext`` of these ids (for propagators and custom samplers)."""
    from opentelemetry import trace

    return trace.SpanContext(
        trace_id, span_id, is_remote=remote, trace_flags=trace.TraceFlags(flags), trace_state=trace_state
    )
