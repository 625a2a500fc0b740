#!/usr/bin/env python3
"""What each step of the lean tracing path saves, in-process (docs/tracing-overhead.md).

    python bench/tracing_steps.py [--spans 20000] [--runs 7]

Times, per span and in this process's CPU time, the alternatives at each step a recorded span goes
through, alternating them run by run (a shared machine hits both alike) and printing medians and
ranges:

1. start and end: an OpenTelemetry SDK span (``Tracer.start_span`` + ``end``, through a span
   processor that only collects it) against a ``LeanSpan`` (``tracing._start`` + ``end``, queued);
2. OTLP encoding of a batch of 512: the SDK's encoder (``ReadableSpan`` objects to
   ``ExportTraceServiceRequest``, serialised) against ``OtlpTraceEncoder.encode`` on lean spans;
3. a sampled-out root and the trace headers of its NATS request: the SDK's path (sampler, non-recording
   span, W3C propagator) against the hooks' inline decision and formatted ``traceparent``.

The spans look like a B3 call's: ``RES call`` with four attributes, ``NATS call.<rid>.method`` with
three. Nothing is exported; no network.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

from opentelemetry import trace as otel_trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import TracerProvider, sampling
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from gateway.telemetry import leanspan, tracing
from gateway.telemetry.otlpencode import OtlpTraceEncoder

RES_ATTRIBUTES = {
    "res.action": "call",
    "res.method": "call.test.model.method",
    "res.cid": "c8rnbbp0ms6pr5vtdr10",
    "res.rid": "test.model",
}
NATS_ATTRIBUTES = {
    "messaging.system": "nats",
    "messaging.operation.type": "send",
    "messaging.destination.name": "call.test.model.method",
}


class _Collect:
    """A span processor (SDK) / exporter that keeps what it gets."""

    def __init__(self) -> None:
        self.spans: list[Any] = []

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        pass

    def _on_ending(self, span: Any) -> None:
        pass

    def on_end(self, span: Any) -> None:
        self.spans.append(span)

    def export(self, spans: Any) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 0) -> bool:
        return True


def _cpu_per(n: int, fn: Callable[[], None]) -> float:
    started = time.process_time()
    fn()
    return (time.process_time() - started) / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spans", type=int, default=20000)
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    n = args.spans

    sdk_collect = _Collect()
    provider = TracerProvider(sampler=sampling.ALWAYS_ON)
    provider.add_span_processor(sdk_collect)  # type: ignore[arg-type]
    sdk = provider.get_tracer("pyresgate", "bench")
    tracing.setup(exporter=_Collect(), simple=True, sampler=sampling.ALWAYS_ON)
    lean: list[leanspan.LeanSpan] = []
    leanspan.on_end = lean.append

    def sdk_spans() -> None:
        sdk_collect.spans.clear()
        for _ in range(n // 2):
            parent = sdk.start_span("RES call", kind=otel_trace.SpanKind.SERVER, attributes=RES_ATTRIBUTES)
            ctx = otel_trace.set_span_in_context(parent)
            child = sdk.start_span(
                "NATS call.test.model.method",
                ctx,
                kind=otel_trace.SpanKind.CLIENT,
                attributes=NATS_ATTRIBUTES,
            )
            child.end()
            parent.end()

    def lean_spans() -> None:
        lean.clear()
        for _ in range(n // 2):
            parent = tracing._begin("RES call", tracing._SERVER, None)
            parent.attributes = dict(RES_ATTRIBUTES)  # type: ignore[union-attr]
            child = tracing._begin("NATS call.test.model.method", tracing._CLIENT, parent)
            child.attributes = dict(NATS_ATTRIBUTES)  # type: ignore[union-attr]
            child.end()  # type: ignore[union-attr]
            parent.end()  # type: ignore[union-attr]

    from opentelemetry.sdk.resources import Resource

    resource = Resource.create({"service.name": "pyresgate-bench"})
    encoder = OtlpTraceEncoder(resource.attributes, resource.schema_url, "pyresgate", "bench")

    def sdk_encode() -> None:
        spans = sdk_collect.spans
        for i in range(0, len(spans), 512):
            encode_spans(spans[i : i + 512]).SerializePartialToString()

    def lean_encode() -> None:
        for i in range(0, len(lean), 512):
            encoder.encode(lean[i : i + 512])

    propagator = TraceContextTextMapPropagator()
    off = TracerProvider(sampler=sampling.ParentBasedTraceIdRatio(0.0)).get_tracer("pyresgate", "bench")

    def sdk_dropped() -> None:
        for _ in range(n):
            span = off.start_span("RES call", kind=otel_trace.SpanKind.SERVER)
            headers: dict[str, str] = {}
            propagator.inject(headers, context=otel_trace.set_span_in_context(span))

    def lean_dropped() -> None:
        bound = 0
        for _ in range(n):
            bits = tracing._getrandbits(192)
            if ((bits >> 64) & tracing._MASK64) >= bound:
                span = leanspan.Dropped((bits >> 64) or 1, (bits & tracing._MASK64) or 1, 2)
                tracing._headers_of(span, None)

    steps = [
        ("start + end a span", sdk_spans, lean_spans),
        ("OTLP-encode a span (batches of 512)", sdk_encode, lean_encode),
        ("sampled-out root + its traceparent", sdk_dropped, lean_dropped),
    ]
    print(f"{n} spans per run, {args.runs} runs, CPU µs per span: median (min .. max)")
    for label, old, new in steps:
        old_t: list[float] = []
        new_t: list[float] = []
        for _ in range(args.runs):
            old_t.append(_cpu_per(n, old))
            new_t.append(_cpu_per(n, new))
        o, w = statistics.median(old_t), statistics.median(new_t)
        print(
            f"{label:40s} SDK {o:6.2f} ({min(old_t):.2f} .. {max(old_t):.2f})"
            f"   lean {w:6.2f} ({min(new_t):.2f} .. {max(new_t):.2f})   saves {o - w:5.2f} ({(1 - w / o) * 100:.0f} %)"
        )
    tracing.shutdown()


if __name__ == "__main__":
    main()
