"""kopf handlers: thin decorators that hand every event to ``reconcile.reconcile``.

Changes (create, update of spec or annotations, resume after a restart), a periodic resync and the
events of the gateway pods all run the same pass, serialised per ResgateCluster by a lock, so the
operator is level-based: whatever it missed, the next pass repairs. Status is written here (merge
patch of the status subresource) only when it changed, and the pass's Events are posted on the
custom resource.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, cast

import aiohttp
import kopf

from pyresgate_operator import __version__, build, metrics, rebalance, reconcile
from pyresgate_operator import spec as specs
from pyresgate_operator.kube import ApiError, Kube, load_client

#: Seconds between two level-based passes of a ResgateCluster when nothing happens.
RESYNC_SECONDS = 10.0
#: Seconds between two connection-rebalancing rounds of a ResgateCluster (autoscaling.rebalance).
REBALANCE_SECONDS = 10.0
#: Pod events closer together than this for one ResgateCluster wake one pass, not one each.
POD_EVENT_DEBOUNCE_SECONDS = 2.0

_kube: Kube | None = None
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()
_last_pass: dict[str, float] = {}

RESOURCE = (specs.GROUP, specs.VERSION, specs.PLURAL)
#: Gateway image when neither the ResgateCluster nor ``--gateway-image`` names one.
DEFAULT_GATEWAY_IMAGE = f"{specs.DEFAULT_IMAGE_REPOSITORY}:{__version__}"


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    global _kube
    # Progress and diff-base in annotations of our own group: status stays ours alone.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=specs.GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=specs.GROUP, key="last-handled-configuration"
    )
    settings.persistence.finalizer = f"{specs.GROUP}/operator"
    # Only explicit Events and errors reach the custom resource, not kopf's chatter.
    settings.posting.level = logging.ERROR
    # The operator knows its resources; no need to watch every CRD in the cluster (nor the right to).
    settings.scanning.disabled = True
    settings.execution.max_workers = 8
    _kube = Kube(load_client())


def _lock(uid: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(uid, threading.Lock())


def run_pass(body: Mapping[str, Any], memo: Any) -> None:
    """One reconcile of the ResgateCluster ``body`` names, serialised per object.

    The object is read again under the lock: a pass that waited for another one must see the status
    that one wrote, or it would report the same transitions twice.
    """
    assert _kube is not None, "the startup handler creates the client"
    meta = body["metadata"]
    with _lock(meta["uid"]):
        fresh = _kube.get(specs.KIND, meta["namespace"], meta["name"])
        if (
            fresh is None
            or fresh["metadata"].get("deletionTimestamp")
            or fresh["metadata"]["uid"] != meta["uid"]
        ):
            return  # deleted meanwhile: the garbage collector removes what it owned
        _last_pass[meta["uid"]] = time.monotonic()
        target = kopf.Body(cast(kopf.RawBody, fresh))
        try:
            outcome = reconcile.reconcile(
                _kube,
                fresh,
                default_image=getattr(memo, "gateway_image", DEFAULT_GATEWAY_IMAGE),
                now=datetime.now(UTC),
            )
        except ApiError as exc:
            metrics.RECONCILES.labels("error").inc()
            kopf.event(
                target, type="Warning", reason="ApiError", message=f"reconcile failed, will retry: {exc}"
            )
            raise kopf.TemporaryError(str(exc), delay=5) from exc
        if _status_changed(fresh.get("status") or {}, outcome.status):
            _kube.patch_status(meta["namespace"], meta["name"], outcome.status)
        for event in outcome.events:
            kopf.event(target, type=event.type, reason=event.reason, message=event.message)


def _status_changed(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    return any(old.get(key) != value for key, value in new.items())


@kopf.on.resume(*RESOURCE)
@kopf.on.create(*RESOURCE)
@kopf.on.update(*RESOURCE)
def on_change(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    run_pass(body, memo)


@kopf.timer(*RESOURCE, interval=RESYNC_SECONDS, sharp=False)
def resync(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    run_pass(body, memo)


@kopf.on.event("", "v1", "pods", labels={"app.kubernetes.io/managed-by": build.OPERATOR_NAME})
def on_pod_event(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """A gateway pod changed (crashed, became unready, went away): reconcile its ResgateCluster soon."""
    assert _kube is not None
    owner = (body.get("metadata", {}).get("labels") or {}).get("app.kubernetes.io/instance")
    namespace = body.get("metadata", {}).get("namespace")
    if not owner or not namespace:
        return
    cluster = _kube.get(specs.KIND, namespace, owner)
    if cluster is None:
        return
    if time.monotonic() - _last_pass.get(cluster["metadata"]["uid"], 0.0) < POD_EVENT_DEBOUNCE_SECONDS:
        return
    run_pass(cluster, memo)


def _rebalance_wanted(spec: kopf.Spec, **_: Any) -> bool:
    scaling = spec.get("autoscaling") or {}
    return bool(scaling.get("enabled", True) and (scaling.get("rebalance") or {}).get("enabled"))


@kopf.timer(*RESOURCE, interval=REBALANCE_SECONDS, sharp=False, when=_rebalance_wanted)
async def rebalance_connections(body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    """After a scale-out, ask the busiest gateways to shed connections until the spread is within
    ``autoscaling.rebalance.tolerance`` (the shed clients reconnect through the Service)."""
    assert _kube is not None
    meta = body["metadata"]
    image = getattr(memo, "gateway_image", DEFAULT_GATEWAY_IMAGE)
    try:
        cluster = specs.parse(body.get("spec") or {}, namespace=meta["namespace"], default_image=image)
    except specs.InvalidSpec:
        return  # the reconcile pass reports it
    owner = build.Owner.from_body(body)
    pods = await asyncio.to_thread(_kube.list_pods, owner.namespace, build.selector_string(owner))
    async with aiohttp.ClientSession() as session:
        result = await rebalance.round_for(cluster, pods, session)
    if result is None:
        return
    if result.errors:
        metrics.REBALANCE_ROUNDS.labels("unreachable").inc()
        logger.warning("rebalancing skipped unreachable pods: %s", result.errors)
    metrics.REBALANCE_ROUNDS.labels("shedding" if result.targets else "balanced").inc()
    if result.targets:
        assert cluster.autoscaling is not None
        metrics.REBALANCE_SHED.inc(result.shed_requested)
        message = rebalance.describe(result, max_shed_per_second=cluster.autoscaling.max_shed_per_second)
        kopf.event(body, type="Normal", reason="Rebalancing", message=message)
