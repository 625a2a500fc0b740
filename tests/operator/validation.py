"""Offline validation of built objects: kubernetes-validate's OpenAPI schemas (strict: unknown fields are
errors) for several Kubernetes versions, and the syntax rules of names and labels that those schemas do
not carry (the API server checks them on admission).

Used by test_build.py and test_crd.py.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import kubernetes_validate

#: Kubernetes versions every built object must be valid for (the supported range of the operator).
K8S_VERSIONS = ("1.34.0", "1.35.0", "1.36.0")

# apimachinery's validation: qualified names (label keys) and label values.
_NAME_PART = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_DNS_SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_LABEL_VALUE_RE = re.compile(rf"^({_NAME_PART})?$")
_QUALIFIED_NAME_RE = re.compile(rf"^(({_DNS_SUBDOMAIN})/)?{_NAME_PART}$")
_DNS_LABEL_RE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def assert_valid(obj: Mapping[str, Any], versions: tuple[str, ...] = K8S_VERSIONS) -> None:
    """``obj`` passes kubernetes-validate (strict) for every version; the error says where it fails."""
    for version in versions:
        try:
            kubernetes_validate.validate(dict(obj), version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(part) for part in exc.absolute_path) or "(root)"
            raise AssertionError(
                f"{obj.get('kind')} {obj.get('metadata', {}).get('name')} is invalid for Kubernetes "
                f"{version}: {where}: {exc.message}"
            ) from None


def assert_labels_valid(labels: Mapping[str, str]) -> None:
    for key, value in labels.items():
        assert _QUALIFIED_NAME_RE.match(key) and len(key.rpartition("/")[2]) <= 63, f"bad label key {key!r}"
        assert _LABEL_VALUE_RE.match(value) and len(value) <= 63, f"bad value of label {key}: {value!r}"


def assert_service_name_valid(name: str) -> None:
    """Service names are DNS-1035 labels (at most 63 characters, starting with a letter)."""
    assert _DNS_LABEL_RE.match(name) and len(name) <= 63, f"bad Service name {name!r}"
