"""The client listener: routes each HTTP request to the WebSocket or API front end.

Called by ``gateway.app.Gateway.start``. Routing order follows resgate: request-target ``*`` is a
bad request, ``wsPath`` is the WebSocket endpoint, paths under ``apiPath`` are web resources, and
anything else is ``system.notFound``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import http_exceptions, web

from gateway import constants
from gateway.protocol import errors
from gateway.web import fasthttp, ws

if TYPE_CHECKING:
    from gateway.app import Gateway

Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


class ClientErrorsAsDebug(logging.Filter):
    """aiohttp logs every request it cannot parse (answered with 400 and closed) as an ERROR with a
    traceback: any client could fill the gateway's log. Such records become one-line debug messages
    (Go's net/http, and so resgate, logs nothing for them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, http_exceptions.HttpProcessingError):
            return True
        if logging.getLogger(record.name).isEnabledFor(logging.DEBUG):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            record.msg = f"{record.getMessage()}: {exc.code} {exc.message}"
            record.args, record.exc_info, record.exc_text = (), None, None
            return True
        return False


_CLIENT_ERRORS_AS_DEBUG = ClientErrorsAsDebug()


def make_server(gateway: Gateway, api_handler: Handler | None = None, **kwargs: Any) -> web.Server:
    """aiohttp's low-level server with our one routing function: the gateway needs no router,
    middlewares or application machinery on its hot HTTP path. With the API enabled, plain GET and
    HEAD requests under ``apiPath`` skip aiohttp altogether (``gateway.web.fasthttp``)."""
    config = gateway.config
    logging.getLogger("aiohttp.server").addFilter(_CLIENT_ERRORS_AS_DEBUG)  # once: a set of filters

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
