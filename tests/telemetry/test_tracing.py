"""OpenTelemetry tracing (gateway.telemetry.tracing): spans from the client through NATS to a service.

The gateway runs in-process, so tracing is a process-wide switch: the ``otlp_http`` fixture starts an
in-process OTLP/HTTP receiver (aiohttp, protobuf decoded with opentelemetry-proto), points the
standard ``OTEL_*`` variables at it, calls ``tracing.configure()`` (the same path ``pyresgate`` takes
at start) and ``tracing.shutdown()`` at teardown, which switches tracing off again for later tests.
The exporter is synchronous and runs in the batch processor's thread; since the receiver lives on the
test's event loop, flushing is done off the loop (``await receiver.spans()``).

The fake service does not expose NATS headers, so ``HeaderRecorder`` listens on the same subjects
with its own connection (named as a harness connection, so the subscription checks ignore it).
"""

from __future__ import annotations

import asyncio
import os
import timeit
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import nats
import pytest
from aiohttp import web

pytest.importorskip("opentelemetry.sdk.trace")
pytest.importorskip("opentelemetry.exporter.otlp.proto.http.trace_exporter")

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from gateway.config import load_config
from gateway.telemetry import tracing
from tests.conftest import GatewayFactory
from tests.support.fakeservice import HARNESS_PREFIX, FakeService
from tests.support.fixtures import get_reply
from tests.support.macros import connect, subscribe
from tests.support.natsserver import NatsServer, free_port
from tests.telemetry.grpccollector import grpc_collector

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"
TRACESTATE = "vendor=opaque"
SERVER = trace_pb2.Span.SPAN_KIND_SERVER
CLIENT = trace_pb2.Span.SPAN_KIND_CLIENT
CONSUMER = trace_pb2.Span.SPAN_KIND_CONSUMER


# --- span collection ----------------------------------------------------------------------------------


class Span:
    """A received span, ids as hex."""

    def __init__(self, pb: trace_pb2.Span, service_name: str) -> None:
        self.name = pb.name
        self.kind = pb.kind
        self.trace_id = pb.trace_id.hex()
        self.span_id = pb.span_id.hex()
        self.parent_id = pb.parent_span_id.hex()
        self.start = pb.start_time_unix_nano
        self.end = pb.end_time_unix_nano
        self.status = pb.status.code
        self.service_name = service_name
        self.attributes: dict[str, Any] = {}
        for kv in pb.attributes:
            value = kv.value
            self.attributes[kv.key] = getattr(value, value.WhichOneof("value"))

    def __repr__(self) -> str:
        return f"Span({self.name!r}, {self.span_id}<-{self.parent_id or 'root'})"


def _service_name(resource: Any) -> str:
    for kv in resource.attributes:
        if kv.key == "service.name":
            return str(kv.value.string_value)
    return ""


def _collect(request: trace_service_pb2.ExportTraceServiceRequest, into: list[Span]) -> None:
    for rs in request.resource_spans:
        name = _service_name(rs.resource)
        for ss in rs.scope_spans:
            into.extend(Span(s, name) for s in ss.spans)


class Receiver:
    """Spans an in-process collector received."""

    def __init__(self) -> None:
        self.received: list[Span] = []
        self.content_types: set[str] = set()

    async def spans(self) -> list[Span]:
        """Flush the gateway's spans (off the loop: the exporter posts back to this loop) and return all."""
        assert await asyncio.to_thread(tracing.force_flush, 5000)
        return list(self.received)

    @staticmethod
    def one(spans: list[Span], name: str) -> Span:
        found = [s for s in spans if s.name == name]
        assert len(found) == 1, f"expected one span {name!r}, got {found} among {spans}"
        return found[0]


async def _otlp_http_server(receiver: Receiver) -> tuple[web.AppRunner, int]:
    async def traces(request: web.Request) -> web.Response:
        receiver.content_types.add(request.content_type)
        req = trace_service_pb2.ExportTraceServiceRequest()
        req.ParseFromString(await request.read())
        _collect(req, receiver.received)
        body = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
        return web.Response(body=body, content_type="application/x-protobuf")

    app = web.Application()
    app.router.add_post("/v1/traces", traces)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, port


@pytest.fixture
def otel_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """A clean OTEL_* environment; tracing is switched off again at the end."""
    for key in list(os.environ):
        if key.startswith("OTEL_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "pyresgate-test")
    try:
        yield monkeypatch
    finally:
        tracing.shutdown()


@pytest.fixture
async def otlp_http(otel_env: pytest.MonkeyPatch) -> AsyncIterator[Receiver]:
    """Tracing on, exporting OTLP over http/protobuf to an in-process receiver."""
    receiver = Receiver()
    runner, port = await _otlp_http_server(receiver)
    otel_env.setenv("OTEL_TRACES_EXPORTER", "otlp")
    otel_env.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    otel_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
    try:
        assert tracing.configure(None) is True
        yield receiver
    finally:
        await asyncio.to_thread(tracing.shutdown)
        await runner.cleanup()


# --- NATS headers as a service sees them ---------------------------------------------------------------


class HeaderRecorder:
    """Records the headers of every request the gateway sends (alongside the fake service)."""

    def __init__(self) -> None:
        self.nc: Any = None
        self.seen: list[tuple[str, dict[str, str] | None]] = []

    async def start(self, url: str) -> HeaderRecorder:
        self.nc = await nats.connect(url, name=f"{HARNESS_PREFIX}-trace-recorder", allow_reconnect=False)

        async def on_msg(msg: Any) -> None:
            self.seen.append((msg.subject, dict(msg.headers) if msg.headers else None))

        for subject in ("get.>", "access.>", "call.>", "auth.>"):
            await self.nc.subscribe(subject, cb=on_msg)
        await self.nc.flush()
        return self

    def headers(self, subject: str) -> list[dict[str, str] | None]:
        return [h for s, h in self.seen if s == subject]

    async def wait(self, n: int) -> None:
        for _ in range(100):
            if len(self.seen) >= n:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"expected {n} recorded requests, got {self.seen}")


@pytest.fixture
async def recorder(nats_server: NatsServer) -> AsyncIterator[HeaderRecorder]:
    rec = await HeaderRecorder().start(nats_server.url)
    try:
        yield rec
    finally:
        await rec.nc.close()


def _traceparent_ids(headers: dict[str, str] | None) -> tuple[str, str]:
    assert headers is not None and "traceparent" in headers, f"no traceparent in {headers}"
    version, trace_id, span_id, flags = headers["traceparent"].split("-")
    assert version == "00" and flags == "01"
    return trace_id, span_id


# --- tests ------------------------------------------------------------------------------------------------


async def _subscribe_callable(client: Any, svc: FakeService, rid: str) -> str:
    """SUB with call access for everything; returns the cid of the access request."""
    pending = await client.send(f"subscribe.{rid}")
    reqs = await svc.requests(2)
    access = reqs.get(f"access.{rid}")
    await access.ok({"get": True, "call": "*"})
    await reqs.get(f"get.{rid}").json(get_reply(rid))
    await pending.response()
    return str(access.path("cid"))


async def test_ws_request_to_service_trace(
    gateway_factory: GatewayFactory, service: FakeService, recorder: HeaderRecorder, otlp_http: Receiver
) -> None:
    """Upgrade traceparent → RES request spans → NATS client spans → traceparent the service reads."""
    gw = await gateway_factory()
    client = await connect(gw, headers={"traceparent": TRACEPARENT, "tracestate": TRACESTATE})
    cid = await _subscribe_callable(client, service, "test.model")
    pending = await client.send("call.test.model.method", {"value": 42})
    await (await service.expect_request("call.test.model.method")).ok({"foo": "bar"})
    await pending.response()
    await recorder.wait(3)

    spans = await otlp_http.spans()
    assert all(s.service_name == "pyresgate-test" for s in spans)
    sub = Receiver.one(spans, "RES subscribe")
    assert sub.kind == SERVER
    assert (sub.trace_id, sub.parent_id) == (TRACE_ID, PARENT_ID)  # child of the upgrade's context
    assert sub.attributes["res.rid"] == "test.model"
    assert sub.attributes["res.method"] == "subscribe.test.model"
    assert sub.attributes["res.cid"] == cid
    assert sub.attributes["res.action"] == "subscribe"

    for subject in ("access.test.model", "get.test.model"):
        span = Receiver.one(spans, "NATS " + subject)
        assert span.kind == CLIENT
        assert (span.trace_id, span.parent_id) == (TRACE_ID, sub.span_id)
        assert span.attributes["messaging.destination.name"] == subject
        assert span.end <= sub.end  # the request span waits for the task that awaited the replies
        # The service can continue the trace: traceparent names the client span, tracestate is kept.
        [headers] = recorder.headers(subject)
        assert _traceparent_ids(headers) == (TRACE_ID, span.span_id)
        assert headers is not None and headers.get("tracestate") == TRACESTATE

    call = Receiver.one(spans, "RES call")
    assert (call.trace_id, call.parent_id) == (TRACE_ID, PARENT_ID)
    assert call.attributes["res.rid"] == "test.model"
    nats_call = Receiver.one(spans, "NATS call.test.model.method")
    assert nats_call.parent_id == call.span_id
    assert nats_call.end <= call.end
    [headers] = recorder.headers("call.test.model.method")
    assert _traceparent_ids(headers) == (TRACE_ID, nats_call.span_id)

    version = Receiver.one(spans, "RES version")  # synchronous request: ended by the handler
    assert version.parent_id == PARENT_ID and "res.rid" not in version.attributes


async def test_references_and_errors_stay_in_the_request_trace(
    gateway_factory: GatewayFactory, service: FakeService, otlp_http: Receiver
) -> None:
    """A reference get caused by a get reply is a child of the same request; NATS errors mark the span."""
    gw = await gateway_factory()
    client = await connect(gw)  # no traceparent: each request starts its own trace
    pending = await client.send("subscribe.test.model.parent")
    reqs = await service.requests(2)
    await reqs.get("access.test.model.parent").ok({"get": True, "call": "*"})
    await reqs.get("get.test.model.parent").json(get_reply("test.model.parent"))
    await (await service.expect_request("get.test.model")).json(get_reply("test.model"))
    await pending.response()
    pending = await client.send("call.test.model.parent.method")
    await (await service.expect_request("call.test.model.parent.method")).error(
        {"code": "system.invalidParams", "message": "Invalid parameters"}
    )
    await pending.response()
    pending = await client.send("auth.test.slow.login")
    await service.expect_request("auth.test.slow.login")  # left unanswered: times out
    await pending.response(timeout=2)

    spans = await otlp_http.spans()
    sub = Receiver.one(spans, "RES subscribe")
    assert sub.parent_id == ""
    child_get = Receiver.one(spans, "NATS get.test.model")
    assert (child_get.trace_id, child_get.parent_id) == (sub.trace_id, sub.span_id)
    call = Receiver.one(spans, "RES call")
    assert call.trace_id != sub.trace_id
    # A service error reply is a reply: the NATS span succeeded.
    assert (
        Receiver.one(spans, "NATS call.test.model.parent.method").status != trace_pb2.Status.STATUS_CODE_ERROR
    )
    timed_out = Receiver.one(spans, "NATS auth.test.slow.login")
    assert timed_out.status == trace_pb2.Status.STATUS_CODE_ERROR
    assert timed_out.attributes["res.error.code"] == "system.timeout"
    assert timed_out.parent_id == Receiver.one(spans, "RES auth").span_id


async def _get_model_over_http(
    gw: Any, service: FakeService, recorder: HeaderRecorder, traceparent: str
) -> None:
    """GET /api/test/model with ``traceparent``, answering its access and get requests."""
    async with aiohttp.ClientSession() as session:
        get = asyncio.ensure_future(
            session.get(f"{gw.http_url}/api/test/model", headers={"traceparent": traceparent})
        )
        reqs = await service.requests(2)
        await reqs.get("access.test.model").ok({"get": True})
        await reqs.get("get.test.model").json(get_reply("test.model"))
        async with await get as resp:
            assert resp.status == 200
    await recorder.wait(2)


async def test_http_request_honours_incoming_traceparent(
    gateway_factory: GatewayFactory, service: FakeService, recorder: HeaderRecorder, otlp_http: Receiver
) -> None:
    gw = await gateway_factory()
    await _get_model_over_http(gw, service, recorder, TRACEPARENT)

    spans = await otlp_http.spans()
    http = Receiver.one(spans, "HTTP GET")
    assert http.kind == SERVER
    assert (http.trace_id, http.parent_id) == (TRACE_ID, PARENT_ID)
    assert http.attributes["http.request.method"] == "GET"
    assert http.attributes["url.path"] == "/api/test/model"
    assert http.attributes["url.scheme"] == "http"
    assert http.attributes["http.response.status_code"] == 200
    assert gw.gateway._runner.server.fast_requests == 1  # answered by gateway.web.fasthttp
    for subject in ("access.test.model", "get.test.model"):
        span = Receiver.one(spans, "NATS " + subject)
        assert (span.trace_id, span.parent_id) == (TRACE_ID, http.span_id)
        [headers] = recorder.headers(subject)
        assert _traceparent_ids(headers) == (TRACE_ID, span.span_id)


async def test_event_span_counts_fan_out(
    gateway_factory: GatewayFactory, service: FakeService, otlp_http: Receiver
) -> None:
    gw = await gateway_factory()
    first = await connect(gw)
    second = await connect(gw)
    await subscribe(first, service, "test.model")
    pending = await second.send("subscribe.test.model")
    await (await service.expect_request("access.test.model")).ok({"get": True})
    await pending.response()
    await service.event("test.model", "change", {"values": {"string": "bar"}})
    await first.expect_event("test.model.change")
    await second.expect_event("test.model.change")
    await service.event("test.model", "custom", {"foo": "bar"})
    await first.expect_event("test.model.custom")
    await second.expect_event("test.model.custom")

    spans = await otlp_http.spans()
    change = Receiver.one(spans, "event test.model.change")
    assert change.kind == CONSUMER
    assert change.attributes["res.event.subscribers"] == 2
    assert change.attributes["messaging.destination.name"] == "event.test.model.change"
    assert Receiver.one(spans, "event test.model.custom").attributes["res.event.subscribers"] == 2


async def test_tracing_off_adds_no_headers(
    gateway_factory: GatewayFactory,
    service: FakeService,
    recorder: HeaderRecorder,
    otel_env: pytest.MonkeyPatch,
) -> None:
    assert tracing.configure(load_config([])) is False  # no OTEL_TRACES_EXPORTER, tracing setting off
    assert not tracing.enabled
    gw = await gateway_factory()
    client = await connect(gw)
    await _subscribe_callable(client, service, "test.model")
    pending = await client.send("call.test.model.method")
    await (await service.expect_request("call.test.model.method")).ok(None)
    await pending.response()
    await recorder.wait(3)
    assert sorted(s for s, _ in recorder.seen) == [
        "access.test.model",
        "call.test.model.method",
        "get.test.model",
    ]
    assert all(headers is None for _, headers in recorder.seen), recorder.seen
    assert gw.gateway.connections  # a live connection has no trace context
    assert all(conn.trace_parent is None for conn in gw.gateway.connections.values())


async def test_otlp_grpc_exporter(
    gateway_factory: GatewayFactory, service: FakeService, otel_env: pytest.MonkeyPatch
) -> None:
    """OTEL_EXPORTER_OTLP_PROTOCOL=grpc exports to a gRPC collector."""
    with grpc_collector(otel_env) as requests:
        try:
            # Switched on by the pyresgate setting alone (OTEL_TRACES_EXPORTER unset → otlp).
            assert tracing.configure(load_config(["--tracing"])) is True
            gw = await gateway_factory()
            client = await connect(gw)
            await subscribe(client, service, "test.model")
            assert await asyncio.to_thread(tracing.force_flush, 5000)
            received: list[Span] = []
            for request in requests:
                _collect(request, received)
            names = {s.name for s in received}
            assert {"RES version", "RES subscribe", "NATS access.test.model", "NATS get.test.model"} <= names
        finally:
            await asyncio.to_thread(tracing.shutdown)


def test_switches(monkeypatch: pytest.MonkeyPatch) -> None:
    """When tracing is on: OTEL_TRACES_EXPORTER other than none, or the ``tracing`` setting."""
    assert tracing.requested(None, {}) is False
    assert tracing.requested(None, {"OTEL_TRACES_EXPORTER": "none"}) is False
    assert tracing.requested(None, {"OTEL_TRACES_EXPORTER": "otlp"}) is True
    assert tracing.requested(None, {"OTEL_TRACES_EXPORTER": "console,otlp"}) is True
    assert load_config([], env={}).tracing is False
    assert load_config(["--tracing"], env={}).tracing is True
    assert load_config([], env={"RESGATE_TRACING": "true"}).tracing is True
    assert tracing.requested(load_config(["-tracing"], env={}), {}) is True
    assert tracing.otlp_protocol({}) == "http/protobuf"
    assert tracing.otlp_protocol({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}) == "grpc"
    assert (
        tracing.otlp_protocol(
            {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"}
        )
        == "http/protobuf"
    )


def test_off_path_costs_one_check() -> None:
    """With tracing off the hooks only read ``tracing.enabled`` (no spans, no context work)."""
    assert not tracing.enabled
    n = 10_000
    seconds = timeit.timeit(
        "if tracing.enabled: raise AssertionError", globals={"tracing": tracing}, number=n
    )
    assert seconds / n < 5e-6  # generous bound: a module attribute read and a branch


# --- sampling -------------------------------------------------------------------------------------------


def _sample_nothing(otel_env: pytest.MonkeyPatch) -> None:
    """Tracing on with head sampling that keeps no trace (ratio 0)."""
    _sample_ratio(otel_env, "parentbased_traceidratio", "0")


def _sample_ratio(otel_env: pytest.MonkeyPatch, sampler: str, ratio: str) -> None:
    """Tracing on with a ratio sampler (``traceidratio`` or ``parentbased_traceidratio``)."""
    tracing.shutdown()
    otel_env.setenv("OTEL_TRACES_SAMPLER", sampler)
    otel_env.setenv("OTEL_TRACES_SAMPLER_ARG", ratio)
    assert tracing.configure(None) is True


async def _subscribe_and_call(
    gw: Any, service: FakeService, recorder: HeaderRecorder, calls: int = 1
) -> None:
    """A client subscribes test.model (access, get) and calls a method on it ``calls`` times; returns
    once the recorder has seen every one of those NATS requests."""
    client = await connect(gw)
    await _subscribe_callable(client, service, "test.model")
    for i in range(calls):
        pending = await client.send("call.test.model.method", {"value": i})
        await (await service.expect_request("call.test.model.method")).ok(None)
        await pending.response()
    await recorder.wait(2 + calls)


def _flags(headers: dict[str, str] | None) -> tuple[str, str, int]:
    """(trace id, parent id, flags) of a ``traceparent``."""
    assert headers is not None and "traceparent" in headers, f"no traceparent in {headers}"
    version, trace_id, span_id, flags = headers["traceparent"].split("-")
    assert version == "00" and len(trace_id) == 32 and len(span_id) == 16
    return trace_id, span_id, int(flags, 16)


async def test_sampled_out_requests_still_propagate_the_trace(
    gateway_factory: GatewayFactory,
    service: FakeService,
    recorder: HeaderRecorder,
    otlp_http: Receiver,
    otel_env: pytest.MonkeyPatch,
) -> None:
    """Head sampling that keeps nothing: no span is exported, yet every NATS request carries
    ``traceparent`` with the sampled flag off, one trace id per client request."""
    _sample_nothing(otel_env)
    await _subscribe_and_call(await gateway_factory(), service, recorder)

    [access] = recorder.headers("access.test.model")
    [get] = recorder.headers("get.test.model")
    [call] = recorder.headers("call.test.model.method")
    for headers in (access, get, call):
        assert _flags(headers)[2] & 0x01 == 0  # not sampled
    assert _flags(access)[0] == _flags(get)[0]  # the subscribe's requests: one trace
    assert _flags(call)[0] != _flags(access)[0]  # the call: a trace of its own
    assert await otlp_http.spans() == []


async def test_a_sampled_out_reply_is_handled_in_its_trace(
    gateway_factory: GatewayFactory,
    service: FakeService,
    recorder: HeaderRecorder,
    otlp_http: Receiver,
    otel_env: pytest.MonkeyPatch,
) -> None:
    """Sampled out, a call's reply still runs in the call's trace (the NATS client hands it over with
    the trace's ids): the get of the resource the call returns carries the call's trace id."""
    _sample_nothing(otel_env)
    client = await connect(await gateway_factory())
    await _subscribe_callable(client, service, "test.model")
    pending = await client.send("call.test.model.method")
    await (await service.expect_request("call.test.model.method")).resource("test.model.data")
    await (await service.expect_request("get.test.model.data")).json(get_reply("test.model.data"))
    await pending.response()
    await recorder.wait(4)

    [call] = recorder.headers("call.test.model.method")
    [get] = recorder.headers("get.test.model.data")
    assert _flags(get)[0] == _flags(call)[0]
    assert _flags(get)[2] & 0x01 == 0
    assert await otlp_http.spans() == []


async def test_ratio_sampled_trace_ids_agree_with_downstream_ratio_samplers(
    gateway_factory: GatewayFactory,
    service: FakeService,
    recorder: HeaderRecorder,
    otlp_http: Receiver,
    otel_env: pytest.MonkeyPatch,
) -> None:
    """With ``traceidratio`` head sampling the gateway decides on the trace id it sends: a service
    sampling by the same ratio from that id (the SDK's TraceIdRatioBased) keeps exactly the calls the
    gateway kept, sampled or not (the sampled-out fast path lays the ids out itself)."""
    from opentelemetry.sdk.trace import sampling

    _sample_ratio(otel_env, "traceidratio", "0.5")
    calls = 40
    await _subscribe_and_call(await gateway_factory(), service, recorder, calls)

    downstream = sampling.TraceIdRatioBased(0.5)
    kept = 0
    for headers in recorder.headers("call.test.model.method"):
        trace_id, _, flags = _flags(headers)
        decision = downstream.should_sample(None, int(trace_id, 16), "call").decision
        assert decision.is_sampled() == bool(flags & 0x01), headers
        kept += flags & 0x01
    assert 0 < kept < calls  # both paths ran (a chance of 2 in 10^12 to fail)


@pytest.mark.parametrize("sampler", ["traceidratio", "parentbased_traceidratio"])
async def test_ratio_sampling_records_the_configured_share_of_requests(
    sampler: str,
    gateway_factory: GatewayFactory,
    service: FakeService,
    recorder: HeaderRecorder,
    otlp_http: Receiver,
    otel_env: pytest.MonkeyPatch,
) -> None:
    """A ratio of 0.5 records half the WebSocket requests, not a quarter: the root decision is taken
    once, on the ids the request then carries (an earlier fast path drew them twice, which recorded
    ratio² of them), and every recorded call's NATS request says "sampled"."""
    _sample_ratio(otel_env, sampler, "0.5")
    calls = 200
    await _subscribe_and_call(await gateway_factory(), service, recorder, calls)

    sampled = [_flags(h) for h in recorder.headers("call.test.model.method") if _flags(h)[2] & 0x01]
    # binomial(200, 0.5): 100 ± 7; 70..130 fails once in 30,000 runs (ratio² would give 50 ± 6)
    assert 70 <= len(sampled) <= 130, len(sampled)
    recorded = [s for s in await otlp_http.spans() if s.name == "RES call"]
    assert sorted(s.trace_id for s in recorded) == sorted(trace_id for trace_id, _, _ in sampled)


@pytest.mark.parametrize("ratio", ["0", "1"])
async def test_no_propagator_means_no_trace_headers(
    ratio: str,
    gateway_factory: GatewayFactory,
    service: FakeService,
    recorder: HeaderRecorder,
    otlp_http: Receiver,
    otel_env: pytest.MonkeyPatch,
) -> None:
    """``OTEL_PROPAGATORS=none`` (a propagator that writes nothing): NATS requests carry no headers,
    whether the request was sampled out (ratio 0) or recorded (ratio 1)."""
    from opentelemetry import propagate
    from opentelemetry.propagators.composite import CompositePropagator

    before = propagate.get_global_textmap()
    propagate.set_global_textmap(CompositePropagator([]))  # what OTEL_PROPAGATORS=none makes
    try:
        _sample_ratio(otel_env, "parentbased_traceidratio", ratio)
        await _subscribe_and_call(await gateway_factory(), service, recorder)
    finally:
        propagate.set_global_textmap(before)
    for subject in ("access.test.model", "get.test.model", "call.test.model.method"):
        assert recorder.headers(subject) == [None], subject
    if ratio == "1":
        assert await otlp_http.spans(), "the requests were recorded all the same"


async def test_unsampled_upgrade_context_is_honoured(
    gateway_factory: GatewayFactory, service: FakeService, recorder: HeaderRecorder, otlp_http: Receiver
) -> None:
    """The default sampler (parentbased_always_on) follows a client that says "not sampled": no spans,
    and the client's trace id, tracestate and sampled=0 go on to the services."""
    gw = await gateway_factory()
    client = await connect(
        gw, headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-00", "tracestate": TRACESTATE}
    )
    await _subscribe_callable(client, service, "test.model")
    await recorder.wait(2)
    for subject in ("access.test.model", "get.test.model"):
        [headers] = recorder.headers(subject)
        trace_id, span_id, flags = _flags(headers)
        assert (trace_id, flags) == (TRACE_ID, 0)
        assert span_id != PARENT_ID  # the gateway's (unrecorded) request span
        assert headers is not None and headers.get("tracestate") == TRACESTATE
    assert await otlp_http.spans() == []


async def test_call_uses_no_task_and_keeps_its_trace_when_access_comes_late(
    gateway_factory: GatewayFactory, service: FakeService, otlp_http: Receiver
) -> None:
    """A call waits for the access request of a subscribe still in flight: when that reply comes, the
    call's NATS request is still a child of the call's span (not of the subscribe's), and no task
    serves the call (the callback path, as with tracing off)."""
    gw = await gateway_factory()
    client = await connect(gw)
    subscribing = await client.send("subscribe.test.model")
    reqs = await service.requests(2)
    calling = await client.send("call.test.model.method")
    await service.expect_no_request(0.05)  # the call waits for the subscription's access
    [conn] = gw.gateway.connections.values()
    call_tasks = [t for t in conn.tasks if "_finish_subscribe" not in repr(t.get_coro())]
    assert call_tasks == []
    await reqs.get("access.test.model").ok({"get": True, "call": "*"})
    await (await service.expect_request("call.test.model.method")).ok({"x": 1})
    await reqs.get("get.test.model").json(get_reply("test.model"))
    await subscribing.response()
    await calling.response()

    spans = await otlp_http.spans()
    sub, call = Receiver.one(spans, "RES subscribe"), Receiver.one(spans, "RES call")
    nats_call = Receiver.one(spans, "NATS call.test.model.method")
    assert (nats_call.trace_id, nats_call.parent_id) == (call.trace_id, call.span_id)
    assert call.trace_id != sub.trace_id
    assert call.end >= nats_call.end  # the call's span lasted until the reply was handled


async def test_sampled_out_event_builds_no_attributes(
    gateway_factory: GatewayFactory,
    service: FakeService,
    otlp_http: Receiver,
    otel_env: pytest.MonkeyPatch,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Fan-out with head sampling: a sampled-out event creates no span and does not count its
    subscribers; the event is delivered all the same."""
    _sample_nothing(otel_env)
    gw = await gateway_factory()
    client = await connect(gw)
    await subscribe(client, service, "test.model")

    def no_count(*args: Any) -> int:
        raise AssertionError("subscriber_count called for a sampled-out event")

    monkeypatch.setattr(gw.gateway.cache, "subscriber_count", no_count)
    await service.event("test.model", "change", {"values": {"string": "bar"}})
    await client.expect_event("test.model.change")
    assert await otlp_http.spans() == []


def test_root_sampling_agrees_with_the_sdk(otel_env: pytest.MonkeyPatch) -> None:
    """Roots sampled out before the SDK is asked: the same decision the SDK's ratio sampler takes for
    the same trace id, and a sampled root keeps the trace id the decision was taken on."""
    from opentelemetry.sdk.trace import sampling

    sampler = sampling.ParentBasedTraceIdRatio(0.5)
    tracing.setup(exporter=_NullExporter(), simple=True, sampler=sampler)
    assert tracing._root_bound == sampler._root.bound  # the fast path is on for this sampler
    recorded = dropped = 0
    for _ in range(400):
        span = tracing._start("RES call", tracing._SERVER, tracing.extract({}), None)
        ctx = span.get_span_context()
        decision = sampler.should_sample(None, ctx.trace_id, "RES call").decision
        assert span.is_recording() == decision.is_sampled()
        assert ctx.trace_flags & 0x02  # random trace id, as the SDK marks it
        if span.is_recording():
            recorded += 1
            span.end()
        else:
            dropped += 1
            assert isinstance(span, tracing._Dropped)
            header = tracing._Scope(span, None, False).trace_headers(None)["traceparent"]
            assert header == f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-02"
    assert recorded > 100 and dropped > 100


def test_sampler_settings(otel_env: pytest.MonkeyPatch) -> None:
    from opentelemetry.sdk.trace import sampling

    assert tracing.sampler_from_env({}) is sampling.DEFAULT_ON  # parentbased_always_on
    assert tracing.sampler_from_env({"OTEL_TRACES_SAMPLER": "always_on"}) is sampling.ALWAYS_ON
    ratio = tracing.sampler_from_env(
        {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.01"}
    )
    assert isinstance(ratio, sampling.ParentBasedTraceIdRatio) and ratio._root.rate == 0.01
    assert (
        tracing.sampler_from_env({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "x"}).rate
        == 1.0
    )
    assert tracing.sampler_from_env({"OTEL_TRACES_SAMPLER": "nonsense"}) is sampling.DEFAULT_ON
    # How the hooks decide for each sampler: (trace-id bound, follow the parent, eager attributes).
    assert tracing._analyse_sampler(sampling.ALWAYS_ON) == (1 << 64, False, False)
    assert tracing._analyse_sampler(sampling.ALWAYS_OFF) == (0, False, False)
    assert tracing._analyse_sampler(sampling.DEFAULT_ON) == (1 << 64, True, False)
    assert tracing._analyse_sampler(sampling.DEFAULT_OFF) == (0, True, False)
    assert tracing._analyse_sampler(ratio) == (ratio._root.bound, True, False)
    plain = sampling.TraceIdRatioBased(0.25)
    assert tracing._analyse_sampler(plain) == (plain.bound, False, False)
    custom = sampling.ParentBased(sampling.ALWAYS_ON, local_parent_not_sampled=sampling.ALWAYS_ON)
    assert tracing._analyse_sampler(custom) == (None, False, True)  # unknown: the sampler is asked


class _NullExporter:
    def export(self, spans: Any) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 0) -> bool:
        return True


async def test_http_request_not_sampled_by_its_client(
    gateway_factory: GatewayFactory, service: FakeService, recorder: HeaderRecorder, otlp_http: Receiver
) -> None:
    gw = await gateway_factory()
    await _get_model_over_http(gw, service, recorder, f"00-{TRACE_ID}-{PARENT_ID}-00")
    for subject in ("access.test.model", "get.test.model"):
        [headers] = recorder.headers(subject)
        assert _flags(headers)[0::2] == (TRACE_ID, 0)
    assert await otlp_http.spans() == []


async def test_request_outside_any_scope(otel_env: pytest.MonkeyPatch) -> None:
    """A NATS request made outside a request or event (a timer): a root span of its own, ended by the
    reply; requests its reply callback makes are its children."""
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    tracing.setup(exporter=exporter, simple=True)
    seen: list[dict[str, str]] = []

    def on_reply(data: bytes | None, err: Any) -> None:
        done, headers = tracing.nats_request("get.test.child", lambda d, e: None, None)
        seen.append(headers)
        done(b"{}", None)

    done, headers = tracing.nats_request("get.test.parent", on_reply, {"x": "y"})
    assert headers["x"] == "y"
    done(b"{}", None)
    spans = {s.name: s for s in exporter.get_finished_spans()}
    parent, child = spans["NATS get.test.parent"], spans["NATS get.test.child"]
    assert parent.parent is None
    assert child.parent is not None and child.parent.span_id == parent.context.span_id
    assert child.context.trace_id == parent.context.trace_id
    assert _flags(seen[0])[1] == f"{child.context.span_id:016x}"
