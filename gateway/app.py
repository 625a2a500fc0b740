"""The gateway: owns the NATS client, the cache, the connections and the listener.

Called by ``gateway.cli`` (and by tests, in-process). Lifecycle: ``start`` connects NATS first and
only then opens the client port (whoever can connect can be served); ``stop`` closes clients, the
listener and NATS, each step bounded in time; ``wait_stopped`` returns the exit code.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any

import orjson
from aiohttp import web

from gateway import constants, tracelog
from gateway.cache.cache import Cache
from gateway.config import Config
from gateway.conn.connection import Connection
from gateway.mq import natsclient
from gateway.mq.natsclient import NatsMQ
from gateway.telemetry.metrics import Metrics, metrics_app
from gateway.web import admin, api, server
from gateway.web.closer import ClientSocket, Closer
from gateway.web.sink import SinkFlusher

log = logging.getLogger(__name__)


class Gateway:
    """A running pyresgate instance."""

    def __init__(self, config: Config) -> None:
        self.config = config
        mq_class = tracelog.TracedNatsMQ if config.trace else NatsMQ  # (trace logging: -V)
        self.mq = mq_class(request_timeout=config.request_timeout / 1000, on_message=self._on_message)
        self.mq.on_reconnected = self._on_reconnected
        self.cache = Cache(
            self.mq, eviction_delay=config.cache_eviction_delay / 1000, reset_throttle=config.reset_throttle
        )
        self.connections: dict[str, Connection] = {}
        #: Open WebSockets by cid, so shutdown can close them with 1001 (going away).
        self.sockets: dict[str, ClientSocket] = {}
        self.metrics = Metrics(self.cache)
        #: Closes WebSockets at a bounded rate: the shutdown drain and ``POST /shed`` on the admin port.
        self.closer = Closer(self.sockets, on_shed=self.metrics.shed_connections.inc, trace=config.trace)
        self.flusher = SinkFlusher(on_slow_consumer=self.metrics.slow_consumers.inc)
        self.mq.on_request_done = self.metrics.nats_request
        self.cache.on_dispatch = self.metrics.event
        self.port = 0
        self.draining = False
        self._runner: web.BaseRunner | None = None
        self._site: web.TCPSite | None = None
        self._side_runners: list[web.AppRunner] = []
        self._stopped: asyncio.Future[int] | None = None
        self._stopping = False
        self._stop_task: asyncio.Future[None] | None = None
        self._exit_code = 0

    # -- lifecycle -----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the admin listener, connect to NATS (retrying, see ``_connect_nats``), subscribe to
        system events, then open the client and metrics listeners."""
        c = self.config
        loop = asyncio.get_running_loop()
        self._stopped = loop.create_future()
        if c.admin_port:  # first: probes answer (/readyz 503) while NATS is not there yet
            await self._start_side("admin", admin.make_app(self), c.admin_port, None)
        await self._connect_nats()
        self.mq.subscribe("system.*")
        await self.mq.sync()
        assert self.mq.closed is not None
        self.mq.closed.add_done_callback(self._on_mq_closed)
        # Go's HTTP server accepts request lines and headers up to 1 MiB; aiohttp's default is 8 KiB.
        http_server = server.make_server(
            self,
            api.handler(self),
            access_log=None,
            max_line_size=constants.HTTP_MAX_HEADER_BYTES,
            max_field_size=constants.HTTP_MAX_HEADER_BYTES,
        )
        self._runner = web.ServerRunner(http_server, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        self._site = web.TCPSite(
            self._runner,
            c.listen_host,
            c.port,
            reuse_address=True,
            reuse_port=c.workers > 1 or None,
            ssl_context=self._tls(),
            backlog=constants.LISTEN_BACKLOG,
        )
        await self._site.start()
        sockets = getattr(self._site._server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else c.port
        log.info("Listening on %s://%s:%d", c.scheme, c.addr or "0.0.0.0", self.port)
        if c.metrics_port:
            await self._start_side("metrics", metrics_app(self), c.metrics_port, self._tls())

    async def _connect_nats(self) -> None:
        """Connect to NATS. In a cluster the gateway often starts before NATS is reachable, so a
        failed attempt is retried with back-off (0.25 s doubling up to NATS_RETRY_MAX) until NATS
        answers; the client port stays closed meanwhile. With ``exitOnNatsLoss`` the first failure
        is final, as resgate refuses to start without NATS; so is a refusal (authorization, TLS)."""
        c = self.config
        servers = [u.strip() for u in c.nats_url.split(",") if u.strip()]
        delay = constants.NATS_RETRY_FIRST
        while True:
            try:
                await self.mq.connect(servers, reconnect=not c.exit_on_nats_loss, **self._nats_options())
                return
            except ConnectionError as exc:
                if c.exit_on_nats_loss or isinstance(exc, natsclient.NatsRefusedError):
                    raise
                log.warning("%s; retrying in %.2g s", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, constants.NATS_RETRY_MAX)

    async def _start_side(
        self, what: str, app: web.Application, port: int, tls: ssl.SSLContext | None
    ) -> None:
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, self.config.listen_host, port, reuse_address=True, ssl_context=tls).start()
        self._side_runners.append(runner)
        log.info("Serving %s on port %d", what, port)

    def _tls(self) -> ssl.SSLContext | None:
        c = self.config
        if not c.tls:
            return None
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(c.cert_file, c.key_file or None)
        return ctx

    def _nats_options(self) -> dict[str, Any]:
        c = self.config
        opts: dict[str, Any] = {"name": "pyresgate"}
        if c.nats_creds:
            opts["user_credentials"] = c.nats_creds
        tls = natsclient.tls_context(c.nats_cert, c.nats_key, list(c.nats_root_cas))
        if tls is not None:
            opts["tls"] = tls
        return opts

    @property
    def stopping(self) -> bool:
        """Whether the gateway is shutting down (new API requests get system.serviceUnavailable)."""
        return self._stopping

    def readiness_problems(self) -> list[str]:
        """Why the gateway should not get traffic now (empty when ready)."""
        problems = []
        if not self.mq.is_connected:
            problems.append("NATS not connected")
        if self.port == 0:  # the admin port opens first; clients are served once this one is open
            problems.append("client port not open")
        if self.draining or self._stopping:
            problems.append("draining")
        return problems

    async def shutdown(self) -> None:
        """Graceful stop (SIGTERM/SIGINT), as a checklist; each step is bounded in time."""
        if self.draining or self._stopping:
            return
        c = self.config
        # 1. Unready at once, so the load balancer stops sending new clients.
        self.draining = True
        # 2. Keep serving for the drain period while endpoints update.
        await asyncio.sleep(c.drain_period / 1000)
        try:
            await asyncio.wait_for(self._close_clients(), max(c.shutdown_timeout / 1000 - 1.0, 0.5))
        except TimeoutError:
            log.warning("Shutdown: clients did not close in time")
        # 5. Listeners and NATS (draining what was queued).
        await self.stop(drain=True)

    async def _close_clients(self) -> None:
        # 3. Refuse new connections.
        if self._site is not None:
            await self._site.stop()
        # 4. Close WebSockets with 1001 (going away) at a bounded rate; in-flight requests finish.
        await self.closer.drain(self.config.ws_close_rate)
        await self._wait_requests()

    async def _wait_requests(self) -> None:
        tasks = [t for conn in self.connections.values() for t in conn.tasks]
        if tasks:
            await asyncio.wait(tasks, timeout=constants.WS_CLOSE_TIMEOUT)

    async def stop(self, *, drain: bool = False) -> None:
        """Close every client, the listeners and NATS (each step bounded); idempotent: a second
        call waits for the first to finish."""
        if self._stop_task is None:
            self._stop_task = asyncio.ensure_future(self._stop(drain))
        await asyncio.shield(self._stop_task)

    async def _stop(self, drain: bool) -> None:
        self._stopping = True
        await self.closer.cancel()
        for conn in list(self.connections.values()):
            conn.close()
        for runner in [self._runner, *self._side_runners]:
            if runner is None:
                continue
            try:
                await asyncio.wait_for(runner.cleanup(), constants.WS_CLOSE_TIMEOUT)
            except TimeoutError:
                log.warning("Timed out closing a listener")
        await self.mq.close(drain=drain)
        if self._stopped is not None and not self._stopped.done():
            self._stopped.set_result(self._exit_code)

    async def wait_stopped(self) -> int:
        """The exit code, once the gateway has stopped (1 after losing NATS without reconnecting)."""
        assert self._stopped is not None
        return await asyncio.shield(self._stopped)

    def _on_mq_closed(self, fut: asyncio.Future[str]) -> None:
        if self._stopping:
            return
        log.error("Lost NATS connection: %s", fut.result() if not fut.cancelled() else "closed")
        self._exit_code = 1
        self._stop_task = asyncio.ensure_future(self._stop(drain=False))

    def _on_reconnected(self) -> None:
        # Events published while we were away are lost: re-fetch everything cached and send clients
        # the differences, exactly as after a system.reset.
        self.cache.refresh_all()

    # -- messages from services ----------------------------------------------------------------------

    def _on_message(self, subject: str, data: bytes) -> None:
        if subject.startswith("event."):
            name, _, event = subject[6:].rpartition(".")
            self.cache.on_event(name, event, data)
        elif subject.startswith("conn."):
            cid, _, event = subject[5:].partition(".")
            conn = self.connections.get(cid)
            if conn is not None:
                conn.on_conn_event(event, data)
        elif subject == "system.reset":
            self._on_reset(data)
        elif subject == "system.tokenReset":
            self._on_token_reset(data)

    def _on_reset(self, data: bytes) -> None:
        payload = _parse(data, "system.reset")
        if payload is None:
            return
        resources = payload.get("resources") or []
        access = payload.get("access") or []
        if not isinstance(resources, list) or not isinstance(access, list):
            log.error("Invalid system.reset payload: resources and access must be arrays")
            return
        self.cache.reset(resources, access)

    def _on_token_reset(self, data: bytes) -> None:
        payload = _parse(data, "system.tokenReset")
        if payload is None:
            return
        tids = payload.get("tids")
        subject = payload.get("subject")
        if tids is None:
            tids = []
        if not isinstance(tids, list) or not all(isinstance(t, str) for t in tids):
            log.error("Invalid system.tokenReset payload: tids must be an array of strings")
            return
        if not tids:
            return
        if not isinstance(subject, str) or not subject:
            log.error("Invalid system.tokenReset payload: missing subject")
            return
        wanted = set(tids)
        for conn in list(self.connections.values()):
            if conn.tid is not None and conn.tid in wanted:
                conn.token_reset(subject)


def _parse(data: bytes, what: str) -> dict[str, Any] | None:
    if not data:
        return None
    try:
        payload = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        log.error("Invalid %s payload: %s", what, exc)
        return None
    if payload is None:
        return None
    if not isinstance(payload, dict):
        log.error("Invalid %s payload: not an object", what)
        return None
    return payload
