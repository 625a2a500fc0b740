"""A small book library built with ``pyresgate.service``: the service the library's tests talk to.

Models ``library.book.$id``, collection ``library.books``, query collection ``library.search?...``,
access by token (``library.secret``), auth ``library.login``, a slow call using a pre-response, and a
custom error code. Kept apart from the tests so each test reads as client steps and expectations.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pyresgate.service import (
    AccessRequest,
    AuthRequest,
    CallRequest,
    GetRequest,
    ResError,
    Service,
    access_granted,
    int_param,
    invalid_params,
    normalize_query,
    parse_query,
    ref,
)

PASSWORD = "secret"
#: The custom error of ``library.books.fail``.
ERR_SHELF_FULL = ResError("library.shelfFull", "The shelf is full", {"max": 3})


class Library:
    """The data and the service; tests reach into ``books`` to check the state."""

    def __init__(self, slow_seconds: float = 1.0) -> None:
        self.books: dict[str, dict[str, Any]] = {
            "1": {"id": 1, "title": "Animal Farm", "author": "George Orwell"},
            "2": {"id": 2, "title": "Brave New World", "author": "Aldous Huxley"},
        }
        self.order: list[str] = ["1", "2"]
        self.next_id = 3
        self.slow_seconds = slow_seconds
        #: Set when the slow call's handler has begun (tests stop the service while it runs).
        self.slow_started = asyncio.Event()
        self.svc = Service("library")
        self._register()

    def _register(self) -> None:
        svc = self.svc
        svc.handle("book.$id", access=access_granted, get_model=self.get_book, call={"set": self.set_book})
        svc.handle(
            "books",
            access=access_granted,
            get_collection=self.get_books,
            call={"new": self.new_book, "delete": self.delete_book, "slow": self.slow, "fail": self.fail},
        )
        svc.handle("search", access=access_granted, get_collection=self.search)
        svc.handle("secret", access=self.secret_access, get_model=lambda r: {"treasure": "gold"})
        svc.handle("", auth={"login": self.login, "logout": self.logout})

    def book_rids(self) -> list[dict[str, Any]]:
        return [ref(f"library.book.{i}") for i in self.order]

    async def get_book(self, r: GetRequest) -> None:
        book = self.books.get(r.path_param("id"))
        if book is None:
            await r.not_found()
        else:
            await r.model(book)

    async def set_book(self, r: CallRequest) -> None:
        book = self.books.get(r.path_param("id"))
        if book is None:
            await r.not_found()
            return
        changed = {}
        for key in ("title", "author"):
            value = r.params_dict().get(key)
            if value is None or value == book[key]:
                continue
            if not isinstance(value, str) or not value.strip():
                raise invalid_params(f"{key.capitalize()} must be a non-empty string")
            changed[key] = value
        book.update(changed)
        await r.change_event(changed)
        await r.ok()

    def get_books(self, r: GetRequest) -> list[dict[str, Any]]:
        return self.book_rids()

    async def new_book(self, r: CallRequest) -> None:
        params = r.params_dict()
        title, author = params.get("title"), params.get("author")
        if not isinstance(title, str) or not isinstance(author, str) or not title or not author:
            await r.invalid_params("Must provide both title and author")
            return
        key = str(self.next_id)
        self.next_id += 1
        self.books[key] = {"id": int(key), "title": title, "author": author}
        self.order.append(key)
        await r.add_event(ref(f"library.book.{key}"), len(self.order) - 1)
        await self.search_changed()
        await r.resource(f"library.book.{key}")

    async def delete_book(self, r: CallRequest) -> None:
        book_id = r.params_dict().get("id")
        if not isinstance(book_id, int) or isinstance(book_id, bool):
            raise invalid_params("Book ID must be a number")
        key = str(book_id)
        if key in self.books:
            del self.books[key]
            idx = self.order.index(key)
            self.order.pop(idx)
            await r.remove_event(idx)
            await self.search_changed()
            await self.svc.resource(f"library.book.{key}").delete_event()
        await r.ok()

    async def slow(self, r: CallRequest) -> str:
        self.slow_started.set()
        await r.timeout(self.slow_seconds + 2)
        await asyncio.sleep(self.slow_seconds)
        return "done"

    async def fail(self, r: CallRequest) -> None:
        raise ERR_SHELF_FULL

    async def search(self, r: GetRequest) -> None:
        """``library.search?author=...&limit=N``: books by author, normalised query."""
        parsed = parse_query(r.query, allowed=("author", "limit"))
        limit = int_param(parsed, "limit", 10, 1, 50)
        await r.collection(
            self.search_result(parsed, limit), query=normalize_query(r.query, ("author", "limit"))
        )

    def search_result(self, parsed: dict[str, list[str]], limit: int) -> list[dict[str, Any]]:
        author = parsed.get("author", [""])[-1]
        keys = [k for k in self.order if not author or self.books[k]["author"] == author]
        return [ref(f"library.book.{k}") for k in keys[:limit]]

    async def search_changed(self) -> None:
        """Query event: the gateway asks for each cached search; we answer with the new collection."""

        async def answer(qr: Any) -> None:
            parsed = parse_query(qr.query)
            qr.collection(self.search_result(parsed, int_param(parsed, "limit", 10, 1, 50)))

        await self.svc.resource("library.search").query_event(answer)

    async def secret_access(self, r: AccessRequest) -> None:
        token = r.token if isinstance(r.token, dict) else {}
        if token.get("user") == "admin":
            await r.access(True, "*")
        else:
            await r.access_denied()

    async def login(self, r: AuthRequest) -> dict[str, Any]:
        if r.params_dict().get("password") != PASSWORD:
            raise ResError("library.wrongPassword", "Wrong password")
        await r.token_event({"user": "admin"})
        return {"user": "admin"}

    async def logout(self, r: AuthRequest) -> None:
        await r.token_event(None)
