"""TLS on the client listener (tls/certFile/keyFile, CLI --tls --tlscert --tlskey), and the gateway's NATS
connection with TLS client certificates (natsCert/natsKey/natsRootCAs), a ``.creds`` file (natsCreds,
operator mode) and user/password in the NATS URL. All certificates and NATS keys are made by the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from websockets.asyncio.client import connect

from tests.conftest import GatewayFactory
from tests.runtime_tls.conftest import PASSWORD, USER, OptionsService, Pki, start_on
from tests.runtime_tls.pki import NatsOperator, self_signed
from tests.support import fixtures, macros
from tests.support.fakeservice import FakeService
from tests.support.fixtures import PROTOCOL
from tests.support.gatewayrunner import TEST_DEFAULTS, GatewayHandle
from tests.support.logguard import ErrorLog
from tests.support.natsserver import NatsServer
from tests.support.wsclient import WSClient

FULL_ACCESS = {"get": True, "call": "*"}


def client_context(cafile: Path, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(cafile))
    if cert is not None:
        ctx.load_cert_chain(str(cert), str(key) if key else None)
    return ctx


async def subscribe_model(client: WSClient, service: FakeService) -> None:
    """Version handshake, then subscribe test.model through ``service``; checks the result."""
    resp = await client.request("version", {"protocol": macros.LATEST_CLIENT})
    assert resp.get("result") == {"protocol": PROTOCOL}
    pending = await client.send("subscribe.test.model")
    reqs = await service.requests(2)
    await reqs.get("access.test.model").ok(FULL_ACCESS)
    await reqs.get("get.test.model").json(fixtures.get_reply("test.model"))
    await pending.result(fixtures.resource_set("test.model"))


# ---------------------------------------------------------------------------------------------
# Client listener over TLS


@pytest.fixture(scope="module")
def server_cert(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return self_signed(tmp_path_factory.mktemp("listener"))


async def open_wss(gw: GatewayHandle, ctx: ssl.SSLContext) -> WSClient:
    ws = await connect(
        f"wss://127.0.0.1:{gw.port}/",
        ssl=ctx,
        open_timeout=2,
        close_timeout=2,
        ping_interval=None,
        max_size=None,
    )
    client = WSClient(ws, f"wss://127.0.0.1:{gw.port}/")
    gw.clients.append(client)  # closed (and checked) by the fixture's teardown
    return client


async def test_tls_listener_wss_version_and_subscribe(
    gateway_factory: GatewayFactory, service: FakeService, server_cert: Any
) -> None:
    gw = await gateway_factory(tls=True, cert_file=str(server_cert.cert), key_file=str(server_cert.key))
    client = await open_wss(gw, client_context(server_cert.cert))
    assert client.status == 101
    await subscribe_model(client, service)
    await macros.custom(service, "test.model")
    await client.expect_event("test.model.custom", fixtures.CUSTOM_PAYLOAD)


async def test_tls_listener_https_get(
    gateway_factory: GatewayFactory, service: FakeService, server_cert: Any
) -> None:
    gw = await gateway_factory(tls=True, cert_file=str(server_cert.cert), key_file=str(server_cert.key))
    ctx = client_context(server_cert.cert)

    async def get() -> tuple[int, Any]:
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                f"https://127.0.0.1:{gw.port}/api/test/model", ssl=ctx, timeout=aiohttp.ClientTimeout(total=3)
            ) as resp,
        ):
            return resp.status, await resp.json()

    task = asyncio.ensure_future(get())
    reqs = await service.requests(2)
    await reqs.get("access.test.model").ok(FULL_ACCESS)
    await reqs.get("get.test.model").json(fixtures.get_reply("test.model"))
    status, body = await asyncio.wait_for(task, 3)
    assert status == 200
    assert body == fixtures.MODELS["test.model"]


async def test_tls_listener_refuses_untrusted_and_plain_clients(
    gateway_factory: GatewayFactory, service: FakeService, server_cert: Any, tmp_path: Path
) -> None:
    """A client not trusting the certificate fails the handshake; plain ws:// is not served."""
    gw = await gateway_factory(tls=True, cert_file=str(server_cert.cert), key_file=str(server_cert.key))
    other = self_signed(tmp_path, "other")
    with pytest.raises(ssl.SSLCertVerificationError):
        await open_wss(gw, client_context(other.cert))
    client, status, _ = await WSClient.try_connect(gw.ws_url)
    assert client is None and status in (0, 400), status
    await service.expect_no_request(0.05)


async def test_tls_listener_from_cli_flags(
    gateway_factory: GatewayFactory, service: FakeService, server_cert: Any
) -> None:
    """--tls --tlscert --tlskey give the tls/certFile/keyFile settings the listener is served with."""
    from gateway import config

    cfg = config.load_config(
        ["--tls", "--tlscert", str(server_cert.cert), "--tlskey", str(server_cert.key)], env={}
    )
    assert (cfg.tls, cfg.cert_file, cfg.key_file) == (True, str(server_cert.cert), str(server_cert.key))
    assert cfg.scheme == "https"
    gw = await gateway_factory(tls=cfg.tls, cert_file=cfg.cert_file, key_file=cfg.key_file)
    client = await open_wss(gw, client_context(server_cert.cert))
    await subscribe_model(client, service)


# ---------------------------------------------------------------------------------------------
# NATS over TLS with client certificates


async def gateway_nats_connection(monitor_url: str) -> dict[str, Any]:
    """The gateway's connection entry from the NATS monitor (named "pyresgate")."""
    url, timeout = f"{monitor_url}/connz?auth=1", aiohttp.ClientTimeout(total=2)
    async with aiohttp.ClientSession() as session, session.get(url, timeout=timeout) as resp:
        body = await resp.json(content_type=None)
    conns = [c for c in body.get("connections") or [] if c.get("name") == "pyresgate"]
    assert len(conns) == 1, body
    return dict(conns[0])


@contextlib.asynccontextmanager
async def options_service(server: NatsServer, **options: Any) -> Any:
    svc = OptionsService(server.url, server.monitor_url, **options)
    await svc.start()
    try:
        yield svc
    finally:
        await svc.close()


async def test_nats_tls_with_client_certificate(
    tls_nats: NatsServer, pki: Pki, gateways: list[GatewayHandle]
) -> None:
    ctx = client_context(pki.ca.path, pki.client.cert, pki.client.key)
    async with options_service(tls_nats, tls=ctx) as service:
        gw = await start_on(
            gateways,
            tls_nats.url,
            nats_cert=str(pki.client.cert),
            nats_key=str(pki.client.key),
            nats_root_cas=[str(pki.ca.path)],
        )
        conn = await gateway_nats_connection(tls_nats.monitor_url)
        assert conn.get("tls_version"), f"gateway NATS connection is not TLS: {conn}"
        client = await gw.connect()
        await subscribe_model(client, service)
        await macros.custom(service, "test.model")
        await client.expect_event("test.model.custom", fixtures.CUSTOM_PAYLOAD)
        await gw.close_clients()
        await gw.stop()


#: Seconds a gateway may take to give up on a NATS server that refuses it.
FAIL_WITHIN = 2.0


async def start_failing(nats_url: str, errors: ErrorLog, **overrides: Any) -> BaseException:
    """Start a gateway whose NATS connection is refused: ``start`` must raise (not hang) within
    FAIL_WITHIN seconds. Returns the exception; the gateway is stopped either way.

    The negative cases run with ``exit_on_nats_loss=True`` (no reconnecting, as resgate); the default
    configuration is covered by ``test_nats_refused_at_start_fails_with_default_config``.
    """
    from gateway import app, config
    from tests.support.natsserver import free_port

    cfg = config.Config(**{**TEST_DEFAULTS, "nats_url": nats_url, "port": free_port(), **overrides})
    gateway = app.Gateway(cfg)
    raised: BaseException | None = None
    try:
        await asyncio.wait_for(gateway.start(), FAIL_WITHIN)
    except TimeoutError as exc:
        raise AssertionError(f"gateway.start() neither connected nor failed within {FAIL_WITHIN}s") from exc
    except Exception as exc:  # noqa: BLE001 - any connect error is the expected outcome
        raised = exc
    finally:
        # Bounded short: after a failed TLS upgrade nats-py's close() hangs and the gateway waits out
        # its own 3 s MQ close timeout (reported; not what these tests are about).
        with contextlib.suppress(Exception):
            await asyncio.wait_for(gateway.stop(), 1.0)
        errors.take()  # whatever the NATS client reported while failing is expected here
    assert raised is not None, "gateway started although NATS should have refused it"
    return raised


async def test_nats_tls_without_client_certificate_fails(
    tls_nats: NatsServer, pki: Pki, errors: ErrorLog
) -> None:
    """The server verifies client certificates: root CAs alone do not get the gateway in."""
    await start_failing(tls_nats.url, errors, nats_root_cas=[str(pki.ca.path)], exit_on_nats_loss=True)


async def test_nats_tls_untrusted_server_fails(
    tls_nats: NatsServer, pki: Pki, errors: ErrorLog, tmp_path: Path
) -> None:
    """natsRootCAs that do not include the server's CA: the gateway refuses the server."""
    from tests.runtime_tls.pki import make_ca

    other_ca = make_ca(tmp_path, "other CA")
    await start_failing(
        tls_nats.url,
        errors,
        nats_cert=str(pki.client.cert),
        nats_key=str(pki.client.key),
        nats_root_cas=[str(other_ca.path)],
        exit_on_nats_loss=True,
    )


# ---------------------------------------------------------------------------------------------
# NATS credentials


async def test_nats_creds_file(
    creds_nats: NatsServer, operator: NatsOperator, gateways: list[GatewayHandle], tmp_path: Path
) -> None:
    """natsCreds: a user JWT + NKEY seed file (operator mode, MEMORY resolver) authenticates the gateway."""
    gw_creds = operator.user_creds(tmp_path / "gateway.creds", "gateway")
    svc_creds = operator.user_creds(tmp_path / "service.creds", "service")
    async with options_service(creds_nats, user_credentials=str(svc_creds)) as service:
        gw = await start_on(gateways, creds_nats.url, nats_creds=str(gw_creds))
        conn = await gateway_nats_connection(creds_nats.monitor_url)
        assert conn.get("account") == operator.account.public, conn
        client = await gw.connect()
        await subscribe_model(client, service)
        await macros.custom(service, "test.model")
        await client.expect_event("test.model.custom", fixtures.CUSTOM_PAYLOAD)
        await gw.close_clients()
        await gw.stop()


async def test_nats_creds_file_of_unknown_account_fails(
    creds_nats: NatsServer, operator: NatsOperator, errors: ErrorLog, tmp_path: Path
) -> None:
    creds = operator.user_creds(tmp_path / "foreign.creds", "intruder", foreign=True)
    await start_failing(creds_nats.url, errors, nats_creds=str(creds), exit_on_nats_loss=True)


async def test_nats_user_password_in_url(userpass_nats: NatsServer, gateways: list[GatewayHandle]) -> None:
    url = f"nats://{USER}:{PASSWORD}@127.0.0.1:{userpass_nats.port}"
    async with options_service(userpass_nats, user=USER, password=PASSWORD) as service:
        gw = await start_on(gateways, url)
        conn = await gateway_nats_connection(userpass_nats.monitor_url)
        assert conn.get("authorized_user") == USER, conn
        client = await gw.connect()
        await subscribe_model(client, service)
        await gw.close_clients()
        await gw.stop()


async def test_nats_wrong_password_fails(userpass_nats: NatsServer, errors: ErrorLog) -> None:
    exc = await start_failing(
        f"nats://{USER}:wrong@127.0.0.1:{userpass_nats.port}", errors, exit_on_nats_loss=True
    )
    assert "authorization" in str(exc).lower(), repr(exc)


async def test_nats_refused_at_start_fails_with_default_config(
    userpass_nats: NatsServer, errors: ErrorLog
) -> None:
    await start_failing(f"nats://{USER}:wrong@127.0.0.1:{userpass_nats.port}", errors)
