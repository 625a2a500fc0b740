"""The client listener's fast path (gateway.web.fasthttp): which requests it takes, how it writes
responses, and that handing a connection to aiohttp mid-stream loses nothing."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict

from gateway.web import fasthttp
from gateway.web.api import ApiResponse
from tests.catalog.test_14_http_get import answer_access_get, http, start
from tests.support.fakeservice import FakeService
from tests.support.gatewayrunner import GatewayHandle

API = b"/api/"
WS = b"/"


def _head(*lines: str) -> bytes:
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _read(*lines: str, ws: bytes = WS) -> tuple[fasthttp.Take, fasthttp.HeadReader]:
    reader = fasthttp.HeadReader(API, ws)
    return reader.read(_head(*lines)), reader


# -- HeadReader --------------------------------------------------------------------------------------


def test_plain_get_and_head_are_taken() -> None:
    take, reader = _read("GET /api/test/model?q=1 HTTP/1.1", "Host: x", "Origin:  http://a.b ", "Accept: */*")
    assert take is fasthttp.Take.SERVE
    assert (reader.method, reader.target, reader.keep_alive) == ("GET", b"/api/test/model?q=1", True)
    assert reader.headers.get("origin") == "http://a.b"
    assert reader.headers.getall("Host") == ["x"]
    assert _read("HEAD /api/a HTTP/1.1", "Host: x")[0] is fasthttp.Take.SERVE
    take, reader = _read("GET /api/a HTTP/1.1", "Host: x", "Connection: Close")
    assert take is fasthttp.Take.SERVE and reader.keep_alive is False


def test_llhttp_decides_what_is_well_formed() -> None:
    """Two spaces after the method are llhttp's (and so aiohttp's) to accept: the fast path reads
    the request exactly as llhttp does."""
    take, reader = _read("GET  /api/a HTTP/1.1", "Host: x")
    assert (take, reader.target) == (fasthttp.Take.SERVE, b"/api/a")


def test_one_parser_reads_consecutive_heads() -> None:
    reader = fasthttp.HeadReader(API, WS)
    for i in range(3):
        assert reader.read(_head(f"GET /api/a{i} HTTP/1.1", f"Host: h{i}")) is fasthttp.Take.SERVE
        assert (reader.target, reader.headers.getall("Host")) == (f"/api/a{i}".encode(), [f"h{i}"])


@pytest.mark.parametrize(
    "head",
    [
        ("POST /api/a/b HTTP/1.1", "Host: x", "Content-Length: 2"),
        ("OPTIONS /api/a HTTP/1.1", "Host: x"),
        ("PUT /api/a HTTP/1.1", "Host: x"),
        ("GET /api/a HTTP/1.0",),
        ("GET /api/a HTTP/1.0", "Host: x"),
        ("GET /api/x HTTP/1.1", "Host: x", "Upgrade: websocket", "Connection: Upgrade"),
        ("GET /other HTTP/1.1", "Host: x"),
        ("GET * HTTP/1.1", "Host: x"),
        ("GET http://x/api/a HTTP/1.1", "Host: x"),
        ("GET /api/a%20b HTTP/1.1", "Host: x"),
        ("GET /api/a HTTP/1.1", "Host: x", "Content-Length: 0"),
        ("GET /api/a HTTP/1.1", "Host: x", "Transfer-Encoding: chunked"),
        ("GET /api/a HTTP/1.1", "Host: x", "Expect: 100-continue"),
        ("GET /api/a HTTP/1.1", "Host: x", "Connection: Upgrade"),
        ("GET /api/a HTTP/1.1", "Host: x", "X: caf\u00e9"),
        ("GET /api/a HTTP/1.1", "Host: a/b"),
        ("GET /api/a HTTP/2.0", "Host: x"),
        ("GET /api/a", "Host: x"),
    ],
    ids=lambda h: h[-1][:30],
)
def test_anything_unusual_is_left_to_aiohttp(head: tuple[str, ...]) -> None:
    assert _read(*head)[0] is fasthttp.Take.AIOHTTP


@pytest.mark.parametrize(
    "head",
    [
        ("get /api/a HTTP/1.1", "Host: x"),
        ("GET /api/\u00e9 HTTP/1.1", "Host: x"),
        ("GET /api/a HTTP/1.1", "Host: x", "Bad Name: x"),
        ("GET /api/a HTTP/1.1", "Host: x", "NoColon"),
        ("GET /api/a HTTP/1.1", "Host: x", "X: a", " folded"),
        ("GET /api/a HTTP/1.1", "Host: x", "X: a\x01b"),
        ("GET /api/a HTTP/1.1", "Host: x", "X: a\x00b"),
        ("GET /api/a HTTP/1.1", "Host: x", "Content-Length: 1", "Content-Length: 2"),
        ("POST /api/a HTTP/1.1", "Host: x", "Content-Length: 1", "Transfer-Encoding: chunked"),
        ("GET /api/a HTTP/1.1", "Host: a", "Host: b"),
    ],
    ids=lambda h: h[-1][:30],
)
def test_malformed_heads_are_refused_as_go_does(head: tuple[str, ...]) -> None:
    take, reader = _read(*head)
    assert take is fasthttp.Take.REFUSE
    assert reader.refusal == fasthttp.BAD_REQUEST


def test_http11_without_host_is_refused_as_go_does() -> None:
    take, reader = _read("GET /api/a HTTP/1.1", "Accept: */*")
    assert take is fasthttp.Take.REFUSE
    # Go's net/http (resgate), byte for byte:
    assert reader.refusal == (
        b"HTTP/1.1 400 Bad Request: missing required Host header\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"
        b"400 Bad Request: missing required Host header"
    )


def test_the_websocket_path_is_left_to_aiohttp() -> None:
    assert _read("GET /api/ws HTTP/1.1", "Host: x", ws=b"/api/ws")[0] is fasthttp.Take.AIOHTTP
    assert _read("GET /api/ws?x HTTP/1.1", "Host: x", ws=b"/api/ws")[0] is fasthttp.Take.AIOHTTP
    upgrade = ("GET /api/ws?x HTTP/1.1", "Host: x", "Upgrade: websocket", "Connection: Upgrade")
    assert _read(*upgrade, ws=b"/api/ws")[0] is fasthttp.Take.WEBSOCKET
    assert _read(*upgrade, ws=b"/other")[0] is fasthttp.Take.AIOHTTP
    # Only a plain GET upgrade is a WebSocket hand-over; anything odd about it is aiohttp's to judge.
    odd = [
        ("POST /api/ws HTTP/1.1", *upgrade[1:]),
        ("GET /api/ws HTTP/1.0", *upgrade[1:]),
        (*upgrade, "Content-Length: 3"),
        (*upgrade, "X: caf\u00e9"),
        ("GET /api/w%73 HTTP/1.1", *upgrade[1:]),
        ("GET  /api/ws?x HTTP/1.1", *upgrade[1:]),  # llhttp takes it, the WebSocket path does not
    ]
    assert [_read(*head, ws=b"/api/ws")[0] for head in odd] == [fasthttp.Take.AIOHTTP] * len(odd)


# -- encode_response ---------------------------------------------------------------------------------


def test_response_bytes() -> None:
    headers: CIMultiDict[str] = CIMultiDict(
        [("Content-Type", "application/json"), ("X-A", "1"), ("X-A", "2")]
    )
    data = fasthttp.encode_response(ApiResponse(200, headers, b'{"a":1}'), head_only=False)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 200 OK"
    assert b"Content-Type: application/json" in lines
    assert [ln for ln in lines if ln.startswith(b"X-A")] == [b"X-A: 1", b"X-A: 2"]
    assert b"Content-Length: 7" in lines
    assert any(ln.startswith(b"Date: ") and ln.endswith(b" GMT") for ln in lines)
    assert body == b'{"a":1}'


def test_head_response_has_the_length_but_no_body() -> None:
    data = fasthttp.encode_response(ApiResponse(404, CIMultiDict(), b"xyz"), head_only=True, close=True)
    assert data.startswith(b"HTTP/1.1 404 Not Found\r\n")
    assert b"Content-Length: 3\r\n" in data
    assert b"Connection: close\r\n" in data
    assert data.endswith(b"\r\n\r\n")


def test_no_content_has_no_length() -> None:
    data = fasthttp.encode_response(ApiResponse(204, CIMultiDict(), None), head_only=False)
    assert data.startswith(b"HTTP/1.1 204 No Content\r\n")
    assert b"Content-Length" not in data


def test_header_breaking_the_framing_is_refused() -> None:
    with pytest.raises(ValueError):
        fasthttp.encode_response(ApiResponse(200, CIMultiDict({"X": "a\r\nY: b"}), None), head_only=False)


# -- on a real gateway -------------------------------------------------------------------------------


async def _raw(gateway: GatewayHandle, data: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    writer.write(data)
    await writer.drain()
    return reader, writer


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, CIMultiDict[str], bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers: CIMultiDict[str] = CIMultiDict()
    for line in lines[1:]:
        if line:
            k, _, v = line.partition(":")
            headers.add(k.strip(), v.strip())
    length = int(headers.get("Content-Length", "0"))
    body = await asyncio.wait_for(reader.readexactly(length), 5) if length else b""
    return status, headers, body


def _server(gateway: GatewayHandle) -> fasthttp.FrontServer:
    server = gateway.gateway._runner.server
    assert isinstance(server, fasthttp.FrontServer)
    return server


async def test_catalog_style_get_is_served_on_the_fast_path(
    gateway: GatewayHandle, service: FakeService
) -> None:
    before = _server(gateway).fast_requests
    task = start(gateway, "GET", "/api/test/model")
    await answer_access_get(service, "test.model")
    resp = await task
    assert resp.status == 200
    assert _server(gateway).fast_requests == before + 1


async def test_same_answer_on_both_paths(gateway: GatewayHandle, service: FakeService) -> None:
    """A request forced onto aiohttp (Content-Length: 0) gets the same status, headers and body."""
    task = start(gateway, "GET", "/api/test/model")
    await answer_access_get(service, "test.model")
    fast = await task
    task = start(gateway, "GET", "/api/test/model", headers={"Content-Length": "0"})
    await (await service.expect_request("access.test.model")).ok({"get": True})
    slow = await task
    assert (fast.status, fast.body) == (slow.status, slow.body)
    skip = {"Date", "Server"}
    assert sorted((k, v) for k, v in fast.headers.items() if k not in skip) == sorted(
        (k, v) for k, v in slow.headers.items() if k not in skip
    )


async def test_pipelined_gets_are_answered_in_order(gateway: GatewayHandle, service: FakeService) -> None:
    request = b"GET /api/test/model HTTP/1.1\r\nHost: x\r\n\r\n"
    missing = b"GET /api/test/missing HTTP/1.1\r\nHost: x\r\n\r\n"
    reader, writer = await _raw(gateway, request + missing + request)
    await answer_access_get(service, "test.model")
    reqs = await service.requests(2)
    await reqs.get("access.test.missing").ok({"get": True})
    await reqs.get("get.test.missing").error({"code": "system.notFound", "message": "Not found"})
    await (await service.expect_request("access.test.model")).ok({"get": True})
    statuses = [(await _read_response(reader))[0] for _ in range(3)]
    assert statuses == [200, 404, 200]
    writer.close()


async def test_hand_over_mid_connection_keeps_the_bytes(gateway: GatewayHandle, service: FakeService) -> None:
    """GET (fast), then a POST with a body (aiohttp), then a GET again (aiohttp) on one connection."""
    get = b"GET /api/test/model HTTP/1.1\r\nHost: x\r\n\r\n"
    post = b'POST /api/test/model/set HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\n{"foo":1}'
    reader, writer = await _raw(gateway, get + post + get)
    await answer_access_get(service, "test.model")
    await (await service.expect_request("access.test.model")).ok({"get": True, "call": "*"})
    call = await service.expect_request("call.test.model.set")
    call.assert_path("params", {"foo": 1})
    await call.ok({"done": True})
    await (await service.expect_request("access.test.model")).ok({"get": True})
    first, second, third = [await _read_response(reader) for _ in range(3)]
    assert (first[0], second[0], third[0]) == (200, 200, 200)
    assert second[2] == b'{"done":true}'
    assert first[2] == third[2]
    writer.close()


async def test_connection_close_is_honoured(gateway: GatewayHandle, service: FakeService) -> None:
    reader, writer = await _raw(
        gateway, b"GET /api/test/model HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    await answer_access_get(service, "test.model")
    status, headers, _ = await _read_response(reader)
    assert status == 200 and headers.get("Connection") == "close"
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()


async def test_websocket_after_a_fast_get_on_one_connection(
    gateway: GatewayHandle, service: FakeService
) -> None:
    reader, writer = await _raw(gateway, b"GET /api/test/model HTTP/1.1\r\nHost: x\r\n\r\n")
    await answer_access_get(service, "test.model")
    assert (await _read_response(reader))[0] == 200
    writer.write(
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 101")
    writer.close()


async def test_client_gone_before_the_answer(gateway: GatewayHandle, service: FakeService) -> None:
    """The client closes while its request waits for access; the gateway stays well."""
    _, writer = await _raw(gateway, b"GET /api/test/model HTTP/1.1\r\nHost: x\r\n\r\n")
    reqs = await service.requests(2)
    writer.close()
    await asyncio.sleep(0.05)
    await reqs.get("access.test.model").ok({"get": True})
    await reqs.get("get.test.model").json({"result": {"model": {"foo": "bar"}}})
    await asyncio.sleep(0.05)
    task = start(gateway, "GET", "/api/test/collection")
    await answer_access_get(service, "test.collection")
    assert (await task).status == 200


async def test_big_head_goes_to_aiohttp(gateway: GatewayHandle, service: FakeService) -> None:
    resp_task = start(gateway, "GET", "/api/test/model", headers={"X-Big": "a" * (fasthttp.MAX_HEAD + 10)})
    await answer_access_get(service, "test.model")
    assert (await resp_task).status == 200


async def test_malformed_request_gets_gos_400(gateway: GatewayHandle) -> None:
    reader, writer = await _raw(gateway, b"GET /api/test/model HTTP/1.1\r\nHost: x\r\nBad Header: x\r\n\r\n")
    assert await asyncio.wait_for(reader.read(), 5) == fasthttp.BAD_REQUEST  # then closed
    writer.close()


async def test_http11_without_host_gets_gos_400(gateway: GatewayHandle, service: FakeService) -> None:
    """As Go's net/http (resgate): status line with the reason, text body, no length, closed; the
    pipelined request behind it is not served."""
    reader, writer = await _raw(
        gateway, b"GET /api/test/model HTTP/1.1\r\n\r\nGET /api/test/model HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    assert await asyncio.wait_for(reader.read(), 5) == (
        b"HTTP/1.1 400 Bad Request: missing required Host header\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"
        b"400 Bad Request: missing required Host header"
    )
    writer.close()
    await asyncio.sleep(0.05)
    assert not service.pending()


async def test_bare_lf_head_is_refused_without_waiting(gateway: GatewayHandle) -> None:
    """A head with bare LF line ends has no CRLF CRLF to wait for: it is refused at once."""
    reader, writer = await _raw(gateway, b"GET /api/test/model HTTP/1.1\nHost: x\n\n")
    assert await asyncio.wait_for(reader.read(), 5) == fasthttp.BAD_REQUEST
    writer.close()


async def test_http_helper_still_works(gateway: GatewayHandle, service: FakeService) -> None:
    """Guard for the helper used above: a HEAD is answered without a body."""
    task = start(gateway, "HEAD", "/api/test/model")
    await answer_access_get(service, "test.model")
    resp = await task
    assert resp.status == 200 and resp.body == b""
    assert http is not None


async def test_stop_lets_an_in_flight_fast_get_finish(gateway: GatewayHandle, service: FakeService) -> None:
    reader, writer = await _raw(gateway, b"GET /api/test/model HTTP/1.1\r\nHost: x\r\n\r\n")
    reqs = await service.requests(2)
    stopping = asyncio.create_task(gateway.stop())
    await asyncio.sleep(0.05)
    await reqs.get("access.test.model").ok({"get": True})
    await reqs.get("get.test.model").json({"result": {"model": {"foo": "bar"}}})
    status, _, body = await _read_response(reader)
    assert (status, body) == (200, b'{"foo":"bar"}')
    await stopping
    assert await asyncio.wait_for(reader.read(), 5) == b""  # closed after the answer
    writer.close()


async def test_stop_closes_idle_fast_connections(gateway: GatewayHandle, service: FakeService) -> None:
    reader, writer = await _raw(gateway, b"GET /api/test/model HTTP/1.1\r\nHost: x\r\n\r\n")
    await answer_access_get(service, "test.model")
    assert (await _read_response(reader))[0] == 200
    await gateway.stop()
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()


_methods = st.sampled_from([b"GET", b"HEAD", b"POST", b"OPTIONS", b"get", b"G\x00T", b""])
_targets = st.one_of(
    st.sampled_from(
        [b"/api/test/model", b"/api/test/model?q=1", b"/api/", b"/api/%zz", b"*", b"/", b"/api/a b"]
    ),
    st.binary(max_size=40).map(lambda b: b"/api/" + b),
)
_versions = st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2", b"HTTP/1.1 x", b""])
_header = st.tuples(
    st.one_of(
        st.sampled_from([b"Host", b"Origin", b"Content-Length", b"Connection", b"Upgrade"]),
        st.binary(max_size=12),
    ),
    st.one_of(
        st.sampled_from([b"x", b"close", b"-1", b"99999999999", b"keep-alive"]), st.binary(max_size=30)
    ),
).map(lambda kv: kv[0] + b": " + kv[1])
_requests = st.builds(
    lambda m, t, v, hs, tail: (
        m + b" " + t + b" " + v + b"\r\n" + b"".join(h + b"\r\n" for h in hs) + b"\r\n" + tail
    ),
    _methods,
    _targets,
    _versions,
    st.lists(_header, max_size=4),
    st.one_of(st.just(b""), st.binary(max_size=20), st.just(b"GET /api/test/model HTTP/1.1\r\n\r\n")),
)


async def test_fuzzed_http_requests_never_break_the_gateway(
    gateway_factory: Any, service: FakeService
) -> None:
    """Odd request heads, bodies and pipelines on raw sockets; afterwards a plain GET is served and
    no error was logged (the fixture fails the test on unexpected ERROR logs)."""
    gw = await gateway_factory(request_timeout=200)
    samples: list[bytes] = []

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(data=_requests)
    def collect(data: bytes) -> None:
        samples.append(data)

    collect()
    for data in samples:
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
        writer.write(data)
        with contextlib.suppress(TimeoutError, ConnectionError):
            await asyncio.wait_for(reader.read(65536), 0.02)
        writer.close()
    await asyncio.sleep(0.3)  # requests that reached NATS time out
    while service.pending():
        await service.next_request(0.1)
    task = start(gw, "GET", "/api/test/collection")
    reqs = await service.requests(2)
    await reqs.get("access.test.collection").ok({"get": True})
    await reqs.get("get.test.collection").json({"result": {"collection": [1, 2]}})
    resp = await task
    assert (resp.status, resp.body) == (200, b"[1,2]")


async def test_long_pipeline_pauses_reading_and_loses_nothing(
    gateway_factory: Any, service: FakeService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More pipelined requests than the input buffer holds: reading pauses and resumes, and every
    request is answered, in order. (The service answers 238 requests one by one: a generous request
    timeout keeps a loaded machine from turning one into system.timeout.)"""
    gateway = await gateway_factory(request_timeout=5000)
    monkeypatch.setattr(fasthttp, "MAX_BUFFER", 1024)
    n = 120
    requests = [b"GET /api/test/pipe%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(n)]
    reader, writer = await _raw(gateway, requests[0])
    first = await service.requests(2)  # the first request is being answered: the rest must wait
    writer.write(b"".join(requests[1:]))
    await writer.drain()
    await asyncio.sleep(0.05)
    await first.get("access.test.pipe0").ok({"get": True})
    await first.get("get.test.pipe0").json({"result": {"model": {"n": 0}}})

    async def serve() -> None:
        for _ in range(2 * (n - 1)):
            req = await service.next_request(2)
            if req.subject.startswith("access."):
                await req.ok({"get": True})
            else:
                await req.json({"result": {"model": {"n": int(req.subject.removeprefix("get.test.pipe"))}}})

    serving = asyncio.create_task(serve())
    bodies = [(await _read_response(reader))[2] for _ in range(n)]
    await serving
    assert bodies == [b'{"n":%d}' % i for i in range(n)]
    writer.close()
