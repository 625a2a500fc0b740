"""OTLP/HTTP trace receiver standing in for Jaeger in tests/chart/test_podman_story.py.

Listens on 4318 (POST /v1/traces, protobuf) and on 14269 (GET / -> 200, Jaeger's admin port that the
chart's probes use) and prints ``span <service.name> <span name>`` for every span, so the test reads
what the gateway pods exported from the container's log.
"""

import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


class Traces(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource_spans in request.resource_spans:
            attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            service = attributes.get("service.name", "?")
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    print(f"span {service} {span.name}", flush=True)
        reply = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: object) -> None:
        pass


class Admin(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


# PID 1 in its container: leave at once on SIGTERM (the default would wait for the kubelet's SIGKILL).
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
admin = ThreadingHTTPServer(("0.0.0.0", 14269), Admin)
threading.Thread(target=admin.serve_forever, daemon=True).start()
print("otlp sink listening on 4318", flush=True)
ThreadingHTTPServer(("0.0.0.0", 4318), Traces).serve_forever()
