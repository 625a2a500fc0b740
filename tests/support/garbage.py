"""Finding objects left in reference cycles: what the cyclic garbage collector, not reference
counting, would have to free (tests/gateway/test_garbage.py, tests/service/test_garbage.py; the ``collector_off`` fixture is in
tests/conftest.py)."""

from __future__ import annotations

import gc
from collections import Counter


def cyclic_garbage(*modules: str) -> Counter[str]:
    """Types of the objects of ``modules`` (prefixes of module names) that a full collection finds
    unreachable (kept aside to be counted, then freed)."""
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        found = Counter(
            f"{type(o).__module__}.{type(o).__qualname__}"
            for o in gc.garbage
            if type(o).__module__.startswith(modules)
        )
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    return found
