"""The library reuses the gateway's pure codecs only: importing it loads no gateway I/O module."""

from __future__ import annotations

import subprocess
import sys

PURE = {"gateway", "gateway.constants", "gateway.protocol", "gateway.protocol.errors"}
PURE |= {"gateway.protocol.patterns", "gateway.protocol.rid"}


def test_service_library_imports_only_pure_gateway_modules() -> None:
    code = "import sys, pyresgate.service; print(' '.join(m for m in sys.modules if m.startswith('gateway')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert set(out.split()) <= PURE, f"unexpected gateway modules: {set(out.split()) - PURE}"
