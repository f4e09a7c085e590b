"""Per-row random streams: a row's seed depends on the job's seed and the row's identity
only, so a row's text does not change with the batch it runs in or the rows beside it."""

from __future__ import annotations

import hashlib


def row_seed(seed: int, *key) -> int:
    """A 63-bit seed for one row, from the job's seed and the row's identity."""
    digest = hashlib.sha256(repr((seed, *key)).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1
