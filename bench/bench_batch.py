"""Message Batches: building and sending a 10,000-case batch, and mapping its results back,
against rendering the same 10,000 cases alone (measured in the same run).

    .venv/bin/python bench/bench_batch.py [--cases 10000] [--repeat 3]

1. build + send: render every case, build its request and batch item (plan), store the batch
   with its items (store), encode the body and POST it to the fake API (send)
                                                                  vs  rendering alone  (<= 2.0)
2. map back: match the 10,000 downloaded results to their items by custom_id, read each
   outcome, text and usage and price it at batch prices          vs  rendering alone  (<= 0.5)
   (downloading and parsing the results file, reading the stored items, and logging the
   10,000 run rows are timed and printed apart)

The fake Anthropic server runs in a process of its own (the real API is elsewhere too), so
its parsing and answering do not compete with the measured process for the interpreter.
The same template as ``bench_core.py``: ~650 characters, five variables, a loop, an if/else.
"""

from __future__ import annotations

import argparse
import gc
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_core import SETTINGS, TEMPLATE, VALUES, VARIABLES  # noqa: E402
from registry import Registry  # noqa: E402
from registry.batch import store  # noqa: E402
from registry.batch.api import create_body  # noqa: E402
from registry.batch.items import Item, Planner  # noqa: E402
from registry.batch.jobs import CHUNK, Batches  # noqa: E402
from registry.batch.results import map_result  # noqa: E402
from registry.prices import price_of  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_fake(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "registry", "fake-anthropic", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the fake Anthropic server did not start")


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def settle() -> None:
    """Collect garbage before a phase, so no phase pays for the previous one's objects."""
    gc.collect()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    port = free_port()
    fake = start_fake(port)
    os.environ.update(
        ANTHROPIC_BASE_URL=f"http://127.0.0.1:{port}",
        ANTHROPIC_API_KEY="bench",
        REGISTRY_BATCH_POLL_SECONDS="0.05",
    )
    cases = [
        {**VALUES, "customer": f"Customer {i}", "question": f"Question number {i}?"}
        for i in range(args.cases)
    ]
    phases: dict[str, list[float]] = {
        k: [] for k in ("render", "plan", "store", "send", "download", "read items", "map", "log")
    }
    try:
        with tempfile.TemporaryDirectory() as tmp:
            reg = Registry(f"sqlite:///{tmp}/bench.db")
            v = reg.create_version(
                "bench",
                system=TEMPLATE,
                messages=[{"role": "user", "content": "{{ question }}"}],
                settings=SETTINGS,
                variables=VARIABLES,
            )
            v.render(cases[0])  # compile once, as every later render reuses it
            batches = Batches(reg)
            for _ in range(args.repeat):
                settle()
                start = time.perf_counter()
                for values in cases:
                    v.render(values)
                phases["render"].append(time.perf_counter() - start)

                settle()
                start = time.perf_counter()
                planner = Planner(v, label=None, source="batch")
                items: list[Item] = [
                    planner.plan(values, f"c{i}") for i, values in enumerate(cases)
                ]
                phases["plan"].append(time.perf_counter() - start)
                settle()
                start = time.perf_counter()
                stored = store.create(reg.db, "bulk", items, prompt="bench", version=v.version)
                phases["store"].append(time.perf_counter() - start)
                settle()
                start = time.perf_counter()
                data = batches.api.create(create_body([i.encoded() for i in items]))
                phases["send"].append(time.perf_counter() - start)
                batch = batches.follow(batches.record_state(stored, data, submitted=True))

                settle()
                start = time.perf_counter()
                lines = {str(line["custom_id"]): line for line in batches.api.results(batch.name)}
                phases["download"].append(time.perf_counter() - start)
                settle()
                start = time.perf_counter()
                back = store.items_of(reg.db, batch.id)
                phases["read items"].append(time.perf_counter() - start)
                settle()
                start = time.perf_counter()
                price = price_of(v.model)
                mapped = [map_result(i, lines.get(i.custom_id), batch, None, price) for i in back]
                phases["map"].append(time.perf_counter() - start)
                settle()
                start = time.perf_counter()
                for chunk in range(0, len(mapped), CHUNK):
                    batches.log(batch, mapped[chunk : chunk + CHUNK])
                phases["log"].append(time.perf_counter() - start)
                assert len(mapped) == args.cases and all(r.ok for r in mapped)
                batches.finish(batch)
            batches.close()
            reg.close()
    finally:
        fake.terminate()
        fake.wait(10)
    m = {k: statistics.median(v) for k, v in phases.items()}
    render = m["render"]
    build = m["plan"] + m["store"] + m["send"]
    back = m["map"]
    print(f"cases: {args.cases}, runs: {args.repeat} (medians, seconds)")
    print(f"render alone        {render:7.3f}")
    print(
        f"build + send        {build:7.3f}   ratio {build / render:5.2f}  (target <= 2.0): "
        f"plan {m['plan']:.3f} (render included), store {m['store']:.3f}, "
        f"send {m['send']:.3f}"
    )
    print(f"map results back    {back:7.3f}   ratio {back / render:5.2f}  (target <= 0.5)")
    print(
        f"  and around it: download + parse {m['download']:.3f} "
        f"(ratio {m['download'] / render:.2f}), read the stored items {m['read items']:.3f} "
        f"(ratio {m['read items'] / render:.2f}), log the runs {m['log']:.3f} "
        f"(ratio {m['log'] / render:.2f})"
    )


if __name__ == "__main__":
    main()
