"""Lean spans (gateway.telemetry.leanspan) and their OTLP encoding match what the OpenTelemetry SDK makes.

* Sampling: for every sampler the gateway recognises, and for one it does not, the span the hooks
  start (``tracing._start``) is recorded or not, and gets the trace id, flags and ``tracestate``,
  exactly as the SDK's own tracer decides for the same trace id and parent.
* Encoding: a real gateway handles WebSocket subscribes and calls (one answered with an error, one
  timing out), service events and an HTTP GET with tracing exporting over OTLP/HTTP to an in-process
  collector (aiohttp, the requests decoded with opentelemetry-proto's classes) and, in the same run,
  to the SDK's in-memory exporter. The spans the collector received, written by
  ``gateway.telemetry.otlpencode``, are the protobuf messages the SDK's own OTLP encoder produces for
  those same spans: same names, ids, parent links, attributes, kinds, status, times and flags, under
  the same resource and scope.
* Export never waits in the event loop: with a collector that accepts connections and never answers,
  ending spans stays fast, and what does not fit the queue is dropped and counted.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

pytest.importorskip("opentelemetry.sdk.trace")
pytest.importorskip("opentelemetry.exporter.otlp.proto.http.trace_exporter")

from opentelemetry import trace as otel_trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.trace.v1 import trace_pb2
from opentelemetry.sdk.trace import TracerProvider, sampling
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from gateway.telemetry import leanspan, tracing
from tests.conftest import GatewayFactory
from tests.support.fakeservice import FakeService
from tests.support.fixtures import get_reply
from tests.support.macros import connect, subscribe
from tests.support.natsserver import free_port
from tests.telemetry.grpccollector import grpc_collector
from tests.telemetry.test_tracing import PARENT_ID, TRACE_ID, TRACESTATE, otel_env

__all__ = ["otel_env"]  # a fixture used here


class _NameSampler(sampling.Sampler):
    """A sampler the gateway does not know: drops ``NATS get.*`` spans, marks the others."""

    def should_sample(
        self,
        parent_context: Any,
        trace_id: int,
        name: str,
        kind: Any = None,
        attributes: Any = None,
        links: Any = None,
        trace_state: Any = None,
    ) -> sampling.SamplingResult:
        parent = otel_trace.get_current_span(parent_context).get_span_context()
        state = parent.trace_state if parent.is_valid else None
        if name.startswith("NATS get."):
            return sampling.SamplingResult(sampling.Decision.DROP, None, state)
        marked = {**(attributes or {}), "sampled.by": "name"}
        return sampling.SamplingResult(sampling.Decision.RECORD_AND_SAMPLE, marked, state)

    def get_description(self) -> str:
        return "NameSampler"


SAMPLERS: dict[str, Any] = {
    "always_on": sampling.ALWAYS_ON,
    "always_off": sampling.ALWAYS_OFF,
    "traceidratio": sampling.TraceIdRatioBased(0.5),
    "parentbased_always_on": sampling.DEFAULT_ON,
    "parentbased_always_off": sampling.DEFAULT_OFF,
    "parentbased_traceidratio": sampling.ParentBasedTraceIdRatio(0.5),
    "custom": _NameSampler(),
}


# --- sampling decisions --------------------------------------------------------------------------------


class _FixedIds(IdGenerator):
    """Gives the SDK's tracer the trace id our span got (and any span id)."""

    def __init__(self) -> None:
        self.trace_id = 0

    def generate_trace_id(self) -> int:
        return self.trace_id

    def generate_span_id(self) -> int:
        return 0x1234

    def is_trace_id_random(self) -> bool:
        return True


def _remote_context(flags: str, state: str | None) -> Any:
    headers = {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-{flags}"}
    if state:
        headers["tracestate"] = state
    return TraceContextTextMapPropagator().extract(headers)


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_sampling_decisions_are_the_sdks(name: str, otel_env: pytest.MonkeyPatch) -> None:
    sampler = SAMPLERS[name]
    tracing.setup(exporter=InMemorySpanExporter(), simple=True, sampler=sampler)
    ids = _FixedIds()
    sdk = TracerProvider(sampler=sampler, id_generator=ids).get_tracer("reference")
    parents: list[Any] = [
        None,
        _remote_context("01", None),
        _remote_context("00", None),
        _remote_context("01", TRACESTATE),
        _remote_context("00", TRACESTATE),
        _remote_context("03", None),  # sampled, random trace id
    ]
    outcomes = set()
    for i in range(300):
        parent = parents[i % len(parents)]
        for span_name in ("RES call", "NATS get.test.model"):
            ours = tracing._start(span_name, tracing._SERVER, parent, {"res.action": "call"})
            ctx = ours.get_span_context()
            ids.trace_id = ctx.trace_id
            reference = sdk.start_span(
                span_name, context=parent, kind=otel_trace.SpanKind.SERVER, attributes={"res.action": "call"}
            )
            ref = reference.get_span_context()
            assert ours.is_recording() == reference.is_recording(), (name, span_name, parent)
            assert (ctx.trace_id, int(ctx.trace_flags)) == (ref.trace_id, int(ref.trace_flags))
            assert ctx.trace_state == ref.trace_state
            if ours.is_recording():
                assert isinstance(ours, leanspan.LeanSpan)
                assert ours.attributes == dict(reference.attributes)  # type: ignore[attr-defined]
                assert ours.parent_id == (reference.parent.span_id if reference.parent else 0)  # type: ignore[attr-defined]
            # A child of ours: decided as the SDK decides for a child of the same (local) parent.
            child = tracing._start("NATS call.x", tracing._CLIENT, ours, None)
            ref_child = sdk.start_span(
                "NATS call.x",
                context=otel_trace.set_span_in_context(otel_trace.NonRecordingSpan(ctx)),
                kind=otel_trace.SpanKind.CLIENT,
            )
            assert child.is_recording() == ref_child.is_recording()
            assert int(child.get_span_context().trace_flags) == int(ref_child.get_span_context().trace_flags)
            outcomes.add(ours.is_recording())
    if "ratio" in name:
        assert outcomes == {True, False}  # both decisions were compared


# --- encoding, over a real OTLP/HTTP connection ------------------------------------------------------------------


class _Collector:
    """An in-process OTLP/HTTP collector keeping every request it received, decoded."""

    def __init__(self) -> None:
        self.requests: list[trace_service_pb2.ExportTraceServiceRequest] = []
        self.content_types: set[str] = set()
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> _Collector:
        async def traces(request: web.Request) -> web.Response:
            self.content_types.add(request.content_type)
            self.requests.append(trace_service_pb2.ExportTraceServiceRequest.FromString(await request.read()))
            body = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
            return web.Response(body=body, content_type="application/x-protobuf")

        app = web.Application()
        app.router.add_post("/v1/traces", traces)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        self.port = free_port()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return self

    def spans(self) -> dict[bytes, tuple[Any, Any, trace_pb2.Span]]:
        """Every received span by span id, with its resource and scope."""
        out = {}
        for req in self.requests:
            for rs in req.resource_spans:
                for ss in rs.scope_spans:
                    for span in ss.spans:
                        assert span.span_id not in out, "span exported twice"
                        out[span.span_id] = (rs.resource, ss.scope, span)
        return out


@pytest.fixture
async def collector(otel_env: pytest.MonkeyPatch) -> AsyncIterator[_Collector]:
    c = await _Collector().start()
    otel_env.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    otel_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{c.port}")
    otel_env.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test,region.id=7")
    try:
        yield c
    finally:
        await asyncio.to_thread(tracing.shutdown)
        assert c.runner is not None
        await c.runner.cleanup()


async def _traffic(gw: Any, service: FakeService, traceparent: str | None) -> None:
    """Subscribes, calls (ok, error, timeout), events and an HTTP GET."""
    headers = {"traceparent": traceparent, "tracestate": TRACESTATE} if traceparent else None
    client = await connect(gw, headers=headers)
    await subscribe(client, service, "test.model")
    pending = await client.send("subscribe.test.model.parent")
    reqs = await service.requests(2)
    await reqs.get("access.test.model.parent").ok({"get": True, "call": "*"})
    await reqs.get("get.test.model.parent").json(get_reply("test.model.parent"))
    await pending.response()
    pending = await client.send("call.test.model.parent.method", {"value": 1})
    await (await service.expect_request("call.test.model.parent.method")).ok({"x": 1})
    await pending.response()
    pending = await client.send("call.test.model.parent.fail")
    await (await service.expect_request("call.test.model.parent.fail")).error(
        {"code": "system.invalidParams", "message": "Invalid parameters"}
    )
    await pending.response()
    pending = await client.send("auth.test.slow.login")
    await service.expect_request("auth.test.slow.login")  # left unanswered: times out
    await pending.response(timeout=2)
    await service.event("test.model", "change", {"values": {"string": "bar"}})
    await client.expect_event("test.model.change")
    async with aiohttp.ClientSession() as session:
        get = asyncio.ensure_future(session.get(f"{gw.http_url}/api/test/model/soft"))
        reqs = await service.requests(2)
        await reqs.get("access.test.model.soft").ok({"get": True})
        await reqs.get("get.test.model.soft").json(get_reply("test.model.soft"))
        async with await get as resp:
            assert resp.status == 200


@pytest.mark.parametrize(
    ("name", "traceparent"),
    [
        ("always_on", None),
        ("parentbased_always_on", f"00-{TRACE_ID}-{PARENT_ID}-01"),
        ("parentbased_traceidratio", None),
        ("traceidratio", None),
        ("custom", None),
    ],
)
async def test_spans_over_otlp_http_decode_to_what_the_sdk_encodes(
    name: str,
    traceparent: str | None,
    gateway_factory: GatewayFactory,
    service: FakeService,
    collector: _Collector,
) -> None:
    memory = InMemorySpanExporter()
    # (ratio 0.8: some traces left out, and some kept whatever the random ids)
    sampler = {
        "traceidratio": sampling.TraceIdRatioBased(0.8),
        "parentbased_traceidratio": sampling.ParentBasedTraceIdRatio(0.8),
    }.get(name, SAMPLERS[name])
    tracing.setup(exporters=[tracing._otlp_exporter(os.environ), memory], sampler=sampler)
    gw = await gateway_factory()
    await _traffic(gw, service, traceparent)
    assert await asyncio.to_thread(tracing.force_flush, 5000)

    finished = memory.get_finished_spans()
    received = collector.spans()
    assert collector.content_types == {"application/x-protobuf"}
    reference = encode_spans(finished)
    [ref_rs] = reference.resource_spans
    [ref_ss] = ref_rs.scope_spans
    assert {s.span_id for s in ref_ss.spans} == set(received)
    for ref_span in ref_ss.spans:
        resource, scope, span = received[ref_span.span_id]
        assert span == ref_span, f"{span}\n!=\n{ref_span}"
        assert resource == ref_rs.resource and scope == ref_ss.scope
    attributes = {kv.key: kv.value.string_value for kv in ref_rs.resource.attributes}
    assert attributes["service.name"] == "pyresgate-test" and attributes["region.id"] == "7"
    assert ref_ss.scope.name == "pyresgate"

    by_name: dict[str, list[trace_pb2.Span]] = {}
    for span in ref_ss.spans:
        by_name.setdefault(span.name, []).append(span)
    ids = {s.span_id for s in ref_ss.spans}
    if name in ("always_on", "parentbased_always_on"):
        assert {"RES subscribe", "RES call", "RES auth", "HTTP GET", "event test.model.change"} <= set(
            by_name
        )
        timed_out = by_name["NATS auth.test.slow.login"][0]
        assert timed_out.status.code == trace_pb2.Status.STATUS_CODE_ERROR
        assert timed_out.status.message
        assert any(kv.key == "res.error.code" for kv in timed_out.attributes)
    if traceparent:  # every request span continues the client's trace
        for span in by_name["RES subscribe"]:
            assert (span.trace_id.hex(), span.parent_span_id.hex()) == (TRACE_ID, PARENT_ID)
            assert span.trace_state == TRACESTATE
            assert span.flags & 0x200  # the parent is remote
    if name != "custom":  # the SDK's samplers keep or drop whole traces
        for span in ref_ss.spans:
            assert not span.parent_span_id or span.parent_span_id in ids or span.flags & 0x200
    else:
        assert not any(n.startswith("NATS get.") for n in by_name)
        assert all(any(kv.key == "sampled.by" for kv in s.attributes) for s in ref_ss.spans)
    if name == "always_on":
        assert len(finished) >= 15
    else:
        assert finished or name != "parentbased_always_on"


# --- a collector that never answers ---------------------------------------------------------------------


@pytest.fixture
def silent_collector(otel_env: pytest.MonkeyPatch) -> Iterator[int]:
    """A TCP port that accepts connections and never answers (a hung collector)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    port = server.getsockname()[1]
    otel_env.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    otel_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
    otel_env.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
    otel_env.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "8")
    otel_env.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "2")
    otel_env.setenv("OTEL_BSP_SCHEDULE_DELAY", "10")
    try:
        yield port
    finally:
        tracing.shutdown()
        stop.set()
        thread.join(5)
        for conn in accepted:
            conn.close()
        server.close()


def test_a_hung_collector_never_slows_span_ends(silent_collector: int) -> None:
    tracing.setup(exporter=tracing._otlp_exporter(os.environ), sampler=sampling.ALWAYS_ON)
    before = tracing.spans_dropped()
    n = 2000
    started = time.monotonic()
    for i in range(n):
        done, headers = tracing.nats_request(f"get.test.{i}", lambda data, err: None, None)
        assert headers["traceparent"].endswith("-03")
        done(b"{}", None)
    elapsed = time.monotonic() - started
    dropped = tracing.spans_dropped() - before
    assert elapsed < 2.0, f"ending {n} spans took {elapsed:.2f} s with the collector hung"
    # The queue holds 8 spans and the stuck export 2 more; every other span is dropped and counted.
    assert n - 8 - 2 <= dropped <= n - 8


async def test_spans_over_otlp_grpc_decode_to_what_the_sdk_encodes(
    gateway_factory: GatewayFactory, service: FakeService, otel_env: pytest.MonkeyPatch
) -> None:
    """The same bytes over OTLP/gRPC (the SDK exporter's channel and retry loop) to a real gRPC server."""
    with grpc_collector(otel_env) as received:
        try:
            memory = InMemorySpanExporter()
            tracing.setup(exporters=[tracing._otlp_exporter(os.environ), memory], sampler=sampling.ALWAYS_ON)
            gw = await gateway_factory()
            client = await connect(gw, headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"})
            await subscribe(client, service, "test.model")
            assert await asyncio.to_thread(tracing.force_flush, 5000)
            got = {
                span.span_id: span
                for req in received
                for rs in req.resource_spans
                for ss in rs.scope_spans
                for span in ss.spans
            }
            [ref_rs] = encode_spans(memory.get_finished_spans()).resource_spans
            [ref_ss] = ref_rs.scope_spans
            assert len(ref_ss.spans) >= 4 and {s.span_id for s in ref_ss.spans} == set(got)
            for ref_span in ref_ss.spans:
                assert got[ref_span.span_id] == ref_span
        finally:
            await asyncio.to_thread(tracing.shutdown)
