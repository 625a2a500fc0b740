"""The admin listener (``--adminport``) of a real ``pyresgate`` process: /healthz, /readyz, /metrics.

/healthz answers while the process runs; /readyz only while NATS is connected (and the gateway is not
draining); /metrics is the Prometheus/OpenMetrics exposition with resgate's metric names, also served
on resgate's own ``--metricsport``.
"""

from __future__ import annotations

import asyncio
import json
import time

from tests.runtime.conftest import GatewayStarter, ServiceStarter
from tests.runtime.helpers import AutoService, http_get, parse_metrics, sample
from tests.support.cluster import NatsNode
from tests.support.natsserver import NatsServer, free_port
from tests.support.wsclient import WSClient

MODEL = {"string": "foo", "int": 42}

RESGATE_NAMES = (
    "resgate_ws_current_connections",
    "resgate_ws_connections_total",
    "resgate_ws_requests_total",
    "resgate_http_requests_total",
    "resgate_cache_resources",
    "resgate_cache_subscriptions",
    "resgate_info",
)


async def test_healthz_and_readyz_are_200_while_connected(
    nats_server: NatsServer, start_gateway: GatewayStarter
) -> None:
    gw = await start_gateway(nats_server.url)
    status, body, _ = await gw.admin("/healthz")
    assert status == 200, body
    status, body, headers = await gw.admin("/readyz")
    assert status == 200, body
    assert json.loads(body) == {"status": "ready"}
    assert headers.get("Content-Type", "").startswith("application/json")


async def test_metrics_use_resgate_names_and_count_a_connection_and_a_subscribe(
    nats_server: NatsServer, start_gateway: GatewayStarter, auto_service: ServiceStarter
) -> None:
    svc: AutoService = await auto_service(nats_server.url, {"test.model": MODEL})
    metrics_port = free_port()
    gw = await start_gateway(nats_server.url, "--metricsport", str(metrics_port))

    status, text, headers = await gw.admin("/metrics")
    assert status == 200, text
    ctype = headers.get("Content-Type", "")
    assert ctype.startswith(("application/openmetrics-text", "text/plain")), ctype
    for name in RESGATE_NAMES:
        assert name in text, f"{name} missing from /metrics"
    before = parse_metrics(text)
    assert sample(before, "resgate_ws_current_connections") == 0
    assert sample(before, "resgate_ws_connections_total") == 0
    assert sample(before, "resgate_ws_requests_total", method="subscribe") == 0

    client = await WSClient.connect(gw.ws_url)
    try:
        resp = await client.request("subscribe.test.model", timeout=3)
        assert resp.get("result", {}).get("models", {}).get("test.model") == MODEL, resp
        status, body, _ = await http_get(f"{gw.http_url}/api/test/model")
        assert status == 200 and json.loads(body) == MODEL, (status, body)

        after = parse_metrics((await gw.admin("/metrics"))[1])
        assert sample(after, "resgate_ws_current_connections") == 1
        assert sample(after, "resgate_ws_connections_total") == 1
        assert sample(after, "resgate_ws_requests_total", method="subscribe") == 1
        assert sample(after, "resgate_ws_requests_total", method="get") == 0
        assert sample(after, "resgate_http_requests_total", method="GET") == 1
        assert sample(after, "resgate_cache_resources") >= 1
        assert sample(after, "resgate_cache_subscriptions") == 1
        assert sample(after, "resgate_info", version="1.8.0") == 1

        # resgate's own metrics port serves the same exposition.
        status, text2, _ = await http_get(f"http://127.0.0.1:{metrics_port}/metrics")
        assert status == 200, text2
        m2 = parse_metrics(text2)
        assert sample(m2, "resgate_ws_current_connections") == 1
        assert sample(m2, "resgate_ws_requests_total", method="subscribe") == 1
    finally:
        await client.close()
    assert not client.broken, client.broken

    # The gauge goes back down when the client is gone; the total stays.
    deadline = time.monotonic() + 3
    while True:
        m = parse_metrics((await gw.admin("/metrics"))[1])
        if sample(m, "resgate_ws_current_connections") == 0:
            break
        assert time.monotonic() < deadline, "resgate_ws_current_connections did not drop to 0"
        await asyncio.sleep(0.05)
    assert sample(m, "resgate_ws_connections_total") == 1
    assert svc.count("get.test.model") == 1


async def test_readyz_is_503_while_nats_is_down_and_200_when_it_is_back(
    nats_node: NatsNode, start_gateway: GatewayStarter
) -> None:
    gw = await start_gateway(nats_node.url)
    assert await gw.readyz() == 200

    nats_node.kill()
    waited = await gw.wait_ready(timeout=2, status=503)
    assert waited < 2
    status, body, _ = await gw.admin("/readyz")
    assert status == 503
    payload = json.loads(body)
    assert payload.get("status") != "ready"
    assert any("NATS" in str(r) for r in payload.get("reasons", [])), payload
    # Liveness is not readiness: the process is alive and says so.
    assert (await gw.admin("/healthz"))[0] == 200
    assert gw.returncode is None

    nats_node.start()  # same port: the gateway's reconnect loop finds it
    await gw.wait_ready(timeout=5, status=200)
    assert gw.returncode is None
