"""The client listener: routes each HTTP request to the WebSocket or API front end.

Called by ``gateway.app.Gateway.start``. Routing order follows resgate: request-target ``*`` is a
bad request, ``wsPath`` is the WebSocket endpoint, paths under ``apiPath`` are web resources, and
anything else is ``system.notFound``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from gateway import constants
from gateway.protocol import errors
from gateway.web import fasthttp, ws

if TYPE_CHECKING:
    from gateway.app import Gateway

Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


def make_server(gateway: Gateway, api_handler: Handler | None = None, **kwargs: Any) -> web.Server:
    """aiohttp's low-level server with our one routing function: the gateway needs no router,
    middlewares or application machinery on its hot HTTP path. With the API enabled, plain GET and
    HEAD requests under ``apiPath`` skip aiohttp altogether (``gateway.web.fasthttp``)."""
    config = gateway.config

    async def route(request: web.BaseRequest) -> web.StreamResponse:
        if request.raw_path == "*":
            return web.Response(status=400, headers={"Connection": "close"})
        path = request.path
        if path == config.ws_path:
            return await ws.handle(gateway, request)
        if api_handler is not None and request.raw_path.startswith(config.api_path):
            return await api_handler(request)
        return web.json_response(errors.ERR_NOT_FOUND.to_dict(), status=404)

    def make_request(message: Any, payload: Any, protocol: Any, writer: Any, task: Any) -> web.BaseRequest:
        # Request bodies are limited by constants.HTTP_MAX_BODY_BYTES (aiohttp's default is 1 MiB).
        loop = asyncio.get_running_loop()
        return web.BaseRequest(
            message, payload, protocol, writer, task, loop, client_max_size=constants.HTTP_MAX_BODY_BYTES
        )

    if api_handler is None:
        return web.Server(route, request_factory=make_request, **kwargs)
    return fasthttp.FrontServer(gateway, route, request_factory=make_request, **kwargs)
