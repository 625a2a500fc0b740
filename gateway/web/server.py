"""The client listener: routes each HTTP request to the WebSocket or API front end.

Called by ``gateway.app.Gateway.start``. Routing order follows resgate: request-target ``*`` is a
bad request, ``wsPath`` is the WebSocket endpoint, paths under ``apiPath`` are web resources, and
anything else is ``system.notFound``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from gateway.protocol import errors
from gateway.web import ws

if TYPE_CHECKING:
    from gateway.app import Gateway

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def make_app(gateway: Gateway, api_handler: Handler | None = None) -> web.Application:
    config = gateway.config

    async def route(request: web.Request) -> web.StreamResponse:
        if request.raw_path == "*":
            return web.Response(status=400, headers={"Connection": "close"})
        path = request.path
        if path == config.ws_path:
            return await ws.handle(gateway, request)
        if api_handler is not None and request.raw_path.startswith(config.api_path):
            return await api_handler(request)
        return web.json_response(errors.ERR_NOT_FOUND.to_dict(), status=404)

    app = web.Application(client_max_size=0)
    app.router.add_route("*", "/{tail:.*}", route)
    return app
