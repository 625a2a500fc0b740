"""Prometheus metrics with resgate's names (so existing dashboards keep working).

Made by ``gateway.app`` (one registry per gateway, so several gateways can share a process) and
updated by the front ends. The hot paths only add to plain ints and lists (the gateway is one asyncio
thread, so prometheus_client's locked values would be wasted work); a collector turns them into metric
families at scrape time, as another does for the cache sizes.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Info
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.utils import floatToGoString

from gateway import constants

if TYPE_CHECKING:
    from gateway.cache.cache import Cache

CONTENT_TYPE = CONTENT_TYPE_LATEST
WS_METHODS = ("get", "subscribe", "unsubscribe", "call", "auth")
HTTP_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")
_REQUEST_TYPES = frozenset(("access", "get", "call", "auth"))
#: Upper bounds of the NATS request latency buckets, +Inf last.
_LATENCY_BOUNDS = (
    *(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    float("inf"),
)
_LATENCY_LE = tuple(floatToGoString(b) for b in _LATENCY_BOUNDS)  # type: ignore[no-untyped-call]


class Value:
    """A counter's or gauge's value: a plain number, as only the event loop thread touches it."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: float = 0

    def inc(self, amount: float = 1) -> None:
        self.value += amount

    def dec(self, amount: float = 1) -> None:
        self.value -= amount


class _CacheCollector:
    """resgate_cache_resources / resgate_cache_subscriptions, computed from the cache on scrape."""

    def __init__(self, cache: Cache) -> None:
        self._cache = cache

    def collect(self) -> Iterator[Metric]:
        resources, subscriptions = self._cache.sizes()
        yield GaugeMetricFamily("resgate_cache_resources", "Number of cached resources", value=resources)
        yield GaugeMetricFamily(
            "resgate_cache_subscriptions",
            "Number of connection subscriptions on cached resources",
            value=subscriptions,
        )


class Metrics:
    """The gateway's metric instruments: plain numbers, exported by ``collect`` on scrape."""

    def __init__(self, cache: Cache) -> None:
        self.ws_current = Value()
        self.ws_total = Value()
        self.events_received = Value()
        self.messages_fanned_out = Value()
        self.slow_consumers = Value()
        self.shed_connections = Value()
        # Requests by method as the callers name them; "new" is counted as "call", HEAD as GET.
        self._ws_requests = dict.fromkeys((*WS_METHODS, "new"), 0)
        self._http_requests = dict.fromkeys((*HTTP_METHODS, "HEAD"), 0)
        #: (type, outcome) -> ([count], latency of type), in order of first occurrence.
        self._nats_requests: dict[tuple[str, str], tuple[list[int], list[float]]] = {}
        #: type -> per-bucket (not cumulative) counts for _LATENCY_BOUNDS, then the sum of seconds.
        self._nats_latency: dict[str, list[float]] = {}
        self._http_responses: dict[int, int] = {}
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        PlatformCollector(registry=r)
        ProcessCollector(registry=r)
        Info("resgate", "pyresgate version and RES protocol version", registry=r).info(
            {"version": constants.RESGATE_VERSION, "protocol": constants.PROTOCOL_VERSION}
        )
        r.register(self)
        r.register(_CacheCollector(cache))

    def ws_request(self, action: str) -> None:
        counts = self._ws_requests
        if action in counts:
            counts[action] += 1

    def http_request(self, method: str) -> None:
        counts = self._http_requests
        if method in counts:
            counts[method] += 1

    def nats_request(self, subject: str, outcome: str, seconds: float) -> None:
        series = self._nats_requests.get((subject.partition(".")[0], outcome))
        if series is None:
            series = self._request_series(subject.partition(".")[0], outcome)
        series[0][0] += 1
        latency = series[1]
        latency[bisect_left(_LATENCY_BOUNDS, seconds)] += 1
        latency[-1] += seconds

    def _request_series(self, kind: str, outcome: str) -> tuple[list[int], list[float]]:
        """The series of a type and outcome not seen before, or of any unknown type (as "other")."""
        if kind not in _REQUEST_TYPES:
            kind = "other"
        latency = self._nats_latency.get(kind)
        if latency is None:
            latency = self._nats_latency[kind] = [0.0] * (len(_LATENCY_BOUNDS) + 1)
        series = self._nats_requests.get((kind, outcome))
        if series is None:
            series = self._nats_requests[(kind, outcome)] = ([0], latency)
        return series

    def event(self, subscribers: int) -> None:
        self.events_received.value += 1
        if subscribers:
            self.messages_fanned_out.value += subscribers

    def http_response(self, status: int) -> None:
        counts = self._http_responses
        counts[status] = counts.get(status, 0) + 1

    def collect(self) -> Iterator[Metric]:
        """The metric families of the numbers above (this is a prometheus_client collector)."""
        yield GaugeMetricFamily(
            "resgate_ws_current_connections", "Current WebSocket connections", value=self.ws_current.value
        )
        yield CounterMetricFamily(
            "resgate_ws_connections", "WebSocket connections since start", value=self.ws_total.value
        )
        ws = dict(self._ws_requests)
        ws["call"] += ws["new"]
        family = CounterMetricFamily("resgate_ws_requests", "WebSocket requests by method", labels=["method"])
        for method in WS_METHODS:
            family.add_metric([method], ws[method])
        yield family
        http = dict(self._http_requests)
        http["GET"] += http["HEAD"]
        family = CounterMetricFamily(
            "resgate_http_requests", "HTTP API requests by method", labels=["method"]
        )
        for method in HTTP_METHODS:
            family.add_metric([method], http[method])
        yield family
        # pyresgate's own metrics (not in resgate).
        family = CounterMetricFamily(
            "pyresgate_nats_requests",
            "NATS requests to services by type and outcome",
            labels=["type", "outcome"],
        )
        for (kind, outcome), (requests, _) in list(self._nats_requests.items()):
            family.add_metric([kind, outcome], requests[0])
        yield family
        histogram = HistogramMetricFamily(
            "pyresgate_nats_request_duration_seconds",
            "Time from sending a NATS request to its reply, timeout or failure",
            labels=["type"],
        )
        for kind, latency in list(self._nats_latency.items()):
            cumulative, buckets = 0.0, list[tuple[str, float]]()
            for le, in_bucket in zip(_LATENCY_LE, latency):
                cumulative += in_bucket
                buckets.append((le, cumulative))
            histogram.add_metric([kind], buckets, latency[-1])
        yield histogram
        yield CounterMetricFamily(
            "pyresgate_events", "Resource events received from services", value=self.events_received.value
        )
        yield CounterMetricFamily(
            "pyresgate_event_deliveries",
            "Client subscriptions an event was passed to",
            value=self.messages_fanned_out.value,
        )
        family = CounterMetricFamily(
            "pyresgate_http_responses", "HTTP API responses by status code", labels=["status"]
        )
        for status, responses in list(self._http_responses.items()):
            family.add_metric([str(status)], responses)
        yield family
        yield CounterMetricFamily(
            "pyresgate_slow_consumer_disconnects",
            "Clients disconnected for not reading fast enough",
            value=self.slow_consumers.value,
        )
        yield CounterMetricFamily(
            "pyresgate_shed_connections",
            "WebSocket connections closed with 1001 by POST /shed on the admin port (rebalancing)",
            value=self.shed_connections.value,
        )

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
