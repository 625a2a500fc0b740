"""gateway.telemetry.metrics: the plain-number instruments and the exposition built from them on scrape.

The exposition is OpenMetrics, so it is read back with prometheus_client's OpenMetrics parser (its
classic-format parser does not group ``_total`` samples under their counter).
"""

from __future__ import annotations

import random

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.openmetrics.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from gateway.telemetry.metrics import HTTP_METHODS, WS_METHODS, Metrics

BUCKETS = ("0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5")
BUCKETS += ("5.0", "10.0", "+Inf")
LATENCY = "pyresgate_nats_request_duration_seconds"


class _Cache:
    def sizes(self) -> tuple[int, int]:
        return 2, 5


def _scrape(metrics: Metrics) -> tuple[dict[str, str], dict[str, list[Sample]]]:
    """(family name -> type, family name -> samples) of the exposition."""
    types: dict[str, str] = {}
    samples: dict[str, list[Sample]] = {}
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        types[family.name] = family.type
        samples[family.name] = family.samples
    return types, samples


def _values(samples: list[Sample], label: str) -> dict[str, float]:
    return {s.labels[label]: s.value for s in samples}


def _histogram(samples: list[Sample], kind: str) -> tuple[dict[str, float], float, float]:
    """(le -> cumulative count, count, sum) of one type's latency histogram."""
    mine = [s for s in samples if s.labels["type"] == kind]
    buckets = {s.labels["le"]: s.value for s in mine if s.name == LATENCY + "_bucket"}
    (count,) = (s.value for s in mine if s.name == LATENCY + "_count")
    (total,) = (s.value for s in mine if s.name == LATENCY + "_sum")
    return buckets, count, total


def test_fresh_exposition_has_resgate_names_types_and_zero_series() -> None:
    types, samples = _scrape(Metrics(_Cache()))  # type: ignore[arg-type]
    assert {name: types[name] for name in types if "resgate" in name} == {
        "resgate": "info",
        "resgate_ws_current_connections": "gauge",
        "resgate_ws_connections": "counter",
        "resgate_ws_requests": "counter",
        "resgate_http_requests": "counter",
        "pyresgate_nats_requests": "counter",
        LATENCY: "histogram",
        "pyresgate_events": "counter",
        "pyresgate_event_deliveries": "counter",
        "pyresgate_http_responses": "counter",
        "pyresgate_slow_consumer_disconnects": "counter",
        "pyresgate_shed_connections": "counter",
        "resgate_cache_resources": "gauge",
        "resgate_cache_subscriptions": "gauge",
    }
    assert types["python_info"] == "gauge" and types["process_cpu_seconds"] == "counter"
    (info,) = samples["resgate"]
    assert info.name == "resgate_info" and set(info.labels) == {"version", "protocol"} and info.value == 1
    # Every method is there at zero before the first request, as in resgate.
    assert [s.name for s in samples["resgate_ws_requests"]] == ["resgate_ws_requests_total"] * len(WS_METHODS)
    assert _values(samples["resgate_ws_requests"], "method") == dict.fromkeys(WS_METHODS, 0)
    assert _values(samples["resgate_http_requests"], "method") == dict.fromkeys(HTTP_METHODS, 0)
    for name in ("resgate_ws_current_connections", "resgate_cache_resources", "resgate_cache_subscriptions"):
        assert [(s.name, s.labels) for s in samples[name]] == [(name, {})]
    for name in ("resgate_ws_connections", "pyresgate_events", "pyresgate_event_deliveries"):
        assert [(s.name, s.labels, s.value) for s in samples[name]] == [(name + "_total", {}, 0)]
    assert samples["pyresgate_slow_consumer_disconnects"][0].value == 0
    assert samples["resgate_cache_resources"][0].value == 2
    assert samples["resgate_cache_subscriptions"][0].value == 5
    # Labelled series of pyresgate's own metrics appear with their first value.
    assert samples["pyresgate_nats_requests"] == samples[LATENCY] == samples["pyresgate_http_responses"] == []


def test_recorded_values_are_exposed_with_their_labels() -> None:
    m = Metrics(_Cache())  # type: ignore[arg-type]
    for _ in range(3):
        m.ws_current.inc()
        m.ws_total.inc()
    m.ws_current.dec()
    for action in ("get", "subscribe", "subscribe", "new", "call", "unsubscribe", "version", "bogus"):
        m.ws_request(action)
    for method in ("GET", "HEAD", "POST", "PUT", "OPTIONS"):
        m.http_request(method)
    m.nats_request("get.a.b", "reply", 0.0004)
    m.nats_request("access.a.b", "reply", 0.001)  # on a bound: counted in that bucket (le)
    m.nats_request("access.a.c", "reply", 0.0011)
    m.nats_request("call.a.b.m", "timeout", 10)
    m.nats_request("call.a.b.m", "reply", 11)  # above the last bound: +Inf only
    m.nats_request("weird.a", "error", 0.3)
    m.nats_request("nodot", "reply", 0)
    m.nats_request("auth.x.y", "noresponders", 2.5)
    m.event(0)
    m.event(3)
    m.event(1)
    for status in (200, 404, 200):
        m.http_response(status)
    m.slow_consumers.inc()

    _, samples = _scrape(m)
    assert samples["resgate_ws_current_connections"][0].value == 2
    assert samples["resgate_ws_connections"][0].value == 3
    assert _values(samples["resgate_ws_requests"], "method") == {
        "get": 1,
        "subscribe": 2,
        "unsubscribe": 1,
        "call": 2,
        "auth": 0,
    }
    assert _values(samples["resgate_http_requests"], "method") == {
        "GET": 2,
        "POST": 1,
        "PUT": 1,
        "DELETE": 0,
        "PATCH": 0,
    }
    requests = {(s.labels["type"], s.labels["outcome"]): s.value for s in samples["pyresgate_nats_requests"]}
    assert {s.name for s in samples["pyresgate_nats_requests"]} == {"pyresgate_nats_requests_total"}
    assert requests == {
        ("get", "reply"): 1,
        ("access", "reply"): 2,
        ("call", "timeout"): 1,
        ("call", "reply"): 1,
        ("other", "error"): 1,
        ("other", "reply"): 1,
        ("auth", "noresponders"): 1,
    }
    latency = samples[LATENCY]
    assert {s.labels["type"] for s in latency} == {"get", "access", "call", "other", "auth"}
    buckets, count, total = _histogram(latency, "access")
    assert list(buckets) == list(BUCKETS)
    assert list(buckets.values()) == [0] + [1] + [2] * 13
    assert (count, total) == (2, 0.001 + 0.0011)
    buckets, count, total = _histogram(latency, "call")
    assert list(buckets.values()) == [0] * 13 + [1, 2]
    assert (count, total) == (2, 21)
    buckets, count, total = _histogram(latency, "other")
    assert list(buckets.values()) == [1] * 9 + [2] * 6
    assert (count, total) == (2, 0.3)
    assert samples["pyresgate_events"][0].value == 3
    assert samples["pyresgate_event_deliveries"][0].value == 4
    assert _values(samples["pyresgate_http_responses"], "status") == {"200": 2, "404": 1}
    assert samples["pyresgate_slow_consumer_disconnects"][0].value == 1
    # No _created samples: the numbers are plain ints, not prometheus_client instruments.
    assert not [s for family in samples.values() for s in family if s.name.endswith("_created")]


def test_latency_buckets_match_prometheus_client_histogram() -> None:
    """The bisect bucketing puts every duration where prometheus_client's Histogram would."""
    m = Metrics(_Cache())  # type: ignore[arg-type]
    histogram = Histogram(
        "ref", "", ["type"], buckets=[float(b) for b in BUCKETS[:-1]], registry=CollectorRegistry()
    )
    reference = histogram.labels("get")
    rnd = random.Random(33)
    durations = [float(b) for b in BUCKETS[:-1]] + [0.0, 1e-9, 20.0]
    durations += [rnd.uniform(0, 0.02) for _ in range(200)] + [rnd.expovariate(2) for _ in range(200)]
    for seconds in durations:
        m.nats_request("get.x", "reply", seconds)
        reference.observe(seconds)
    _, samples = _scrape(m)
    buckets, count, total = _histogram(samples[LATENCY], "get")
    expected = {s.labels["le"]: s.value for s in histogram.collect()[0].samples if s.name == "ref_bucket"}
    assert buckets == expected
    assert count == len(durations)
    assert abs(total - sum(durations)) < 1e-9


def test_gateways_in_one_process_have_separate_registries() -> None:
    a, b = Metrics(_Cache()), Metrics(_Cache())  # type: ignore[arg-type]
    a.ws_request("get")
    assert _values(_scrape(a)[1]["resgate_ws_requests"], "method")["get"] == 1
    assert _values(_scrape(b)[1]["resgate_ws_requests"], "method")["get"] == 0
