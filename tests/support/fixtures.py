"""Fixture resources and error constants of the conformance catalog (§3.4, §4).

The fake service answers ``get.<rid>`` for these rids; ``get_reply(rid)`` builds that reply payload. Client
tests compare against the same data (``MODELS[rid]``) or the client-visible forms below.
"""

from __future__ import annotations

import copy
from typing import Any

# §3.4 error constants (exact JSON)
E_ACCESS = {"code": "system.accessDenied", "message": "Access denied"}
E_INTERNAL = {"code": "system.internalError", "message": "Internal error"}
E_DISPOSING = {"code": "system.internalError", "message": "Internal error: disposing connection"}
E_INVPARAMS = {"code": "system.invalidParams", "message": "Invalid parameters"}
E_METHODNF = {"code": "system.methodNotFound", "message": "Method not found"}
E_NOSUB = {"code": "system.noSubscription", "message": "No subscription"}
E_NOTFOUND = {"code": "system.notFound", "message": "Not found"}
E_TIMEOUT = {"code": "system.timeout", "message": "Request timeout"}
E_INVREQ = {"code": "system.invalidRequest", "message": "Invalid request"}
E_UNSUPP = {"code": "system.unsupportedProtocol", "message": "Unsupported protocol"}
E_TOOLONG = {"code": "system.subjectTooLong", "message": "Subject too long"}
E_DELETED = {"code": "system.deleted", "message": "Deleted"}
E_BADREQ = {"code": "system.badRequest", "message": "Bad request"}
E_METHODNA = {"code": "system.methodNotAllowed", "message": "Method not allowed"}
E_UNAVAIL = {"code": "system.serviceUnavailable", "message": "Service unavailable"}
E_FORBIDDEN_ORIGIN = {"code": "system.forbidden", "message": "Forbidden origin"}
E_FORBIDDEN = {"code": "system.forbidden", "message": "Forbidden"}
E_NOTIMPL = {"code": "system.notImplemented", "message": "Not implemented"}
E_CUSTOM = {"code": "system.custom", "message": "Custom"}
E_CUSTOMERR = {"code": "custom.error", "message": "Custom error"}

#: Protocol version the gateway reports in the version handshake.
PROTOCOL = "1.2.3"
#: Payload of the CUSTOM macro's event.
CUSTOM_PAYLOAD = {"foo": "bar"}
#: Unsubscribe event data.
UNSUB_ACCESS = {"reason": E_ACCESS}
UNSUB_DELETED = {"reason": E_DELETED}

MODELS: dict[str, Any] = {
    "test.model": {"string": "foo", "int": 42, "bool": True, "null": None},
    "test.model.parent": {"name": "parent", "child": {"rid": "test.model"}},
    "test.model.secondparent": {"name": "secondparent", "child": {"rid": "test.model"}},
    "test.model.grandparent": {"name": "grandparent", "child": {"rid": "test.model.parent"}},
    "test.model.brokenchild": {"name": "brokenchild", "child": {"rid": "test.err.notFound"}},
    "test.model.soft": {"name": "soft", "child": {"rid": "test.model", "soft": True}},
    "test.model.soft.parent": {"name": "softparent", "child": {"rid": "test.model.soft", "soft": False}},
    "test.model.data": {
        "name": "data",
        "primitive": {"data": 12},
        "object": {"data": {"foo": ["bar"]}},
        "array": {"data": [{"foo": "bar"}]},
    },
    "test.model.data.parent": {"name": "dataparent", "child": {"rid": "test.model.data"}},
    "test.model.query.parent": {"name": "queryparent", "child": {"rid": "test.model?foo=bar"}},
    "test.m.a": {"a": {"rid": "test.m.a"}},
    "test.m.b": {"c": {"rid": "test.m.c"}},
    "test.m.c": {"b": {"rid": "test.m.b"}},
    "test.m.d": {"e": {"rid": "test.m.e"}, "f": {"rid": "test.m.f"}},
    "test.m.e": {"d": {"rid": "test.m.d"}},
    "test.m.f": {"d": {"rid": "test.m.d"}},
    "test.m.g": {"e": {"rid": "test.m.e"}, "f": {"rid": "test.m.f"}},
    "test.m.h": {"e": {"rid": "test.m.e"}},
}

COLLECTIONS: dict[str, Any] = {
    "test.collection": ["foo", 42, True, None],
    "test.collection.parent": ["parent", {"rid": "test.collection"}],
    "test.collection.secondparent": ["secondparent", {"rid": "test.collection"}],
    "test.collection.grandparent": ["grandparent", {"rid": "test.collection.parent"}],
    "test.collection.brokenchild": ["brokenchild", {"rid": "test.err.notFound"}],
    "test.collection.soft": ["soft", {"rid": "test.collection", "soft": True}],
    "test.collection.soft.parent": ["softparent", {"rid": "test.collection.soft", "soft": False}],
    "test.collection.data": ["data", {"data": 12}, {"data": {"foo": ["bar"]}}, {"data": [{"foo": "bar"}]}],
    "test.collection.data.parent": ["dataparent", {"rid": "test.collection.data"}],
    "test.collection.empty": [],
    "test.c.a": [{"rid": "test.c.a"}],
    "test.c.b": [{"rid": "test.c.c"}],
    "test.c.c": [{"rid": "test.c.b"}],
    "test.c.d": [{"rid": "test.c.e"}, {"rid": "test.c.f"}],
    "test.c.e": [{"rid": "test.c.d"}],
    "test.c.f": [{"rid": "test.c.d"}],
    "test.c.g": [{"rid": "test.c.e"}, {"rid": "test.c.f"}],
    "test.c.h": [{"rid": "test.c.e"}],
}

ERRORS: dict[str, Any] = {
    "test.err.notFound": E_NOTFOUND,
    "test.err.internalError": E_INTERNAL,
    "test.err.timeout": E_TIMEOUT,
}

#: Client-visible forms for protocol >= 1.2.1 where they differ from the service data (primitive data
#: values unwrapped).
CLIENT_MODELS: dict[str, Any] = {
    "test.model.data": {
        "name": "data",
        "primitive": 12,
        "object": {"data": {"foo": ["bar"]}},
        "array": {"data": [{"foo": "bar"}]},
    },
}
CLIENT_COLLECTIONS: dict[str, Any] = {
    "test.collection.data": ["data", 12, {"data": {"foo": ["bar"]}}, {"data": [{"foo": "bar"}]}],
}
#: Client-visible forms for protocol 1.2.0 clients (soft refs → rid string, object/array data → "[Data]").
LEGACY_120_MODELS: dict[str, Any] = {
    "test.model.soft": {"name": "soft", "child": "test.model"},
    "test.model.data": {"name": "data", "primitive": 12, "object": "[Data]", "array": "[Data]"},
}
LEGACY_120_COLLECTIONS: dict[str, Any] = {
    "test.collection.soft": ["soft", "test.collection"],
    "test.collection.data": ["data", 12, "[Data]", "[Data]"],
}


def get_result(rid: str) -> dict[str, Any]:
    """The ``result`` of a successful get for a model or collection fixture."""
    if rid in MODELS:
        return {"model": copy.deepcopy(MODELS[rid])}
    if rid in COLLECTIONS:
        return {"collection": copy.deepcopy(COLLECTIONS[rid])}
    raise KeyError(f"{rid!r} is not a model/collection fixture")


def get_reply(rid: str) -> dict[str, Any]:
    """The whole reply payload the fake service sends for ``get.<rid>``."""
    if rid in ERRORS:
        return {"error": dict(ERRORS[rid])}
    return {"result": get_result(rid)}


def client_model(rid: str) -> Any:
    """Model data as a latest-protocol client receives it."""
    return copy.deepcopy(CLIENT_MODELS.get(rid, MODELS[rid]))


def client_collection(rid: str) -> Any:
    return copy.deepcopy(CLIENT_COLLECTIONS.get(rid, COLLECTIONS[rid]))


def resource_set(*rids: str, errors: dict[str, Any] | None = None) -> dict[str, Any]:
    """A client resource set ``{"models":…, "collections":…, "errors":…}`` (latest protocol) holding the
    fixture data of ``rids``; keys only present when non-empty."""
    out: dict[str, Any] = {}
    for rid in rids:
        if rid in MODELS:
            out.setdefault("models", {})[rid] = client_model(rid)
        elif rid in COLLECTIONS:
            out.setdefault("collections", {})[rid] = client_collection(rid)
        elif rid in ERRORS:
            out.setdefault("errors", {})[rid] = dict(ERRORS[rid])
        else:
            raise KeyError(f"{rid!r} is not a fixture")
    for rid, err in (errors or {}).items():
        out.setdefault("errors", {})[rid] = err
    return out


#: HTTP GET bodies of the fixtures (catalog §5.14, HGET-02): rid -> (json, jsonflat) encodings.
HTTP_GET_BODIES: dict[str, tuple[str, str]] = {
    "test.model": (
        '{"string":"foo","int":42,"bool":true,"null":null}',
        '{"string":"foo","int":42,"bool":true,"null":null}',
    ),
    "test.model.parent": (
        '{"name":"parent","child":{"href":"/api/test/model","model":{"string":"foo","int":42,"bool":true,"null":null}}}',
        '{"name":"parent","child":{"string":"foo","int":42,"bool":true,"null":null}}',
    ),
    "test.model.grandparent": (
        '{"name":"grandparent","child":{"href":"/api/test/model/parent","model":{"name":"parent","child":{"href":"/api/test/model","model":{"string":"foo","int":42,"bool":true,"null":null}}}}}',
        '{"name":"grandparent","child":{"name":"parent","child":{"string":"foo","int":42,"bool":true,"null":null}}}',
    ),
    "test.model.secondparent": (
        '{"name":"secondparent","child":{"href":"/api/test/model","model":{"string":"foo","int":42,"bool":true,"null":null}}}',
        '{"name":"secondparent","child":{"string":"foo","int":42,"bool":true,"null":null}}',
    ),
    "test.model.brokenchild": (
        '{"name":"brokenchild","child":{"href":"/api/test/err/notFound","error":{"code":"system.notFound","message":"Not found"}}}',
        '{"name":"brokenchild","child":{"code":"system.notFound","message":"Not found"}}',
    ),
    "test.model.soft": (
        '{"name":"soft","child":{"href":"/api/test/model"}}',
        '{"name":"soft","child":{"href":"/api/test/model"}}',
    ),
    "test.model.soft.parent": (
        '{"name":"softparent","child":{"href":"/api/test/model/soft","model":{"name":"soft","child":{"href":"/api/test/model"}}}}',
        '{"name":"softparent","child":{"name":"soft","child":{"href":"/api/test/model"}}}',
    ),
    "test.model.data": (
        '{"name":"data","primitive":12,"object":{"foo":["bar"]},"array":[{"foo":"bar"}]}',
        '{"name":"data","primitive":12,"object":{"foo":["bar"]},"array":[{"foo":"bar"}]}',
    ),
    "test.model.data.parent": (
        '{"name":"dataparent","child":{"href":"/api/test/model/data","model":{"name":"data","primitive":12,"object":{"foo":["bar"]},"array":[{"foo":"bar"}]}}}',
        '{"name":"dataparent","child":{"name":"data","primitive":12,"object":{"foo":["bar"]},"array":[{"foo":"bar"}]}}',
    ),
    "test.m.a": (
        '{"a":{"href":"/api/test/m/a"}}',
        '{"a":{"href":"/api/test/m/a"}}',
    ),
    "test.m.b": (
        '{"c":{"href":"/api/test/m/c","model":{"b":{"href":"/api/test/m/b"}}}}',
        '{"c":{"b":{"href":"/api/test/m/b"}}}',
    ),
    "test.m.d": (
        '{"e":{"href":"/api/test/m/e","model":{"d":{"href":"/api/test/m/d"}}},"f":{"href":"/api/test/m/f","model":{"d":{"href":"/api/test/m/d"}}}}',
        '{"e":{"d":{"href":"/api/test/m/d"}},"f":{"d":{"href":"/api/test/m/d"}}}',
    ),
    "test.m.g": (
        '{"e":{"href":"/api/test/m/e","model":{"d":{"href":"/api/test/m/d","model":{"e":{"href":"/api/test/m/e"},"f":{"href":"/api/test/m/f","model":{"d":{"href":"/api/test/m/d"}}}}}}},"f":{"href":"/api/test/m/f","model":{"d":{"href":"/api/test/m/d","model":{"e":{"href":"/api/test/m/e","model":{"d":{"href":"/api/test/m/d"}}},"f":{"href":"/api/test/m/f"}}}}}}',
        '{"e":{"d":{"e":{"href":"/api/test/m/e"},"f":{"d":{"href":"/api/test/m/d"}}}},"f":{"d":{"e":{"d":{"href":"/api/test/m/d"}},"f":{"href":"/api/test/m/f"}}}}',
    ),
    "test.m.h": (
        '{"e":{"href":"/api/test/m/e","model":{"d":{"href":"/api/test/m/d","model":{"e":{"href":"/api/test/m/e"},"f":{"href":"/api/test/m/f","model":{"d":{"href":"/api/test/m/d"}}}}}}}}',
        '{"e":{"d":{"e":{"href":"/api/test/m/e"},"f":{"d":{"href":"/api/test/m/d"}}}}}',
    ),
    "test.collection": (
        '["foo",42,true,null]',
        '["foo",42,true,null]',
    ),
    "test.collection.parent": (
        '["parent",{"href":"/api/test/collection","collection":["foo",42,true,null]}]',
        '["parent",["foo",42,true,null]]',
    ),
    "test.collection.grandparent": (
        '["grandparent",{"href":"/api/test/collection/parent","collection":["parent",{"href":"/api/test/collection","collection":["foo",42,true,null]}]}]',
        '["grandparent",["parent",["foo",42,true,null]]]',
    ),
    "test.collection.secondparent": (
        '["secondparent",{"href":"/api/test/collection","collection":["foo",42,true,null]}]',
        '["secondparent",["foo",42,true,null]]',
    ),
    "test.collection.brokenchild": (
        '["brokenchild",{"href":"/api/test/err/notFound","error":{"code":"system.notFound","message":"Not found"}}]',
        '["brokenchild",{"code":"system.notFound","message":"Not found"}]',
    ),
    "test.collection.soft": (
        '["soft",{"href":"/api/test/collection"}]',
        '["soft",{"href":"/api/test/collection"}]',
    ),
    "test.collection.soft.parent": (
        '["softparent",{"href":"/api/test/collection/soft","collection":["soft",{"href":"/api/test/collection"}]}]',
        '["softparent",["soft",{"href":"/api/test/collection"}]]',
    ),
    "test.collection.data": (
        '["data",12,{"foo":["bar"]},[{"foo":"bar"}]]',
        '["data",12,{"foo":["bar"]},[{"foo":"bar"}]]',
    ),
    "test.collection.data.parent": (
        '["dataparent",{"href":"/api/test/collection/data","collection":["data",12,{"foo":["bar"]},[{"foo":"bar"}]]}]',
        '["dataparent",["data",12,{"foo":["bar"]},[{"foo":"bar"}]]]',
    ),
    "test.c.a": (
        '[{"href":"/api/test/c/a"}]',
        '[{"href":"/api/test/c/a"}]',
    ),
    "test.c.b": (
        '[{"href":"/api/test/c/c","collection":[{"href":"/api/test/c/b"}]}]',
        '[[{"href":"/api/test/c/b"}]]',
    ),
    "test.c.d": (
        '[{"href":"/api/test/c/e","collection":[{"href":"/api/test/c/d"}]},{"href":"/api/test/c/f","collection":[{"href":"/api/test/c/d"}]}]',
        '[[{"href":"/api/test/c/d"}],[{"href":"/api/test/c/d"}]]',
    ),
    "test.c.g": (
        '[{"href":"/api/test/c/e","collection":[{"href":"/api/test/c/d","collection":[{"href":"/api/test/c/e"},{"href":"/api/test/c/f","collection":[{"href":"/api/test/c/d"}]}]}]},{"href":"/api/test/c/f","collection":[{"href":"/api/test/c/d","collection":[{"href":"/api/test/c/e","collection":[{"href":"/api/test/c/d"}]},{"href":"/api/test/c/f"}]}]}]',
        '[[[{"href":"/api/test/c/e"},[{"href":"/api/test/c/d"}]]],[[[{"href":"/api/test/c/d"}],{"href":"/api/test/c/f"}]]]',
    ),
    "test.c.h": (
        '[{"href":"/api/test/c/e","collection":[{"href":"/api/test/c/d","collection":[{"href":"/api/test/c/e"},{"href":"/api/test/c/f","collection":[{"href":"/api/test/c/d"}]}]}]}]',
        '[[[{"href":"/api/test/c/e"},[{"href":"/api/test/c/d"}]]]]',
    ),
}


#: Malformed client request methods (catalog §5.16, INV-01.01..24), each answered system.invalidRequest.
INVALID_METHODS = [
    "",
    "test",
    "new",
    "unknown.test",
    "call.test",
    "call.test",
    "call.test.methöd",
    "call.test?foo",
    "call.test.method?foo",
    "auth.test",
    "subscribe..test.model",
    "subscribe.test..model",
    "subscribe.test.model.",
    ".subscribe.test.model",
    "subscribe?foo=bar",
    "subscribe.test\tmodel",
    "subscribe.test\nmodel",
    "subscribe.test\rmodel",
    "subscribe.test model",
    "subscribe.test\ufffdmodel",
    "subscribe.täst.model",
    "subscribe.test.*.model",
    "subscribe.test.>.model",
    "subscribe.test.model.>",
]
