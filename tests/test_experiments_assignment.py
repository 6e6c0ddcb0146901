"""Assignment of units to variants: deterministic, uniform, independent, ramp-up safe."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from scipy import stats

from registry.experiments.assignment import (
    BUCKETS,
    Allocation,
    assign,
    coverage_bucket,
    hash64,
    variant_bucket,
    weight_bounds,
)

ROOT = Path(__file__).resolve().parent.parent

#: the documented hash, pinned: changing it would move every unit of every running experiment
KNOWN = [
    ("support-tone", "user-42", 4643772726820753707, 2517, 7367),
    ("support-tone", "user-43", 16857651471186667846, 9138, 6972),
    ("exp-2", "é-ünïcode", 13086531465650250576, 7094, 2257),
    ("s", "", 7571518926338771388, 4104, 9915),
]


@pytest.mark.parametrize(("seed", "unit", "h", "vb", "cb"), KNOWN)
def test_hash_matches_the_documented_algorithm(
    seed: str, unit: str, h: int, vb: int, cb: int
) -> None:
    assert hash64(f"variant:{seed}:{unit}") == h
    assert variant_bucket(seed, unit) == vb == (h * BUCKETS) >> 64
    assert coverage_bucket(seed, unit) == cb


def test_allocation_agrees_with_the_reference_implementation() -> None:
    alloc = Allocation("seed-1", [20, 30, 50], 0.6)
    for i in range(5000):
        unit = f"u{i}"
        assert alloc.assign(unit) == assign("seed-1", unit, [20, 30, 50], 0.6)


@pytest.mark.parametrize(
    ("weights", "bounds"),
    [
        ([50, 50], (5000, 10000)),
        ([1, 2, 1], (2500, 7500, 10000)),
        ([0, 1], (0, 10000)),
        ([1, 1, 1], (3333, 6667, 10000)),
    ],
)
def test_weight_bounds(weights: list[float], bounds: tuple[int, ...]) -> None:
    assert weight_bounds(weights) == bounds


@pytest.mark.parametrize("weights", [[], [0, 0], [1, -1]])
def test_weight_bounds_refuses_bad_weights(weights: list[float]) -> None:
    with pytest.raises(ValueError):
        weight_bounds(weights)


def test_zero_weight_variant_gets_no_units() -> None:
    alloc = Allocation("z", [0, 1, 0, 1])
    seen = Counter(alloc.assign(f"u{i}") for i in range(2000))
    assert set(seen) == {1, 3}


_CHILD = """
import json, sys
from registry.experiments.assignment import Allocation
alloc = Allocation("cross-process", [10, 30, 60], 0.7)
print(json.dumps([alloc.assign(f"unit-{i}") for i in range(2000)]))
"""


def test_same_assignment_in_processes_with_different_hash_seeds() -> None:
    here = Allocation("cross-process", [10, 30, 60], 0.7)
    expected = [here.assign(f"unit-{i}") for i in range(2000)]
    for hash_seed in ("0", "1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run(
            [sys.executable, "-c", _CHILD],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        assert json.loads(out.stdout) == expected, f"PYTHONHASHSEED={hash_seed}"


def test_uniform_over_100000_units() -> None:
    weights = [50, 30, 20]
    alloc = Allocation("uniformity", weights)
    counts = Counter(alloc.assign(f"user-{i}") for i in range(100_000))
    observed = [counts[i] for i in range(3)]
    expected = [100_000 * w / 100 for w in weights]
    assert stats.chisquare(observed, expected).pvalue > 0.001


def test_coverage_share_is_respected() -> None:
    alloc = Allocation("coverage", [1, 1], 0.25)
    inside = sum(alloc.assign(f"user-{i}") is not None for i in range(100_000))
    assert stats.binomtest(inside, 100_000, 0.25).pvalue > 0.001


def test_two_experiments_are_independent() -> None:
    first = Allocation("experiment-one", [1, 1])
    second = Allocation("experiment-two", [1, 1, 1])
    table = [[0, 0, 0], [0, 0, 0]]
    for i in range(60_000):
        unit = f"user-{i}"
        a, b = first.assign(unit), second.assign(unit)
        assert a is not None and b is not None
        table[a][b] += 1
    assert stats.chi2_contingency(table).pvalue > 0.001


def test_ramp_up_only_adds_units_and_keeps_their_variant() -> None:
    units = [f"user-{i}" for i in range(20_000)]
    before = {u: Allocation("ramp", [1, 1], 0.1).assign(u) for u in units}
    after = {u: Allocation("ramp", [1, 1], 0.5).assign(u) for u in units}
    inside_before = {u for u, v in before.items() if v is not None}
    inside_after = {u for u, v in after.items() if v is not None}
    assert inside_before < inside_after
    assert all(after[u] == before[u] for u in inside_before)
    assert 0.08 < len(inside_before) / len(units) < 0.12
    assert 0.47 < len(inside_after) / len(units) < 0.53


def test_changing_weights_moves_only_boundary_units() -> None:
    units = [f"user-{i}" for i in range(10_000)]
    old = Allocation("shift", [50, 50])
    new = Allocation("shift", [40, 60])
    moved = [u for u in units if old.assign(u) != new.assign(u)]
    # only control units in the 40-50 % band move, and only to the treatment
    assert all(old.assign(u) == 0 and new.assign(u) == 1 for u in moved)
    assert 0.07 < len(moved) / len(units) < 0.13
