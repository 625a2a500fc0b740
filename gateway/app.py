"""The gateway: owns the NATS client, the cache, the connections and the listener.

Called by ``gateway.cli`` (and by tests, in-process). Lifecycle: ``start`` connects NATS first and
only then opens the client port (whoever can connect can be served); ``stop`` closes clients, the
listener and NATS, each step bounded in time; ``wait_stopped`` returns the exit code.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
from aiohttp import web

from gateway import constants
from gateway.cache.cache import Cache
from gateway.config import Config
from gateway.conn.connection import Connection
from gateway.mq import natsclient
from gateway.mq.natsclient import NatsMQ
from gateway.telemetry.metrics import CONTENT_TYPE, Metrics
from gateway.web import api, server

log = logging.getLogger(__name__)


class Gateway:
    """A running pyresgate instance."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.mq = NatsMQ(request_timeout=config.request_timeout / 1000, on_message=self._on_message)
        self.cache = Cache(
            self.mq, eviction_delay=config.cache_eviction_delay / 1000, reset_throttle=config.reset_throttle
        )
        self.connections: dict[str, Connection] = {}
        self.metrics = Metrics(self.cache)
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._metrics_runner: web.AppRunner | None = None
        self._stopped: asyncio.Future[int] | None = None
        self._stopping = False

    # -- lifecycle -----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect to NATS, subscribe to system events, then open the client listener."""
        loop = asyncio.get_running_loop()
        self._stopped = loop.create_future()
        await self.mq.connect(self.config.nats_url.split(","), **self._nats_options())
        self.mq.subscribe("system.*")
        await self.mq.sync()
        assert self.mq.closed is not None
        self.mq.closed.add_done_callback(self._on_mq_closed)
        app = server.make_app(self, api.handler(self))
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.listen_host, self.config.port, reuse_address=True)
        await site.start()
        sockets = site._server.sockets if site._server else []  # type: ignore[union-attr]
        self.port = sockets[0].getsockname()[1] if sockets else self.config.port
        log.info("Listening on %s://%s:%d", self.config.scheme, self.config.addr or "0.0.0.0", self.port)
        if self.config.metrics_port:
            self._metrics_runner = await self._start_metrics()

    async def _start_metrics(self) -> web.AppRunner:
        async def metrics(request: web.Request) -> web.Response:
            return web.Response(body=self.metrics.exposition(), headers={"Content-Type": CONTENT_TYPE})

        app = web.Application()
        app.router.add_get("/metrics", metrics)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, self.config.listen_host, self.config.metrics_port, reuse_address=True).start()
        log.info("Metrics on port %d", self.config.metrics_port)
        return runner

    def _nats_options(self) -> dict[str, Any]:
        c = self.config
        opts: dict[str, Any] = {}
        if c.nats_creds:
            opts["user_credentials"] = c.nats_creds
        tls = natsclient.tls_context(c.nats_cert, c.nats_key, list(c.nats_root_cas))
        if tls is not None:
            opts["tls"] = tls
        return opts

    async def stop(self) -> None:
        """Close every client, the listener and NATS (each step bounded); idempotent."""
        if self._stopping:
            return
        self._stopping = True
        for conn in list(self.connections.values()):
            conn.close()
        for runner in (self._runner, self._metrics_runner):
            if runner is None:
                continue
            try:
                await asyncio.wait_for(runner.cleanup(), constants.WS_CLOSE_TIMEOUT)
            except asyncio.TimeoutError:
                log.warning("Timed out closing a listener")
        await self.mq.close()
        if self._stopped is not None and not self._stopped.done():
            self._stopped.set_result(0)

    async def wait_stopped(self) -> int:
        assert self._stopped is not None
        return await asyncio.shield(self._stopped)

    def _on_mq_closed(self, fut: asyncio.Future[str]) -> None:
        if self._stopping:
            return
        log.error("Lost NATS connection: %s", fut.result() if not fut.cancelled() else "closed")
        if self._stopped is not None and not self._stopped.done():
            self._stopped.set_result(1)
        asyncio.get_running_loop().create_task(self.stop())

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
