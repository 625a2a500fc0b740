"""Prometheus metrics with resgate's names (so existing dashboards keep working).

Made by ``gateway.app`` (one registry per gateway, so several gateways can share a process) and
updated by the front ends. Cache sizes are read at scrape time by a collector, which costs the hot
paths nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from gateway import constants

if TYPE_CHECKING:
    from gateway.cache.cache import Cache

CONTENT_TYPE = CONTENT_TYPE_LATEST
WS_METHODS = ("get", "subscribe", "unsubscribe", "call", "auth")
HTTP_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")
_REQUEST_TYPES = frozenset(("access", "get", "call", "auth"))


class _CacheCollector:
    """resgate_cache_resources / resgate_cache_subscriptions, computed from the cache on scrape."""

    def __init__(self, cache: Cache) -> None:
        self._cache = cache

    def collect(self) -> Iterator[Metric]:
        resources, subscriptions = self._cache.sizes()
        yield GaugeMetricFamily("resgate_cache_resources", "Number of cached resources", value=resources)
        yield GaugeMetricFamily(
            "resgate_cache_subscriptions", "Number of connection subscriptions on cached resources", value=subscriptions
        )


class Metrics:
    """The gateway's metric instruments."""

    def __init__(self, cache: Cache) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        PlatformCollector(registry=r)
        ProcessCollector(registry=r)
        Info("resgate", "pyresgate version and RES protocol version", registry=r).info(
            {"version": constants.RESGATE_VERSION, "protocol": constants.PROTOCOL_VERSION}
        )
        self.ws_current = Gauge("resgate_ws_current_connections", "Current WebSocket connections", registry=r)
        self.ws_total = Counter("resgate_ws_connections", "WebSocket connections since start", registry=r)
        ws_requests = Counter("resgate_ws_requests", "WebSocket requests by method", ["method"], registry=r)
        http_requests = Counter("resgate_http_requests", "HTTP API requests by method", ["method"], registry=r)
        self.ws_requests = {m: ws_requests.labels(m) for m in WS_METHODS}
        self.http_requests = {m: http_requests.labels(m) for m in HTTP_METHODS}
        # pyresgate's own metrics (not in resgate).
        self._nats_requests = Counter(
            "pyresgate_nats_requests", "NATS requests to services by type and outcome", ["type", "outcome"], registry=r
        )
        self._nats_latency = Histogram(
            "pyresgate_nats_request_duration_seconds",
            "Time from sending a NATS request to its reply, timeout or failure",
            ["type"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self._request_children: dict[tuple[str, str], tuple[Any, Any]] = {}
        self.events_received = Counter("pyresgate_events", "Resource events received from services", registry=r)
        self.messages_fanned_out = Counter(
            "pyresgate_event_deliveries", "Client subscriptions an event was passed to", registry=r
        )
        self._http_responses = Counter(
            "pyresgate_http_responses", "HTTP API responses by status code", ["status"], registry=r
        )
        self._status_children: dict[int, Any] = {}
        self.slow_consumers = Counter(
            "pyresgate_slow_consumer_disconnects", "Clients disconnected for not reading fast enough", registry=r
        )
        r.register(_CacheCollector(cache))

    def ws_request(self, action: str) -> None:
        counter = self.ws_requests.get("call" if action == "new" else action)
        if counter is not None:
            counter.inc()

    def http_request(self, method: str) -> None:
        counter = self.http_requests.get("GET" if method == "HEAD" else method)
        if counter is not None:
            counter.inc()

    def nats_request(self, subject: str, outcome: str, seconds: float) -> None:
        kind = subject.split(".", 1)[0]
        if kind not in _REQUEST_TYPES:
            kind = "other"
        key = (kind, outcome)
        children = self._request_children.get(key)
        if children is None:
            children = (self._nats_requests.labels(kind, outcome), self._nats_latency.labels(kind))
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def event(self, subscribers: int) -> None:
        self.events_received.inc()
        if subscribers:
            self.messages_fanned_out.inc(subscribers)

    def http_response(self, status: int) -> None:
        child = self._status_children.get(status)
        if child is None:
            child = self._status_children[status] = self._http_responses.labels(str(status))
        child.inc()

    def exposition(self) -> bytes:
        data: bytes = generate_latest(self.registry)  # type: ignore[no-untyped-call]
        return data


def metrics_app(gateway: Any) -> Any:
    """resgate's metrics listener (``--metricsport``): ``/metrics`` only."""
    from aiohttp import web

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=gateway.metrics.exposition(), headers={"Content-Type": CONTENT_TYPE})

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    return app
