"""Custom resources checked against the ResgateCluster CRD's ``openAPIV3Schema`` with jsonschema, as
close to the API server as jsonschema goes; and the API server's defaulting of that schema.

What differs from the API server, and how it is bridged:

- Patterns are Go (RE2) regular expressions: a flag group such as ``(?i)`` may stand anywhere; Python's
  ``re`` wants it first, so ``pattern`` moves a leading ``^(?i)`` in front.
- Unknown fields: the API server refuses them when the client asks for strict field validation
  (kubectl's default); here every object schema with ``properties`` and without
  ``additionalProperties`` or ``x-kubernetes-preserve-unknown-fields`` refuses unknown keys.
- ``x-kubernetes-validations`` (CEL) are ignored here: the operator's ``spec.parse`` mirrors those
  rules (test_crd.py checks it refuses every CEL example), and the end-to-end tests prove CEL on a
  real API server.

Used by test_crd.py.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any

from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError
from jsonschema.validators import extend
from pyresgate_operator import crd


def go_pattern(pattern: str) -> str:
    """A Go regular expression in Python's syntax (only the differences the CRD uses)."""
    match = re.match(r"^\^(\(\?[a-z]+\))", pattern)
    if match:
        return match.group(1) + "^" + pattern[match.end() :]
    return pattern


def _pattern(
    validator: Any, pattern: str, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if isinstance(instance, str) and not re.search(go_pattern(pattern), instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _properties(
    validator: Any, properties: Mapping[str, Any], instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    yield from Draft7Validator.VALIDATORS["properties"](validator, properties, instance, schema)
    closed = "additionalProperties" not in schema and not schema.get("x-kubernetes-preserve-unknown-fields")
    if closed and isinstance(instance, Mapping):
        for key in instance:
            if key not in properties:
                yield ValidationError(f"unknown field {key!r}")


ApiServerLike = extend(Draft7Validator, {"pattern": _pattern, "properties": _properties})


@cache
def schema() -> dict[str, Any]:
    """The openAPIV3Schema of the CRD as generated (test_crd.py checks the file equals it)."""
    version = crd.crd()["spec"]["versions"][0]
    return version["schema"]["openAPIV3Schema"]  # type: ignore[no-any-return]


def errors(resource: Mapping[str, Any]) -> list[str]:
    """Why the API server's schema validation would refuse ``resource`` (empty when it passes)."""
    validator = ApiServerLike(schema())
    found = []
    for error in sorted(validator.iter_errors(resource), key=lambda error: list(error.absolute_path)):
        where = ".".join(str(part) for part in error.absolute_path) or "(root)"
        found.append(f"{where}: {error.message}")
    return found


def with_defaults(node: Mapping[str, Any], value: Any) -> Any:
    """``value`` with the schema's defaults filled in, as the API server stores it."""
    if isinstance(value, Mapping) and "properties" in node:
        out = dict(value)
        for key, prop in node["properties"].items():
            if key not in out and "default" in prop:
                out[key] = copy.deepcopy(prop["default"])
            if key in out:
                out[key] = with_defaults(prop, out[key])
        return out
    if isinstance(value, list) and "items" in node:
        return [with_defaults(node["items"], item) for item in value]
    return value


def walk(node: Mapping[str, Any], path: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every (path, schema) of the properties under ``node``, depth first."""
    for key, prop in (node.get("properties") or {}).items():
        yield f"{path}.{key}", prop
        yield from walk(prop, f"{path}.{key}")
    if "items" in node:
        yield from walk(node["items"], f"{path}[]")
