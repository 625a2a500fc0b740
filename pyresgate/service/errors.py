"""RES errors for service authors: the gateway's ``ResError`` value type and the predefined errors.

Handlers reply with these (``r.error(ERR_NOT_FOUND)``) or raise them; the service turns a raised
``ResError`` into an error response and any other exception into ``system.internalError``. The type is
the gateway's own (``gateway.protocol.errors``), so both sides encode error objects identically.
"""

from __future__ import annotations

from gateway.protocol.errors import (
    ACCESS_DENIED,
    ERR_ACCESS_DENIED,
    ERR_INTERNAL_ERROR,
    ERR_INVALID_PARAMS,
    ERR_INVALID_QUERY,
    ERR_INVALID_REQUEST,
    ERR_METHOD_NOT_FOUND,
    ERR_NOT_FOUND,
    ERR_TIMEOUT,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_QUERY,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    NOT_FOUND,
    TIMEOUT,
    ResError,
    to_res_error,
)

__all__ = [
    "ACCESS_DENIED",
    "ERR_ACCESS_DENIED",
    "ERR_INTERNAL_ERROR",
    "ERR_INVALID_PARAMS",
    "ERR_INVALID_QUERY",
    "ERR_INVALID_REQUEST",
    "ERR_METHOD_NOT_FOUND",
    "ERR_NOT_FOUND",
    "ERR_TIMEOUT",
    "INTERNAL_ERROR",
    "INVALID_PARAMS",
    "INVALID_QUERY",
    "INVALID_REQUEST",
    "METHOD_NOT_FOUND",
    "NOT_FOUND",
    "TIMEOUT",
    "ResError",
    "invalid_params",
    "invalid_query",
    "to_res_error",
]


def invalid_params(message: str = "") -> ResError:
    """``system.invalidParams`` with a message of the service's own (default "Invalid parameters")."""
    return ResError(INVALID_PARAMS, message) if message else ERR_INVALID_PARAMS.copy()


def invalid_query(message: str = "") -> ResError:
    """``system.invalidQuery`` with a message of the service's own (default "Invalid query")."""
    return ResError(INVALID_QUERY, message) if message else ERR_INVALID_QUERY.copy()
