"""The ResgateCluster CRD: the file is what the generator writes; ``spec.gateway`` is the gateway's own
configuration model (keys, JSON types, limits the gateway enforces); every field is described; the
defaults are the operator's; the CRD is valid Kubernetes; example resources pass and invalid ones fail
(the schema's rules here with jsonschema, the CEL rules through the operator's own checks, which mirror
them; CEL itself is proven on a real API server by tests/operator/e2e).
"""

from __future__ import annotations

import math
import re
import types
import typing
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from pyresgate_operator import crd
from pyresgate_operator import spec as specs
from pyresgate_operator.spec import InvalidSpec

from gateway.config import Config, ConfigError, from_file_values
from tests.operator import crdschema, samples, strategies
from tests.operator.validation import K8S_VERSIONS, assert_valid

GATEWAY = crd.gateway_schema()["properties"]
_JSON_TYPES: dict[Any, str] = {int: "integer", str: "string", bool: "boolean", list[str]: "array"}


def _parse(spec_body: dict[str, Any]) -> specs.ClusterSpec:
    return specs.parse(spec_body, namespace=samples.NAMESPACE, default_image=samples.DEFAULT_IMAGE)


# --- one source of truth -------------------------------------------------------------------------


def test_crd_file_is_the_generated_one() -> None:
    path = samples.ROOT / crd.CRD_PATH
    assert path.read_text(encoding="utf-8") == crd.render(), (
        f"{crd.CRD_PATH} differs from the generator's output: run `python -m pyresgate_operator.crd --write` "
        "from the repository root and commit the file"
    )


def _json_type(annotation: Any) -> str:
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        (inner,) = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return _json_type(inner)
    return _JSON_TYPES[annotation]


def test_spec_gateway_has_exactly_the_gateways_keys_minus_the_operators_with_their_json_types() -> None:
    fields = {field.alias: field for field in Config.model_fields.values()}
    assert specs.OPERATOR_OWNED_GATEWAY_KEYS <= fields.keys(), "an operator-owned key is no gateway key"
    assert GATEWAY.keys() == fields.keys() - specs.OPERATOR_OWNED_GATEWAY_KEYS
    for key, prop in GATEWAY.items():
        assert prop["type"] == _json_type(fields[key].annotation), key
        if prop["type"] == "array":
            assert prop["items"] == {"type": "string"}, key


def test_spec_gateway_publishes_the_limits_the_config_model_declares() -> None:
    fields = {field.alias: field for field in Config.model_fields.values()}
    for key, prop in GATEWAY.items():
        declared = fields[key].json_schema_extra or {}
        assert isinstance(declared, dict)
        for word in ("minimum", "maximum", "pattern"):
            assert prop.get(word) == declared.get(word), f"{key}.{word}"


def _accepted(key: str, value: Any) -> bool:
    try:
        from_file_values({key: value})
    except ConfigError:
        return False
    return True


NUMERIC = sorted(key for key, prop in GATEWAY.items() if prop["type"] == "integer")


@pytest.mark.parametrize("key", NUMERIC)
def test_gateway_accepts_every_published_limit_and_refuses_one_past_it(key: str) -> None:
    """What fails when the CRD's published limits and the gateway's validators drift apart."""
    prop = GATEWAY[key]
    assert "minimum" in prop, f"{key}: every numeric gateway setting has a lower bound"
    if "maximum" in prop:
        assert _accepted(key, prop["maximum"]), f"{key}: the schema's maximum {prop['maximum']} is refused"
        assert not _accepted(key, prop["maximum"] + 1), f"{key}: the gateway takes more than the schema"
    assert _accepted(key, prop["minimum"]), f"{key}: the schema's minimum {prop['minimum']} is refused"
    assert not _accepted(key, prop["minimum"] - 1), f"{key}: the gateway takes less than the schema"


@pytest.mark.parametrize("key", NUMERIC)
@pytest.mark.parametrize("value", [-(2**31), -1, 0, 1, 1000, 65535, 65536, 2**31])
def test_gateway_and_schema_agree_on_numeric_settings_far_from_the_limits(key: str, value: int) -> None:
    prop = GATEWAY[key]
    in_schema = prop.get("minimum", -math.inf) <= value <= prop.get("maximum", math.inf)
    if key == "port" and value == 9090 or key == "adminPort" and value == 8080:
        pytest.skip("the default of the other port: a conflict, not a limit")
    assert _accepted(key, value) == in_schema, f"{key}={value}: gateway and schema disagree"


@pytest.mark.parametrize("value", ["json", "JSON", "jsonflat", "JsonFlat", "xml", "", "json ", "jsonflatx"])
def test_gateway_and_schema_agree_on_api_encoding(value: str) -> None:
    pattern = crdschema.go_pattern(GATEWAY["apiEncoding"]["pattern"])
    assert _accepted("apiEncoding", value) == bool(re.search(pattern, value))


def test_every_schema_property_is_described() -> None:
    undescribed = [
        path
        for path, prop in crdschema.walk(crdschema.schema())
        # The API server owns metadata's schema (ObjectMeta); kubectl explain describes it from there.
        if path != ".metadata" and not prop.get("description")
    ]
    assert undescribed == []


def test_defaults_in_the_crd_are_the_ones_the_operator_falls_back_to() -> None:
    """The operator reads hand-written specs (tests) and API-server-defaulted ones alike."""
    spec_schema = crdschema.schema()["properties"]["spec"]
    partial = {
        "autoscaling": {"maxReplicas": 6, "targetCPUUtilization": 50, "scaleDown": {}, "rebalance": {}},
        "tracing": {"otlpEndpoint": "http://otel:4318"},
        "metrics": {"serviceMonitor": {}},
        "networkPolicy": {},
        "image": {},
        "service": {},
        "disruption": {},
        "nats": {"urls": [samples.NATS_URL], "credentialsSecret": {"name": "creds"}},
    }
    for body in (
        samples.minimal_spec(),
        partial,
        *(samples.example(name)["spec"] for name in ("full", "serviceref")),
    ):
        defaulted = crdschema.with_defaults(spec_schema, body)
        assert _parse(defaulted) == _parse(body), f"defaults differ for {body}"


# --- the CRD as a Kubernetes object ----------------------------------------------------------------


def test_crd_is_valid_kubernetes() -> None:
    assert_valid(crd.crd(), K8S_VERSIONS)


def test_crd_serves_scale_and_status_and_prints_the_useful_columns() -> None:
    version = crd.crd()["spec"]["versions"][0]
    assert version["subresources"] == {
        "status": {},
        "scale": {
            "specReplicasPath": ".spec.replicas",
            "statusReplicasPath": ".status.replicas",
            "labelSelectorPath": ".status.selector",
        },
    }
    assert [column["name"] for column in version["additionalPrinterColumns"]] == [
        "Desired",
        "Ready",
        "NATS",
        "Status",
        "Age",
    ]
    assert crd.crd()["spec"]["names"]["shortNames"] == ["rgc"]


# --- example resources -----------------------------------------------------------------------------

EXAMPLES = sorted(samples.EXAMPLES.glob("*.yaml"))
INVALID = sorted(samples.INVALID.glob("*.yaml"))


def test_there_are_examples() -> None:
    assert {path.name for path in EXAMPLES} >= {
        "resgatecluster-minimal.yaml",
        "resgatecluster-full.yaml",
        "resgatecluster-serviceref.yaml",
    }
    assert len(INVALID) >= 20


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_examples_pass_the_schema_and_the_operators_checks(path: Path) -> None:
    resource = samples.load(path)
    assert crdschema.errors(resource) == []
    _parse(resource["spec"])


def test_the_examples_together_set_every_field_of_the_spec() -> None:
    spec_schema = crdschema.schema()["properties"]["spec"]
    wanted = {path for path, _ in crdschema.walk(spec_schema)}
    present: set[str] = set()

    def collect(node: dict[str, Any], value: Any, path: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                prop = (node.get("properties") or {}).get(key)
                if prop is not None:
                    present.add(f"{path}.{key}")
                    collect(prop, item, f"{path}.{key}")
        elif isinstance(value, list) and "items" in node:
            for item in value:
                collect(node["items"], item, f"{path}[]")

    for path in EXAMPLES:
        collect(spec_schema, samples.load(path)["spec"], "")
    assert sorted(wanted - present) == []


def _expectations(path: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^# (Breaks|expect-schema|expect-cel|expect-operator): (.+)$", line)
        if match:
            found.setdefault(match.group(1), []).append(match.group(2))
    return found


def _cel_messages(node: dict[str, Any]) -> set[str]:
    messages = {rule["message"] for rule in node.get("x-kubernetes-validations") or []}
    for _, prop in crdschema.walk(node):
        messages |= {rule["message"] for rule in prop.get("x-kubernetes-validations") or []}
    return messages


@pytest.mark.parametrize("path", INVALID, ids=lambda path: path.name)
def test_invalid_resources_are_refused_for_the_rule_their_comment_names(path: Path) -> None:
    expect = _expectations(path)
    assert "Breaks" in expect, f"{path.name}: say which rule it breaks in a '# Breaks:' comment"
    assert expect.keys() & {"expect-schema", "expect-cel", "expect-operator"}, f"{path.name}: no expectation"
    resource = samples.load(path)
    errors = crdschema.errors(resource)
    if "expect-schema" in expect:
        for fragment in expect["expect-schema"]:
            assert any(error.startswith(fragment) for error in errors), f"{path.name}: {errors}"
    else:
        # Only a CEL rule or the operator refuses it: the rest of the resource must be fine.
        assert errors == [], f"{path.name}"
    for message in expect.get("expect-cel", []):
        assert message in _cel_messages(crdschema.schema()), f"{path.name}: no CEL rule says {message!r}"
        assert "expect-operator" in expect, (
            f"{path.name}: jsonschema skips CEL, so the operator must refuse it"
        )
    if "expect-operator" in expect:
        with pytest.raises(InvalidSpec) as caught:
            _parse(resource["spec"])
        for fragment in expect["expect-operator"]:
            assert fragment in str(caught.value), f"{path.name}: {caught.value}"


def test_every_cel_rule_has_an_invalid_example() -> None:
    covered = {message for path in INVALID for message in _expectations(path).get("expect-cel", [])}
    assert _cel_messages(crdschema.schema()) - covered == set()


def test_the_schema_check_used_here_refuses_what_it_should() -> None:
    """The jsonschema stand-in is not vacuous: a misspelt field, a wrong type and a bad pattern fail."""
    good = samples.example("minimal")
    assert crdschema.errors(good) == []
    assert crdschema.errors({**good, "spec": {**good["spec"], "replica": 2}}) == [
        "spec: unknown field 'replica'"
    ]
    assert crdschema.errors({**good, "spec": {**good["spec"], "replicas": "2"}}) == [
        "spec.replicas: '2' is not of type 'integer'"
    ]
    tolerations = {"podTemplate": {"tolerations": [{"anything": "goes"}]}}  # preserve-unknown-fields
    assert crdschema.errors({**good, "spec": {**good["spec"], **tolerations}}) == []


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
@given(spec_body=strategies.cluster_specs)
def test_generated_specs_pass_the_schema_and_read_the_same_with_the_api_servers_defaults(
    spec_body: dict[str, Any],
) -> None:
    resource = samples.resgate_cluster(spec_body)
    del resource["metadata"]["uid"], resource["metadata"]["generation"], resource["metadata"]["annotations"]
    assert crdschema.errors(resource) == []
    defaulted = crdschema.with_defaults(crdschema.schema()["properties"]["spec"], spec_body)
    assert _parse(defaulted) == _parse(spec_body)
