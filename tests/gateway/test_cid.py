"""Connection IDs: unique, 20 lowercase hex digits (a valid NATS subject token)."""

from __future__ import annotations

import re

from gateway.web.ws import new_cid


def test_cids_are_unique_subject_safe_tokens() -> None:
    cids = [new_cid() for _ in range(10_000)]
    assert len(set(cids)) == len(cids)
    assert all(re.fullmatch(r"[0-9a-f]{20}", cid) for cid in cids)
