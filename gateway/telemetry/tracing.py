"""OpenTelemetry tracing: off by default, and then free on the hot paths.

Switched on by ``configure`` (called once by ``gateway.cli``) when ``OTEL_TRACES_EXPORTER`` names an
exporter other than ``none``, or when the ``tracing`` setting is true (``--tracing``,
``RESGATE_TRACING=true``, ``"tracing": true`` in the config file; the exporter is then ``otlp``).
Export is configured by the standard ``OTEL_*`` variables: ``OTEL_EXPORTER_OTLP_PROTOCOL`` /
``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`` (``http/protobuf``, the default, or ``grpc``),
``OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT`` / ``_HEADERS`` / ``_TIMEOUT``…, ``OTEL_SERVICE_NAME``
(default ``pyresgate``), ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER[_ARG]``, ``OTEL_BSP_*``
and ``OTEL_PROPAGATORS`` (default W3C ``traceparent``/``tracestate`` plus baggage).

The OpenTelemetry packages are the optional ``tracing`` extra (``pip install pyresgate[tracing]``);
they are imported by ``setup`` only, so the gateway runs without them.

Hook points check the module flag ``enabled`` and call the helpers below only when it is true, so
with tracing off they pay one attribute read and branch, create no span object and touch no context:

* ``Connection.handle_message`` → ``ws_request``: a SERVER span ``RES <action>`` around the request
  (attributes ``res.rid``, ``res.method``, ``res.cid``, ``res.action``), a child of the context that
  came with the WebSocket upgrade (``Connection.trace_parent``, set by ``gateway.web.ws`` from
  ``extract``). ``Connection.spawn`` → ``bind_task``: a request finished in a task keeps its span
  open until that task is done (the task copies the context, so its NATS requests are children).
* ``NatsMQ.request`` → ``nats_request``: a CLIENT span ``NATS <subject>`` in the current context,
  with ``traceparent``/``tracestate`` injected into the message headers; it ends when the reply, a
  timeout or an error arrives, and the reply is handled in the requester's context (so reference
  gets a reply causes stay in the same trace).
* ``api.handler`` → ``http_request``: a SERVER span ``HTTP <verb>`` honouring an incoming
  ``traceparent``.
* ``Cache.on_event`` → ``service_event``: a span ``event <name>.<event>`` with the number of
  subscriptions the event fans out to (``res.event.subscribers``).

Tests (and embedders) install their own exporter with ``setup(exporter=..., simple=True)`` and
undo it with ``shutdown()``; see tests/telemetry/test_tracing.py.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

    from aiohttp import web

    from gateway.cache.cache import Cache
    from gateway.conn.connection import Connection
    from gateway.protocol.client import Request
    from gateway.protocol.errors import ResError
    from gateway.protocol.rid import ParsedMethod

log = logging.getLogger(__name__)

#: True while a tracer is installed; every hook point checks this first.
enabled = False

#: Service name used when neither OTEL_SERVICE_NAME nor OTEL_RESOURCE_ATTRIBUTES names one.
DEFAULT_SERVICE_NAME = "pyresgate"
#: Install hint logged when tracing is asked for but the packages are missing.
INSTALL_HINT = "pip install 'pyresgate[tracing]'"

# Set by setup(); None while tracing is off.
_provider: Any = None
_tracer: Any = None
_propagator: Any = None
_otel_context: Any = None  # the opentelemetry.context module
_otel_trace: Any = None  # the opentelemetry.trace module
_SERVER: Any = None
_CLIENT: Any = None
_CONSUMER: Any = None
_Status: Any = None
_ERROR: Any = None
#: The WebSocket request whose handler is running (handle_message is synchronous, never re-entered).
_active: _Request | None = None


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
    """Turn tracing on if ``requested``; returns ``enabled``. Missing packages are logged, not fatal."""
    if enabled or not requested(config, env):
        return enabled
    try:
        setup(env=env)
    except TracingUnavailable as exc:
        log.warning("Tracing disabled: %s", exc)
    return enabled


def setup(
    *,
    exporter: Any = None,
    simple: bool = False,
    env: Mapping[str, str] | None = None,
) -> None:
    """Install a tracer provider and switch tracing on (replacing a previous setup).

    ``exporter``: a span exporter to use instead of the ones ``OTEL_TRACES_EXPORTER`` names.
    ``simple``: export each span as it ends (``SimpleSpanProcessor``) instead of in batches.
    Raises ``TracingUnavailable`` when the OpenTelemetry SDK is not installed.
    """
    global enabled, _provider, _tracer, _propagator, _otel_context, _otel_trace
    global _SERVER, _CLIENT, _CONSUMER, _Status, _ERROR
    env = os.environ if env is None else env
    try:
        from opentelemetry import context as otel_context
        from opentelemetry import propagate
        from opentelemetry import trace as otel_trace
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    except ImportError as exc:
        raise TracingUnavailable(f"OpenTelemetry is not installed ({exc.name}); {INSTALL_HINT}") from None

    from gateway import __version__

    shutdown()
    exporters = [exporter] if exporter is not None else _exporters_from_env(env)
    resource = Resource.create({})
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    provider = TracerProvider(resource=resource)
    for exp in exporters:
        provider.add_span_processor(SimpleSpanProcessor(exp) if simple else BatchSpanProcessor(exp))
    _provider = provider
    _tracer = provider.get_tracer("pyresgate", __version__)
    _propagator = propagate.get_global_textmap()
    _otel_context = otel_context
    _otel_trace = otel_trace
    _SERVER = otel_trace.SpanKind.SERVER
    _CLIENT = otel_trace.SpanKind.CLIENT
    _CONSUMER = otel_trace.SpanKind.CONSUMER
    _Status = otel_trace.Status
    _ERROR = otel_trace.StatusCode.ERROR
    enabled = True
    log.info("Tracing enabled (%s)", ", ".join(type(e).__module__ + "." + type(e).__name__ for e in exporters) or
             "no exporter")


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
            log.warning("Unsupported OTEL_TRACES_EXPORTER value %r ignored (supported: otlp, console, none)", name)
    return out


def otlp_protocol(env: Mapping[str, str] | None = None) -> str:
    """The OTLP protocol the environment asks for: ``http/protobuf`` (default) or ``grpc``."""
    env = os.environ if env is None else env
    protocol = (
        env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf"
    ).strip().lower()
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
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

            if env is not os.environ:
                endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
                if endpoint:
                    kwargs["endpoint"] = endpoint
                    kwargs["insecure"] = endpoint.startswith("http://")
            return GrpcExporter(**kwargs)
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

        if env is not os.environ:
            endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            if not endpoint and env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
                endpoint = env["OTEL_EXPORTER_OTLP_ENDPOINT"].rstrip("/") + "/v1/traces"
            if endpoint:
                kwargs["endpoint"] = endpoint
        return HttpExporter(**kwargs)
    except ImportError as exc:
        raise TracingUnavailable(f"OTLP {protocol} exporter is not installed ({exc.name}); {INSTALL_HINT}") from None


def force_flush(timeout_millis: int = 30000) -> bool:
    """Export every ended span now (blocking: call it off the event loop if the collector is on it)."""
    return bool(_provider.force_flush(timeout_millis)) if _provider is not None else True


def shutdown() -> None:
    """Flush and remove the tracer provider; tracing is off afterwards (idempotent)."""
    global enabled, _provider, _tracer, _active
    enabled = False
    provider, _provider = _provider, None
    _tracer = None
    _active = None
    if provider is not None:
        provider.shutdown()


# --- context propagation -----------------------------------------------------------------------------


def extract(headers: Mapping[str, str]) -> Any:
    """The OpenTelemetry context carried by ``traceparent``/``tracestate`` (an empty context if none)."""
    return _propagator.extract(headers, context=_otel_context.Context())


def inject(span: Any, headers: dict[str, str] | None = None) -> dict[str, str]:
    """``headers`` (copied) plus the W3C trace headers of ``span``."""
    carrier = dict(headers) if headers else {}
    _propagator.inject(carrier, context=_otel_trace.set_span_in_context(span))
    return carrier


# --- WebSocket requests ------------------------------------------------------------------------------


def _record_failure(span: Any, exc: BaseException) -> None:
    span.record_exception(exc)
    span.set_status(_Status(_ERROR, str(exc)))


class _Request:
    """A WebSocket request span; ends once the handler and every task it spawned are done."""

    __slots__ = ("span", "tasks")

    def __init__(self, span: Any) -> None:
        self.span = span
        self.tasks = 0

    def task_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and (exc := task.exception()) is not None:
            _record_failure(self.span, exc)
        self.tasks -= 1
        if self.tasks == 0:
            self.span.end()


def ws_request(conn: Connection, req: Request, parsed: ParsedMethod, dispatch: Callable[..., None]) -> None:
    """Run ``dispatch(req, parsed)`` inside a SERVER span ``RES <action>``."""
    global _active
    attributes = {"res.action": parsed.action, "res.method": req.method, "res.cid": conn.cid}
    if parsed.rid:
        attributes["res.rid"] = parsed.rid
    span = _tracer.start_span(
        "RES " + parsed.action, context=conn.trace_parent, kind=_SERVER, attributes=attributes
    )
    holder = _Request(span)
    previous, _active = _active, holder
    token = _otel_context.attach(_otel_trace.set_span_in_context(span, conn.trace_parent))
    try:
        dispatch(req, parsed)
    except BaseException as exc:
        _record_failure(span, exc)
        raise
    finally:
        _otel_context.detach(token)
        _active = previous
        if holder.tasks == 0:
            span.end()


def bind_task(task: asyncio.Task[None]) -> None:
    """Keep the running request's span open until ``task`` (spawned by the request) is done."""
    holder = _active
    if holder is not None:
        holder.tasks += 1
        task.add_done_callback(holder.task_done)


# --- NATS requests -----------------------------------------------------------------------------------


def nats_request(
    subject: str, callback: Callable[[bytes | None, ResError | None], None], headers: dict[str, str] | None
) -> tuple[Callable[[bytes | None, ResError | None], None], dict[str, str]]:
    """Start a CLIENT span for a NATS request: (callback that ends it, headers with the trace)."""
    parent = _otel_context.get_current()
    span = _tracer.start_span(
        "NATS " + subject,
        context=parent,
        kind=_CLIENT,
        attributes={
            "messaging.system": "nats",
            "messaging.operation.type": "send",
            "messaging.destination.name": subject,
        },
    )
    carrier = inject(span, headers)

    def done(data: bytes | None, err: ResError | None) -> None:
        if err is not None:
            span.set_attribute("res.error.code", err.code)
            span.set_status(_Status(_ERROR, err.message))
        span.end()
        token = _otel_context.attach(parent)
        try:
            callback(data, err)
        finally:
            _otel_context.detach(token)

    return done, carrier


# --- HTTP API requests -------------------------------------------------------------------------------


async def http_request(request: web.BaseRequest, serve: Callable[[], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    """Run ``serve()`` inside a SERVER span ``HTTP <verb>``, a child of an incoming ``traceparent``."""
    parent = extract(request.headers)
    span = _tracer.start_span(
        "HTTP " + request.method,
        context=parent,
        kind=_SERVER,
        attributes={
            "http.request.method": request.method,
            "url.path": request.path,
            "url.scheme": request.scheme,
        },
    )
    token = _otel_context.attach(_otel_trace.set_span_in_context(span, parent))
    try:
        response = await serve()
        span.set_attribute("http.response.status_code", response.status)
        if response.status >= 500:
            span.set_status(_Status(_ERROR))
        return response
    except BaseException as exc:
        _record_failure(span, exc)
        raise
    finally:
        _otel_context.detach(token)
        span.end()


# --- service events ----------------------------------------------------------------------------------


def service_event(cache: Cache, name: str, event: str, data: bytes) -> None:
    """Handle a service event (``cache.handle_event``) inside a span ``event <name>.<event>``."""
    span = _tracer.start_span(
        "event " + name + "." + event,
        context=_otel_context.Context(),
        kind=_CONSUMER,
        attributes={
            "messaging.system": "nats",
            "messaging.operation.type": "process",
            "messaging.destination.name": "event." + name + "." + event,
            "res.event.subscribers": cache.subscriber_count(name, event),
        },
    )
    token = _otel_context.attach(_otel_trace.set_span_in_context(span))
    try:
        cache.handle_event(name, event, data)
    except BaseException as exc:
        _record_failure(span, exc)
        raise
    finally:
        _otel_context.detach(token)
        span.end()
