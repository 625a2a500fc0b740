"""Edit Text example: one shared model, ``example.shared``, that every client can edit with ``set``.

Port of resgate's examples/edit-text. ``python examples/run.py edit-text`` runs it with NATS and the
gateway; open the page in two tabs and type.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from example_support import parse_args, run_services

from pyresgate.service import AccessRequest, CallRequest, GetRequest, Service

HTTP_PORT = 8082


def build() -> Service:
    svc = Service("example")
    shared: dict[str, Any] = {"message": "Edit me!"}

    async def access(r: AccessRequest) -> None:
        await r.access(get=True, call="set")

    def get(r: GetRequest) -> dict[str, Any]:
        return shared

    async def set_message(r: CallRequest) -> None:
        message = r.params.get("message") if isinstance(r.params, dict) else None
        if isinstance(message, str) and message != shared["message"]:
            shared["message"] = message
            await r.change_event({"message": message})
        await r.ok()

    svc.handle("shared", access=access, get_model=get, call={"set": set_message})
    return svc


def main() -> None:
    args = parse_args("Edit Text example service", HTTP_PORT)
    asyncio.run(run_services(args, [build()], Path(__file__).parent))


if __name__ == "__main__":
    main()
