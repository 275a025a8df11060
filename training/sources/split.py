"""Deterministic splits by a hash of a key (a patient, a file name): independent of order, stable when data grows."""

from __future__ import annotations

import hashlib

__all__ = ["hash_unit"]


def hash_unit(salt: str, key: str) -> float:
    """A number in [0, 1) from the sha256 of ``salt:key`` (the same key always lands in the same place)."""
    return int.from_bytes(hashlib.sha256(f"{salt}:{key}".encode()).digest()[:8], "big") / 2.0**64
