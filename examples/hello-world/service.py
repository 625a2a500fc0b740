"""Hello World example: one model, ``example.model``, readable by everyone.

Port of resgate's examples/hello-world. Run alone: ``python examples/hello-world/service.py`` (needs
NATS and the gateway), or everything at once: ``python examples/run.py hello-world``.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from example_support import parse_args, run_services

from pyresgate.service import AccessRequest, GetRequest, Service

HTTP_PORT = 8081


def build() -> Service:
    svc = Service("example")

    async def access(r: AccessRequest) -> None:
        await r.access(get=True)

    def get(r: GetRequest) -> dict[str, str]:
        return {"message": "Hello, World!"}

    svc.handle("model", access=access, get_model=get)
    return svc


def main() -> None:
    args = parse_args("Hello World example service", HTTP_PORT)
    asyncio.run(run_services(args, [build()], Path(__file__).parent))


if __name__ == "__main__":
    main()
