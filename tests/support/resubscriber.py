"""A RES client that stays subscribed as resclient does: after its WebSocket closes it reconnects after
a delay (doubling while connecting fails) and subscribes again, then checks every change event.

Used by the rebalancing tests (``tests/rebalance/``) and ``bench/rebalance.py`` against a resource
``{"seq": n}`` whose service publishes ``change`` events with n+1, n+2, ... Within one subscription
each event must carry the next number (a skipped or repeated number is recorded in ``errors``); after
a resubscribe the client starts from the value in the subscribe response, which is what resclient
does with a stale resource, and a subscribe that fails (e.g. a service timeout) is tried again after
``retry`` seconds, as resclient retries a stale resource. ``gaps`` are the client-visible outages:
seconds from a close to the next subscribe response. (resclient waits a fixed 3 s before
reconnecting and 2 s before retrying a subscribe.)
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import aiohttp
import orjson

#: Seconds allowed for connecting and for the subscribe response.
CONNECT_TIMEOUT = 5.0


class Resubscriber:
    """One client subscribed to ``rid`` through ``url``; ``run`` until ``stop``.

    Waits ``delay`` seconds (times a random factor within 1 ± ``jitter``) after a close, doubling
    up to ``max_delay`` while connecting fails, and ``retry`` seconds before repeating a failed
    subscribe.
    """

    def __init__(
        self,
        url: str,
        rid: str,
        session: aiohttp.ClientSession,
        *,
        delay: float = 0.1,
        retry: float = 2.0,
        max_delay: float = 2.0,
        jitter: float = 0.5,
        seed: int = 0,
    ) -> None:
        self.url = url
        self.rid = rid
        self.session = session
        self.delay = delay
        self.retry = retry
        self.max_delay = max_delay
        self.jitter = jitter
        self._random = random.Random(seed)
        self.seq: int | None = None
        self.subscribed = False
        #: Subscribe responses received (1 + resubscribes).
        self.subscribes = 0
        #: (monotonic time, close code) of every close of an established connection.
        self.closes: list[tuple[float, int | None]] = []
        #: Seconds without a subscription after each close (close to the next subscribe response).
        self.gaps: list[float] = []
        #: Error responses to a subscribe (each retried after ``retry`` seconds).
        self.subscribe_failures: list[str] = []
        self.errors: list[str] = []
        self._next_id = 2
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._stopping = False

    async def run(self) -> None:
        failures = 0
        lost_at: float | None = None
        while not self._stopping:
            try:
                ws = await self.session.ws_connect(
                    self.url, autoping=True, max_msg_size=0, timeout=aiohttp.ClientWSTimeout(ws_close=2.0)
                )
            except (aiohttp.ClientError, OSError, TimeoutError):
                failures += 1
                await self._sleep(min(self.delay * 2**failures, self.max_delay))
                continue
            failures = 0
            self._ws = ws
            try:
                await self._serve(ws, lost_at)
            finally:
                self._ws = None
                self.subscribed = False
            if self._stopping:
                break
            lost_at = time.monotonic()
            self.closes.append((lost_at, ws.close_code))
            await self._sleep(self.delay)

    async def stop(self) -> None:
        self._stopping = True
        if self._ws is not None:
            await self._ws.close()

    async def _sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds * self._random.uniform(1 - self.jitter, 1 + self.jitter))

    async def _serve(self, ws: aiohttp.ClientWebSocketResponse, lost_at: float | None) -> None:
        await ws.send_str('{"id":1,"method":"version","params":{"protocol":"1.2.3"}}')
        await self._subscribe(ws)
        retry: asyncio.Task[None] | None = None
        try:
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                data: Any = orjson.loads(msg.data)
                if data.get("id") == self._next_id:
                    if "error" in data:
                        self.subscribe_failures.append(str(data["error"])[:200])
                        retry = asyncio.ensure_future(self._resubscribe_later(ws))
                    else:
                        self._on_subscribed(data, lost_at)
                elif "event" in data:
                    self._on_event(data)
        finally:
            if retry is not None:
                retry.cancel()

    async def _subscribe(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._next_id += 1
        await ws.send_str(f'{{"id":{self._next_id},"method":"subscribe.{self.rid}"}}')

    async def _resubscribe_later(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        await self._sleep(self.retry)
        if not ws.closed:
            await self._subscribe(ws)

    def _on_subscribed(self, data: Any, lost_at: float | None) -> None:
        try:
            self.seq = int(data["result"]["models"][self.rid]["seq"])
        except (KeyError, TypeError, ValueError):
            self.errors.append(f"bad subscribe response {str(data)[:200]}")
            return
        self.subscribed = True
        self.subscribes += 1
        if lost_at is not None:
            self.gaps.append(time.monotonic() - lost_at)

    def _on_event(self, data: Any) -> None:
        if data["event"] != self.rid + ".change":
            self.errors.append(f"unexpected event {str(data)[:200]}")
            return
        if not self.subscribed or self.seq is None:
            self.errors.append(f"event before the subscribe response: {str(data)[:200]}")
            return
        seq = data["data"]["values"]["seq"]
        if seq != self.seq + 1:
            self.errors.append(f"event seq {seq} after {self.seq}")
        self.seq = seq
