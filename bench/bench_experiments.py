"""Benchmark of experiment assignment and of experiment-aware ``get``.

Prints, measured in the same run:

1. assignment cost per call: median µs of ``Allocation.assign`` over distinct unit ids, with full
   coverage (one BLAKE2b hash) and with partial coverage (two hashes) (target: <= 3 µs; for
   reference GrowthBook's Python SDK ``run()`` takes about 8.7 µs on this kind of machine);
2. warm ``reg.get(name, unit_id=...)`` against warm ``reg.get(name)`` on a prompt with a running
   experiment, exposure logging on (target ratio: <= 1.3), for a returning unit (the per-unit
   memo answers) and for a stream of new units (hashing on every call);
3. the same with no experiment on the prompt (what apps pay for passing unit ids always).

Each figure is the median of several timed batches; batches of the two sides are interleaved
so that machine noise hits both alike.

Run: ``.venv/bin/python bench/bench_experiments.py [--calls 50000] [--database URL]``
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import tempfile
import time
from bisect import bisect_right
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from registry import Registry  # noqa: E402
from registry import experiments as ex  # noqa: E402
from registry.experiments.assignment import Allocation  # noqa: E402
from registry.models.experiments import AssignmentRow  # noqa: E402

BATCHES = 15


def timed(loop: Callable[[], object], calls: int) -> float:
    """µs per call of one run of ``loop`` (which makes ``calls`` calls)."""
    start = time.perf_counter()
    loop()
    return (time.perf_counter() - start) / calls * 1e6


def compare(
    base: Callable[[], object], other: Callable[[], object], calls: int
) -> tuple[float, float]:
    """Median µs per call of two loops over ``BATCHES`` interleaved runs."""
    a: list[float] = []
    b: list[float] = []
    for _ in range(BATCHES):
        a.append(timed(base, calls))
        b.append(timed(other, calls))
    return statistics.median(a), statistics.median(b)


def make_registry(url: str) -> Registry:
    reg = Registry(url, cache_ttl=3600)  # warm: nothing expires during the run
    for name in ("bench", "plain"):
        for i in (1, 2):
            reg.create_version(
                name,
                system=f"Version {i}.",
                messages=[{"role": "user", "content": "{{ question }}"}],
                settings={"model": "claude-sonnet-4-6", "max_tokens": 200},
                variables={"question": {"type": "string"}},
                labels=["production"] if i == 1 else [],
                message="bench",
                author="bench",
            )
    ex.create(reg, "bench-exp", prompt="bench", variants=["a=1:50", "b=2:50"])
    ex.start(reg, "bench-exp")
    return reg


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50_000, help="calls per timed batch")
    parser.add_argument("--database", default=None, help="database URL (default: a temp SQLite)")
    args = parser.parse_args()
    calls = args.calls
    units = [f"user-{i}" for i in range(calls)]

    full = Allocation("bench", [50, 50], 1.0)
    partial = Allocation("bench", [50, 50], 0.5)

    def assign_loop(alloc: Allocation) -> Callable[[], object]:
        def loop() -> None:
            assign = alloc.assign
            for u in units:
                assign(u)

        return loop

    assign_full = statistics.median(timed(assign_loop(full), calls) for _ in range(BATCHES))
    assign_partial = statistics.median(timed(assign_loop(partial), calls) for _ in range(BATCHES))
    # for comparison: the same bucket from SHA-256 instead of BLAKE2b (not used)
    sha_prefix = b"variant:bench:"

    def sha_loop() -> None:
        for u in units:
            digest = hashlib.sha256(sha_prefix + u.encode()).digest()
            bisect_right((5000, 10000), (int.from_bytes(digest[:8], "big") * 10000) >> 64)

    sha = statistics.median(timed(sha_loop, calls) for _ in range(BATCHES))
    print(f"assignment, coverage 1.0 : {assign_full:.2f} µs/call (target <= 3 µs)")
    print(f"assignment, coverage 0.5 : {assign_partial:.2f} µs/call (target <= 3 µs)")
    print(f"(same with SHA-256       : {sha:.2f} µs/call)")

    with tempfile.TemporaryDirectory() as tmp:
        reg = make_registry(args.database or f"sqlite:///{tmp}/bench.db")
        get = reg.get
        try:
            get("bench")
            get("bench", unit_id="user-1")
            get("plain", unit_id="user-1")

            def plain_loop(name: str) -> Callable[[], object]:
                def loop() -> None:
                    for _ in units:
                        get(name)

                return loop

            def same_unit_loop() -> None:
                for _ in units:
                    get("bench", unit_id="user-1")

            def new_units_loop(name: str, prefix: str) -> Callable[[], object]:
                fresh = [f"{prefix}-{i}" for i in range(calls)]

                def loop() -> None:
                    for u in fresh:
                        get(name, unit_id=u)

                return loop

            base, same = compare(plain_loop("bench"), same_unit_loop, calls)
            # every call a unit this process has not seen: the memo cannot answer, hashing runs
            new_samples, base2_samples = [], []
            for b in range(BATCHES):
                base2_samples.append(timed(plain_loop("bench"), calls))
                new_samples.append(timed(new_units_loop("bench", f"new{b}"), calls))
            base2, new = statistics.median(base2_samples), statistics.median(new_samples)
            base3, none = compare(plain_loop("plain"), new_units_loop("plain", "u"), calls)
            ex.runtime(reg).flush()
            with reg.db.snapshot() as session:
                exposed = session.scalar(sa.select(sa.func.count()).select_from(AssignmentRow))
        finally:
            reg.close()
    print(f"reg.get(name)                       : {base:.3f} µs/call")
    print(
        f"reg.get(name, unit_id) same unit    : {same:.3f} µs/call, ratio {same / base:.2f}x "
        f"(+{same - base:.3f} µs; target <= 1.3x)"
    )
    print(
        f"reg.get(name, unit_id) new units    : {new:.3f} µs/call, ratio {new / base2:.2f}x "
        f"(+{new - base2:.3f} µs)"
    )
    print(
        f"reg.get(name, unit_id) no experiment: {none:.3f} µs/call, ratio {none / base3:.2f}x "
        f"(+{none - base3:.3f} µs)"
    )
    print(f"units with exposures logged: {exposed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
