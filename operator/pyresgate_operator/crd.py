"""The ResgateCluster CustomResourceDefinition, generated: ``python -m pyresgate_operator.crd``.

The output is the one CRD file of the project (``operator/config/crd/``); the Helm chart and
``manifests/`` carry copies and tests check they are identical. ``spec.gateway`` is generated from
the gateway's own configuration model (``gateway.config.Config``: keys, types, defaults, limits), minus
the keys the operator sets itself, so the custom resource accepts exactly what the gateway does.
Defaults come from ``spec``'s constants, the ones the operator falls back to.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from gateway.config import Config
from pyresgate_operator import spec

CRD_NAME = f"{spec.PLURAL}.{spec.GROUP}"
#: The CRD file, relative to the repository root.
CRD_PATH = Path("operator/config/crd") / f"{CRD_NAME}.yaml"
_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_QUANTITY = {"anyOf": [{"type": "integer"}, {"type": "string"}], "x-kubernetes-int-or-string": True}


def _obj(description: str, properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "object", "description": description, "properties": properties, **extra}


def _string_map(description: str) -> dict[str, Any]:
    return {"type": "object", "description": description, "additionalProperties": {"type": "string"}}


def _free_object(description: str) -> dict[str, Any]:
    return {"type": "object", "description": description, "x-kubernetes-preserve-unknown-fields": True}


def gateway_schema() -> dict[str, Any]:
    """``spec.gateway``: every gateway setting the user may set, from the Config model."""
    model = Config.model_json_schema(by_alias=True)["properties"]
    properties: dict[str, Any] = {}
    for key, prop in model.items():
        if key in spec.OPERATOR_OWNED_GATEWAY_KEYS:
            continue
        out = {name: value for name, value in prop.items() if name not in ("title", "anyOf", "default")}
        if "anyOf" in prop:  # Optional[str]: null means unset, so the CRD simply omits the key
            out["type"] = next(item["type"] for item in prop["anyOf"] if item["type"] != "null")
        if prop.get("type") == "array":
            out["items"] = {"type": prop["items"]["type"]}
        if prop.get("default") is not None:
            out["description"] = f"{prop['description']} (gateway default: {json.dumps(prop['default'])})"
        properties[key] = out
    return _obj(
        "Gateway settings: resgate's configuration keys, as in a resgate/pyresgate JSON config file. "
        "Unset keys keep the gateway's defaults. NATS, TLS and tracing settings come from spec.nats and "
        "spec.tracing instead.",
        dict(sorted(properties.items())),
        **{
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.adminPort) || self.adminPort != 0",
                    "message": "adminPort must not be 0: probes and the operator use the admin port",
                },
                {
                    "rule": "!has(self.port) || !has(self.adminPort) || self.port != self.adminPort",
                    "message": "port and adminPort must differ",
                },
            ]
        },
    )


def nats_schema() -> dict[str, Any]:
    schemes = "|".join(spec.NATS_URL_SCHEMES)
    secret_name = {
        "type": "string",
        "description": "Name of a Secret in the ResgateCluster's namespace.",
        "pattern": r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        "maxLength": 253,
    }
    return _obj(
        "How the gateways reach NATS: a list of URLs or a Service, plus optional credentials and TLS.",
        {
            "urls": {
                "type": "array",
                "description": f"NATS server URLs ({schemes}://host:port); the gateways try them in turn.",
                "minItems": 1,
                "maxItems": 32,
                "items": {"type": "string", "maxLength": 512, "pattern": rf"^({schemes})://[^\s,]+$"},
            },
            "serviceRef": _obj(
                "A NATS Service; the gateways use its cluster DNS name.",
                {
                    "name": {
                        "type": "string",
                        "description": "Service name.",
                        "pattern": _DNS_LABEL,
                        "maxLength": 63,
                    },
                    "namespace": {
                        "type": "string",
                        "description": "Service namespace (default: the ResgateCluster's).",
                        "pattern": _DNS_LABEL,
                        "maxLength": 63,
                    },
                    "port": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": 65535,
                        "description": "Client "
                        "port (default: the Service's port named 'client', else its first port).",
                    },
                },
                required=["name"],
            ),
            "credentialsSecret": _obj(
                "Secret holding a NATS user credentials (.creds) file, mounted read-only.",
                {
                    "name": secret_name,
                    "key": {
                        "type": "string",
                        "default": spec.DEFAULT_CREDS_KEY,
                        "description": "Key of the .creds file in the Secret.",
                    },
                },
                required=["name"],
            ),
            "tlsSecret": _obj(
                "Secret with the NATS client certificate (tls.crt, tls.key) and CA (ca.crt), mounted read-only.",
                {"name": secret_name},
                required=["name"],
            ),
        },
        **{
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.urls) != has(self.serviceRef)",
                    "message": "set exactly one of urls and serviceRef",
                }
            ]
        },
    )


def tracing_schema() -> dict[str, Any]:
    return _obj(
        "OpenTelemetry tracing of the gateways, exported over OTLP (Jaeger's collector accepts it).",
        {
            "otlpEndpoint": {
                "type": "string",
                "pattern": r"^https?://[^\s]+$",
                "maxLength": 512,
                "description": "OTLP endpoint, e.g. http://jaeger-collector.observability:4318.",
            },
            "protocol": {
                "type": "string",
                "enum": list(spec.OTLP_PROTOCOLS),
                "default": spec.DEFAULT_OTLP_PROTOCOL,
                "description": "OTLP protocol (4318 is http/protobuf, 4317 grpc).",
            },
            "samplerRatio": {
                "type": "number",
                "minimum": 0,
                "maximum": 1,
                "default": spec.DEFAULT_SAMPLER_RATIO,
                "description": "Share of requests traced (parent-based ratio sampling).",
            },
            "serviceName": {
                "type": "string",
                "maxLength": 253,
                "description": "service.name of the spans (default: the ResgateCluster's name).",
            },
        },
        required=["otlpEndpoint"],
    )


def autoscaling_schema() -> dict[str, Any]:
    return _obj(
        "A HorizontalPodAutoscaler that scales this ResgateCluster through its scale subresource.",
        {
            "enabled": {
                "type": "boolean",
                "default": True,
                "description": "False removes the HPA and keeps the current replica count.",
            },
            "minReplicas": {
                "type": "integer",
                "minimum": 1,
                "default": spec.DEFAULT_MIN_REPLICAS,
                "description": "Fewest gateways.",
            },
            "maxReplicas": {
                "type": "integer",
                "minimum": 1,
                "maximum": 1000,
                "description": "Most gateways.",
            },
            "targetCPUUtilization": {
                "type": "integer",
                "minimum": 1,
                "maximum": 1000,
                "description": "Average CPU use, percent of the CPU request.",
            },
            "targetConnectionsPerPod": {
                "type": "integer",
                "minimum": 1,
                "description": "Average WebSocket "
                "connections per pod (a Pods metric: needs a custom metrics adapter).",
            },
            "scaleDown": _obj(
                "How fast gateways are removed.",
                {
                    "stabilizationSeconds": {
                        "type": "integer",
                        "minimum": 0,
                        "maximum": 3600,
                        "default": spec.DEFAULT_SCALE_DOWN_STABILIZATION,
                        "description": "Window of recommendations before scaling down.",
                    },
                    "maxPodsPerMinute": {
                        "type": "integer",
                        "minimum": 1,
                        "default": spec.DEFAULT_SCALE_DOWN_PODS_PER_MINUTE,
                        "description": "Pods removed per minute at most.",
                    },
                },
            ),
            "rebalance": _obj(
                "Moving WebSocket clients from busy to new gateways after a scale-out.",
                {
                    "enabled": {
                        "type": "boolean",
                        "default": False,
                        "description": "Ask the busiest pods to "
                        "close some connections (code 1001) so clients reconnect elsewhere.",
                    },
                    "tolerance": {
                        "type": "number",
                        "minimum": 0,
                        "maximum": 10,
                        "default": spec.DEFAULT_REBALANCE_TOLERANCE,
                        "description": "Allowed spread above the average connection count.",
                    },
                    "maxShedPerSecond": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": 100000,
                        "default": spec.DEFAULT_MAX_SHED_PER_SECOND,
                        "description": "Connections closed per second, all pods together.",
                    },
                },
            ),
        },
        required=["maxReplicas"],
        **{
            "x-kubernetes-validations": [
                {
                    "rule": "self.maxReplicas >= self.minReplicas",
                    "message": "maxReplicas must be at least minReplicas",
                },
                {
                    "rule": "has(self.targetCPUUtilization) || has(self.targetConnectionsPerPod)",
                    "message": "set targetCPUUtilization, targetConnectionsPerPod or both",
                },
            ]
        },
    )


def spec_schema() -> dict[str, Any]:
    return _obj(
        "Desired state of a set of pyresgate gateways. Only nats is required.",
        {
            "replicas": {
                "type": "integer",
                "minimum": 0,
                "maximum": 1000,
                "default": spec.DEFAULT_REPLICAS,
                "description": "Number of gateway pods (kubectl scale and the HPA set it).",
            },
            "image": _obj(
                "Gateway container image.",
                {
                    "repository": {
                        "type": "string",
                        "maxLength": 512,
                        "description": "Image repository (default: the operator's --gateway-image, else "
                        f"{spec.DEFAULT_IMAGE_REPOSITORY}).",
                    },
                    "tag": {
                        "type": "string",
                        "maxLength": 128,
                        "pattern": r"^[\w][\w.-]{0,127}$",
                        "description": "Image tag (default: the operator's own version).",
                    },
                    "pullPolicy": {
                        "type": "string",
                        "enum": list(spec.PULL_POLICIES),
                        "default": spec.DEFAULT_PULL_POLICY,
                        "description": "Image pull policy.",
                    },
                },
            ),
            "nats": nats_schema(),
            "gateway": gateway_schema(),
            "tracing": tracing_schema(),
            "resources": _obj(
                "Compute resources of the gateway container (default: requests cpu 250m, memory 128Mi; "
                "limits memory 512Mi). A CPU request is needed for CPU autoscaling.",
                {
                    "requests": {
                        "type": "object",
                        "description": "Requested resources.",
                        "additionalProperties": _QUANTITY,
                    },
                    "limits": {
                        "type": "object",
                        "description": "Resource limits.",
                        "additionalProperties": _QUANTITY,
                    },
                },
            ),
            "podTemplate": _obj(
                "Extra settings of the gateway pods.",
                {
                    "labels": _string_map("Extra pod labels (app.kubernetes.io/* are the operator's)."),
                    "annotations": _string_map("Extra pod annotations."),
                    "nodeSelector": _string_map("Node selector."),
                    "tolerations": {
                        "type": "array",
                        "description": "Tolerations.",
                        "items": _free_object("A toleration."),
                    },
                    "affinity": _free_object("Affinity rules (default: none; pods are spread across nodes)."),
                    "priorityClassName": {"type": "string", "description": "Priority class of the pods."},
                },
            ),
            "service": _obj(
                "The client Service (WebSocket and HTTP API).",
                {
                    "type": {
                        "type": "string",
                        "enum": list(spec.SERVICE_TYPES),
                        "default": spec.DEFAULT_SERVICE_TYPE,
                        "description": "Service type.",
                    },
                    "annotations": _string_map("Service annotations (e.g. for a cloud load balancer)."),
                },
            ),
            "disruption": _obj(
                "The PodDisruptionBudget of the gateways.",
                {
                    "maxUnavailable": {
                        **_QUANTITY,
                        "default": spec.DEFAULT_MAX_UNAVAILABLE,
                        "description": "Pods that may be down at once in voluntary disruptions.",
                    }
                },
            ),
            "unhealthyPodTimeout": {
                "type": "string",
                "default": spec.DEFAULT_UNHEALTHY_POD_TIMEOUT,
                "pattern": r"^(\d+h)?(\d+m)?(\d+s)?$",
                "description": "A pod unready this long while other gateways are ready is replaced (e.g. 90s, 5m).",
            },
            "preStopDelaySeconds": {
                "type": "integer",
                "minimum": 0,
                "maximum": 300,
                "default": spec.DEFAULT_PRESTOP_SECONDS,
                "description": "Seconds a stopping pod keeps serving while it leaves the Service's endpoints.",
            },
            "metrics": _obj(
                "Prometheus scraping of the gateways' admin /metrics.",
                {
                    "serviceMonitor": _obj(
                        "A prometheus-operator ServiceMonitor (created only when its CRD exists).",
                        {
                            "enabled": {
                                "type": "boolean",
                                "default": False,
                                "description": "Create the ServiceMonitor.",
                            },
                            "interval": {
                                "type": "string",
                                "default": spec.DEFAULT_SCRAPE_INTERVAL,
                                "pattern": r"^\d+(ms|s|m)$",
                                "description": "Scrape interval.",
                            },
                            "labels": _string_map("Labels for the Prometheus instance's selector."),
                        },
                    )
                },
            ),
            "networkPolicy": _obj(
                "A NetworkPolicy: clients may reach the client port; only the listed peers and the operator "
                "reach the admin port.",
                {
                    "enabled": {
                        "type": "boolean",
                        "default": False,
                        "description": "Create the NetworkPolicy.",
                    },
                    "adminFrom": {
                        "type": "array",
                        "description": "NetworkPolicyPeers allowed on the admin port (e.g. Prometheus).",
                        "items": _free_object("A NetworkPolicyPeer."),
                    },
                },
            ),
            "autoscaling": autoscaling_schema(),
        },
        required=["nats"],
    )


def status_schema() -> dict[str, Any]:
    condition = _obj(
        "A condition, per the Kubernetes API conventions.",
        {
            "type": {"type": "string", "description": "Ready, Progressing, Degraded or NatsConnected."},
            "status": {
                "type": "string",
                "enum": ["True", "False", "Unknown"],
                "description": "Condition status.",
            },
            "reason": {"type": "string", "description": "CamelCase reason."},
            "message": {"type": "string", "description": "Human-readable details."},
            "lastTransitionTime": {
                "type": "string",
                "format": "date-time",
                "description": "Last status change.",
            },
            "observedGeneration": {"type": "integer", "description": "Generation the condition was set for."},
        },
        required=["type", "status"],
    )
    integer = {"type": "integer"}
    return _obj(
        "Observed state, written by the operator.",
        {
            "observedGeneration": {**integer, "description": "Generation of the spec last reconciled."},
            "replicas": {**integer, "description": "Gateway pods that exist."},
            "readyReplicas": {**integer, "description": "Gateway pods ready (connected to NATS)."},
            "updatedReplicas": {**integer, "description": "Gateway pods running the current configuration."},
            "selector": {"type": "string", "description": "Label selector of the pods (scale subresource)."},
            "configHash": {"type": "string", "description": "Hash of everything the pods read."},
            "natsUrl": {"type": "string", "description": "NATS URLs the gateways use."},
            "restarts": {**integer, "description": "Container restarts of the current pods."},
            "podReplacements": {**integer, "description": "Pods the operator replaced (crash loop, stuck)."},
            "conditions": {
                "type": "array",
                "items": condition,
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["type"],
                "description": "Current conditions.",
            },
        },
    )


def crd() -> dict[str, Any]:
    """The CustomResourceDefinition object."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": CRD_NAME,
            "labels": {"app.kubernetes.io/name": "pyresgate", "app.kubernetes.io/part-of": "pyresgate"},
        },
        "spec": {
            "group": spec.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": spec.KIND,
                "listKind": f"{spec.KIND}List",
                "plural": spec.PLURAL,
                "singular": spec.KIND.lower(),
                "shortNames": ["rgc"],
                "categories": ["pyresgate"],
            },
            "versions": [
                {
                    "name": spec.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {
                        "status": {},
                        "scale": {
                            "specReplicasPath": ".spec.replicas",
                            "statusReplicasPath": ".status.replicas",
                            "labelSelectorPath": ".status.selector",
                        },
                    },
                    "additionalPrinterColumns": [
                        {
                            "name": "Desired",
                            "type": "integer",
                            "jsonPath": ".spec.replicas",
                            "description": "Gateway pods wanted",
                        },
                        {
                            "name": "Ready",
                            "type": "integer",
                            "jsonPath": ".status.readyReplicas",
                            "description": "Gateway pods ready",
                        },
                        {
                            "name": "NATS",
                            "type": "string",
                            "jsonPath": '.status.conditions[?(@.type=="NatsConnected")].status',
                            "description": "Gateways connected to NATS",
                        },
                        {
                            "name": "Status",
                            "type": "string",
                            "jsonPath": '.status.conditions[?(@.type=="Ready")].reason',
                            "description": "Why the cluster is or is not ready",
                        },
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                    ],
                    "schema": {
                        "openAPIV3Schema": _obj(
                            "A set of pyresgate gateways (RES protocol API gateways) wired to a NATS cluster.",
                            {
                                "apiVersion": {"type": "string", "description": "API version."},
                                "kind": {"type": "string", "description": "Kind."},
                                "metadata": {"type": "object"},
                                "spec": spec_schema(),
                                "status": status_schema(),
                            },
                            required=["spec"],
                        )
                    },
                }
            ],
        },
    }


def render() -> str:
    header = "# Generated by `python -m pyresgate_operator.crd --write`; do not edit by hand.\n"
    return header + yaml.safe_dump(crd(), sort_keys=False, width=110)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Print (or --write) the ResgateCluster CRD.")
    parser.add_argument("--write", action="store_true", help=f"write {CRD_PATH} instead of printing")
    args = parser.parse_args(argv)
    if args.write:
        CRD_PATH.parent.mkdir(parents=True, exist_ok=True)
        CRD_PATH.write_text(render(), encoding="utf-8")
    else:
        sys.stdout.write(render())


if __name__ == "__main__":
    main()
