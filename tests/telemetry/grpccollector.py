"""A real OTLP/gRPC trace collector for the tests that export over gRPC."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2


@contextlib.contextmanager
def grpc_collector(
    otel_env: pytest.MonkeyPatch,
) -> Iterator[list[trace_service_pb2.ExportTraceServiceRequest]]:
    """A gRPC trace service on a free 127.0.0.1 port, with ``OTEL_EXPORTER_OTLP_*`` pointing the gRPC
    exporter at it; yields the export requests it receives (appended as they come). Skips the test
    when grpc or the gRPC exporter is not installed. Shut tracing down inside the block: the server
    stops when it ends."""
    grpc = pytest.importorskip("grpc")
    pytest.importorskip("opentelemetry.exporter.otlp.proto.grpc.trace_exporter")
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

    received: list[trace_service_pb2.ExportTraceServiceRequest] = []

    class Collector(trace_service_pb2_grpc.TraceServiceServicer):  # type: ignore[misc]
        def Export(self, request: Any, context: Any) -> Any:
            received.append(request)
            return trace_service_pb2.ExportTraceServiceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Collector(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        otel_env.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        otel_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
        otel_env.setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
        yield received
    finally:
        server.stop(None)
