"""HTTP GET of resources already in the cache: no subscription, only the access check."""

from __future__ import annotations

import asyncio

from tests.conftest import GatewayFactory
from tests.support.fakeservice import FakeService
from tests.support.macros import connect


async def test_http_get_of_a_cached_tree_sends_only_access(
    gateway_factory: GatewayFactory, service: FakeService
) -> None:
    """A resource tree already in the cache is served to HTTP with an access request and no get,
    and reflects the events applied since."""
    import aiohttp

    gw = await gateway_factory(api_encoding="jsonflat")
    client = await connect(gw)
    pending = await client.send("subscribe.test.p")
    reqs = await service.requests(2)
    await reqs.get("access.test.p").ok({"get": True})
    await reqs.get("get.test.p").ok({"model": {"name": "p", "child": {"rid": "test.c"}}})
    await (await service.expect_request("get.test.c")).ok({"collection": [1, 2]})
    await pending.response()
    await service.event("test.c", "add", {"idx": 2, "value": 3})
    await client.get_event()

    async with aiohttp.ClientSession() as session:
        get = asyncio.ensure_future(session.get(f"{gw.http_url}/api/test/p"))
        access = await service.expect_request("access.test.p")
        access.assert_path("isHttp", True)
        await access.ok({"get": True})
        async with await get as resp:
            assert resp.status == 200
            assert await resp.json() == {"name": "p", "child": [1, 2, 3]}
    await service.expect_no_request(0.1)
