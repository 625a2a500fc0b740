"""The Grafana dashboard in the chart asks for metrics a real gateway exports.

A ``pyresgate`` process on a real nats-server serves a few WebSocket and HTTP API requests (so that the
labelled series exist), then its admin ``/metrics`` is scraped; every metric a dashboard query names, and
every label it groups or filters by, must be in that scrape. The only other metric allowed is
kube-state-metrics' ``kube_pod_status_ready`` (pods ready is Kubernetes' knowledge, not the gateway's).
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import aiohttp
import yaml
from pyresgate_operator import build

from tests.chart.helm import CHART, find, render, require_helm
from tests.runtime.helpers import AutoService, GatewayProcess, parse_metrics
from tests.support.natsserver import NatsServer

DASHBOARD = CHART / "files" / "dashboards" / "pyresgate.json"
#: Metrics a query may name that do not come from the gateway, and who exports them.
FOREIGN_METRICS = {"kube_pod_status_ready": "kube-state-metrics"}
#: Labels Prometheus adds to every target (from the ServiceMonitor), not the gateway.
TARGET_LABELS = {"namespace", "job", "pod", "instance", "service", "endpoint", "container"}
#: Panels the issue asks for, found by title words.
REQUIRED_PANELS = (
    "connections",
    "subscriptions",
    "events",
    "deliveries",
    "latency",
    "errors",
    "slow",
    "ready",
)
_METRIC = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}")
#: Grafana's variable query label_values(metric{matchers}, label).
_LABEL_VALUES = re.compile(r"^label_values\(([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})?,\s*(\w+)\)$")
_GROUPING = re.compile(r"\bby \(([^)]*)\)")
_MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!=|!~|=)\s*"')


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def queries() -> list[str]:
    exprs = [target["expr"] for panel in dashboard()["panels"] for target in panel["targets"]]
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            exprs.append(variable["definition"])
    return exprs


async def scrape_busy_gateway(nats: NatsServer) -> dict[str, set[str]]:
    """Metric name -> label names of a live gateway's admin /metrics after some traffic."""
    async with AutoService(nats.url, models={"test.model": {"n": 1}}) as service:
        gateway = await GatewayProcess.start(nats.url)
        try:
            async with aiohttp.ClientSession() as session:
                async with session.get(f"http://127.0.0.1:{gateway.port}/api/test/model") as resp:
                    assert resp.status == 200
                async with session.get(f"http://127.0.0.1:{gateway.port}/api/test/missing") as resp:
                    assert resp.status == 404
                async with session.ws_connect(f"http://127.0.0.1:{gateway.port}/") as ws:
                    await ws.send_json({"id": 1, "method": "subscribe.test.model"})
                    reply = await asyncio.wait_for(ws.receive_json(), 5)
                    assert "result" in reply, reply
                    await service.event("test.model", "change", {"values": {"n": 2}})
                    event = await asyncio.wait_for(ws.receive_json(), 5)
                    assert event["event"] == "test.model.change"
                    status, text, _ = await gateway.admin("/metrics")
            assert status == 200
        finally:
            await gateway.terminate()
    exported: dict[str, set[str]] = {}
    for name, labels in parse_metrics(text):
        exported.setdefault(name, set()).update(key for key, _ in labels)
    return exported


def test_the_dashboard_has_the_panels_the_issue_asks_for() -> None:
    titles = " ".join(panel["title"].lower() for panel in dashboard()["panels"])
    missing = [word for word in REQUIRED_PANELS if word not in titles]
    assert not missing, f"no panel about {missing}"
    for panel in dashboard()["panels"]:
        assert panel["targets"], panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}"


async def test_every_query_names_metrics_and_labels_the_gateway_exports(nats_server: NatsServer) -> None:
    exported = await scrape_busy_gateway(nats_server)
    checked = 0
    for expr in queries():
        grouping = {label.strip() for group in _GROUPING.findall(expr) for label in group.split(",")}
        found = _METRIC.findall(expr)
        variable = _LABEL_VALUES.match(expr)
        if variable:
            found, grouping = [(variable[1], variable[2] or "")], {variable[3]}
        assert found, f"no metric in {expr!r}"
        for metric, matchers in found:
            if metric in FOREIGN_METRICS:
                continue
            assert metric in exported, (
                f"{metric} (in {expr!r}) is not exported; the gateway has {sorted(exported)}"
            )
            labels = exported[metric] | TARGET_LABELS
            used = set(_MATCHER.findall(matchers)) | (
                grouping - {"le"} if not metric.endswith("_bucket") else grouping
            )
            assert used <= labels, f"{expr!r} uses labels {sorted(used - labels)} that {metric} does not have"
            checked += 1
    assert checked >= 20


async def test_the_adapter_rule_serves_the_metric_the_operators_hpa_targets(nats_server: NatsServer) -> None:
    """prometheus-adapter's rule (prometheusAdapter.rules.enabled) names the gauge the gateway exports,
    and publishes it under the name the operator's HPA asks for (targetConnectionsPerPod)."""
    require_helm()
    assert not find(render(), "ConfigMap", "rel-pyresgate-adapter-rules"), "off by default"
    config_map = find(
        render(sets=["prometheusAdapter.rules.enabled=true"]), "ConfigMap", "rel-pyresgate-adapter-rules"
    )
    rule = yaml.safe_load(config_map[0]["data"]["config.yaml"])["rules"][0]
    assert rule["name"]["as"] == build.CONNECTIONS_METRIC
    assert rule["seriesQuery"].startswith(build.CONNECTIONS_METRIC + "{")
    assert build.CONNECTIONS_METRIC in await scrape_busy_gateway(nats_server)
