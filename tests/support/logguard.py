"""Capture of the gateway's ERROR log records, so each test can consume the errors it provokes.

resgate's test teardown fails when an error was logged and not consumed with ``AssertErrorsLogged(n)``
(catalog §2). ``ErrorLog`` is attached to the ``gateway`` logger by the ``errors`` fixture in
``tests/conftest.py``; the fixture fails the test at teardown if records remain.
"""

from __future__ import annotations

import asyncio
import logging

#: Logger whose ERROR records (and those of its children) are captured.
GATEWAY_LOGGER = "gateway"


class ErrorLog(logging.Handler):
    """Records ERROR (and higher) records of the gateway logger until taken."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def install(self, logger_name: str = GATEWAY_LOGGER) -> ErrorLog:
        logging.getLogger(logger_name).addHandler(self)
        return self

    def uninstall(self, logger_name: str = GATEWAY_LOGGER) -> None:
        logging.getLogger(logger_name).removeHandler(self)

    @staticmethod
    def describe(records: list[logging.LogRecord]) -> str:
        return "\n".join(f"  {r.name}: {r.getMessage()}" for r in records) or "  (none)"

    def take(self) -> list[logging.LogRecord]:
        """All records logged since the last take, consumed."""
        taken, self.records = self.records, []
        return taken

    async def expect(self, n: int, timeout: float = 1.0) -> list[logging.LogRecord]:
        """Exactly ``n`` unconsumed error records: waits (bounded) until ``n`` are there, then consumes.

        With ``n == 0`` it checks immediately. Fails if more than ``n`` were logged.
        """
        if n:
            try:
                async with asyncio.timeout(timeout):
                    while len(self.records) < n:
                        await asyncio.sleep(0.005)
            except TimeoutError:
                pass
        taken = self.take()
        assert len(taken) == n, (
            f"expected {n} gateway errors logged, got {len(taken)}:\n{self.describe(taken)}"
        )
        return taken

    def assert_none(self) -> None:
        left = self.take()
        assert not left, f"gateway logged {len(left)} unexpected error(s):\n{self.describe(left)}"
