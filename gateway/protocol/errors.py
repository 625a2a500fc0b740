"""RES error values: one ``ResError`` type with string codes, and the predefined errors.

Used by every layer. The exception tree is deliberately flat::

    Exception
     └── ResError            a RES error object {code, message, data}; what clients and services see

Anything else that goes wrong while serving a request is mapped once, at the edge, with
``to_res_error`` into ``system.internalError``.
"""

from __future__ import annotations

from typing import Any

_MISSING: Any = object()


class ResError(Exception):
    """A RES error object. Immutable by convention; compare by ``code``."""

    __slots__ = ("code", "data", "message")

    def __init__(self, code: str, message: str, data: Any = _MISSING) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.data = data

    def copy(self) -> ResError:
        """A new instance of this error: what to raise in place of a predefined one (``ERR_*``).
        Those are shared, and raising an instance chains the new traceback onto the one it carries,
        so a predefined error raised itself would keep every frame that ever raised it alive (with
        the connection and request in them) for as long as the process runs."""
        return ResError(self.code, self.message, self.data)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not _MISSING:
            out["data"] = self.data
        return out

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> ResError:
        """Build from a service error object already checked to have a string (or absent) code."""
        data = obj.get("data", _MISSING)
        message = obj.get("message")
        return cls(obj.get("code") or "", message if isinstance(message, str) else "", data)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ResError) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash((self.code, self.message))

    def __repr__(self) -> str:
        return f"ResError({self.code!r}, {self.message!r})"


NOT_FOUND = "system.notFound"
INVALID_PARAMS = "system.invalidParams"
INVALID_QUERY = "system.invalidQuery"
INTERNAL_ERROR = "system.internalError"
METHOD_NOT_FOUND = "system.methodNotFound"
ACCESS_DENIED = "system.accessDenied"
TIMEOUT = "system.timeout"
NO_SUBSCRIPTION = "system.noSubscription"
INVALID_REQUEST = "system.invalidRequest"
UNSUPPORTED_PROTOCOL = "system.unsupportedProtocol"
SUBJECT_TOO_LONG = "system.subjectTooLong"
DELETED = "system.deleted"
SUBSCRIPTION_LIMIT_EXCEEDED = "system.subscriptionLimitExceeded"
#: pyresgate extension: a connection has ``wsMaxPendingRequests`` requests unanswered already.
REQUEST_LIMIT_EXCEEDED = "system.requestLimitExceeded"
BAD_REQUEST = "system.badRequest"
METHOD_NOT_ALLOWED = "system.methodNotAllowed"
SERVICE_UNAVAILABLE = "system.serviceUnavailable"
FORBIDDEN = "system.forbidden"
NOT_IMPLEMENTED = "system.notImplemented"

# The predefined errors. Shared: pass them around freely, but raise a copy (``ResError.copy``).
ERR_NOT_FOUND = ResError(NOT_FOUND, "Not found")
ERR_INVALID_PARAMS = ResError(INVALID_PARAMS, "Invalid parameters")
ERR_INVALID_QUERY = ResError(INVALID_QUERY, "Invalid query")
ERR_INTERNAL_ERROR = ResError(INTERNAL_ERROR, "Internal error")
ERR_METHOD_NOT_FOUND = ResError(METHOD_NOT_FOUND, "Method not found")
ERR_ACCESS_DENIED = ResError(ACCESS_DENIED, "Access denied")
ERR_TIMEOUT = ResError(TIMEOUT, "Request timeout")
ERR_NO_SUBSCRIPTION = ResError(NO_SUBSCRIPTION, "No subscription")
ERR_INVALID_REQUEST = ResError(INVALID_REQUEST, "Invalid request")
ERR_UNSUPPORTED_PROTOCOL = ResError(UNSUPPORTED_PROTOCOL, "Unsupported protocol")
ERR_SUBJECT_TOO_LONG = ResError(SUBJECT_TOO_LONG, "Subject too long")
ERR_DELETED = ResError(DELETED, "Deleted")
ERR_SUBSCRIPTION_LIMIT_EXCEEDED = ResError(SUBSCRIPTION_LIMIT_EXCEEDED, "Subscription limit exceeded")
ERR_REQUEST_LIMIT_EXCEEDED = ResError(REQUEST_LIMIT_EXCEEDED, "Pending request limit exceeded")
ERR_BAD_REQUEST = ResError(BAD_REQUEST, "Bad request")
ERR_METHOD_NOT_ALLOWED = ResError(METHOD_NOT_ALLOWED, "Method not allowed")
ERR_SERVICE_UNAVAILABLE = ResError(SERVICE_UNAVAILABLE, "Service unavailable")
ERR_FORBIDDEN = ResError(FORBIDDEN, "Forbidden")
ERR_FORBIDDEN_ORIGIN = ResError(FORBIDDEN, "Forbidden origin")
ERR_NOT_IMPLEMENTED = ResError(NOT_IMPLEMENTED, "Not implemented")
ERR_DISPOSING = ResError(INTERNAL_ERROR, "Internal error: disposing connection")


def internal_error(detail: str) -> ResError:
    """``system.internalError`` with a detail, as resgate reports malformed service data."""
    return ResError(INTERNAL_ERROR, f"Internal error: {detail}")


def caught(err: ResError) -> ResError:
    """``err``, once caught, without what its raise attached to it (traceback, context): for
    errors from code that may raise a predefined one itself, as service handlers may, so the next
    raise does not chain onto this one's frames (see ``ResError.copy``)."""
    err.__traceback__ = None
    err.__context__ = None
    err.__cause__ = None
    return err


def to_res_error(exc: BaseException) -> ResError:
    """Map any exception to a RES error; foreign exceptions become system.internalError."""
    if isinstance(exc, ResError):
        return exc
    return internal_error(str(exc) or type(exc).__name__)
