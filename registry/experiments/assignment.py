"""Deterministic assignment of units to variants: a documented hash, never Python's ``hash()``.

The algorithm (reproducible in any language with BLAKE2b):

* ``h(text)`` = the BLAKE2b digest of ``text`` (UTF-8) with an 8-byte digest size, read as an
  unsigned big-endian 64-bit integer;
* ``bucket(text)`` = ``h(text) * 10000 >> 64``, an integer in ``[0, 10000)``;
* a unit is **in coverage** when ``bucket("coverage:{seed}:{unit_id}") < round(coverage * 10000)``
  (with coverage 1 every unit is in and this hash is skipped);
* a unit in coverage gets variant ``i`` where ``i`` is the first index with
  ``bucket("variant:{seed}:{unit_id}") < bounds[i]``, ``bounds`` being the cumulative weights
  scaled to 10000 and rounded (the last bound is always 10000).

The two hashes use different prefixes, so they are independent: raising coverage only adds
units (a unit's coverage bucket never changes) and never moves a unit between variants.
Experiments have different seeds (the experiment key by default), so assignments in two
experiments are independent of each other. The same unit gets the same variant in every process,
on every machine and Python version.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from collections.abc import Sequence

#: resolution of weights and coverage: 0.01 %
BUCKETS = 10_000


def hash64(text: str) -> int:
    """The unsigned 64-bit BLAKE2b hash of ``text`` (UTF-8), big-endian."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def bucket(text: str) -> int:
    """``hash64(text)`` scaled to a bucket in ``[0, BUCKETS)``."""
    return (hash64(text) * BUCKETS) >> 64


def variant_bucket(seed: str, unit_id: str) -> int:
    """The bucket that picks a unit's variant."""
    return bucket(f"variant:{seed}:{unit_id}")


def coverage_bucket(seed: str, unit_id: str) -> int:
    """The bucket that decides whether a unit is in the experiment (independent of the variant)."""
    return bucket(f"coverage:{seed}:{unit_id}")


def weight_bounds(weights: Sequence[float]) -> tuple[int, ...]:
    """Cumulative upper bucket bounds of each variant, from relative weights.

    >>> weight_bounds([50, 50])
    (5000, 10000)
    >>> weight_bounds([1, 2, 1])
    (2500, 7500, 10000)
    """
    total = float(sum(weights))
    if not weights or total <= 0 or any(w < 0 for w in weights):
        raise ValueError("weights must be non-negative and sum to more than 0")
    bounds: list[int] = []
    running = 0.0
    for w in weights:
        running += w
        bounds.append(round(running / total * BUCKETS))
    bounds[-1] = BUCKETS
    return tuple(bounds)


def coverage_buckets(coverage: float) -> int:
    """How many of the ``BUCKETS`` coverage buckets are in the experiment."""
    if not 0 < coverage <= 1:
        raise ValueError("coverage must be in (0, 1]")
    return round(coverage * BUCKETS)


class Allocation:
    """Precomputed assignment rule of one experiment: ``assign(unit_id)`` -> variant index or None.

    The BLAKE2b state of each prefix is computed once and copied per call (same digest as hashing
    the whole text, about half the cost).
    """

    __slots__ = ("_bounds", "_coverage", "_coverage_prefix", "_variant_prefix")

    def __init__(self, seed: str, weights: Sequence[float], coverage: float = 1.0) -> None:
        self._bounds = weight_bounds(weights)
        self._coverage = coverage_buckets(coverage)
        self._variant_prefix = hashlib.blake2b(f"variant:{seed}:".encode(), digest_size=8)
        self._coverage_prefix = hashlib.blake2b(f"coverage:{seed}:".encode(), digest_size=8)

    def assign(self, unit_id: str) -> int | None:
        """The variant index of ``unit_id``, or None when the unit is outside coverage."""
        if self._coverage < BUCKETS:
            h = self._coverage_prefix.copy()
            h.update(unit_id.encode())
            if (int.from_bytes(h.digest(), "big") * BUCKETS) >> 64 >= self._coverage:
                return None
        h = self._variant_prefix.copy()
        h.update(unit_id.encode())
        return bisect_right(self._bounds, (int.from_bytes(h.digest(), "big") * BUCKETS) >> 64)


def assign(seed: str, unit_id: str, weights: Sequence[float], coverage: float = 1.0) -> int | None:
    """Reference implementation: the variant index of ``unit_id`` or None outside coverage.

    Slower than :class:`Allocation` (which precomputes) but identical in result.
    """
    if coverage_bucket(seed, unit_id) >= coverage_buckets(coverage):
        return None
    return bisect_right(weight_bounds(weights), variant_bucket(seed, unit_id))


__all__ = [
    "BUCKETS",
    "Allocation",
    "assign",
    "bucket",
    "coverage_bucket",
    "coverage_buckets",
    "hash64",
    "variant_bucket",
    "weight_bounds",
]
