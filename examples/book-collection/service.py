"""Book Collection example: ``library.books`` (a collection of references) and ``library.book.$id``.

Port of resgate's examples/book-collection with the same methods, parameters and error messages:
``set`` on a book, ``new`` and ``delete`` on the collection. ``python examples/run.py book-collection``.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from example_support import parse_args, run_services

from pyresgate.service import (
    CallRequest,
    GetRequest,
    ResError,
    Service,
    access_granted,
    invalid_params,
    ref,
)

HTTP_PORT = 8083


def field_error(field: str, value: Any) -> ResError | None:
    """The example's validation: a non-empty string."""
    if not isinstance(value, str):
        return invalid_params(f"{field} must be a string")
    if not value.strip():
        return invalid_params(f"{field} must not be empty")
    return None


class BookCollection:
    def __init__(self) -> None:
        self.models: dict[str, dict[str, Any]] = {
            "library.book.1": {"id": 1, "title": "Animal Farm", "author": "George Orwell"},
            "library.book.2": {"id": 2, "title": "Brave New World", "author": "Aldous Huxley"},
            "library.book.3": {"id": 3, "title": "Coraline", "author": "Neil Gaiman"},
        }
        self.books: list[dict[str, Any]] = [ref(rid) for rid in self.models]
        self.next_id = len(self.books) + 1
        self.svc = Service("library")
        self.svc.handle(">", access=access_granted)
        self.svc.handle("book.$id", get_model=self.get_book, call={"set": self.set_book})
        self.svc.handle("books", get_collection=self.get_books, call={"new": self.new, "delete": self.delete})

    async def get_book(self, r: GetRequest) -> None:
        model = self.models.get(r.resource_name)
        await (r.model(model) if model is not None else r.not_found())

    async def set_book(self, r: CallRequest) -> None:
        model = self.models.get(r.resource_name)
        if model is None:
            await r.not_found()
            return
        params = r.params if isinstance(r.params, dict) else {}
        changed: dict[str, Any] = {}
        for key, field in (("title", "Title"), ("author", "Author")):
            if key in params and params[key] != model[key]:
                err = field_error(field, params[key])
                if err is not None:
                    await r.error(err)
                    return
                changed[key] = params[key]
        if changed:
            model.update(changed)
            await r.change_event(changed)
        await r.ok()

    def get_books(self, r: GetRequest) -> list[dict[str, Any]]:
        return self.books

    async def new(self, r: CallRequest) -> None:
        params = r.params if isinstance(r.params, dict) else {}
        title, author = params.get("title") or "", params.get("author") or ""
        if not title or not author:
            await r.invalid_params("Must provide both title and author")
            return
        book_id = self.next_id
        self.next_id += 1
        rid = f"library.book.{book_id}"
        self.models[rid] = {"id": book_id, "title": title, "author": author}
        await r.add_event(ref(rid), len(self.books))
        self.books.append(ref(rid))
        await r.ok()

    async def delete(self, r: CallRequest) -> None:
        params = r.params if isinstance(r.params, dict) else {}
        book_id = params.get("id")
        if isinstance(book_id, bool) or not isinstance(book_id, int | float):
            await r.invalid_params("Book ID must be a number")
            return
        rid = f"library.book.{int(book_id) if float(book_id).is_integer() else book_id}"
        if self.models.pop(rid, None) is not None:
            idx = next((i for i, v in enumerate(self.books) if v["rid"] == rid), -1)
            if idx >= 0:
                self.books.pop(idx)
                await r.remove_event(idx)
        await r.ok()


def main() -> None:
    args = parse_args("Book Collection example service", HTTP_PORT)
    asyncio.run(run_services(args, [BookCollection().svc], Path(__file__).parent))


if __name__ == "__main__":
    main()
