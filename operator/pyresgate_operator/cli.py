"""``pyresgate-operator``: runs the kopf operator that reconciles ResgateCluster resources.

The options are kopf's usual ones (namespaces, peering, liveness) under names that read well in a
Deployment's ``args``; the cluster is found as kubectl finds it (in-cluster service account, else
``KUBECONFIG`` / ``~/.kube/config``), which kopf does through the ``kubernetes`` client.
Called by the console script; everything it runs lives in ``pyresgate_operator.handlers``.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
from collections.abc import Sequence

from pyresgate_operator import __version__, metrics

#: Peering object name shared by the operator replicas (kopf peering: one replica acts at a time).
DEFAULT_PEERING = "pyresgate-operator"
#: Port of the liveness endpoint (kopf's /healthz).
DEFAULT_LIVENESS_PORT = 8080
#: Port of the operator's own Prometheus metrics.
DEFAULT_METRICS_PORT = 8081


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="pyresgate-operator",
        description="Kubernetes operator for pyresgate: reconciles ResgateCluster custom resources "
        "(pyresgate.io/v1alpha1) into gateway Deployments, Services, ConfigMaps and PodDisruptionBudgets.",
    )
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        metavar="NS",
        help="watch this namespace (repeatable; glob patterns as kopf accepts them)",
    )
    scope.add_argument(
        "-A", "--all-namespaces", action="store_true", help="watch every namespace (the default)"
    )
    peering = parser.add_mutually_exclusive_group()
    peering.add_argument(
        "--peering",
        default=DEFAULT_PEERING,
        metavar="NAME",
        help=f"kopf peering object, so that only one replica acts (default: {DEFAULT_PEERING})",
    )
    peering.add_argument(
        "--standalone", action="store_true", help="no peering: for a single replica or local runs"
    )
    parser.add_argument(
        "--priority",
        type=int,
        default=None,
        help="peering priority; the highest live replica acts (default: random, so that replicas of one "
        "Deployment differ: kopf pauses every replica when two share the highest priority)",
    )
    parser.add_argument(
        "--liveness-port",
        type=int,
        default=DEFAULT_LIVENESS_PORT,
        metavar="PORT",
        help=f"serve /healthz on this port (0 = off; default {DEFAULT_LIVENESS_PORT})",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=DEFAULT_METRICS_PORT,
        metavar="PORT",
        help=f"serve Prometheus /metrics on this port (0 = off; default {DEFAULT_METRICS_PORT})",
    )
    parser.add_argument(
        "--gateway-image",
        default=os.environ.get("PYRESGATE_GATEWAY_IMAGE") or None,
        metavar="REPO:TAG",
        help="image of gateways whose spec.image does not name one (env PYRESGATE_GATEWAY_IMAGE; default "
        "ghcr.io/pyresgate/pyresgate:<operator version>)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--log-format", choices=("full", "json"), default="full", help="log line format")
    parser.add_argument("--version", action="version", version=f"pyresgate-operator {__version__}")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    import kopf

    # kopf's own log set-up: lines about an object carry its [namespace/name].
    log_format = kopf.LogFormat.JSON if args.log_format == "json" else kopf.LogFormat.FULL
    kopf.configure(verbose=args.verbose, log_format=log_format, log_prefix=True)
    priority = args.priority if args.priority is not None else random.SystemRandom().randint(1, 1_000_000_000)
    logging.getLogger(__name__).info("pyresgate-operator %s, peering priority %d", __version__, priority)

    from pyresgate_operator import handlers  # registers the handlers

    if args.metrics_port:
        metrics.serve(args.metrics_port)
    liveness = f"http://0.0.0.0:{args.liveness_port}/healthz" if args.liveness_port else None
    kopf.run(
        clusterwide=not args.namespace,
        namespaces=args.namespace,
        standalone=args.standalone,
        peering_name=None if args.standalone else args.peering,
        priority=priority,
        liveness_endpoint=liveness,
        memo=kopf.Memo(gateway_image=args.gateway_image or handlers.DEFAULT_GATEWAY_IMAGE),
    )
