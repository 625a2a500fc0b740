"""What every example service shares: its command line, its web page server and its lifecycle.

Imported by ``examples/<name>/service.py`` (which puts this folder on ``sys.path``). A service runs
against ``--nats`` (default ``NATS_URL``, else nats://127.0.0.1:4222) and serves its own folder's
``index.html`` plus the npm package ``resclient`` (``examples/node_modules``, installed by
``npm install`` in examples/ or by run.py) on ``--http-port``, bound to 127.0.0.1 unless told.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path

from aiohttp import web

from pyresgate.service import Service, default_nats_url

HERE = Path(__file__).resolve().parent
#: The browser build of the official JavaScript client, from npm (no CDN).
RESCLIENT_JS = HERE / "node_modules" / "resclient" / "dist" / "resclient.min.js"

Background = Callable[[], Awaitable[None]]


def parse_args(
    description: str, default_http_port: int, argv: Sequence[str] | None = None
) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--nats", default=default_nats_url(), help="NATS URL (default: NATS_URL or %(default)s)"
    )
    parser.add_argument(
        "--http-port",
        type=int,
        default=int(os.environ.get("HTTP_PORT") or default_http_port),
        help="port of the example's web page (default: HTTP_PORT or %(default)s; 0: no web server)",
    )
    parser.add_argument(
        "--http-host", default="127.0.0.1", help="address of the web page (default: %(default)s)"
    )
    return parser.parse_args(argv)


def page_app(folder: Path, routes: Iterable[web.RouteDef] = ()) -> web.Application:
    """The example's web page: ``/`` is its index.html, ``/resclient.min.js`` the npm client."""

    async def index(request: web.Request) -> web.FileResponse:
        return web.FileResponse(folder / "index.html")

    async def resclient(request: web.Request) -> web.StreamResponse:
        if not RESCLIENT_JS.exists():
            raise web.HTTPNotFound(text="resclient is not installed: run `npm install` in examples/\n")
        return web.FileResponse(RESCLIENT_JS, headers={"Content-Type": "application/javascript"})

    app = web.Application()
    app.add_routes([web.get("/", index), web.get("/resclient.min.js", resclient), *routes])
    return app


async def run_services(
    args: argparse.Namespace,
    services: Sequence[Service],
    folder: Path,
    *,
    routes: Iterable[web.RouteDef] = (),
    background: Iterable[Background] = (),
) -> None:
    """Start the services and the page, run the background jobs, stop everything on SIGINT/SIGTERM."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    for svc in services:
        try:
            await svc.start(args.nats)
        except Exception as exc:  # noqa: BLE001 - one clear line instead of a traceback
            raise SystemExit(
                f"cannot start service {svc.name!r} on NATS {args.nats}: {exc or type(exc).__name__}"
            ) from None
    runner: web.AppRunner | None = None
    if args.http_port:
        runner = web.AppRunner(page_app(folder, routes), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, args.http_host, args.http_port).start()
        print(f"Client available at http://{args.http_host}:{args.http_port}/", flush=True)
    tasks = [asyncio.create_task(job()) for job in background]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if runner is not None:
            await runner.cleanup()
        for svc in services:
            with contextlib.suppress(Exception):
                await svc.stop()


async def tick_every_second(svc: Service, rid: str, model: dict[str, int]) -> None:
    """The tickers of the authentication examples: ``seconds`` + 1 and a change event, every second."""
    while True:
        await asyncio.sleep(1)

        async def bump(res: object) -> None:
            model["seconds"] += 1
            await svc.resource(rid).change_event({"seconds": model["seconds"]})

        await svc.with_resource(rid, bump)
