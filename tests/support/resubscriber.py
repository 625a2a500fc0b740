"""A RES client that stays subscribed as resclient does: after its WebSocket closes it reconnects after
a delay (doubling while connecting fails) and subscribes again, then checks every change event.

Used by the rebalancing tests (``tests/rebalance/``) and ``bench/rebalance.py`` against a resource
``{"seq": n}`` whose service publishes ``change`` events with n+1, n+2, ... Within one subscription
each event must carry the next number (a skipped or repeated number is recorded in ``errors``); after
a resubscribe the client starts from the value in the subscribe response, which is what resclient
does with a stale resource. ``gaps`` are the client-visible outages: seconds from a close to the next
subscribe response. (resclient itself waits a fixed 3 s before reconnecting.)
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
    """One client subscribed to ``rid`` through ``url``; ``run`` until ``stop``."""

    def __init__(
        self,
        url: str,
        rid: str,
        session: aiohttp.ClientSession,
        *,
        delay: float = 0.1,
        max_delay: float = 2.0,
        seed: int = 0,
    ) -> None:
        self.url = url
        self.rid = rid
        self.session = session
        self.delay = delay
        self.max_delay = max_delay
        self._random = random.Random(seed)
        self.seq: int | None = None
        self.subscribed = False
        #: Subscribe responses received (1 + resubscribes).
        self.subscribes = 0
        #: (monotonic time, close code) of every close of an established connection.
        self.closes: list[tuple[float, int | None]] = []
        #: Seconds without a subscription after each close (close to the next subscribe response).
        self.gaps: list[float] = []
        self.errors: list[str] = []
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
        await asyncio.sleep(seconds * self._random.uniform(0.5, 1.5))

    async def _serve(self, ws: aiohttp.ClientWebSocketResponse, lost_at: float | None) -> None:
        await ws.send_str('{"id":1,"method":"version","params":{"protocol":"1.2.3"}}')
        await ws.send_str(f'{{"id":2,"method":"subscribe.{self.rid}"}}')
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            data: Any = orjson.loads(msg.data)
            if data.get("id") == 2:
                self._on_subscribed(data, lost_at)
            elif "event" in data:
                self._on_event(data)

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
