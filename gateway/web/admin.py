"""Admin listener (``--adminport``): liveness, readiness, Prometheus metrics and load shedding.

Started by ``gateway.app.Gateway`` on its own port so probes and scrapes never compete with
clients. ``/healthz`` answers while the process and its event loop run; ``/readyz`` only while NATS
is connected and the gateway is not draining, which is what Kubernetes should route traffic by.
``GET /connections`` and ``POST /shed`` (``DELETE /shed`` stops a shed) are what the operator's rebalancer
(``pyresgate_operator.rebalance``) reads and drives; they exist only here, never on the client port,
because closing clients is an operator's decision.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import orjson
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

    async def connections(request: web.Request) -> web.Response:
        return web.json_response({**gateway.closer.status(), "draining": gateway.draining})

    async def shed(request: web.Request) -> web.Response:
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return web.json_response({"error": f"body larger than {SHED_MAX_BODY_BYTES} bytes"}, status=413)
        try:
            target, rate = parse_shed(body)
        except BadShedRequest as exc:
            return web.json_response({"error": str(exc)}, status=400)
        if gateway.draining or gateway.stopping:
            return web.json_response({"error": "the gateway is draining"}, status=409)
        gateway.closer.shed(target, rate)
        return web.json_response({**gateway.closer.status(), "draining": False})

    async def stop_shedding(request: web.Request) -> web.Response:
        if gateway.draining or gateway.stopping:
            return web.json_response({"error": "the gateway is draining"}, status=409)
        gateway.closer.stop_shedding()
        return web.json_response({**gateway.closer.status(), "draining": False})

    app = web.Application(client_max_size=SHED_MAX_BODY_BYTES)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/connections", connections)
    app.router.add_post("/shed", shed)
    app.router.add_delete("/shed", stop_shedding)
    return app


class BadShedRequest(ValueError):
    """A ``POST /shed`` body that is not ``{"target": N, "rate": R}``; the message says why (400)."""


#: A shed request is two numbers; anything much larger is not one.
SHED_MAX_BODY_BYTES = 4096


def parse_shed(body: bytes) -> tuple[int, float]:
    """``(target, rate)`` of a ``POST /shed`` body ``{"target": N, "rate": R}``; BadShedRequest says why not.

    ``target`` is an integer >= 0 (connections to keep), ``rate`` a finite number > 0 (closes per
    second); no other keys, so a misspelt key is an error rather than a silent default.
    """
    try:
        payload: Any = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadShedRequest(f"body is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise BadShedRequest('body must be a JSON object {"target": N, "rate": R}')
    unknown = sorted(set(payload) - {"target", "rate"})
    if unknown:
        raise BadShedRequest(f"unknown keys: {', '.join(unknown)}")
    target, rate = payload.get("target"), payload.get("rate")
    if isinstance(target, bool) or not isinstance(target, int) or target < 0:
        raise BadShedRequest("target must be an integer >= 0")
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not math.isfinite(rate) or rate <= 0:
        raise BadShedRequest("rate must be a number > 0 (connections closed per second)")
    return target, float(rate)
