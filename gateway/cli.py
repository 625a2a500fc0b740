"""The ``pyresgate`` command: parse flags, load the config, run the gateway until stopped.

Entry point of the console script and of ``python -m gateway``. Flags, the config file and
``RESGATE_*`` variables are turned into a ``Config`` by ``gateway.config``; this module only deals
with the process: logging, ``--help``/``--version``, the embedded NATS fallback, signals and the exit
code. The gateway itself is ``gateway.app.Gateway``.

Exit codes: 0 after a signal-requested stop (or ``--help``/``--version``), 1 for invalid
configuration, tracing requested without the OpenTelemetry packages, a failed start, or whatever code the gateway reports when it stops by itself
(e.g. NATS connection lost).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any

import gateway
from gateway import workers
from gateway.config import Config, ConfigError, load_parsed, parse_args, usage
from gateway.constants import DEFAULT_NATS_URL, LOG_TRACE, PROTOCOL_VERSION, RESGATE_VERSION

log = logging.getLogger("gateway")

logging.addLevelName(LOG_TRACE, "TRACE")

#: Short level tags in log lines, as resgate prints them.
_LEVEL_TAGS = {
    LOG_TRACE: "TRC",
    logging.DEBUG: "DBG",
    logging.INFO: "INF",
    logging.WARNING: "WRN",
    logging.ERROR: "ERR",
    logging.CRITICAL: "ERR",
}

#: Where a local NATS server is looked for before an embedded one is started (the default natsUrl).
DEFAULT_NATS_PROBE = ("127.0.0.1", 4222)

#: Signals that stop the gateway gracefully (exit code 0), as in resgate.
STOP_SIGNALS = tuple(
    sig
    for sig in (getattr(signal, name, None) for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT"))
    if sig is not None
)


def version_text() -> str:
    return f"pyresgate v{gateway.__version__} (resgate v{RESGATE_VERSION} compatible)\nprotocol v{PROTOCOL_VERSION}"


def main(argv: list[str] | None = None) -> int:
    """Run pyresgate with ``argv`` (default: ``sys.argv[1:]``); return the process exit code."""
    args = sys.argv[1:] if argv is None else argv
    setup_logging(debug=False, trace=False)
    try:
        parsed = parse_args(args)
        if parsed.show_help:
            print(usage())
            return 0
        if parsed.show_version:
            print(version_text())
            return 0
        config = load_parsed(parsed)
    except ConfigError as exc:
        print(f"pyresgate: {exc}", file=sys.stderr)
        return 1
    setup_logging(debug=config.debug, trace=config.trace)
    from gateway.telemetry import tracing

    try:
        tracing.configure(config)  # OTEL_TRACES_EXPORTER or --tracing; a no-op otherwise
    except tracing.TracingUnavailable as exc:
        print(f"pyresgate: tracing was requested but {exc}", file=sys.stderr)
        return 1
    try:
        return _run_loop(serve(config))
    except KeyboardInterrupt:  # Ctrl-C before the signal handlers were installed
        return 0
    finally:
        tracing.shutdown()  # flushes spans still batched


def setup_logging(*, debug: bool, trace: bool) -> None:
    """Log lines to stderr as ``<time> [INF] message``. Debug and trace are independent switches,
    as in resgate: ``-V`` alone shows trace lines but not debug lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter("%(asctime)s.%(msecs)03d [%(tag)s] %(message)s", "%Y/%m/%d %H:%M:%S"))
    if trace and not debug:
        handler.addFilter(lambda record: record.levelno != logging.DEBUG)
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(LOG_TRACE if trace else logging.DEBUG if debug else logging.INFO)


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        record.tag = _LEVEL_TAGS.get(record.levelno, record.levelname[:3])
        return super().format(record)


#: Allocations between young-generation collections (CPython's default is 700).
GC_THRESHOLD_GEN0 = 50_000


def _run_loop(coro: Coroutine[Any, Any, int]) -> int:
    """Run ``coro`` on uvloop when it is installed, else on the default asyncio loop."""
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:
        pass
    tune_gc()
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(coro)


def tune_gc() -> None:
    """Fewer cyclic garbage collections: a gateway allocates many short-lived objects per request,
    and with the default thresholds the collector keeps re-walking every long-lived connection and
    cached resource. Everything imported at start-up is frozen out of the collector's view."""
    if os.environ.get("PYRESGATE_GC_TUNING", "1") == "0":
        return
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD_GEN0, 20, 100)


async def serve(config: Config) -> int:
    """Run the gateway until a stop signal (→ 0) or until it stops by itself (→ its exit code)."""
    from gateway.app import Gateway
    from gateway.mq.embedded import EmbeddedNats, EmbeddedNatsError

    log.info(
        "Starting pyresgate v%s (resgate v%s compatible, RES protocol v%s)",
        gateway.__version__,
        RESGATE_VERSION,
        PROTOCOL_VERSION,
    )
    embedded: EmbeddedNats | None = None
    if await _wants_embedded_nats(config):
        try:
            embedded = await EmbeddedNats.start()
        except EmbeddedNatsError as exc:
            log.error("No NATS server configured and the embedded one failed to start: %s", exc)
            return 1
        log.info(
            "No NATS URL configured and nothing listens on %s: started an embedded nats-server at %s",
            DEFAULT_NATS_URL,
            embedded.url,
        )
        config = config.model_copy(update={"nats_url": embedded.url})

    loop = asyncio.get_running_loop()
    stop_requested = asyncio.Event()
    installed: list[int] = []
    for sig in STOP_SIGNALS:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, _on_signal, sig, stop_requested)
            installed.append(sig)
    gw = Gateway(config)
    extra: workers.Workers | None = None
    signalled = asyncio.ensure_future(stop_requested.wait())
    try:
        starting = asyncio.ensure_future(gw.start())
        await asyncio.wait({starting, signalled}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():  # stop signal while connecting
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await starting
            return 0
        if (start_error := starting.exception()) is not None:
            log.error("Failed to start: %s", str(start_error) or type(start_error).__name__)
            log.debug("Start failure", exc_info=start_error)
            return 1
        if config.workers > 1 and not workers.is_extra_worker():
            extra = workers.Workers(config)
            await extra.start()
        stopped = asyncio.ensure_future(gw.wait_stopped())
        waits: set[asyncio.Future[Any]] = {stopped, signalled}
        if extra is not None and extra.failed is not None:
            waits.add(extra.failed)
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        if extra is not None and extra.failed is not None and extra.failed.done() and not stopped.done():
            stopped.cancel()
            return 1
        if not stopped.done():
            stopped.cancel()
            # The other workers drain in parallel with this one.
            workers_stopping = asyncio.ensure_future(extra.stop()) if extra is not None else None
            await _graceful_shutdown(gw, config, stop_requested)
            if workers_stopping is not None:
                await workers_stopping
            return 0
        if (run_error := stopped.exception()) is not None:
            log.error("Server stopped with an error: %s", str(run_error) or type(run_error).__name__)
            return 1
        code = stopped.result()
        return 0 if code is None else int(code)
    finally:
        signalled.cancel()
        try:
            if extra is not None:
                await extra.stop()
            await gw.stop()
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
            if embedded is not None:
                embedded.stop()
                log.info("Embedded nats-server stopped")


def _on_signal(sig: int, stop_requested: asyncio.Event) -> None:
    log.info("Received %s, stopping", signal.Signals(sig).name)
    stop_requested.set()


async def _graceful_shutdown(gw: Any, config: Config, stop_requested: asyncio.Event) -> None:
    """Run ``gw.shutdown()`` (drain, close clients gradually) when the gateway has one; a second
    stop signal, or running past the configured bounds, cuts it short (``stop`` follows anyway)."""
    shutdown = getattr(gw, "shutdown", None)
    if shutdown is None:
        return
    bound = (config.drain_period + config.shutdown_timeout) / 1000 + 5.0
    stop_requested.clear()
    graceful = asyncio.ensure_future(shutdown())
    again = asyncio.ensure_future(stop_requested.wait())
    try:
        done, _ = await asyncio.wait({graceful, again}, timeout=bound, return_when=asyncio.FIRST_COMPLETED)
        if graceful in done:
            if (shutdown_error := graceful.exception()) is not None:
                log.error(
                    "Graceful shutdown failed: %s", str(shutdown_error) or type(shutdown_error).__name__
                )
        else:
            log.warning(
                "%s: stopping at once", "Second stop signal" if again in done else "Shutdown took too long"
            )
            graceful.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await graceful
    finally:
        again.cancel()


async def _wants_embedded_nats(config: Config) -> bool:
    """An embedded server is started only when no NATS URL was set anywhere and nothing accepts
    connections at the default address (so an existing local NATS is always preferred)."""
    if config.nats_url_configured:
        return False
    from gateway.mq.embedded import tcp_port_open

    host, port = DEFAULT_NATS_PROBE
    return not await tcp_port_open(host, port)
