"""Admin listener (``--adminport``): liveness, readiness and Prometheus metrics.

Started by ``gateway.app.Gateway`` on its own port so probes and scrapes never compete with
clients. ``/healthz`` answers while the process and its event loop run; ``/readyz`` only while NATS
is connected and the gateway is not draining, which is what Kubernetes should route traffic by.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from gateway.telemetry.metrics import CONTENT_TYPE

if TYPE_CHECKING:
    from gateway.app import Gateway


def make_app(gateway: Gateway) -> web.Application:
    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(request: web.Request) -> web.Response:
        problems = gateway.readiness_problems()
        if problems:
            return web.json_response({"status": "unavailable", "reasons": problems}, status=503)
        return web.json_response({"status": "ready"})

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=gateway.metrics.exposition(), headers={"Content-Type": CONTENT_TYPE})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app
