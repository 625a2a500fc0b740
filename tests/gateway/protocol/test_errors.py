"""The predefined errors (``gateway.protocol.errors.ERR_*``) are shared instances, raised only as
copies: raising an instance chains the new traceback onto the one it already carries, so a shared
error raised itself keeps every frame that ever raised it alive (tests/gateway/test_garbage.py shows
what that held on to: whole connections)."""

from __future__ import annotations

import ast
from pathlib import Path

from gateway.protocol import errors
from gateway.protocol.errors import ResError

ROOT = Path(__file__).resolve().parents[3]


def _raise_sites_of_shared_errors(path: Path) -> list[str]:
    """``raise ERR_X`` / ``raise errors.ERR_X`` (not ``.copy()``) in a source file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Raise) or node.exc is None:
            continue
        exc = node.exc
        name = exc.attr if isinstance(exc, ast.Attribute) else exc.id if isinstance(exc, ast.Name) else ""
        if name.startswith("ERR_"):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_no_code_raises_a_predefined_error_itself() -> None:
    sources = sorted((ROOT / "gateway").rglob("*.py")) + sorted((ROOT / "pyresgate").rglob("*.py"))
    assert len(sources) > 40
    sites = [site for path in sources for site in _raise_sites_of_shared_errors(path)]
    assert not sites, f"raise a copy (ResError.copy) of the predefined error instead: {sites}"


def test_a_copy_is_equal_and_new() -> None:
    for err in (v for v in vars(errors).values() if isinstance(v, ResError)):
        copy = err.copy()
        assert copy == err and copy is not err and copy.to_dict() == err.to_dict()
    with_data = ResError("custom.code", "With data", {"max": 3})
    assert with_data.copy().to_dict() == {"code": "custom.code", "message": "With data", "data": {"max": 3}}


def test_raising_copies_leaves_the_shared_error_without_a_traceback() -> None:
    def fail() -> None:
        raise errors.ERR_NOT_FOUND.copy()

    for _ in range(3):
        try:
            fail()
        except ResError as exc:
            assert exc.__traceback__ is not None
    assert errors.ERR_NOT_FOUND.__traceback__ is None


def test_caught_drops_what_a_raise_attached() -> None:
    shared = ResError("test.shared", "Shared")
    for _ in range(3):
        try:
            try:
                raise KeyError("the context")
            except KeyError:
                raise shared from None
        except ResError as exc:
            assert errors.caught(exc) is shared
    assert shared.__traceback__ is None and shared.__context__ is None and shared.__cause__ is None
