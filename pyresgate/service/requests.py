"""Request objects handed to handlers: access, get, call/new and auth, each a ``Resource`` with a reply.

Built by the service's dispatcher from the request payloads of res-protocol.md §3.3; handlers answer
through their methods (``r.model(...)``, ``r.ok(...)``, ``r.error(...)``). Being resources, requests
can publish events of their own resource before they answer, which keeps events and responses in order.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.protocol import rid as ridlib
from pyresgate.service.errors import (
    ERR_ACCESS_DENIED,
    ERR_INVALID_PARAMS,
    ERR_INVALID_QUERY,
    ERR_METHOD_NOT_FOUND,
    ERR_NOT_FOUND,
    ResError,
    invalid_params,
    invalid_query,
)
from pyresgate.service.reply import Replier
from pyresgate.service.resource import Core, Resource


class Request(Resource):
    """What every request has: the resource, the reply channel and the error shortcuts."""

    def __init__(self, core: Core, replier: Replier, rid: str, path_params: dict[str, str]) -> None:
        super().__init__(core, rid, path_params)
        self._replier = replier

    @property
    def replied(self) -> bool:
        """Whether the final response was sent."""
        return self._replier.replied

    async def error(self, err: ResError) -> None:
        """Answer with an error value (``system.notFound``, a custom code...)."""
        await self._replier.error(err)

    async def not_found(self) -> None:
        await self._replier.error(ERR_NOT_FOUND)

    async def invalid_query(self, message: str = "") -> None:
        await self._replier.error(invalid_query(message) if message else ERR_INVALID_QUERY)

    async def timeout(self, seconds: float) -> None:
        """Pre-response for slow work: the gateway waits ``seconds`` more for this request's answer."""
        await self._replier.timeout(seconds)


class _ConnectionRequest(Request):
    """Requests made on behalf of a client connection: they carry its cid and token."""

    def __init__(
        self, core: Core, replier: Replier, rid: str, path_params: dict[str, str], payload: dict[str, Any]
    ) -> None:
        super().__init__(core, replier, rid, path_params)
        cid = payload.get("cid")
        self.cid: str = cid if isinstance(cid, str) else ""
        #: The connection token as the gateway sent it (``None`` when the connection has none).
        self.token: Any = payload.get("token")
        self.is_http: bool = payload.get("isHttp") is True

    async def token_event(self, token: Any, tid: str | None = None) -> None:
        """Set (or clear, with ``None``) this connection's token; sent before the response, as required."""
        await publish_token(self._core, self.cid, token, tid)


class AccessRequest(_ConnectionRequest):
    """``access.<name>``: may the connection get the resource, and which methods may it call?"""

    async def access(self, get: bool, call: str = "") -> None:
        """``call`` is ``"*"`` (any), ``""`` (none) or comma-separated method names."""
        result: dict[str, Any] = {"get": bool(get)}
        if call:
            result["call"] = call
        await self._replier.result(result)

    async def access_granted(self) -> None:
        await self.access(True, "*")

    async def access_denied(self) -> None:
        await self._replier.error(ERR_ACCESS_DENIED)


class GetRequest(Request):
    """``get.<name>``: answer with the model or collection (and the normalised query, for queries)."""

    async def model(self, model: dict[str, Any], query: str | None = None) -> None:
        if not isinstance(model, dict):
            raise TypeError("a model must be a dict")
        await self._replier.result(_with_query({"model": model}, query))

    async def collection(self, collection: list[Any], query: str | None = None) -> None:
        if not isinstance(collection, list):
            raise TypeError("a collection must be a list")
        await self._replier.result(_with_query({"collection": collection}, query))


class CallRequest(_ConnectionRequest):
    """``call.<name>.<method>``: the method's parameters; answer with a result or a resource."""

    def __init__(
        self,
        core: Core,
        replier: Replier,
        rid: str,
        path_params: dict[str, str],
        payload: dict[str, Any],
        method: str,
    ) -> None:
        super().__init__(core, replier, rid, path_params, payload)
        self.method = method
        #: The client's parameters (``None`` when it sent none).
        self.params: Any = payload.get("params")

    def params_dict(self) -> dict[str, Any]:
        """The parameters as an object (``None`` reads as ``{}``); ``system.invalidParams`` otherwise."""
        if self.params is None:
            return {}
        if not isinstance(self.params, dict):
            raise ERR_INVALID_PARAMS.copy()
        return self.params

    async def ok(self, result: Any = None) -> None:
        """Successful response with ``result`` (any JSON value, default ``null``)."""
        await self._replier.result(result)

    async def resource(self, rid: str) -> None:
        """Resource response: the client gets (and subscribes to) ``rid``."""
        if not ridlib.is_valid_rid(rid):
            raise ValueError(f"invalid resource ID {rid!r}")
        await self._replier.resource(rid)

    async def new(self, rid: str) -> None:
        """Answer a ``new`` call with the created resource (a resource response)."""
        await self.resource(rid)

    async def invalid_params(self, message: str = "") -> None:
        await self._replier.error(invalid_params(message))

    async def method_not_found(self) -> None:
        await self._replier.error(ERR_METHOD_NOT_FOUND)


class AuthRequest(CallRequest):
    """``auth.<name>.<method>``: a call without access check, plus the client's HTTP upgrade details."""

    def __init__(
        self,
        core: Core,
        replier: Replier,
        rid: str,
        path_params: dict[str, str],
        payload: dict[str, Any],
        method: str,
    ) -> None:
        super().__init__(core, replier, rid, path_params, payload, method)
        header = payload.get("header")
        #: Canonical header name -> list of values, from the WebSocket upgrade or HTTP request.
        self.header: dict[str, list[str]] = header if isinstance(header, dict) else {}
        self.host: str = _str(payload.get("host"))
        self.remote_addr: str = _str(payload.get("remoteAddr"))
        self.uri: str = _str(payload.get("uri"))

    def header_value(self, name: str) -> str | None:
        """First value of header ``name`` (case-insensitive), or ``None``."""
        lower = name.lower()
        for key, values in self.header.items():
            if key.lower() == lower and isinstance(values, list) and values:
                return str(values[0])
        return None


async def publish_token(core: Core, cid: str, token: Any, tid: str | None = None) -> None:
    """``conn.<cid>.token``: the gateway passes ``token`` with the connection's later requests."""
    if not cid or not ridlib.is_valid_part(cid):
        raise ValueError(f"invalid connection ID {cid!r}")
    payload: dict[str, Any] = {"token": token}
    if tid is not None:
        payload["tid"] = tid
    await core.publish(f"conn.{cid}.token", orjson.dumps(payload))


def _with_query(result: dict[str, Any], query: str | None) -> dict[str, Any]:
    if query is not None:
        result["query"] = query
    return result


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""
