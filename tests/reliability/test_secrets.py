"""Security: tokens and credentials never leave the gateway, and a revoked token stops access at once.

A ``pyresgate`` process runs with debug logging and OpenTelemetry spans exported to its log
(``OTEL_TRACES_EXPORTER=console``). Secrets are planted everywhere a client or service hands them
over: a password in auth params, a token set by ``conn.<cid>.token``, an ``Authorization`` header
seen by ``headerAuth``, a malformed token event, an invalid auth reply. Then the gateway's whole log
(spans included), its metrics and every error message clients got are searched for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from typing import Any, Self

import aiohttp
import nats
import orjson
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from tests.conftest import GatewayFactory
from tests.reliability.support import Publisher, metrics
from tests.runtime.conftest import GatewayStarter
from tests.runtime.helpers import clean_env
from tests.support.cluster import NatsNode
from tests.support.fakeservice import HARNESS_PREFIX, FakeService
from tests.support.wsclient import WSClient, assert_error, assert_result

PASSWORD = "pw-" + secrets.token_hex(8)
TOKEN_SECRET = "tok-" + secrets.token_hex(8)
HEADER_SECRET = "hdr-" + secrets.token_hex(8)
BAD_EVENT_SECRET = "bad-" + secrets.token_hex(8)
PLANTED = (PASSWORD, TOKEN_SECRET, HEADER_SECRET, BAD_EVENT_SECRET)


class AuthService:
    """``auth.test.login.password`` sets the token when params carry PASSWORD; ``auth.test.login.header``
    (headerAuth) when the Authorization header carries HEADER_SECRET. ``access.test.secret`` allows
    get only with a token whose secret is one of those; ``access.test.open`` always."""

    def __init__(self, nats_url: str) -> None:
        self.nats_url = nats_url
        self.nc: NATS | None = None
        self.access_tokens: list[Any] = []
        #: (subject, cid, token) of every access and call request.
        self.seen: list[tuple[str, str | None, Any]] = []
        #: The cid of every ``auth.test.whoami.me`` request, in order (see ``_cid_of``).
        self.whoami: asyncio.Queue[str] = asyncio.Queue()

    async def start(self) -> Self:
        self.nc = await nats.connect(self.nats_url, name=f"{HARNESS_PREFIX}-auth", no_echo=True)
        for subject in ("access.>", "get.>", "call.>", "auth.>"):
            await self.nc.subscribe(subject, cb=self._on_request)
        await self.nc.flush(timeout=2)
        return self

    async def close(self) -> None:
        if self.nc is not None and not self.nc.is_closed:
            await self.nc.close()

    async def _token(self, cid: str, token: Any, tid: str | None = "t1") -> None:
        assert self.nc is not None
        await self.nc.publish(f"conn.{cid}.token", orjson.dumps({"token": token, "tid": tid}))

    async def _on_request(self, msg: Msg) -> None:
        req = orjson.loads(msg.data) if msg.data else {}
        kind, _, rest = msg.subject.partition(".")
        reply: Any = {"result": None}
        if msg.subject == "auth.test.login.password":
            params = req.get("params") or {}
            if params.get("password") == PASSWORD:
                user = params.get("user", "alice")
                await self._token(req["cid"], {"user": user, "secret": TOKEN_SECRET})
                reply = {"result": {"user": user}}
            else:
                reply = {"error": {"code": "system.accessDenied", "message": "Wrong password"}}
        elif msg.subject == "auth.test.login.header":
            if (req.get("header") or {}).get("Authorization") == [f"Bearer {HEADER_SECRET}"]:
                await self._token(req["cid"], {"user": "bob", "secret": HEADER_SECRET})
        elif msg.subject == "auth.test.login.garbage":
            reply = f'{{"result": "{PASSWORD}'  # unterminated JSON that contains a secret
        elif msg.subject == "auth.test.login.renew":  # system.tokenReset: the token is revoked
            await self._token(req["cid"], None)
        elif msg.subject == "auth.test.whoami.me":
            self.whoami.put_nowait(req["cid"])
        elif kind == "access":
            token = req.get("token")
            self.access_tokens.append(token)
            self.seen.append((msg.subject, req.get("cid"), token))
            ok = rest == "test.open" or (isinstance(token, dict) and token.get("secret") in PLANTED)
            reply = {"result": {"get": ok, "call": "*" if ok else ""}}
        elif kind == "get":
            reply = {"result": {"model": {"name": rest}}}
        elif kind == "call":
            self.seen.append((msg.subject, req.get("cid"), req.get("token")))
        with contextlib.suppress(Exception):
            await msg.respond(reply.encode() if isinstance(reply, str) else orjson.dumps(reply))


async def test_planted_secrets_never_reach_logs_spans_metrics_or_error_messages(
    nats_node: NatsNode, start_gateway: GatewayStarter
) -> None:
    env = clean_env(OTEL_TRACES_EXPORTER="console", OTEL_BSP_SCHEDULE_DELAY="50")
    svc = await AuthService(nats_node.url).start()
    gw = await start_gateway(nats_node.url, "-D", "--headauth", "test.login.header", env=env)
    client = await WSClient.connect(gw.ws_url)
    pub = await Publisher.connect(nats_node.url)
    answers: list[str] = []
    try:
        assert_result(await client.request("version", {"protocol": "1.2.3"}))
        answers.append(
            str(assert_error(await client.request("subscribe.test.secret"), "system.accessDenied"))
        )
        wrong = await client.request("auth.test.login.password", {"password": "wrong"})
        answers.append(str(assert_error(wrong, "system.accessDenied")))
        answers.append(str(await client.request("auth.test.login.garbage", {"password": PASSWORD})))
        assert_result(await client.request("auth.test.login.password", {"password": PASSWORD}))
        resp = await client.request("subscribe.test.secret")
        assert resp["result"]["models"] == {"test.secret": {"name": "test.secret"}}, resp
        assert {"user": "alice", "secret": TOKEN_SECRET} in svc.access_tokens  # the token was in use
        # Malformed token events carrying a secret: refused, logged, secret not in the log line.
        cid = await _cid_of(svc, client)
        await pub.nc.publish(f"conn.{cid}.token", f'{{"token":"{BAD_EVENT_SECRET}","tid":7}}'.encode())
        await pub.nc.publish(f"conn.{cid}.token", f'{{"token":"{BAD_EVENT_SECRET}"'.encode())
        await pub.flush()
        # headerAuth: the Authorization header reaches the service, never the log.
        async with aiohttp.ClientSession() as http:
            headers = {"Authorization": f"Bearer {HEADER_SECRET}"}
            async with http.get(f"{gw.http_url}/api/test/secret", headers=headers) as r:
                assert r.status == 200, await r.text()
            async with http.get(f"{gw.http_url}/api/test/secret") as r:
                assert r.status == 401  # accessDenied without a token
                answers.append(await r.text())
        scraped = await metrics(gw.admin_url)
    finally:
        await client.close()
        await pub.close()
        await svc.close()
    assert await gw.terminate() == 0  # flushes the span exporter
    log = gw.log(5_000_000)
    assert '"name": "RES auth"' in log and '"name": "HTTP GET"' in log, "spans were not exported"
    assert "Invalid token event" in log
    for secret in PLANTED:
        assert secret not in log, f"{secret} in the gateway log"
        assert secret not in scraped, f"{secret} in /metrics"
        for answer in answers:
            assert secret not in answer, f"{secret} in an error message: {answer}"


async def _cid_of(svc: AuthService, client: WSClient) -> str:
    """The client's cid, from the auth request the service gets for a fresh call (recorded before
    the service answers it, so it is there once the client has its response)."""
    assert_result(await client.request("auth.test.whoami.me"))
    return await asyncio.wait_for(svc.whoami.get(), 3)


async def test_a_revoked_token_stops_access_at_once(
    nats_node: NatsNode, start_gateway: GatewayStarter
) -> None:
    """``conn.<cid>.token`` with null, and ``system.tokenReset`` whose service revokes the token: the
    events published right after the revocation never reach the client; calls are denied."""
    svc = await AuthService(nats_node.url).start()
    gw = await start_gateway(nats_node.url)
    pub = await Publisher.connect(nats_node.url)
    clients = [await WSClient.connect(gw.ws_url) for _ in range(2)]
    try:
        for client in clients:
            assert_result(await client.request("version", {"protocol": "1.2.3"}))
            assert_result(await client.request("auth.test.login.password", {"password": PASSWORD}))
            assert_result(await client.request("subscribe.test.secret"))
            assert_result(await client.request("subscribe.test.open"))
        by_token, by_reset = clients
        cid = await _cid_of(svc, by_token)

        # 1. The service revokes one connection's token, then publishes a change at once.
        await pub.nc.publish(f"conn.{cid}.token", b'{"token":null}')
        await pub.publish("event.test.secret.change", {"values": {"name": "after revoke"}})
        await pub.publish("event.test.open.change", {"values": {"name": "open 1"}})
        await pub.flush()
        ev = await by_token.get_event(timeout=3)
        assert ev.name == "test.secret.unsubscribe", ev
        assert ev.data["reason"]["code"] == "system.accessDenied"
        await by_token.expect_event("test.open.change", {"values": {"name": "open 1"}}, timeout=3)
        assert_error(await by_token.request("call.test.secret.do"), "system.accessDenied")
        await by_reset.expect_event("test.secret.change", {"values": {"name": "after revoke"}}, timeout=3)
        await by_reset.expect_event("test.open.change", timeout=3)

        # 2. system.tokenReset for tid t1: the gateway asks test.login.renew, which revokes the token.
        await pub.publish("system.tokenReset", {"tids": ["t1"], "subject": "auth.test.login.renew"})
        await pub.flush()
        ev = await by_reset.get_event(timeout=3)
        assert ev.name == "test.secret.unsubscribe", ev
        await pub.publish("event.test.secret.change", {"values": {"name": "after reset"}})
        await pub.publish("event.test.open.change", {"values": {"name": "open 2"}})
        await pub.flush()
        for client in clients:
            await client.expect_event("test.open.change", {"values": {"name": "open 2"}}, timeout=3)
            await client.assert_no_event(0.2)
        assert_error(await by_reset.request("subscribe.test.secret"), "system.accessDenied")
    finally:
        for client in clients:
            await client.close()
        await pub.close()
        await svc.close()


async def test_a_connection_never_acts_with_another_connections_token(
    nats_node: NatsNode, start_gateway: GatewayStarter
) -> None:
    """Many clients, each logged in as its own user, interleave subscribes and calls: every access
    and call request the service gets carries the token of the connection (cid) it came from."""
    svc = await AuthService(nats_node.url).start()
    gw = await start_gateway(nats_node.url)
    pub = await Publisher.connect(nats_node.url)
    clients = [await WSClient.connect(gw.ws_url) for _ in range(8)]
    try:
        users: dict[str, str] = {}
        for n, client in enumerate(clients):
            assert_result(await client.request("version", {"protocol": "1.2.3"}))
            assert_result(
                await client.request("auth.test.login.password", {"password": PASSWORD, "user": f"u{n}"})
            )
            users[await _cid_of(svc, client)] = f"u{n}"

        async def work(client: WSClient) -> None:
            for i in range(10):
                assert_result(await client.request(f"subscribe.test.secret?n={i}"))
                assert_result(await client.request(f"call.test.secret?n={i}.do"))

        await asyncio.gather(*(work(client) for client in clients))
        checked = [(cid, token) for subject, cid, token in svc.seen if cid in users]
        assert len(checked) >= 8 * 20
        for cid, token in checked:
            assert isinstance(token, dict) and token["user"] == users[cid], (cid, token)
    finally:
        for client in clients:
            await client.close()
        await pub.close()
        await svc.close()


async def test_a_token_revoked_while_an_http_get_is_in_flight_denies_it(
    gateway_factory: GatewayFactory, service: FakeService
) -> None:
    """headerAuth sets the HTTP request's token; the service revokes it while the resource is still
    loading: the response is access denied, not the data (access is asked again with no token)."""
    gw = await gateway_factory(header_auth="test.login.header")
    async with aiohttp.ClientSession() as http:
        pending = asyncio.ensure_future(http.get(f"http://127.0.0.1:{gw.port}/api/test/secret"))
        auth = await service.expect_request("auth.test.login.header")
        cid = auth.path("cid")
        await service.conn_event(cid, "token", {"token": {"user": "alice"}}, check=False)
        await auth.ok(None)
        first = await service.requests(2)
        assert first.get("access.test.secret").path("token") == {"user": "alice"}
        await first.get("access.test.secret").ok({"get": True})
        await service.conn_event(cid, "token", {"token": None}, check=False)  # revoked mid-flight
        await first.get("get.test.secret").json({"result": {"model": {"secret": 1}}})
        # Access is asked again with no token (by the re-check of the subscription and by the
        # request before answering); the service now says no.
        again = await service.expect_request("access.test.secret")
        assert again.path("token") is None
        await again.ok({"get": False})
        with contextlib.suppress(AssertionError):
            more = await service.expect_request("access.test.secret", timeout=0.3)
            await more.ok({"get": False})
        resp = await asyncio.wait_for(pending, 3)
        assert resp.status == 401, await resp.text()
        assert "secret" not in await resp.text()
        resp.release()
