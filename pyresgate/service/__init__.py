"""pyresgate.service: write RES services in Python (asyncio, on nats-py).

Public API, modelled on go-res::

    svc = Service("library")

    @svc.get_model("book.$id")
    async def get_book(r: GetRequest) -> None:
        book = BOOKS.get(r.path_param("id"))
        await (r.model(book) if book else r.not_found())

    svc.run("nats://127.0.0.1:4222")

Full guide: docs/service-library.md.
"""

from pyresgate.service.errors import (
    ERR_ACCESS_DENIED,
    ERR_INTERNAL_ERROR,
    ERR_INVALID_PARAMS,
    ERR_INVALID_QUERY,
    ERR_METHOD_NOT_FOUND,
    ERR_NOT_FOUND,
    ERR_TIMEOUT,
    ResError,
    invalid_params,
    invalid_query,
)
from pyresgate.service.query import int_param, normalize_query, parse_query
from pyresgate.service.queryevent import QueryRequest
from pyresgate.service.reply import AlreadyReplied
from pyresgate.service.requests import AccessRequest, AuthRequest, CallRequest, GetRequest, Request
from pyresgate.service.resource import Resource
from pyresgate.service.service import Service, default_nats_url
from pyresgate.service.values import DELETE, data_value, ref, soft_ref


async def access_granted(r: AccessRequest) -> None:
    """Access handler giving everyone get access and every call method."""
    await r.access_granted()


async def access_denied(r: AccessRequest) -> None:
    """Access handler refusing everyone (``system.accessDenied``)."""
    await r.access_denied()


__all__ = [
    "DELETE",
    "ERR_ACCESS_DENIED",
    "ERR_INTERNAL_ERROR",
    "ERR_INVALID_PARAMS",
    "ERR_INVALID_QUERY",
    "ERR_METHOD_NOT_FOUND",
    "ERR_NOT_FOUND",
    "ERR_TIMEOUT",
    "AccessRequest",
    "AlreadyReplied",
    "AuthRequest",
    "CallRequest",
    "GetRequest",
    "QueryRequest",
    "Request",
    "ResError",
    "Resource",
    "Service",
    "access_denied",
    "access_granted",
    "data_value",
    "default_nats_url",
    "int_param",
    "invalid_params",
    "invalid_query",
    "normalize_query",
    "parse_query",
    "ref",
    "soft_ref",
]
