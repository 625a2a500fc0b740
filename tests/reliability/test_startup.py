"""Start-up before NATS: a ``pyresgate`` process started while its nats-server is not up yet keeps
retrying (admin port up: /healthz 200, /readyz 503; client port closed) and serves as soon as NATS
answers. With ``--exitonnatsloss`` it exits 1 as resgate does; a stop signal meanwhile exits 0.

Real processes: the gateway and a nats-server on a fixed free port started after it.
"""

from __future__ import annotations

import asyncio
import signal
import time

from tests.reliability.support import ModelService
from tests.runtime.helpers import GatewayProcess, port_accepts
from tests.support.cluster import NatsNode
from tests.support.wsclient import WSClient

#: Seconds the gateway waits for NATS in the first test before the server is started.
WAIT_BEFORE_NATS = 2.0
#: Seconds within which the gateway must serve once NATS is up (back-off is capped at 2 s).
SERVE_WITHIN = 6.0
#: A password in the NATS URL, which must not reach the log.
SECRET = "s3cret-Pw-in-url"


async def test_gateway_started_before_nats_waits_unready_then_serves(
    nats_node: NatsNode, gateways: list[GatewayProcess]
) -> None:
    nats_node.stop()  # the fixture started it; the gateway must come first
    gw = await GatewayProcess.spawn([], nats_url=nats_node.url)
    gateways.append(gw)
    await gw.wait_ready(10, status=503)  # the admin port is up, unready
    deadline = time.monotonic() + WAIT_BEFORE_NATS
    while time.monotonic() < deadline:
        assert gw.returncode is None, gw.log()
        assert (await gw.admin("/healthz"))[0] == 200
        status, body, _ = await gw.admin("/readyz")
        assert status == 503 and "NATS not connected" in body, body
        assert not await port_accepts(gw.port), "client port open before NATS"
        await asyncio.sleep(0.2)

    nats_node.start()
    started = time.monotonic()
    await gw.wait_ready(SERVE_WITHIN)
    assert time.monotonic() - started < SERVE_WITHIN
    assert await port_accepts(gw.port)
    async with ModelService(nats_node.url, {"test.model": {"a": 1}}):
        client = await WSClient.connect(gw.ws_url)
        try:
            resp = await client.request("subscribe.test.model", timeout=3)
            assert resp["result"]["models"] == {"test.model": {"a": 1}}
        finally:
            await client.close()
    log = gw.log(20_000)
    assert "cannot connect to NATS" in log and "retrying in" in log, log
    assert await gw.terminate() == 0


async def test_exit_on_nats_loss_exits_1_when_nats_is_not_there_at_start(
    nats_node: NatsNode, gateways: list[GatewayProcess]
) -> None:
    nats_node.stop()
    url = f"nats://gwuser:{SECRET}@127.0.0.1:{nats_node.port}"
    gw = await GatewayProcess.spawn(["--exitonnatsloss"], nats_url=url)
    gateways.append(gw)
    assert await gw.wait_exit(15) == 1
    log = gw.log()
    assert f"cannot connect to NATS at nats://***@127.0.0.1:{nats_node.port}" in log, log
    assert SECRET not in log


async def test_a_stop_signal_while_waiting_for_nats_exits_0_at_once(
    nats_node: NatsNode, gateways: list[GatewayProcess]
) -> None:
    nats_node.stop()
    gw = await GatewayProcess.spawn([], nats_url=nats_node.url)
    gateways.append(gw)
    await gw.wait_ready(10, status=503)
    gw.send_signal(signal.SIGTERM)
    assert await gw.wait_exit(5) == 0
