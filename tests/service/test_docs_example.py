"""The complete service of docs/service-library.md runs as printed: extracted from the page, started
against the real gateway, and used by a WebSocket client (so the documentation cannot rot)."""

from __future__ import annotations

import re
import types
from pathlib import Path

from pyresgate.service import Service
from tests.service.conftest import ServiceStarter
from tests.support.gatewayrunner import GatewayHandle
from tests.support.macros import connect

DOC = Path(__file__).resolve().parents[2] / "docs" / "service-library.md"


def load_doc_service() -> types.ModuleType:
    code = re.search(r"```python\n(.*?)```", DOC.read_text(), re.DOTALL)
    assert code is not None, "no python block in docs/service-library.md"
    module = types.ModuleType("doc_library")
    exec(compile(code.group(1), str(DOC), "exec"), module.__dict__)  # noqa: S102 - our own documentation
    return module


async def test_documented_service_works(gw: GatewayHandle, start_service: ServiceStarter) -> None:
    doc = load_doc_service()
    svc = doc.svc
    assert isinstance(svc, Service)
    await start_service(svc)
    client, watcher = await connect(gw), await connect(gw)
    result = (await watcher.request("subscribe.library.search?author=George+Orwell"))["result"]
    assert result["collections"] == {"library.search?author=George+Orwell": [{"rid": "library.book.1"}]}
    await watcher.request("subscribe.library.book.1")

    await client.request("call.library.book.1.set", {"title": "1984"})
    await watcher.expect_event("library.book.1.change", {"values": {"title": "1984"}})
    new = await client.request("call.library.books.new", {"title": "Homage", "author": "George Orwell"})
    assert new["result"]["rid"] == "library.book.2"
    ev = await watcher.expect_event("library.search?author=George+Orwell.add", timeout=3)
    assert ev.data["idx"] == 1
    err = (await client.request("auth.library.login", {"password": "nope"}))["error"]
    assert err == {"code": "library.wrongPassword", "message": "Wrong password"}
    assert (await client.request("auth.library.login", {"password": "secret"}))["result"] == {"payload": None}
    assert (await client.request("call.library.books.rebuild"))["result"] == {"payload": "rebuilt"}
    err = (await client.request("call.library.book.1.set", {"title": ""}))["error"]
    assert err == {"code": "system.invalidParams", "message": "Title must be a non-empty string"}
