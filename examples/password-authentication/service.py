"""Password Authentication example: ``passwd.login``/``passwd.logout`` set the connection token, and
``ticker.model`` (a counter updated every second) is readable only with that token.

Port of resgate's examples/password-authentication: two services (passwd and ticker) in one process,
each on its own NATS connection as they would be as separate micro-services. The password is ``secret``.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from example_support import parse_args, run_services, tick_every_second

from pyresgate.service import AccessRequest, AuthRequest, GetRequest, ResError, Service

HTTP_PORT = 8085
MY_PASSWORD = "secret"


def passwd_service() -> Service:
    svc = Service("passwd")

    async def login(r: AuthRequest) -> None:
        params = r.params if isinstance(r.params, dict) else {}
        if params.get("password") == MY_PASSWORD:
            # Stored by the gateway, never sent to the client, passed on with later requests.
            await r.token_event({"foo": "bar"})
            await r.ok()
        else:
            await r.error(ResError("system.invalidParams", "Invalid params: wrong password"))

    async def logout(r: AuthRequest) -> None:
        await r.token_event(None)
        await r.ok()

    svc.handle("", auth={"login": login, "logout": logout})
    return svc


def ticker_service(model: dict[str, Any]) -> Service:
    svc = Service("ticker")

    async def access(r: AccessRequest) -> None:
        token = r.token if isinstance(r.token, dict) else {}
        await r.access(get=token.get("foo") == "bar")

    def get(r: GetRequest) -> dict[str, Any]:
        return model

    svc.handle("model", access=access, get_model=get)
    return svc


def main() -> None:
    args = parse_args("Password Authentication example services", HTTP_PORT)
    model = {"seconds": 0}
    ticker = ticker_service(model)
    asyncio.run(
        run_services(
            args,
            [passwd_service(), ticker],
            Path(__file__).parent,
            background=[lambda: tick_every_second(ticker, "ticker.model", model)],
        )
    )


if __name__ == "__main__":
    main()
