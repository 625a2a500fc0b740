"""Slow consumers: a client that stops reading is disconnected once its unread output passes
``clientOutboxLimit``, while other clients get every event; the gateway's memory stays flat.

Real processes: a ``pyresgate`` process, a nats-server, a model service and an event publisher on
their own NATS connections, a stalled raw WebSocket client with a 4 KiB receive buffer, and a healthy
``websockets`` client.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import statistics
import time

import pytest

from tests.reliability.support import ModelService, Publisher, RawWS, metrics, rss_bytes
from tests.runtime.conftest import GatewayStarter
from tests.runtime.helpers import parse_metrics, sample
from tests.support.cluster import NatsNode
from tests.support.wsclient import WSClient

#: Events in the burst, about 1 KB each: ~20 MB for the stalled client, 20 times the default bound.
EVENTS = 20_000
#: Extra resident memory the burst may leave in the gateway. Without the bound the stalled client's
#: backlog alone would be ~15-20 MB; the cache, the healthy client's traffic and allocator noise
#: stay well below this.
RSS_GROWTH_MAX = 12 * 1024 * 1024
RID = "test.flood"
#: Events published before waiting for the healthy client.
BATCH = 250


def _blob(i: int) -> str:
    # Random hex (does not compress to nothing on the permessage-deflate path), ~1 KB per event.
    return f"{i:08d}" + secrets.token_hex(500)


async def _flood(pub: Publisher, first: int, n: int) -> None:
    for i in range(first, first + n):
        await pub.publish(f"event.{RID}.change", {"values": {"n": i, "blob": _blob(i)}})
    await pub.flush()


async def _receive(client: WSClient, n: int, timeout: float) -> list[int]:
    got: list[int] = []
    deadline = time.monotonic() + timeout
    while len(got) < n:
        ev = await client.get_event(timeout=max(deadline - time.monotonic(), 0.01))
        if ev.name == f"{RID}.change":
            got.append(ev.data["values"]["n"])
    return got


async def _paced_flood(
    pub: Publisher, healthy: WSClient, n: int, timeout: float, batch_seconds: list[float] | None = None
) -> list[int]:
    """Publish ``n`` events in batches of BATCH, each once the healthy client has read the last one:
    a client that keeps up never lags by more than a batch (~250 KB), while the stalled one gets
    everything. (Unpaced, a 20 MB burst from this very process outruns any reader, which the
    gateway rightly treats as slow too.)"""
    got: list[int] = []
    deadline = time.monotonic() + timeout
    for first in range(0, n, BATCH):
        started = time.monotonic()
        await _flood(pub, first, min(BATCH, n - first))
        got += await _receive(healthy, min(BATCH, n - first), max(deadline - time.monotonic(), 0.01))
        if batch_seconds is not None:  # publish to delivery of the batch's last event
            batch_seconds.append(time.monotonic() - started)
    return got


@pytest.mark.timeout(150)
@pytest.mark.parametrize("compression", [False, True], ids=["plain", "permessage-deflate"])
async def test_stalled_client_is_disconnected_others_get_every_event_and_rss_stays_flat(
    nats_node: NatsNode, start_gateway: GatewayStarter, compression: bool
) -> None:
    args = ["--wscompression"] if compression else []
    extensions = "permessage-deflate" if compression else None
    async with ModelService(nats_node.url, {RID: {"n": -1, "blob": ""}}) as svc:
        gw = await start_gateway(nats_node.url, *args)
        healthy = await WSClient.connect(gw.ws_url, compression=compression)
        stalled = await RawWS.connect(gw.port, extensions=extensions)
        pub = await Publisher.connect(nats_node.url)
        try:
            assert "result" in await healthy.request(f"subscribe.{RID}")
            assert "result" in await stalled.request(f"subscribe.{RID}")
            healthy_cid, stalled_cid = svc.cids[:2]
            # Warm up (allocator arenas, caches) with the stalled client still reading, then measure.
            assert await _paced_flood(pub, healthy, 200, 10) == list(range(200))
            assert not await stalled.closed_by_peer(0.3)  # drains what it got; it is not cut off yet
            baseline = rss_bytes(gw.pid)

            started = time.monotonic()
            batches: list[float] = []
            got = await _paced_flood(pub, healthy, EVENTS, 90, batches)
            elapsed = time.monotonic() - started
            assert got == list(range(EVENTS)), "the healthy client lost or reordered events"
            growth = rss_bytes(gw.pid) - baseline
            # Latency of the healthy client's batches while the other one is stalled (the first ones,
            # until the gateway gives up on it) and after: the stalled client does not slow it down.
            while_stalled, after = statistics.median(batches[:8]), statistics.median(batches[-8:])
            print(f"slow consumer ({'deflate' if compression else 'plain'}): {EVENTS} events in {elapsed:.1f} s, "
                  f"RSS {growth / 2**20:+.1f} MiB, healthy batch of {BATCH}: median {while_stalled * 1000:.0f} ms "
                  f"while the other client stalls, {after * 1000:.0f} ms after")  # fmt: skip
            assert while_stalled < max(5 * after, 0.5), (while_stalled, after)

            assert await stalled.closed_by_peer(10), "the stalled client was not disconnected"
            text = await metrics(gw.admin_url)
            assert sample(parse_metrics(text), "pyresgate_slow_consumer_disconnects_total") == 1
            log = gw.log(200_000)
            print("".join(line for line in log.splitlines(keepends=True) if "Slow consumer" in line))
            assert re.search(rf"\[{stalled_cid}\] Slow consumer: \d+ bytes unread \(limit 1048576\)", log), (
                log
            )
            assert healthy_cid not in log
            assert growth < RSS_GROWTH_MAX, f"gateway RSS grew {growth / 2**20:.1f} MiB"
            assert elapsed < 90
            assert "result" in await healthy.request(f"get.{RID}")
            healthy.assert_not_broken()
        finally:
            stalled.close()
            await healthy.close()
            await pub.close()


async def test_slow_reader_gets_a_1008_close_frame_before_the_socket_closes(
    nats_node: NatsNode, start_gateway: GatewayStarter
) -> None:
    """A client that reads, but too slowly, is told why: close code 1008 "slow consumer"."""
    async with ModelService(nats_node.url, {RID: {"n": -1, "blob": ""}}) as svc:
        gw = await start_gateway(nats_node.url, "--clientoutboxlimit", "65536")
        client = await RawWS.connect(gw.port)
        pub = await Publisher.connect(nats_node.url)
        try:
            assert "result" in await client.request(f"subscribe.{RID}")
            # Nothing is read until the gateway gives up on the client: the kernel's socket buffers
            # (megabytes on loopback) fill first, then the gateway's 64 KiB.
            for first in range(0, EVENTS, 2000):
                await _flood(pub, first, 2000)
                await asyncio.sleep(0.2)
                if "Slow consumer" in gw.log(100_000):
                    break
            close_payload = None
            async with asyncio.timeout(20):
                while close_payload is None:
                    opcode, payload = await client.read_frame()
                    if opcode == 0x8:
                        close_payload = payload
            assert close_payload[:2] == (1008).to_bytes(2, "big")
            assert close_payload[2:] == b"slow consumer"
            assert svc.cids[0] in gw.log(200_000)
        finally:
            client.close()
            await pub.close()


#: Pipelined HTTP requests a non-reading client sends, each answered with ~100 KB (~30 MB in all).
PIPELINED = 300
BIG = "x" * 100_000


async def _pipeline_without_reading(stalled: RawWS, one: bytes) -> int:
    """Send PIPELINED requests, stopping when the gateway stops reading or drops the connection."""
    sent = 0
    with contextlib.suppress(TimeoutError, OSError):  # sending blocks, or the socket was aborted
        for _ in range(PIPELINED):
            await asyncio.wait_for(stalled.send_raw(one), 1.0)
            sent += 1
    return sent


async def test_http_client_that_pipelines_without_reading_is_a_slow_consumer(
    nats_node: NatsNode, start_gateway: GatewayStarter
) -> None:
    """Fast path: pipelined GETs whose ~100 KB answers are never read. The gateway keeps answering
    until the unread output passes clientOutboxLimit (1 MiB) plus the largest answer, then aborts
    the connection: metric +1, a log line with the client's address; other clients are served
    throughout and memory stays flat."""
    async with ModelService(nats_node.url, {"test.big": {"blob": BIG}}):
        gw = await start_gateway(nats_node.url)
        one = b"GET /api/test/big HTTP/1.1\r\nHost: x\r\n\r\n"
        stalled = await RawWS.connect_raw(gw.port)
        port = stalled.sock.getsockname()[1]
        try:
            await stalled.send_raw(one)  # warm up: the resource is cached, one response unread
            await asyncio.sleep(0.3)
            baseline = rss_bytes(gw.pid)
            sent = await _pipeline_without_reading(stalled, one)
            async with asyncio.timeout(10):
                while "Slow consumer" not in gw.log(200_000):
                    await asyncio.sleep(0.1)
            growth = rss_bytes(gw.pid) - baseline
            client = await WSClient.connect(gw.ws_url)
            try:
                resp = await client.request("get.test.big", timeout=3)
                assert resp["result"]["models"]["test.big"]["blob"] == BIG
            finally:
                await client.close()
            assert await stalled.closed_by_peer(5), "the stalled HTTP client was not disconnected"
            log = gw.log(200_000)
            line = next(ln for ln in log.splitlines() if "Slow consumer" in ln)
            print(f"HTTP fast path: {sent} pipelined requests sent, RSS {growth / 2**20:+.1f} MiB; {line}")
            match = re.search(
                rf"\[HTTP 127\.0\.0\.1:{port}\] Slow consumer: (\d+) bytes unread \(limit 1048576\)", line
            )
            assert match, line
            assert int(match[1]) <= 1048576 + 2 * (len(BIG) + 1000)  # the limit, the largest answer, one more
            text = await metrics(gw.admin_url)
            assert sample(parse_metrics(text), "pyresgate_slow_consumer_disconnects_total") == 1
            assert growth < 8 * 1024 * 1024, (
                f"RSS grew {growth / 2**20:.1f} MiB after {sent} pipelined requests"
            )
        finally:
            stalled.close()


async def test_http_client_that_pipelines_without_reading_on_aiohttps_path_holds_one_response(
    nats_node: NatsNode, start_gateway: GatewayStarter
) -> None:
    """aiohttp's path (POSTs): aiohttp writes one response at a time and waits for the socket to
    drain before the next, so a client that never reads makes the gateway hold one response and
    the transport's 64 KiB high-water mark, within clientOutboxLimit plus the largest response
    (the same bound as the fast path's); it is not disconnected, as with Go's net/http."""
    async with ModelService(nats_node.url, {"test.big": {"blob": BIG}}) as svc:
        svc.call_result = {"blob": BIG}
        gw = await start_gateway(nats_node.url)
        one = b"POST /api/test/big/method HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
        stalled = await RawWS.connect_raw(gw.port)
        try:
            await stalled.send_raw(one)
            await asyncio.sleep(0.3)
            baseline = rss_bytes(gw.pid)
            sent = await _pipeline_without_reading(stalled, one)
            await asyncio.sleep(0.5)
            growth = rss_bytes(gw.pid) - baseline
            print(f"HTTP aiohttp path: {sent} pipelined requests sent, RSS {growth / 2**20:+.1f} MiB")
            client = await WSClient.connect(gw.ws_url)
            try:
                resp = await client.request("get.test.big", timeout=3)
                assert resp["result"]["models"]["test.big"]["blob"] == BIG
            finally:
                await client.close()
            assert growth < 8 * 1024 * 1024, (
                f"RSS grew {growth / 2**20:.1f} MiB after {sent} pipelined requests"
            )
        finally:
            stalled.close()
