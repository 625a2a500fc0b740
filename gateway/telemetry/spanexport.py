"""Span export off the event loop: a bounded queue per exporter, a thread that sends in batches.

``gateway.telemetry.tracing.setup`` makes one ``SpanQueue`` per configured exporter and registers it
with the SDK's tracer provider too (so spans an embedder makes with the SDK's tracer are exported
the same way). The event loop only appends an ended span to a deque (``add``); when the queue holds
``OTEL_BSP_MAX_QUEUE_SIZE`` spans (the collector is slow or gone) the span is dropped and counted
(``dropped``, on /metrics as ``pyresgate_tracing_spans_dropped_total``), so export never waits in the
event loop. The thread wakes every ``OTEL_BSP_SCHEDULE_DELAY`` ms, or when a batch
(``OTEL_BSP_MAX_EXPORT_BATCH_SIZE``) is ready, and hands batches to a sender:

* the OTLP/HTTP exporter: lean spans encoded by ``OtlpTraceEncoder`` and posted by the exporter's own
  HTTP client (its endpoint, headers, compression, TLS, timeout and retries, all from ``OTEL_*``);
* the OTLP/gRPC exporter made by ``grpc_exporter_class``: the same bytes, parsed once by the C
  protobuf runtime, sent by the exporter's channel and retry loop;
* any other exporter (console, an embedder's or a test's): SDK ``ReadableSpan`` objects built for
  the whole batch in the thread, then ``exporter.export``.

Defaults and variable names are the SDK's ``BatchSpanProcessor``'s, so the ``OTEL_BSP_*`` settings
mean what they meant.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from gateway.telemetry.leanspan import SAMPLED, LeanSpan
from gateway.telemetry.otlpencode import OtlpTraceEncoder

log = logging.getLogger(__name__)

#: Spans dropped because an export queue was full. Spans are added on the event loop's thread; one
#: added on another thread at the same moment could lose a count, which a drop counter can afford.
dropped = [0]
#: How long ``SpanQueue.shutdown`` may spend exporting what is left.
SHUTDOWN_SECONDS = 30.0


def _env_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        log.warning("%s=%r is not an integer; using %d", name, raw, default)
        return default
    if value <= 0:
        log.warning("%s=%r must be positive; using %d", name, raw, default)
        return default
    return value


class SpanQueue:
    """One exporter's queue and export thread. ``simple``: export each span as it ends, in the
    caller's thread (tests; the SDK's ``SimpleSpanProcessor``)."""

    def __init__(
        self,
        exporter: Any,
        encoder: OtlpTraceEncoder,
        sdk_resource: Any,
        sdk_scope: Any,
        *,
        simple: bool = False,
        env: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if env is None else env
        self.exporter = exporter
        self.max_queue = _env_int(env, "OTEL_BSP_MAX_QUEUE_SIZE", 2048)
        self.batch = min(_env_int(env, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512), self.max_queue)
        self.delay = _env_int(env, "OTEL_BSP_SCHEDULE_DELAY", 5000) / 1000
        self._send = _sender(exporter, encoder, sdk_resource, sdk_scope)
        self._queue: collections.deque[Any] = collections.deque()
        self._wake = threading.Event()
        self._export_lock = threading.Lock()  # one batch at a time (the thread, force_flush, shutdown)
        self._stopping = False
        self._warn_after = 0.0  # when a drop may be logged again
        self.simple = simple
        self._thread: threading.Thread | None = None
        if not simple:
            self._thread = threading.Thread(target=self._run, name="pyresgate-span-export", daemon=True)
            self._thread.start()

    # --- the event loop's side (the hot path) ---

    def add(self, span: Any) -> None:
        """Queue an ended, sampled span (a ``LeanSpan`` or an SDK ``ReadableSpan``); drop it if full."""
        if self.simple:
            with self._export_lock:
                self._send([span])
            return
        queue = self._queue
        if len(queue) >= self.max_queue:
            dropped[0] += 1
            now = time.monotonic()
            if now >= self._warn_after:  # (the SDK's words, at most once per 20 s)
                self._warn_after = now + 20
                log.warning("Queue full, dropping Span (%d dropped so far)", dropped[0])
            return
        queue.append(span)
        if len(queue) == self.batch:
            self._wake.set()

    # --- the SDK's SpanProcessor interface (spans made with the SDK's own tracer) ---

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        pass

    def _on_ending(self, span: Any) -> None:
        pass

    def on_end(self, span: Any) -> None:
        if span.context.trace_flags & SAMPLED:
            self.add(span)

    def shutdown(self) -> None:
        """Stop the thread and export what is queued, giving up after ``SHUTDOWN_SECONDS`` (a hung
        collector must not hold the process's exit for longer)."""
        deadline = time.monotonic() + SHUTDOWN_SECONDS
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(SHUTDOWN_SECONDS)
        if not self._drain(deadline):
            log.warning("Tracing shut down with %d spans not exported", len(self._queue))
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Export everything queued now, in the caller's thread; False if that took too long."""
        return self._drain(time.monotonic() + timeout_millis / 1000)

    # --- the export thread ---

    def _run(self) -> None:
        # Full batches as soon as there are any, the rest when the schedule delay has passed: a busy
        # gateway sends few large requests (the HTTP client's cost per request is high).
        full_only = False
        while not self._stopping:
            if len(self._queue) < self.batch:
                full_only = self._wake.wait(self.delay)
                self._wake.clear()
            try:
                self._drain(full_only=full_only)
            except Exception:  # never let one bad batch end the thread
                log.exception("Exporting spans failed")

    def _drain(self, deadline: float | None = None, full_only: bool = False) -> bool:
        queue = self._queue
        least = self.batch if full_only else 1
        wait = -1.0 if deadline is None else max(0.0, deadline - time.monotonic())
        if not self._export_lock.acquire(timeout=wait):
            return False  # the thread is still stuck in an export
        try:
            while len(queue) >= least:
                if deadline is not None and time.monotonic() > deadline:
                    return False
                popleft = queue.popleft
                n = min(len(queue), self.batch)
                self._send([popleft() for _ in range(n)])
        finally:
            self._export_lock.release()
        return True


# --- senders -----------------------------------------------------------------------------------------


def _sender(
    exporter: Any, encoder: OtlpTraceEncoder, resource: Any, scope: Any
) -> Callable[[list[Any]], None]:
    """The function that exports one batch to ``exporter`` (see the module docstring)."""
    convert = _readable_converter(resource, scope)

    def sdk(batch: list[Any]) -> None:
        exporter.export([convert(s) if type(s) is LeanSpan else s for s in batch])

    if not _otlp_encodable(exporter):
        return sdk
    post = _transport(exporter)

    def otlp(batch: list[Any]) -> None:
        lean = [s for s in batch if type(s) is LeanSpan]
        if len(lean) < len(batch):  # spans made with the SDK's tracer: the exporter encodes them
            exporter.export([s for s in batch if type(s) is not LeanSpan])
        if lean:
            post(encoder.encode(lean), len(lean))

    return otlp


def _otlp_encodable(exporter: Any) -> bool:
    """Whether ``exporter`` is an OTLP exporter whose transport takes bytes this module writes."""
    if _is_lean_grpc(exporter):
        return True
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError:
        return False
    client = getattr(exporter, "_client", None)
    return type(exporter) is OTLPSpanExporter and callable(getattr(client, "export", None))


def _transport(exporter: Any) -> Callable[[bytes, int], None]:
    if _is_lean_grpc(exporter):

        def grpc(data: bytes, count: int) -> None:
            exporter._export(EncodedBatch(data, count))

        return grpc

    def http(data: bytes, count: int) -> None:
        if exporter._shutdown:
            return
        limit = getattr(exporter, "_max_request_size", 0)
        if limit and len(data) > limit:
            log.warning(
                "Dropping %d spans: the request (%d bytes) exceeds the exporter's limit", count, len(data)
            )
            return
        exporter._client.export(data)  # logs its own failures (and retries what can be retried)

    return http


class EncodedBatch:
    """Spans already encoded as an ExportTraceServiceRequest, for ``grpc_exporter_class``."""

    __slots__ = ("count", "data")

    def __init__(self, data: bytes, count: int) -> None:
        self.data = data
        self.count = count


_grpc_class: list[type] = []


def _is_lean_grpc(exporter: Any) -> bool:
    return bool(_grpc_class) and isinstance(exporter, _grpc_class[0])


def grpc_exporter_class() -> type:
    """The OTLP/gRPC span exporter, able to send ``EncodedBatch`` as well as SDK spans (its channel,
    metadata, timeout and retry loop are the SDK's; only the request is ours)."""
    if _grpc_class:
        return _grpc_class[0]
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    class LeanGrpcSpanExporter(OTLPSpanExporter):
        def _translate_data(self, data: Any) -> Any:
            if type(data) is EncodedBatch:
                return ExportTraceServiceRequest.FromString(data.data)
            return super()._translate_data(data)

        def _count_data(self, data: Any) -> int:
            if type(data) is EncodedBatch:
                return data.count
            return int(super()._count_data(data))

    _grpc_class.append(LeanGrpcSpanExporter)
    return LeanGrpcSpanExporter


# --- SDK spans for other exporters ------------------------------------------------------------------------


def _readable_converter(resource: Any, scope: Any) -> Callable[[LeanSpan], Any]:
    """A function making the SDK's ``ReadableSpan`` of a lean span (for exporters that take those)."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import Event, ReadableSpan

    kinds = {
        1: trace.SpanKind.INTERNAL,
        2: trace.SpanKind.SERVER,
        3: trace.SpanKind.CLIENT,
        4: trace.SpanKind.PRODUCER,
        5: trace.SpanKind.CONSUMER,
    }
    codes = {0: trace.StatusCode.UNSET, 1: trace.StatusCode.OK, 2: trace.StatusCode.ERROR}
    SpanContext, TraceFlags, Status = trace.SpanContext, trace.TraceFlags, trace.Status

    def convert(s: LeanSpan) -> Any:
        flags = TraceFlags(s.flags)
        parent = None
        if s.parent_id:
            parent = SpanContext(
                s.trace_id,
                s.parent_id,
                is_remote=s.remote_parent,
                trace_flags=flags,
                trace_state=s.trace_state,
            )
        events: Sequence[Any] = ()
        if s.events:
            events = tuple(Event(name, attrs, timestamp=t) for name, t, attrs in s.events)
        status = Status(codes[s.status], s.status_message if s.status else None)
        return ReadableSpan(
            name=s.name,
            context=SpanContext(
                s.trace_id, s.span_id, is_remote=False, trace_flags=flags, trace_state=s.trace_state
            ),
            parent=parent,
            resource=resource,
            attributes=s.attributes or {},
            events=events,
            kind=kinds[s.kind],
            status=status,
            start_time=s.start_ns,
            end_time=s.end_ns,
            instrumentation_scope=scope,
        )

    return convert
