"""The places that lean on library internals for speed still find what they expect.

If an upgrade of aiohttp or nats-py changes them, these fail first, instead of the gateway silently
falling back (aiohttp) or losing message order (nats-py).
"""

from __future__ import annotations

import asyncio

import nats
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.web import wsreader
from tests.support.natsserver import NatsServer


def test_aiohttp_reader_queue_can_be_replaced() -> None:
    assert wsreader.DIRECT, "aiohttp's WebSocket reader internals changed: messages take the slow path"


def test_nats_py_internals_used_by_the_adapter_exist() -> None:
    """gateway.mq.natsclient replaces Client._process_msg (called by the parser for every MSG) and
    writes publishes behind Client._pending on Client._transport."""
    import inspect

    from nats.aio.client import Client
    from nats.protocol.parser import Parser

    assert "self.nc._process_msg(" in inspect.getsource(Parser.parse)
    # natsparser.FastParser replaces Client._ps and shares Parser's buf/state
    assert "self._ps.parse(" in inspect.getsource(Client._read_loop)
    assert "self._ps: Parser = Parser(self)" in inspect.getsource(Client.__init__)
    assert {"buf", "state"} <= set(vars(Parser(None)))
    assert inspect.iscoroutinefunction(Client._process_headers)
    source = inspect.getsource(Client.__init__) + inspect.getsource(Client._flusher)
    for attr in ("_pending", "_pending_data_size", "_transport", "_flush_queue", "_max_payload"):
        assert f"self.{attr}" in source, attr


def test_lean_subscription_has_every_attribute_of_nats_py_subscription() -> None:
    """natsclient.LeanSubscription sets Subscription's attributes itself (no queue): if nats-py adds
    one, its reconnect/drain/close code could read an attribute the lean entry lacks."""
    from nats.aio.client import Client
    from nats.aio.subscription import Subscription

    from gateway.mq.natsclient import LeanSubscription

    async def make() -> set[str]:
        return set(vars(Subscription(Client(), 1, "a.b")))  # its asyncio.Queue wants a running loop

    full = asyncio.run(make())
    lean = LeanSubscription(Client(), 1, "a.b")
    assert set(vars(lean)) == full
    assert not lean._pending_queue and lean._message_iterator is None and lean._wait_for_msgs_task is None


def test_otlp_exporter_internals_used_for_lean_span_export_exist() -> None:
    """gateway.telemetry.spanexport sends its own OTLP bytes through the HTTP exporter's client
    (``_client.export(bytes)``, ``_shutdown``, ``_max_request_size``) and through the gRPC exporter's
    retry loop (``_export``, overriding ``_translate_data``/``_count_data``). Without them it falls
    back to the SDK's encoder, correct but slower."""
    pytest.importorskip("opentelemetry.exporter.otlp.proto.http.trace_exporter")
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    from gateway.telemetry import spanexport

    http = OTLPSpanExporter(endpoint="http://127.0.0.1:9/v1/traces")
    try:
        assert callable(http._client.export) and http._shutdown is False
        assert isinstance(http._max_request_size, int)
        assert spanexport._otlp_encodable(http)
    finally:
        http.shutdown()
    pytest.importorskip("opentelemetry.exporter.otlp.proto.grpc.trace_exporter")
    grpc_exporter = spanexport.grpc_exporter_class()(endpoint="http://127.0.0.1:9", insecure=True)
    try:
        for name in ("_export", "_translate_data", "_count_data"):
            assert callable(getattr(grpc_exporter, name))
        assert spanexport._otlp_encodable(grpc_exporter)
        batch = spanexport.EncodedBatch(b"", 0)
        assert grpc_exporter._count_data(batch) == 0
        assert grpc_exporter._translate_data(batch).ByteSize() == 0
    finally:
        grpc_exporter.shutdown()


async def test_nats_messages_are_dispatched_in_wire_order(nats_server: NatsServer) -> None:
    """Messages on different subjects reach the gateway in the order they were published."""
    from gateway.mq.natsclient import NatsMQ

    seen: list[str] = []
    done = asyncio.Event()

    def on_message(subject: str, data: bytes) -> None:
        seen.append(subject)
        if len(seen) == 300:
            done.set()

    mq = NatsMQ(request_timeout=1.0, on_message=on_message)
    await mq.connect([nats_server.url])
    for subject in ("a.*", "b.*", "c.*"):
        mq.subscribe(subject)
    await mq.sync()
    pub = await nats.connect(nats_server.url)
    expected = [f"{'abc'[i % 3]}.{i}" for i in range(300)]
    for subject in expected:
        await pub.publish(subject, b"")
    await pub.flush()
    await asyncio.wait_for(done.wait(), 2.0)
    assert seen == expected
    await pub.close()
    await mq.close()


@given(
    st.text(alphabet=st.sampled_from(list("ab.*> \t\r\n\x0b\x0c\u00e9_")), max_size=10) | st.text(max_size=8)
)
def test_subscription_subject_rule_is_nats_pys(subject: str) -> None:
    """natsclient checks SUB subjects with its own regular expression before writing them itself;
    it must accept exactly what nats-py's ``subscribe()`` accepts."""
    from nats.aio.client import _validate_subject
    from nats.errors import BadSubjectError

    from gateway.mq.natsclient import _valid_subscription

    try:
        _validate_subject(subject, strict=True)
        accepted = True
    except BadSubjectError:
        accepted = False
    assert _valid_subscription(subject) == accepted
