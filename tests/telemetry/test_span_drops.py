"""A full trace export queue drops spans instead of slowing the gateway, and counts them.

The exporter here blocks (a collector that stopped answering), so the SDK's batch processor fills its
queue (OTEL_BSP_MAX_QUEUE_SIZE) and drops what comes after; ``tracing.spans_dropped()`` and the
``pyresgate_tracing_spans_dropped_total`` series on /metrics say how many.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk.trace")

from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from gateway.telemetry import tracing
from gateway.telemetry.metrics import Metrics

QUEUE = 8
BATCH = 2
SPANS = 200


class _StuckExporter(SpanExporter):
    """An exporter whose collector hangs until ``release`` is set."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.exported = 0

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        self.release.wait(10)
        self.exported += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.release.set()


class _Cache:
    """What Metrics reads of the resource cache."""

    def sizes(self) -> tuple[int, int]:
        return 0, 0


@pytest.fixture
def stuck(monkeypatch: pytest.MonkeyPatch) -> Iterator[_StuckExporter]:
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", str(QUEUE))
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", str(BATCH))
    exporter = _StuckExporter()
    yield exporter
    exporter.release.set()
    tracing.shutdown()


def _dropped_on_metrics() -> float:
    text = Metrics(_Cache()).exposition().decode()  # type: ignore[arg-type]
    for family in text_string_to_metric_families(text):
        if family.name == "pyresgate_tracing_spans_dropped":
            return float(family.samples[0].value)
    raise AssertionError("pyresgate_tracing_spans_dropped missing from /metrics")


def test_full_export_queue_drops_spans_without_blocking_and_counts_them(stuck: _StuckExporter) -> None:
    tracing.setup(exporter=stuck, sampler=ALWAYS_ON)
    assert tracing._tracer is not None
    before, before_metric = tracing.spans_dropped(), _dropped_on_metrics()
    started = time.monotonic()
    for i in range(SPANS):
        tracing._tracer.start_span(f"span {i}").end()
    elapsed = time.monotonic() - started
    dropped = tracing.spans_dropped() - before
    # The queue holds QUEUE spans and the stuck export at most BATCH more; every other span is dropped.
    assert SPANS - QUEUE - BATCH <= dropped <= SPANS - QUEUE
    assert _dropped_on_metrics() - before_metric == dropped
    assert elapsed < 2.0, f"ending {SPANS} spans took {elapsed:.2f} s with the exporter stuck"
    stuck.release.set()


def test_spans_not_sampled_are_not_counted_as_dropped(stuck: _StuckExporter) -> None:
    tracing.setup(exporter=stuck, sampler=ALWAYS_OFF)
    assert tracing._tracer is not None
    before = tracing.spans_dropped()
    for i in range(SPANS):
        tracing._tracer.start_span(f"span {i}").end()
    assert tracing.spans_dropped() == before


def test_shutdown_gives_up_on_a_hung_collector(
    stuck: _StuckExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shutting down (the gateway's exit) waits for a hung export only ``SHUTDOWN_SECONDS``."""
    from gateway.telemetry import spanexport

    monkeypatch.setattr(spanexport, "SHUTDOWN_SECONDS", 0.5)
    tracing.setup(exporter=stuck, sampler=ALWAYS_ON)
    for i in range(SPANS):
        done, _ = tracing.nats_request(f"get.test.{i}", lambda data, err: None, None)  # lean spans
        done(b"{}", None)
    started = time.monotonic()
    tracing.shutdown()
    assert time.monotonic() - started < 3.0  # the stuck export holds 10 s
    assert not tracing.enabled
