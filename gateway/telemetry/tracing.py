"""OpenTelemetry tracing: off by default, and then free on the hot paths.

Switched on by ``configure`` (called once by ``gateway.cli``) when ``OTEL_TRACES_EXPORTER`` names an
exporter other than ``none``, or when the ``tracing`` setting is true (``--tracing``,
``RESGATE_TRACING=true``, ``"tracing": true`` in the config file; the exporter is then ``otlp``).
Export is configured by the standard ``OTEL_*`` variables: ``OTEL_EXPORTER_OTLP_PROTOCOL`` /
``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`` (``http/protobuf``, the default, or ``grpc``),
``OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT`` / ``_HEADERS`` / ``_TIMEOUT``…, ``OTEL_SERVICE_NAME``
(default ``pyresgate``), ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER[_ARG]``, ``OTEL_BSP_*``
and ``OTEL_PROPAGATORS`` (default W3C ``traceparent``/``tracestate`` plus baggage).

The OpenTelemetry SDK and the OTLP exporters are dependencies of pyresgate (so of the container
image); they are imported by ``setup`` only, so with tracing off they cost no start-up time. Asking
for tracing when they are missing (a broken install) is an error: ``configure`` raises
``TracingUnavailable`` and ``gateway.cli`` exits with code 1 and one line on stderr.

Sampling
--------
``OTEL_TRACES_SAMPLER`` / ``OTEL_TRACES_SAMPLER_ARG`` choose the sampler. The default is the
OpenTelemetry default, ``parentbased_always_on``: every request is traced, except those whose
incoming ``traceparent`` says "not sampled". Recommended in production: head sampling,
``OTEL_TRACES_SAMPLER=parentbased_traceidratio`` with ``OTEL_TRACES_SAMPLER_ARG=0.01`` (1 %; any
ratio), which keeps whole traces (a request and everything it causes) and costs little for the
requests left out. A sampled-out request still propagates its trace: the NATS requests it makes
carry ``traceparent`` with the sampled flag off, so parent-based samplers in the services make the
same decision.

Spans: the SDK configures, the gateway records
----------------------------------------------
The SDK still reads the configuration (exporters, endpoint, protocol, headers, timeout, TLS, resource,
sampler, propagators) and its exporters still send, but the gateway's own spans are not SDK spans:
each is a ``LeanSpan`` (``gateway.telemetry.leanspan``: ids, name, kind, times, a dict of attributes,
status), started and ended with no lock, processor or context object, and queued on end
(``gateway.telemetry.spanexport``; a full queue drops and counts). An export thread per exporter
encodes the batches itself (``gateway.telemetry.otlpencode``) for the OTLP exporters, or builds the
SDK's ``ReadableSpan`` objects in bulk for any other exporter (console, an embedder's). The sampling
decision of the SDK's own samplers (``always_on``/``off``, ``traceidratio``, the ``parentbased_*``
ones with their default delegates) is taken here exactly as the SDK takes it (the same trace-id
bound, the parent's sampled flag); any other sampler is asked for every span, with the parent's
context, trace id, name, kind and attributes, as the SDK's tracer would. The provider's SDK tracer
(``_tracer``) stays usable: spans made with it go through the same queues. Measured cost (B7) and
what each step saved: docs/tracing-overhead.md.

Hook points
-----------
Hook points check the module flag ``enabled`` and call the helpers below only when it is true, so
with tracing off they pay one attribute read and branch, create no span object and touch no context:

* ``Connection.handle_message`` → ``ws_request``: a SERVER span ``RES <action>`` around the request
  (attributes ``res.rid``, ``res.method``, ``res.cid``, ``res.action``), a child of the context that
  came with the WebSocket upgrade (``Connection.trace_parent``, set by ``gateway.web.ws`` from
  ``extract``). ``Connection.spawn`` → ``bind_task``: a request finished in a task keeps its span
  open until that task is done. ``Connection._call_now`` → ``bind``: when a call's access is not
  cached yet, its access callback runs in the call's scope even if another request's access reply
  delivers it. Calls take the same callback path (no task) as with tracing off.
* ``NatsMQ.request`` → ``nats_request``: a CLIENT span ``NATS <subject>``, a child of the request
  (or event) being handled, with ``traceparent``/``tracestate`` injected into the message headers;
  it ends when the reply, a timeout or an error arrives, and the reply is handled in the requester's
  scope (so reference gets a reply causes stay in the same trace). A sampled-out root's requests
  (most requests with head sampling) do not call it: ``NatsMQ.request`` finds the root's ids in
  ``active``, writes their ``traceparent`` into the HPUB command and runs the reply in them itself
  (``call_in``).
* ``api.serve`` (both HTTP front ends) → ``http_request``: a SERVER span ``HTTP <verb>`` honouring an incoming
  ``traceparent``.
* ``Cache.on_event`` → ``service_event``: a span ``event <name>.<event>`` with the number of
  subscriptions the event fans out to (``res.event.subscribers``).

Scopes instead of the OpenTelemetry context: the span of the request (or event) being handled is
held in a ``_Scope`` (for a root the sampler left out, just its ids: ``UnsampledIds``), made
current by setting the module variable ``active`` while synchronous code runs (the handler, a NATS
reply callback) and found through ``_task_scopes`` inside tasks a request spawned. Child spans get
their parent passed explicitly; no ``contextvars`` attach/detach, no span context objects
(``traceparent`` is formatted here unless baggage or another propagator is involved). A scope's
span ends when the handler has returned and every NATS request and task started in it is done.

Tests (and embedders) install their own exporter with ``setup(exporter=..., simple=True)`` (or several
with ``exporters=[...]``) and undo it with ``shutdown()``; see tests/telemetry/test_tracing.py and
tests/telemetry/test_lean_export.py.
"""

from __future__ import annotations

import asyncio
import binascii
import functools
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from gateway.telemetry import leanspan, spanexport
from gateway.telemetry.leanspan import (
    CLIENT,
    CONSUMER,
    RANDOM_TRACE_ID,
    SAMPLED,
    SERVER,
    Dropped,
    LeanSpan,
    Remote,
)

if TYPE_CHECKING:
    from gateway.cache.cache import Cache
    from gateway.conn.connection import Connection
    from gateway.protocol.client import Request
    from gateway.protocol.errors import ResError
    from gateway.protocol.rid import ParsedMethod

    ReplyCallback = Callable[[bytes | None, ResError | None], None]

_A = TypeVar("_A")
_B = TypeVar("_B")
log = logging.getLogger(__name__)


class _HasStatus(Protocol):
    @property
    def status(self) -> int: ...


_Response = TypeVar("_Response", bound=_HasStatus)

#: True while a tracer is installed; every hook point checks this first.
enabled = False

#: Service name used when neither OTEL_SERVICE_NAME nor OTEL_RESOURCE_ATTRIBUTES names one.
DEFAULT_SERVICE_NAME = "pyresgate"
#: What to do when tracing is asked for but the packages are missing (they are pyresgate dependencies).
INSTALL_HINT = "reinstall pyresgate with its dependencies (pip install pyresgate), or switch tracing off"
#: The sampler when OTEL_TRACES_SAMPLER is unset (the OpenTelemetry default).
DEFAULT_SAMPLER = "parentbased_always_on"

_MASK64 = (1 << 64) - 1
#: Span kinds (OTLP values), by their old names.
_SERVER = SERVER
_CLIENT = CLIENT
_CONSUMER = CONSUMER
#: ``-<flags>`` as traceparent ends, by flags value.
_FLAGS = [f"-{flags:02x}" for flags in range(256)]
#: A sampled-out span of this module (the name tests and older code know).
_Dropped = Dropped

# Set by setup(); None while tracing is off.
_provider: Any = None
#: The SDK's tracer of the provider (for embedders: its spans are exported with the gateway's).
_tracer: Any = None
_sampler: Any = None
_propagator: Any = None
_otel_context: Any = None  # the opentelemetry.context module
_otel_trace: Any = None  # the opentelemetry.trace module
_otel_baggage: Any = None  # the opentelemetry.baggage module
_sdk_kinds: dict[int, Any] = {}
#: Trace-id bound of the configured sampler when it is one of the SDK's own (a root, or any span of
#: a sampler that is not parent-based, is sampled iff ``trace_id & _MASK64 < bound``); the decision
#: is then taken here, exactly as the SDK would take it. None: the sampler is asked for every span.
_root_bound: int | None = None
#: ``_root_bound`` (but at least 1) shifted to where the trace id's low 64 bits are in a root's ids
#: (``_TRACE_ID_LOW``): a WebSocket request's root whose ids are at least this (once masked) is
#: sampled out, and its trace id is not 0, which would be invalid; see ``ws_request``.
_unsampled_from: int | None = None
_TRACE_ID_LOW = _MASK64 << 64
#: With ``_root_bound``: whether the sampler is parent-based with the SDK's default delegates
#: (a span with a parent is sampled iff its parent is).
_follow_parent: bool = False
#: Whether a non-recording span's children are non-recording too (true of every built-in sampler):
#: then a sampled-out request's NATS requests get no span of their own, only its trace headers.
_children_follow: bool = False
#: Whether spans get their attributes before the sampler is asked (a sampler of unknown kind may look
#: at them); otherwise they are built only for spans that turn out to be recorded.
_eager_attributes: bool = True
#: Whether the propagator is W3C Trace Context (plus baggage), so ``traceparent``/``tracestate`` are
#: formatted here unless a baggage context has to be passed on; then a sampled-out root's
#: ``traceparent`` alone carries its trace, and its ids are all a NATS request needs (``active``).
w3c: bool = False
#: Whether the propagator writes no header at all (``OTEL_PROPAGATORS=none``): then NATS requests
#: carry none, without asking it each time.
_silent: bool = False
#: Where an ended sampled span goes (the export queues); see ``leanspan.on_end``.
_emit: Callable[[LeanSpan], None] = leanspan.on_end
#: The scope whose synchronous code is running (handlers, reply callbacks are never re-entered).
#: ``gateway.mq.natsclient`` reads it: when it holds the ids of a sampled-out root and ``w3c`` is
#: true, the client writes their ``traceparent`` and runs the reply in them itself, without calling
#: ``nats_request`` (the most common request with head sampling).
active: _Scope | UnsampledIds | None = None
#: Scopes of the tasks requests spawned (a task's code runs when ``active`` is None).
_task_scopes: dict[asyncio.Task[Any], _Scope | UnsampledIds] = {}
_current_task = asyncio.current_task
_hexlify = binascii.hexlify
_getrandbits = random.getrandbits
_time_ns = time.time_ns


class TracingUnavailable(RuntimeError):
    """Tracing was asked for but the OpenTelemetry packages are not installed."""


# --- setup ------------------------------------------------------------------------------------------


def requested(config: Any = None, env: Mapping[str, str] | None = None) -> bool:
    """Whether tracing should be on: ``OTEL_TRACES_EXPORTER`` set (not ``none``) or ``config.tracing``."""
    env = os.environ if env is None else env
    exporters = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporters and exporters != "none":
        return True
    return bool(getattr(config, "tracing", False))


def configure(config: Any = None, env: Mapping[str, str] | None = None) -> bool:
    """Turn tracing on if ``requested``; returns ``enabled``. Raises ``TracingUnavailable`` when tracing
    is asked for but the OpenTelemetry packages are missing: running without the traces the operator
    asked for would go unnoticed, so the caller stops instead."""
    if enabled or not requested(config, env):
        return enabled
    setup(env=env)
    return enabled


def setup(
    *,
    exporter: Any = None,
    exporters: list[Any] | None = None,
    simple: bool = False,
    env: Mapping[str, str] | None = None,
    sampler: Any = None,
) -> None:
    """Install a tracer provider and switch tracing on (replacing a previous setup).

    ``exporter``: a span exporter to use instead of the ones ``OTEL_TRACES_EXPORTER`` names;
    ``exporters``: several (each gets every span).
    ``simple``: export each span as it ends (as the SDK's ``SimpleSpanProcessor``) instead of in batches.
    ``sampler``: a sampler to use instead of the one ``OTEL_TRACES_SAMPLER[_ARG]`` names.
    Raises ``TracingUnavailable`` when the OpenTelemetry SDK is not installed.
    """
    global enabled, _provider, _tracer, _sampler, _propagator, _otel_context, _otel_trace, _otel_baggage
    global _root_bound, _unsampled_from, _follow_parent, _children_follow, _eager_attributes, w3c, _silent
    global _emit
    env = os.environ if env is None else env
    try:
        from opentelemetry import baggage as otel_baggage
        from opentelemetry import context as otel_context
        from opentelemetry import propagate
        from opentelemetry import trace as otel_trace
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    except ImportError as exc:
        raise TracingUnavailable(f"OpenTelemetry is not installed ({exc.name}); {INSTALL_HINT}") from None

    from gateway import __version__
    from gateway.telemetry.otlpencode import OtlpTraceEncoder

    shutdown()
    if exporters is None:
        exporters = [exporter] if exporter is not None else _exporters_from_env(env)
    resource = Resource.create({})
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    chosen = sampler if sampler is not None else sampler_from_env(env)
    provider = TracerProvider(resource=resource, sampler=chosen)
    scope = InstrumentationScope("pyresgate", __version__)
    queues = []
    for exp in exporters:
        encoder = OtlpTraceEncoder(resource.attributes, resource.schema_url, "pyresgate", __version__)
        queue = spanexport.SpanQueue(exp, encoder, resource, scope, simple=simple, env=env)
        provider.add_span_processor(queue)  # type: ignore[arg-type]  # (duck-typed)
        queues.append(queue)
    _provider = provider
    _tracer = provider.get_tracer("pyresgate", __version__)
    _sampler = chosen
    _propagator = propagate.get_global_textmap()
    _otel_context = otel_context
    _otel_trace = otel_trace
    _otel_baggage = otel_baggage
    _sdk_kinds.update(
        {
            1: otel_trace.SpanKind.INTERNAL,
            SERVER: otel_trace.SpanKind.SERVER,
            CLIENT: otel_trace.SpanKind.CLIENT,
            4: otel_trace.SpanKind.PRODUCER,
            CONSUMER: otel_trace.SpanKind.CONSUMER,
        }
    )
    _root_bound, _follow_parent, _eager_attributes = _analyse_sampler(chosen)
    _children_follow = _root_bound is not None
    _unsampled_from = None if _root_bound is None else max(_root_bound, 1) << 64
    w3c = _is_w3c(_propagator)
    _silent = not _propagator.fields
    _emit = leanspan.on_end = _fan_out([q.add for q in queues])
    enabled = True
    log.info(
        "Tracing enabled (%s; sampler %s)",
        ", ".join(type(e).__module__ + "." + type(e).__name__ for e in exporters) or "no exporter",
        chosen.get_description(),
    )


def _fan_out(adds: list[Callable[[LeanSpan], None]]) -> Callable[[LeanSpan], None]:
    if len(adds) == 1:
        return adds[0]

    def to_all(span: LeanSpan) -> None:
        for add in adds:
            add(span)

    return to_all


def sampler_from_env(env: Mapping[str, str] | None = None) -> Any:
    """The sampler ``OTEL_TRACES_SAMPLER`` / ``OTEL_TRACES_SAMPLER_ARG`` name (as the SDK reads them;
    default ``parentbased_always_on``, an unknown name or a bad ratio is logged and replaced)."""
    from opentelemetry.sdk.trace import sampling

    env = os.environ if env is None else env
    name = (env.get("OTEL_TRACES_SAMPLER") or DEFAULT_SAMPLER).strip().lower()
    if name in ("traceidratio", "parentbased_traceidratio"):
        try:
            rate = float(env.get("OTEL_TRACES_SAMPLER_ARG", ""))
        except ValueError:
            log.warning("OTEL_TRACES_SAMPLER_ARG is not a number; using ratio 1.0")
            rate = 1.0
        if not 0.0 <= rate <= 1.0:
            log.warning("OTEL_TRACES_SAMPLER_ARG %s is not within 0..1; using ratio 1.0", rate)
            rate = 1.0
        cls = (
            sampling.ParentBasedTraceIdRatio if name.startswith("parentbased") else sampling.TraceIdRatioBased
        )
        return cls(rate)
    samplers = {
        "always_on": sampling.ALWAYS_ON,
        "always_off": sampling.ALWAYS_OFF,
        "parentbased_always_on": sampling.DEFAULT_ON,
        "parentbased_always_off": sampling.DEFAULT_OFF,
    }
    if name not in samplers:
        log.warning("Unsupported OTEL_TRACES_SAMPLER value %r; using %s", name, DEFAULT_SAMPLER)
        name = DEFAULT_SAMPLER
    return samplers[name]


def _is_w3c(propagator: Any) -> bool:
    from opentelemetry.baggage.propagation import W3CBaggagePropagator
    from opentelemetry.propagators.composite import CompositePropagator
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    parts = (
        list(getattr(propagator, "_propagators", ()))
        if type(propagator) is CompositePropagator
        else [propagator]
    )
    kinds = [type(p) for p in parts]
    return TraceContextTextMapPropagator in kinds and all(
        k in (TraceContextTextMapPropagator, W3CBaggagePropagator) for k in kinds
    )


def _exporters_from_env(env: Mapping[str, str]) -> list[Any]:
    names = [n.strip().lower() for n in env.get("OTEL_TRACES_EXPORTER", "").split(",") if n.strip()]
    names = [n for n in names if n != "none"] or ["otlp"]
    out: list[Any] = []
    for name in names:
        if name == "otlp":
            out.append(_otlp_exporter(env))
        elif name == "console":
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter

            out.append(ConsoleSpanExporter())
        else:
            log.warning(
                "Unsupported OTEL_TRACES_EXPORTER value %r ignored (supported: otlp, console, none)", name
            )
    return out


def otlp_protocol(env: Mapping[str, str] | None = None) -> str:
    """The OTLP protocol the environment asks for: ``http/protobuf`` (default) or ``grpc``."""
    env = os.environ if env is None else env
    protocol = (
        (
            env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
            or "http/protobuf"
        )
        .strip()
        .lower()
    )
    if protocol not in ("grpc", "http/protobuf"):
        log.warning("Unsupported OTLP protocol %r; using http/protobuf", protocol)
        protocol = "http/protobuf"
    return protocol


def _otlp_exporter(env: Mapping[str, str]) -> Any:
    # The exporters read their endpoint, headers, timeout, compression and TLS files from os.environ.
    # When ``env`` is not os.environ, the endpoint is passed explicitly.
    protocol = otlp_protocol(env)
    kwargs: dict[str, Any] = {}
    try:
        if protocol == "grpc":
            if env is not os.environ:
                endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get(
                    "OTEL_EXPORTER_OTLP_ENDPOINT"
                )
                if endpoint:
                    kwargs["endpoint"] = endpoint
                    kwargs["insecure"] = endpoint.startswith("http://")
            return spanexport.grpc_exporter_class()(**kwargs)
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

        if env is not os.environ:
            endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            if not endpoint and env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
                endpoint = env["OTEL_EXPORTER_OTLP_ENDPOINT"].rstrip("/") + "/v1/traces"
            if endpoint:
                kwargs["endpoint"] = endpoint
        return HttpExporter(**kwargs)
    except ImportError as exc:
        raise TracingUnavailable(
            f"OTLP {protocol} exporter is not installed ({exc.name}); {INSTALL_HINT}"
        ) from None


def _analyse_sampler(sampler: Any) -> tuple[int | None, bool, bool]:
    """(root bound, follow parent, eager attributes) for ``sampler``; see the module variables. Only
    the SDK's own samplers are recognised; anything else is asked for every span."""
    from opentelemetry.sdk.trace import sampling

    on, off = sampling.ALWAYS_ON, sampling.ALWAYS_OFF
    generic = (None, False, True)
    if sampler is on:
        return 1 << 64, False, False
    if sampler is off:
        return 0, False, False
    if type(sampler) is sampling.TraceIdRatioBased:
        return int(sampler.bound), False, False
    if type(sampler) not in (sampling.ParentBased, sampling.ParentBasedTraceIdRatio):
        return generic
    delegates = (
        getattr(sampler, "_remote_parent_sampled", None),
        getattr(sampler, "_remote_parent_not_sampled", None),
        getattr(sampler, "_local_parent_sampled", None),
        getattr(sampler, "_local_parent_not_sampled", None),
    )
    if delegates != (on, off, on, off):
        return generic
    root = getattr(sampler, "_root", None)
    if root is on:
        return 1 << 64, True, False
    if root is off:
        return 0, True, False
    if type(root) is sampling.TraceIdRatioBased:
        return int(root.bound), True, False
    return generic


def force_flush(timeout_millis: int = 30000) -> bool:
    """Export every ended span now (blocking: call it off the event loop if the collector is on it)."""
    return bool(_provider.force_flush(timeout_millis)) if _provider is not None else True


def spans_dropped() -> int:
    """Spans dropped so far because an export queue was full (never reset)."""
    return spanexport.dropped[0]


def shutdown() -> None:
    """Flush and remove the tracer provider; tracing is off afterwards (idempotent)."""
    global enabled, _provider, _tracer, active, _emit
    enabled = False
    provider, _provider = _provider, None
    _tracer = None
    active = None
    _emit = leanspan.on_end = leanspan._nowhere
    _task_scopes.clear()
    if provider is not None:
        provider.shutdown()


# --- context propagation -----------------------------------------------------------------------------


def extract(headers: Mapping[str, str]) -> Remote | None:
    """The parent carried by ``traceparent``/``tracestate`` (and baggage); None if there is none."""
    return _remote(_propagator.extract(headers, context=_otel_context.Context()))


def _remote(ctx: Any) -> Remote | None:
    """The parent an OpenTelemetry context holds, or None for an empty one."""
    sc = _otel_trace.get_current_span(ctx).get_span_context()
    carry = ctx if not w3c or _otel_baggage.get_all(ctx) else None
    if not sc.is_valid:
        return None if carry is None else Remote(0, 0, 0, None, ctx, carry)
    return Remote(sc.trace_id, sc.span_id, int(sc.trace_flags), sc.trace_state, ctx, carry, sc.is_remote)


def _headers_of(span: LeanSpan | Dropped, carry: Any) -> dict[str, str]:
    """The trace headers naming ``span`` as the parent (``carry``: a context to pass on, see ``Remote``)."""
    if w3c and carry is None:
        ids = ((span.trace_id << 64) | span.span_id).to_bytes(24, "big").hex()  # (faster than "%032x")
        headers = {"traceparent": f"00-{ids[:32]}-{ids[32:]}{_FLAGS[span.flags]}"}
        if span.trace_state:
            headers["tracestate"] = span.trace_state.to_header()
        return headers
    if _silent:
        return {}
    headers = {}
    nonrecording = _otel_trace.NonRecordingSpan(span.get_span_context())
    _propagator.inject(headers, context=_otel_trace.set_span_in_context(nonrecording, carry))
    return headers


def inject(span: Any, headers: dict[str, str] | None = None) -> dict[str, str]:
    """``headers`` (copied) plus the W3C trace headers of ``span`` (a span of this module or the SDK's)."""
    carrier = dict(headers) if headers else {}
    if isinstance(span, (LeanSpan, Dropped)):
        carrier.update(_headers_of(span, None))
    else:
        _propagator.inject(carrier, context=_otel_trace.set_span_in_context(span))
    return carrier


# --- spans and scopes -----------------------------------------------------------------------------------


def _begin(name: str, kind: int, parent: Any) -> LeanSpan | Dropped:
    """A span ``name`` under ``parent`` (a span of this module, a ``Remote`` or None), decided the way the
    configured SDK sampler decides (``_root_bound``, ``_follow_parent``): a root or a span under a
    sampler that ignores parents by the ratio of its trace id, a span with a parent by the parent's
    sampled flag. A sampled-out span is a ``Dropped`` that costs one random number."""
    bound = _root_bound
    if bound is None:
        return _begin_asking(name, kind, parent, None, None)
    if parent is None or not parent.trace_id:
        return _root(name, kind, _getrandbits(192))
    trace_id = parent.trace_id
    flags = parent.flags & RANDOM_TRACE_ID
    if parent.flags & SAMPLED if _follow_parent else trace_id & _MASK64 < bound:
        flags |= SAMPLED
        span_id = _getrandbits(64) or 1
        return LeanSpan(
            name, kind, trace_id, span_id, parent.span_id, parent.remote, flags, parent.trace_state
        )
    return Dropped(trace_id, _getrandbits(64) or 1, flags, parent.trace_state)


def _root(name: str, kind: int, ids: int) -> LeanSpan | Dropped:
    """A root span ``name`` with the ids in ``ids`` (192 random bits: the trace id in the top 128, the
    span id in the low 64), sampled iff the low 64 bits of its trace id are below ``_root_bound``."""
    trace_id = (ids >> 64) or 1
    span_id = (ids & _MASK64) or 1
    if trace_id & _MASK64 < _root_bound:  # type: ignore[operator]  # (set when this is called)
        return LeanSpan(name, kind, trace_id, span_id, 0, False, SAMPLED | RANDOM_TRACE_ID, None)
    return Dropped(trace_id, span_id, RANDOM_TRACE_ID)


def _begin_asking(
    name: str, kind: int, parent: Any, attributes: dict[str, Any] | None, carry: Any
) -> LeanSpan | Dropped:
    """A span decided by asking the configured sampler (one the module does not know), with what the
    SDK's tracer would pass it: the parent's context, the trace id, name, kind and attributes."""
    if parent is None or not parent.trace_id:
        trace_id = _getrandbits(128) or 1
        context = parent.context if parent is not None else None
        flags, parent_id, remote = RANDOM_TRACE_ID, 0, False
    else:
        trace_id = parent.trace_id
        if type(parent) is Remote:
            context = parent.context
        else:
            nonrecording = _otel_trace.NonRecordingSpan(parent.get_span_context())
            context = _otel_trace.set_span_in_context(nonrecording, carry)
        flags, parent_id, remote = parent.flags & RANDOM_TRACE_ID, parent.span_id, parent.remote
    result = _sampler.should_sample(context, trace_id, name, _sdk_kinds[kind], attributes, ())
    if result.decision.is_sampled():
        flags |= SAMPLED
    span_id = _getrandbits(64) or 1
    if not result.decision.is_recording():
        return Dropped(trace_id, span_id, flags, result.trace_state)
    span = LeanSpan(name, kind, trace_id, span_id, parent_id, remote, flags, result.trace_state)
    if result.attributes:
        span.attributes = dict(result.attributes)
    return span


def _start(name: str, kind: int, parent: Any, attributes: dict[str, Any] | None) -> LeanSpan | Dropped:
    """A span ``name`` under ``parent`` (a span of this module, a ``Remote``, an OpenTelemetry context
    or None) with ``attributes`` (given to the sampler when it is asked)."""
    if parent is not None and not isinstance(parent, (LeanSpan, Dropped, Remote)):
        parent = _remote(parent)
    if _eager_attributes:
        return _begin_asking(name, kind, parent, attributes, parent.carry if type(parent) is Remote else None)
    span = _begin(name, kind, parent)
    if attributes and type(span) is LeanSpan:
        span.attributes = dict(attributes)
    return span


def _record_failure(span: LeanSpan | Dropped, exc: BaseException) -> None:
    if type(span) is LeanSpan:
        span.record_exception(exc)
        span.set_error(str(exc))


class _Scope:
    """The span of a request or event being handled; it ends once the handler has returned and
    every NATS request and task started in the scope is done (``pending`` drops to 0). ``carry``: the
    context child requests' trace headers need (see ``Remote``)."""

    __slots__ = ("_headers", "carry", "pending", "recording", "span")

    def __init__(self, span: LeanSpan | Dropped, carry: Any, recording: bool) -> None:
        self.span = span
        self.carry = carry
        self.recording = recording
        self.pending = 1  # the handler
        self._headers: dict[str, str] | None = None

    def release(self) -> None:
        self.pending -= 1
        if self.pending == 0 and self.recording:
            span = self.span
            span.end_ns = _time_ns()  # type: ignore[union-attr]
            if span.flags & SAMPLED:
                _emit(span)  # type: ignore[arg-type]

    def task_done(self, task: asyncio.Task[Any]) -> None:
        _task_scopes.pop(task, None)
        if not task.cancelled() and (exc := task.exception()) is not None:
            _record_failure(self.span, exc)
        self.release()

    def trace_headers(self, headers: dict[str, str] | None) -> dict[str, str]:
        """``headers`` plus the trace headers of the scope's own span (computed once; the same dict
        each time when ``headers`` is empty: NATS requests only read their headers)."""
        carrier = self._headers
        if carrier is None:
            carrier = self._headers = _headers_of(self.span, self.carry)
        return {**headers, **carrier} if headers else carrier


#: The scope of a root the sampler left out (the most common scope with head sampling) is not an
#: object but its ids: 192 random bits, the trace id in the top 128 (whose low 64 bits the sampler
#: decided on) and the span id in the low 64, so their 24 bytes are the two ids in traceparent's
#: order. Nothing of it is ever recorded or ended, so nothing else is needed; ``gateway.mq.natsclient``
#: writes its ``traceparent`` (sampled flag off) straight into the HPUB command (see ``active``).
UnsampledIds = int


def _unsampled_span(ids: UnsampledIds) -> Dropped:
    """The sampled-out span a root's ids stand for (for the rare paths that want one)."""
    return Dropped(ids >> 64, ids & _MASK64, RANDOM_TRACE_ID)


def traceparent_ids(ids: UnsampledIds) -> bytes:
    """``<trace id>-<span id>`` of a sampled-out root's ids, as ``traceparent`` spells them."""
    return _hexlify(ids.to_bytes(24, "big"), b"-", -16)


def _carry(parent: Remote | None) -> Any:
    return parent.carry if parent is not None else None


def _scope_here() -> _Scope | UnsampledIds | None:
    """The scope of the code running now: a handler or reply callback, or a task a request spawned."""
    scope = active
    if scope is None and _task_scopes:
        task = _current_task()
        if task is not None:
            scope = _task_scopes.get(task)
    return scope


def bind_task(task: asyncio.Task[None]) -> None:
    """Keep the running scope's span open until ``task`` (spawned by the request) is done; NATS
    requests the task makes are children of that span."""
    scope = _scope_here()
    if isinstance(scope, int):  # a sampled-out root's ids: nothing to hold open
        _task_scopes[task] = scope
        task.add_done_callback(_forget_task)
    elif scope is not None:
        scope.pending += 1
        _task_scopes[task] = scope
        task.add_done_callback(scope.task_done)


def _forget_task(task: asyncio.Task[Any]) -> None:
    _task_scopes.pop(task, None)


def bind(callback: Callable[[_A, _B], None]) -> Callable[[_A, _B], None]:
    """``callback`` run in the running scope whenever it is called (once), keeping the scope's span
    open until then; for callbacks other requests' replies may deliver (a shared access request)."""
    scope = active
    if scope is None:
        scope = _scope_here()
        if scope is None:
            return callback
    if isinstance(scope, int):  # a sampled-out root's ids: nothing to hold open
        return functools.partial(call_in, scope, callback)

    def run(a: _A, b: _B) -> None:
        _run_in(scope, callback, a, b)

    scope.pending += 1
    return run


def call_in(scope: _Scope | UnsampledIds, callback: Callable[[_A, _B], None], a: _A, b: _B) -> None:
    """Run ``callback(a, b)`` as part of ``scope`` (the active scope meanwhile)."""
    global active
    previous, active = active, scope
    try:
        callback(a, b)
    finally:
        active = previous


def _run_in(scope: _Scope, callback: Callable[[_A, _B], None], a: _A, b: _B) -> None:
    """Run ``callback(a, b)`` as part of ``scope``, then release the hold the caller took on it
    (``scope.pending``); the scope's span ends when nothing of it is pending any more."""
    try:
        call_in(scope, callback, a, b)
    finally:
        scope.release()


# --- WebSocket requests ------------------------------------------------------------------------------


def _res_attributes(conn: Connection, req: Request, parsed: ParsedMethod) -> dict[str, Any]:
    attributes = {"res.action": parsed.action, "res.method": req.method, "res.cid": conn.cid}
    if parsed.rid:
        attributes["res.rid"] = parsed.rid
    return attributes


def ws_request(conn: Connection, req: Request, parsed: ParsedMethod) -> None:
    """Run ``conn.dispatch(req, parsed)`` in the scope of a SERVER span ``RES <action>``."""
    global active
    parent = conn.trace_parent
    bound = _unsampled_from
    if parent is None and bound is not None:
        ids = _getrandbits(192)
        if ids & _TRACE_ID_LOW >= bound and ids & _MASK64:  # (a zero span id would be invalid)
            # a root the sampler drops (the most common case with head sampling): decided inline,
            # its scope is its ids (``UnsampledIds``), and there is nothing to end or record afterwards
            previous, active = active, ids
            try:
                conn.dispatch(req, parsed)
            finally:
                active = previous
            return
        span = _root("RES " + parsed.action, SERVER, ids)  # (the same ids: the same decision)
    elif _eager_attributes:  # (the sampler is asked, and given the attributes)
        span = _begin_asking("RES " + parsed.action, SERVER, parent, _res_attributes(conn, req, parsed), None)
    else:
        span = _begin("RES " + parsed.action, SERVER, parent)
    if type(span) is LeanSpan and not _eager_attributes:
        span.attributes = _res_attributes(conn, req, parsed)
    scope = _Scope(span, parent.carry if parent is not None else None, type(span) is LeanSpan)
    previous, active = active, scope
    try:
        conn.dispatch(req, parsed)
    except BaseException as exc:
        _record_failure(span, exc)
        raise
    finally:
        active = previous
        scope.release()


# --- NATS requests -----------------------------------------------------------------------------------


def nats_request(
    subject: str, callback: ReplyCallback, headers: dict[str, str] | None
) -> tuple[ReplyCallback, dict[str, str] | UnsampledIds | None]:
    """Start a CLIENT span for a NATS request: (callback that ends it, headers with the trace: a
    dict, or the ids of a sampled-out root, whose ``traceparent`` the NATS client writes itself and
    in whose scope it runs the callback, ``call_in``).

    In a sampled-out scope the request gets no span, only the scope's trace headers (sampled flag
    off), so services sampling by their parent drop it too; its reply is handled in the scope."""
    scope = active
    if scope is None:
        scope = _scope_here()
        if scope is None:
            return _unscoped_nats_request(subject, callback, headers)
    if isinstance(scope, int):  # a sampled-out root (the most common case with head sampling)
        if w3c and not headers:
            return callback, scope  # (the NATS client handles the reply in this scope: ``call_in``)
        carrier = _headers_of(_unsampled_span(scope), None)
        return functools.partial(call_in, scope, callback), {**headers, **carrier} if headers else carrier
    span: LeanSpan | None = None
    if scope.recording or not _children_follow:
        if _eager_attributes:
            child = _begin_asking(
                "NATS " + subject, CLIENT, scope.span, _nats_attributes(subject), scope.carry
            )
        else:
            child = _begin("NATS " + subject, CLIENT, scope.span)
            if type(child) is LeanSpan:
                child.attributes = _nats_attributes(subject)
        carrier = _headers_of(child, scope.carry)
        if headers:
            carrier = {**headers, **carrier}
        if type(child) is LeanSpan:
            span = child
    else:  # a sampled-out scope: its trace headers (made once per scope), and the reply handled in it
        return functools.partial(call_in, scope, callback), scope.trace_headers(headers)
    scope.pending += 1

    def done(data: bytes | None, err: ResError | None) -> None:
        if span is not None:
            if err is not None:
                _nats_failure(span, err)
            span.end_ns = _time_ns()
            if span.flags & SAMPLED:
                _emit(span)
        _run_in(scope, callback, data, err)

    return done, carrier


def _nats_attributes(subject: str) -> dict[str, Any]:
    return {
        "messaging.system": "nats",
        "messaging.operation.type": "send",
        "messaging.destination.name": subject,
    }


def _nats_failure(span: LeanSpan, err: ResError) -> None:
    span.set_attribute("res.error.code", err.code)
    span.set_error(err.message)


def _unscoped_nats_request(
    subject: str, callback: ReplyCallback, headers: dict[str, str] | None
) -> tuple[ReplyCallback, dict[str, str]]:
    """A NATS request made outside any request or event (a timer, a deferred load): a span of its own
    under the current OpenTelemetry context (usually a root), which is also the scope its reply
    callback runs in."""
    span = _start("NATS " + subject, CLIENT, _otel_context.get_current(), _nats_attributes(subject))
    parent = _remote(_otel_context.get_current())
    # its scope's initial hold is never released: the span ends at the reply
    scope = _Scope(span, _carry(parent), type(span) is LeanSpan)
    carrier = scope.trace_headers(headers)

    def done(data: bytes | None, err: ResError | None) -> None:
        if type(span) is LeanSpan:
            if err is not None:
                _nats_failure(span, err)
            span.end()
        call_in(scope, callback, data, err)

    return done, carrier


# --- HTTP API requests -------------------------------------------------------------------------------


async def http_request(request: Any, serve: Callable[[], Awaitable[_Response]]) -> _Response:
    """Run ``serve()`` in the scope of a SERVER span ``HTTP <verb>``, a child of an incoming ``traceparent``.

    ``request``: aiohttp's request or ``web.fasthttp.FastRequest`` (``headers``, ``method``,
    ``path``, ``scheme``); the response has a ``status``."""
    parent = extract(request.headers)
    attributes = {
        "http.request.method": request.method,
        "url.path": request.path,
        "url.scheme": request.scheme,
    }
    span = _start("HTTP " + request.method, SERVER, parent, attributes)
    scope = _Scope(span, _carry(parent), type(span) is LeanSpan)
    task = _current_task()
    previous = _task_scopes.get(task) if task is not None else None
    if task is not None:
        _task_scopes[task] = scope
    try:
        response = await serve()
        if type(span) is LeanSpan:
            span.set_attribute("http.response.status_code", response.status)
            if response.status >= 500:
                span.set_error()
        return response
    except BaseException as exc:
        _record_failure(span, exc)
        raise
    finally:
        if task is not None:
            if previous is None:
                _task_scopes.pop(task, None)
            else:
                _task_scopes[task] = previous
        scope.release()


# --- service events ----------------------------------------------------------------------------------


def _event_attributes(cache: Cache, name: str, event: str) -> dict[str, Any]:
    return {
        "messaging.system": "nats",
        "messaging.operation.type": "process",
        "messaging.destination.name": "event." + name + "." + event,
        "res.event.subscribers": cache.subscriber_count(name, event),
    }


def service_event(cache: Cache, name: str, event: str, data: bytes) -> None:
    """Handle a service event (``cache.handle_event``) in the scope of a span ``event <name>.<event>``
    (a root: events carry no trace context)."""
    global active
    if _eager_attributes:
        span = _begin_asking(
            "event " + name + "." + event, CONSUMER, None, _event_attributes(cache, name, event), None
        )
    else:
        span = _begin("event " + name + "." + event, CONSUMER, None)
        if type(span) is LeanSpan:
            span.attributes = _event_attributes(cache, name, event)
    scope = _Scope(span, None, type(span) is LeanSpan)
    previous, active = active, scope
    try:
        cache.handle_event(name, event, data)
    except BaseException as exc:
        _record_failure(span, exc)
        raise
    finally:
        active = previous
        scope.release()
