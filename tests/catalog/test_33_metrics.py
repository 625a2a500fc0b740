"""Catalog §5.33 (resgate 33metrics_test.go): the OpenMetrics endpoint on the metrics listener.

Each test starts a gateway with a free ``metrics_port`` and scrapes ``GET /metrics``. prometheus_client
prints values as floats (``1.0``) and may order labels differently from Go, so lines are parsed (name,
label set, value) and compared numerically. Counters and gauges are read by polling the endpoint
(bounded), which also covers "wait until the gateway noticed the disconnect / the eviction".
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest

from tests.conftest import GatewayFactory
from tests.support.fakeservice import FakeService
from tests.support.fixtures import get_result
from tests.support.gatewayrunner import GatewayHandle
from tests.support.macros import (
    connect,
    no_event,
    subscribe,
    subscribe_cached,
    subscribe_cparent,
    subscribe_parent,
)
from tests.support.natsserver import free_port
from tests.support.wsclient import WSClient, assert_result

#: Content-Type of the scrape response (OpenMetrics 1.0.0 text).
OPENMETRICS_CT = "application/openmetrics-text; version=1.0.0; charset=utf-8"
#: Seconds a metric may take to reach its expected value (disconnect noticed, cache eviction).
POLL_TIMEOUT = 2.0
POLL_INTERVAL = 0.01

# ---------------------------------------------------------------------------------------------
# OpenMetrics text parsing

_SAMPLE_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?$")
_LABEL_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(?:,|$)')

SampleKey = tuple[str, frozenset[tuple[str, str]]]


def _unescape(value: str) -> str:
    return value.replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")


def parse_labels(text: str) -> frozenset[tuple[str, str]]:
    labels: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        m = _LABEL_RE.match(text, pos)
        assert m is not None, f"unparsable label set {{{text}}}"
        labels.append((m.group(1), _unescape(m.group(2))))
        pos = m.end()
    return frozenset(labels)


def parse_sample(line: str) -> tuple[SampleKey, float]:
    """``name{a="b",…} value [timestamp]`` → ((name, labels), value)."""
    m = _SAMPLE_RE.match(line.strip())
    assert m is not None, f"unparsable sample line {line!r}"
    return (m.group(1), parse_labels(m.group(2) or "")), float(m.group(3))


def sample_key(spec: str) -> SampleKey:
    """A sample written as in the catalog, without value: ``name`` or ``name{method="get"}``."""
    key, _ = parse_sample(f"{spec} 0")
    return key


@dataclass
class Scrape:
    """One parsed scrape: samples by (name, labels), ``# TYPE`` declarations, raw lines."""

    text: str
    content_type: str
    samples: dict[SampleKey, float] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str, content_type: str) -> Scrape:
        scrape = cls(text, content_type)
        scrape.lines = text.splitlines()
        for line in scrape.lines:
            if not line.strip():
                continue
            if line.startswith("#"):
                parts = line.split()
                if len(parts) >= 4 and parts[1] == "TYPE":
                    scrape.types[parts[2]] = parts[3]
                continue
            key, value = parse_sample(line)
            assert key not in scrape.samples, f"duplicate sample {line!r}"
            scrape.samples[key] = value
        return scrape

    def value(self, spec: str) -> float | None:
        return self.samples.get(sample_key(spec))

    def names(self, prefix: str) -> list[str]:
        return sorted({name for name, _ in self.samples if name.startswith(prefix)})

    def mismatches(self, expected: Mapping[str, float]) -> dict[str, float | None]:
        return {spec: self.value(spec) for spec, want in expected.items() if self.value(spec) != float(want)}


class MetricsScraper:
    """Scrapes one gateway's metrics listener."""

    def __init__(self, session: aiohttp.ClientSession, port: int) -> None:
        self.session = session
        self.url = f"http://127.0.0.1:{port}/metrics"

    async def scrape(self) -> Scrape:
        async with self.session.get(self.url, timeout=aiohttp.ClientTimeout(total=2)) as resp:
            assert resp.status == 200, f"GET /metrics: status {resp.status}"
            text = await resp.text()
            return Scrape.parse(text, resp.headers.get("Content-Type", ""))

    async def wait_values(self, expected: Mapping[str, float], timeout: float = POLL_TIMEOUT) -> Scrape:
        """Poll until every sample in ``expected`` has its value (bounded); returns the matching scrape."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            scrape = await self.scrape()
            wrong = scrape.mismatches(expected)
            if not wrong:
                return scrape
            if loop.time() >= deadline:
                raise AssertionError(
                    f"metrics not as expected within {timeout}s: got {wrong}, expected "
                    f"{ {k: expected[k] for k in wrong} }"
                )
            await asyncio.sleep(POLL_INTERVAL)


@dataclass
class MetricsGateway:
    gw: GatewayHandle
    metrics: MetricsScraper
    session: aiohttp.ClientSession

    async def http(self, method: str, path: str, body: bytes | None = None) -> int:
        async with self.session.request(
            method,
            self.gw.http_url + path,
            data=body,
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=5),
        ) as resp:
            await resp.read()
            return resp.status


MetricsGatewayFactory = Callable[..., Awaitable[MetricsGateway]]


@pytest.fixture
async def metrics_gateway(gateway_factory: GatewayFactory) -> Any:
    """``await metrics_gateway(**overrides)``: a gateway with a metrics listener on a free port."""
    async with aiohttp.ClientSession() as session:

        async def factory(**overrides: Any) -> MetricsGateway:
            gw = await gateway_factory(metrics_port=free_port(), **overrides)
            return MetricsGateway(gw, MetricsScraper(session, gw.config.metrics_port), session)

        yield factory


async def _disconnect(client: WSClient) -> None:
    await client.close()


# ---------------------------------------------------------------------------------------------
# MET-01


# Test that a fresh gateway's scrape has the OpenMetrics content type, the info metrics and zeroed
# connection, request and cache metrics.
async def test_met_01_default_response_contains_expected_values(
    metrics_gateway: MetricsGatewayFactory,
) -> None:
    mg = await metrics_gateway()
    scrape = await mg.metrics.scrape()
    assert scrape.content_type == OPENMETRICS_CT
    assert scrape.lines and scrape.lines[-1] == "# EOF", (
        f"scrape does not end with '# EOF': {scrape.lines[-3:]}"
    )
    # Python equivalents of Go's `# TYPE go info` / `go_info{version=<go version>} 1`: prometheus_client's
    # platform collector exports python_info{implementation,major,minor,patchlevel,version} 1.
    assert scrape.types.get("python_info") in ("gauge", "info"), (
        f"python_info type: {scrape.types.get('python_info')}"
    )
    python_info = [v for (name, labels), v in scrape.samples.items() if name == "python_info"]
    assert python_info == [1.0], f"python_info samples: {python_info}"
    assert any(name == "python_info" and dict(labels).get("version") for (name, labels) in scrape.samples), (
        "python_info has no version label"
    )
    # Python equivalent of Go's `# TYPE go_memstats_sys_bytes gauge` (memory obtained from the OS): the
    # process collector's process_resident_memory_bytes / process_virtual_memory_bytes gauges.
    for name in ("process_resident_memory_bytes", "process_virtual_memory_bytes"):
        assert scrape.types.get(name) == "gauge", f"{name} type: {scrape.types.get(name)}"
        assert (scrape.value(name) or 0) > 0, f"{name} = {scrape.value(name)}"
    expected_types = {
        "resgate": "info",
        "resgate_ws_current_connections": "gauge",
        "resgate_ws_connections": "counter",
        "resgate_ws_requests": "counter",
        "resgate_http_requests": "counter",
        "resgate_cache_resources": "gauge",
        "resgate_cache_subscriptions": "gauge",
    }
    for name, typ in expected_types.items():
        assert scrape.types.get(name) == typ, f"# TYPE {name}: got {scrape.types.get(name)!r}, want {typ!r}"
    expected = {
        'resgate_info{version="1.8.0",protocol="1.2.3"}': 1,
        "resgate_ws_current_connections": 0,
        "resgate_ws_connections_total": 0,
        'resgate_ws_requests_total{method="get"}': 0,
        'resgate_ws_requests_total{method="unsubscribe"}': 0,
        'resgate_ws_requests_total{method="auth"}': 0,
        'resgate_ws_requests_total{method="subscribe"}': 0,
        'resgate_ws_requests_total{method="call"}': 0,
        'resgate_http_requests_total{method="POST"}': 0,
        'resgate_http_requests_total{method="GET"}': 0,
        "resgate_cache_resources": 0,
        "resgate_cache_subscriptions": 0,
    }
    assert not scrape.mismatches(expected), f"unexpected values: {scrape.mismatches(expected)}"


# ---------------------------------------------------------------------------------------------
# MET-02 … MET-06: WebSocket connections


# Test that a connect raises the current connections gauge.
async def test_met_02_ws_current_connections_increases_on_connect(
    metrics_gateway: MetricsGatewayFactory,
) -> None:
    mg = await metrics_gateway()
    await connect(mg.gw)
    await mg.metrics.wait_values({"resgate_ws_current_connections": 1})


# Test that a disconnect lowers the current connections gauge.
async def test_met_03_ws_current_connections_decreases_on_disconnect(
    metrics_gateway: MetricsGatewayFactory,
) -> None:
    mg = await metrics_gateway()
    client = await connect(mg.gw)
    await mg.metrics.wait_values({"resgate_ws_current_connections": 1})
    await _disconnect(client)
    await mg.metrics.wait_values({"resgate_ws_current_connections": 0})


async def _connect_three(mg: MetricsGateway) -> None:
    c1 = await connect(mg.gw)
    await connect(mg.gw)
    await _disconnect(c1)
    await mg.metrics.wait_values({"resgate_ws_current_connections": 1})  # c1's disconnect noticed
    await connect(mg.gw)


# Test that current connections follow connects and disconnects (c1, c2 connect; c1 leaves; c3 connects).
async def test_met_04_ws_current_connections_multiple_increases_on_each_connect(
    metrics_gateway: MetricsGatewayFactory,
) -> None:
    mg = await metrics_gateway()
    await _connect_three(mg)
    await mg.metrics.wait_values({"resgate_ws_current_connections": 2, "resgate_ws_connections_total": 3})


# Test that the connections counter counts a connection that has since disconnected.
async def test_met_05_ws_connections_increases_on_connect(metrics_gateway: MetricsGatewayFactory) -> None:
    mg = await metrics_gateway()
    client = await connect(mg.gw)
    await _disconnect(client)
    await mg.metrics.wait_values({"resgate_ws_current_connections": 0, "resgate_ws_connections_total": 1})


# Test that the connections counter counts every connect.
async def test_met_06_ws_connections_multiple_increases_on_each_connect(
    metrics_gateway: MetricsGatewayFactory,
) -> None:
    mg = await metrics_gateway()
    await _connect_three(mg)
    await mg.metrics.wait_values({"resgate_ws_connections_total": 3})


# ---------------------------------------------------------------------------------------------
# MET-07 … MET-12: WebSocket requests

_WS_ZERO = {
    f'resgate_ws_requests_total{{method="{m}"}}': 0
    for m in ("get", "subscribe", "unsubscribe", "call", "auth")
}


def _ws_requests(**counts: int) -> dict[str, float]:
    return {**_WS_ZERO, **{f'resgate_ws_requests_total{{method="{m}"}}': n for m, n in counts.items()}}


# Test that a get request counts as method "get".
async def test_met_07_ws_requests_get_increases_counter(
    metrics_gateway: MetricsGatewayFactory, service: FakeService
) -> None:
    mg = await metrics_gateway()
    client = await connect(mg.gw)
    pending = await client.send("get.test.model")
    reqs = await service.requests(2)
    await reqs.get("access.test.model").ok({"get": True})
    await reqs.get("get.test.model").ok(get_result("test.model"))
    assert_result(await pending.response())
    await mg.metrics.wait_values(_ws_requests(get=1))


# Test that an unsubscribe request counts as method "unsubscribe".
async def test_met_08_ws_requests_unsubscribe_increases_counter(
    metrics_gateway: MetricsGatewayFactory, service: FakeService
) -> None:
    mg = await metrics_gateway()
    client = await connect(mg.gw)
    await subscribe(client, service, "test.model")
    assert_result(await client.request("unsubscribe.test.model"))
    await mg.metrics.wait_values(_ws_requests(subscribe=1, unsubscribe=1))


# Test that an auth request counts as method "auth".
async def test_met_09_ws_requests_auth_increases_counter(
    metrics_gateway: MetricsGatewayFactory, service: FakeService
) -> None:
    mg = await metrics_gateway()
    client = await connect(mg.gw)
    pending = await client.send("auth.test.method")
    await (await service.expect_request("auth.test.method")).ok(None)
    assert_result(await pending.response())
    await mg.metrics.wait_values(_ws_requests(auth=1))


# Test that a subscribe request counts as method "subscribe".
async def test_met_10_ws_requests_subscribe_increases_counter(
    metrics_gateway: MetricsGatewayFactory, service: FakeService
) -> None:
    mg = await metrics_gateway()
    client = await connect(mg.gw)
    await subscribe(client, service, "test.model")
    await mg.metrics.wait_values(_ws_requests(subscribe=1))


# Test that a call request counts as method "call".
async def test_met_11_ws_requests_call_increases_counter(
    metrics_gateway: MetricsGatewayFactory, service: FakeService
) -> None:
    mg = await metrics_gateway()
    client = await connect(mg.gw)
    pending = await client.send("call.test.model.method")
    await (await service.expect_request("access.test.model")).ok({"get": True, "call": "*"})
    await (await service.expect_request("call.test.model.method")).ok(None)
    assert_result(await pending.response())
    await mg.metrics.wait_values(_ws_requests(call=1))


# Test that a (legacy) new request counts as method "call"; the version request counts nowhere.
async def test_met_12_ws_requests_new_increases_call_counter(
    metrics_gateway: MetricsGatewayFactory, service: FakeService
) -> None:
    mg = await metrics_gateway()
    client = await connect(mg.gw)
    pending = await client.send("new.test.model")
    await (await service.expect_request("access.test.model")).ok({"get": True, "call": ""})
    await pending.response()
    await mg.metrics.wait_values(_ws_requests(call=1))


# ---------------------------------------------------------------------------------------------
# MET-13 … MET-15: HTTP requests

_HTTP_VERBS = ("GET", "POST", "PUT", "DELETE", "PATCH")


def _http_requests(method: str) -> dict[str, float]:
    return {f'resgate_http_requests_total{{method="{m}"}}': int(m == method) for m in _HTTP_VERBS}


# Test that an HTTP POST counts as method "POST".
async def test_met_13_http_requests_post_increases_counter(
    metrics_gateway: MetricsGatewayFactory, service: FakeService
) -> None:
    mg = await metrics_gateway()
    task = asyncio.create_task(mg.http("POST", "/api/test/model/method"))
    await (await service.expect_request("access.test.model")).ok({"call": "method"})
    await (await service.expect_request("call.test.model.method")).ok(None)
    assert await task == 204  # null call result
    await mg.metrics.wait_values(_http_requests("POST"))


# Test that an HTTP GET counts as method "GET".
async def test_met_14_http_requests_get_increases_counter(
    metrics_gateway: MetricsGatewayFactory, service: FakeService
) -> None:
    mg = await metrics_gateway()
    task = asyncio.create_task(mg.http("GET", "/api/test/model"))
    reqs = await service.requests(2)
    await reqs.get("access.test.model").ok({"get": True})
    await reqs.get("get.test.model").ok(get_result("test.model"))
    assert await task == 200
    await mg.metrics.wait_values(_http_requests("GET"))


# Test that a mapped PUT/DELETE/PATCH counts under its own HTTP method.
@pytest.mark.parametrize(
    "method", ["PUT", "DELETE", "PATCH"], ids=[f"MET-15.{m}" for m in ("PUT", "DELETE", "PATCH")]
)
async def test_met_15_http_requests_other_increases_counter(
    metrics_gateway: MetricsGatewayFactory, service: FakeService, method: str
) -> None:
    call = method.lower()
    mg = await metrics_gateway(**{f"{call}_method": call})
    task = asyncio.create_task(mg.http(method, "/api/test/model"))
    await (await service.expect_request("access.test.model")).ok({"call": call})
    await (await service.expect_request(f"call.test.model.{call}")).ok(None)
    assert await task == 204  # null call result
    await mg.metrics.wait_values(_http_requests(method))


# ---------------------------------------------------------------------------------------------
# MET-16: cache gauges


async def _unsubscribe(client: WSClient, rid: str) -> None:
    assert_result(await client.request(f"unsubscribe.{rid}"))


async def _m16_01(mg: MetricsGateway, c: WSClient, svc: FakeService) -> None:
    await subscribe(c, svc, "test.model")


async def _m16_02(mg: MetricsGateway, c: WSClient, svc: FakeService) -> None:
    await subscribe(c, svc, "test.collection")


async def _m16_03(mg: MetricsGateway, c: WSClient, svc: FakeService) -> None:
    await subscribe_parent(c, svc, child_sent=False)


async def _m16_04(mg: MetricsGateway, c: WSClient, svc: FakeService) -> None:
    await subscribe_cparent(c, svc, child_sent=False)


async def _m16_05(mg: MetricsGateway, c: WSClient, svc: FakeService) -> None:
    await subscribe(c, svc, "test.model")
    await subscribe_parent(c, svc, child_sent=True)


async def _m16_06(mg: MetricsGateway, c: WSClient, svc: FakeService) -> None:
    await subscribe(c, svc, "test.model")
    c2 = await connect(mg.gw)
    await subscribe_cached(c2, svc, "test.model")


async def _m16_07(mg: MetricsGateway, c: WSClient, svc: FakeService) -> None:
    await subscribe_parent(c, svc, child_sent=False)
    c2 = await connect(mg.gw)
    await subscribe_cached(c2, svc, "test.model")


async def _m16_08(mg: MetricsGateway, c: WSClient, svc: FakeService) -> None:
    await subscribe(c, svc, "test.model")
    await _unsubscribe(c, "test.model")
    await no_event(c, svc)


async def _m16_09(mg: MetricsGateway, c: WSClient, svc: FakeService) -> None:
    await subscribe_parent(c, svc, child_sent=False)
    await _unsubscribe(c, "test.model.parent")
    await no_event(c, svc)


async def _m16_10(mg: MetricsGateway, c: WSClient, svc: FakeService) -> None:
    await subscribe(c, svc, "test.model")
    await subscribe_parent(c, svc, child_sent=True)
    await _unsubscribe(c, "test.model")
    await no_event(c, svc)


async def _m16_11(mg: MetricsGateway, c: WSClient, svc: FakeService) -> None:
    await subscribe(c, svc, "test.model")
    await subscribe_parent(c, svc, child_sent=True)
    await _unsubscribe(c, "test.model.parent")
    await no_event(c, svc)


async def _m16_12(mg: MetricsGateway, c: WSClient, svc: FakeService) -> None:
    await subscribe(c, svc, "test.model")
    await _unsubscribe(c, "test.model")
    await mg.metrics.wait_values({"resgate_cache_resources": 0})  # eviction of test.model
    await no_event(c, svc)


async def _m16_13(mg: MetricsGateway, c: WSClient, svc: FakeService) -> None:
    await subscribe_parent(c, svc, child_sent=False)
    await _unsubscribe(c, "test.model.parent")
    await mg.metrics.wait_values({"resgate_cache_resources": 0})  # both evictions
    await no_event(c, svc)


async def _m16_14(mg: MetricsGateway, c: WSClient, svc: FakeService) -> None:
    await subscribe(c, svc, "test.model")
    await subscribe_parent(c, svc, child_sent=True)
    await _unsubscribe(c, "test.model.parent")
    await no_event(c, svc)
    await mg.metrics.wait_values({"resgate_cache_resources": 1})  # eviction of test.model.parent


#: (actions, no unsubscribe delay, cached resources, cache subscriptions)
MET_16_ROWS: list[
    tuple[Callable[[MetricsGateway, WSClient, FakeService], Awaitable[None]], bool, int, int]
] = [
    (_m16_01, False, 1, 1),
    (_m16_02, False, 1, 1),
    (_m16_03, False, 2, 2),
    (_m16_04, False, 2, 2),
    (_m16_05, False, 2, 2),
    (_m16_06, False, 1, 2),
    (_m16_07, False, 2, 3),
    (_m16_08, False, 1, 0),
    (_m16_09, False, 2, 0),
    (_m16_10, False, 2, 2),
    (_m16_11, False, 2, 1),
    (_m16_12, True, 0, 0),
    (_m16_13, True, 0, 0),
    (_m16_14, True, 1, 1),
]


# Test that resgate_cache_resources / resgate_cache_subscriptions count cached resources and the
# connection-level references (direct or indirect) on them.
@pytest.mark.parametrize(
    ("actions", "no_delay", "resources", "subscriptions"),
    MET_16_ROWS,
    ids=[f"MET-16.{i:02d}" for i in range(1, len(MET_16_ROWS) + 1)],
)
async def test_met_16_cache_resources_expected_gauge_values(
    metrics_gateway: MetricsGatewayFactory,
    service: FakeService,
    actions: Callable[[MetricsGateway, WSClient, FakeService], Awaitable[None]],
    no_delay: bool,
    resources: int,
    subscriptions: int,
) -> None:
    mg = await metrics_gateway(**({"cache_eviction_delay": 0} if no_delay else {}))
    client = await connect(mg.gw)
    await actions(mg, client, service)
    await mg.metrics.wait_values(
        {"resgate_cache_resources": resources, "resgate_cache_subscriptions": subscriptions}
    )
    # Stable: the values hold on a second scrape (nothing still settling, e.g. a pending eviction).
    scrape = await mg.metrics.scrape()
    got = (scrape.value("resgate_cache_resources"), scrape.value("resgate_cache_subscriptions"))
    assert got == (resources, subscriptions), f"cache gauges changed to {got}"
