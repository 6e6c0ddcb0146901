"""Benchmark of the runner against the fake Anthropic server (registry.testing).

Prints three ratios measured in the same run:

1. per-call overhead: median latency of ``reg.run`` (get + render + request + run row) over the
   median of a bare ``client.messages.create`` with the same body, against a zero-latency fake
   server (target: <= 1.25);
2. the durable run log: median of ``reg.run`` over the median of the same call through a run
   log without durability (the insert as it was before issue 12: no escaping of text the
   database cannot store, no column clamping, no idempotent insert, no spool), interleaved on
   the same database (target: <= 1.10);
3. throughput: runs per second of 16 threads against a fake server answering in 200 ms, under a
   concurrency limit of 16, over the ideal 16 / 0.2 s = 80 runs/s, run rows included
   (target: >= 0.9).

The fake server runs in a child process by default (``--server process``), as the real API is
out of process: in-process, its handler threads would share this process's GIL with the
threads being measured. ``--server thread`` runs it in-process for comparison.

Run: ``.venv/bin/python bench/bench_runner.py [--calls 400] [--database URL] [--server thread]``
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import anthropic  # noqa: E402

from registry import Registry  # noqa: E402
from registry.runner import ModelLimits  # noqa: E402
from registry.runner.runlog import (  # noqa: E402
    _COLUMNS,
    MAX_ERROR_MESSAGE,
    RunLog,
    RunRecord,
    _pg_values,
    _sqlite_values,
)
from registry.testing import FakeAnthropic  # noqa: E402

MODEL = "claude-sonnet-4-6"
LATENCY = 0.2
THREADS = 16


def _make_registry(url: str) -> Registry:
    reg = Registry(url)
    reg.create_version(
        "bench",
        system="You are a concise assistant.",
        messages=[{"role": "user", "content": "Answer briefly: {{ question }}"}],
        settings={"model": MODEL, "max_tokens": 200, "temperature": 0.2},
        variables={"question": {"type": "string"}},
        labels=["production"],
        message="bench",
        author="bench",
    )
    return reg


_PLAIN_SQL = {
    "sqlite": f"INSERT INTO runs ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)})",
    "postgresql": f"INSERT INTO runs ({', '.join(_COLUMNS)}) VALUES ({', '.join('%s' for _ in _COLUMNS)})",
}


class PlainRunLog(RunLog):
    """The run log before issue 12: the row as given, a plain INSERT, nothing spooled."""

    def write(self, record: RunRecord) -> None:
        u = record.usage
        message = record.error_message
        if message is not None and len(message) > MAX_ERROR_MESSAGE:
            message = message[:MAX_ERROR_MESSAGE] + "…"
        row = {
            **{name: getattr(record, name, None) for name in _COLUMNS},
            "prompt": record.prompt[:200],
            "input_tokens": u.input_tokens,
            "output_tokens": u.output_tokens,
            "cache_creation_input_tokens": u.cache_creation_input_tokens,
            "cache_read_input_tokens": u.cache_read_input_tokens,
            "error_message": message,
            "metadata": record.meta,
        }
        mode = "sqlite" if self.db.is_sqlite else "postgresql"
        values = _sqlite_values(row) if mode == "sqlite" else _pg_values(row)
        with self._lock:
            self._execute(_PLAIN_SQL[mode], values)
        record.written = True


def _serve(latency: float, conn: Any) -> None:
    """Child process: serve the fake API until told to stop."""
    with FakeAnthropic(latency=latency) as server:
        conn.send(server.url)
        conn.recv()


@contextmanager
def fake_server(latency: float, mode: str) -> Iterator[str]:
    """A fake Anthropic server answering after ``latency`` seconds; yields its URL."""
    if mode == "thread":
        with FakeAnthropic(latency=latency) as server:
            yield server.url
        return
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_serve, args=(latency, child), daemon=True)
    proc.start()
    try:
        yield str(parent.recv())
    finally:
        parent.send("stop")
        proc.join(10)


def overhead(reg: Registry, plain: Registry, url: str, calls: int) -> dict[str, float]:
    """Median ms of a bare ``create``, a bare raw-response call, ``reg.run`` and the same run
    through :class:`PlainRunLog` (``plain``), interleaved.

    The runner reads the raw response (skipping the SDK's pydantic ``Message``), so the second
    baseline isolates the cost of the runner's own layers.
    """
    os.environ["ANTHROPIC_BASE_URL"] = url
    client = anthropic.Anthropic(max_retries=0)
    body = reg.get("bench").render(question="What is 2 + 2?").to_request()

    def bare() -> None:
        client.messages.create(**body)

    def bare_raw() -> None:
        json.loads(client.messages.with_raw_response.create(**body).http_response.content)

    def run() -> None:
        reg.run("bench", {"question": "What is 2 + 2?"})

    def run_plain() -> None:
        plain.run("bench", {"question": "What is 2 + 2?"})

    calls_by_name: dict[str, Callable[[], None]] = {
        "bare": bare,
        "raw": bare_raw,
        "run": run,
        "plain": run_plain,
    }
    for _ in range(50):  # warm up every path (connections, caches)
        for f in calls_by_name.values():
            f()
    times: dict[str, list[float]] = {name: [] for name in calls_by_name}
    names = list(calls_by_name)
    for i in range(calls):
        k = i % len(names)
        for name in names[k:] + names[:k]:  # rotate the order
            start = time.perf_counter()
            calls_by_name[name]()
            times[name].append(time.perf_counter() - start)
    client.close()
    return {name: statistics.median(ts) * 1000 for name, ts in times.items()}


def throughput(reg: Registry, url: str, per_thread: int) -> tuple[int, float, float]:
    """(runs, seconds, ratio to the ideal THREADS / LATENCY runs per second)."""
    os.environ["ANTHROPIC_BASE_URL"] = url
    reg.runner.limiter.configure(MODEL, ModelLimits(concurrency=THREADS))
    errors: list[BaseException] = []
    barrier = threading.Barrier(THREADS + 1)

    def worker() -> None:
        barrier.wait()
        for _ in range(per_thread):
            try:
                reg.run("bench", {"question": "What is 2 + 2?"})
            except BaseException as exc:  # reported below
                errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise SystemExit(f"{len(errors)} runs failed, first: {errors[0]!r}")
    runs = THREADS * per_thread
    ideal = THREADS / LATENCY
    return runs, elapsed, (runs / elapsed) / ideal


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=400, help="calls per side for the overhead")
    parser.add_argument("--per-thread", type=int, default=20, help="runs per thread (throughput)")
    parser.add_argument("--database", default=None, help="database URL (default: temp SQLite)")
    parser.add_argument(
        "--server", choices=["process", "thread"], default="process", help="where the fake runs"
    )
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="bench-runner-")
    url = args.database or f"sqlite:///{tmp}/bench.db"
    os.environ["ANTHROPIC_API_KEY"] = "sk-ant-bench"
    print(f"database {url.split('://')[0]}, fake server in a {args.server}")
    with fake_server(0.0, args.server) as fast, fake_server(LATENCY, args.server) as slow:
        reg = _make_registry(url)
        # the same prompt in a database of its own (a SQLite file is written by one connection
        # at a time: two run logs taking turns on one file would measure each other's waits)
        plain_url = url if args.database else f"sqlite:///{tmp}/bench-plain.db"
        plain = _make_registry(plain_url) if plain_url != url else Registry(url)
        plain.runner.runlog = PlainRunLog(plain.db)
        try:
            ms = overhead(reg, plain, fast, args.calls)
            ratio = ms["run"] / ms["bare"]
            print(
                f"overhead: bare messages.create median {ms['bare']:.3f} ms, reg.run median "
                f"{ms['run']:.3f} ms, ratio {ratio:.3f} (target <= 1.25) "
                f"{'OK' if ratio <= 1.25 else 'FAIL'}"
            )
            print(
                f"  (for reference: bare with_raw_response.create + json.loads median "
                f"{ms['raw']:.3f} ms; reg.run / raw = {ms['run'] / ms['raw']:.3f}, the cost of "
                "the runner's own layers: get, render, request, limiter, run row, result)"
            )
            durable = ms["run"] / ms["plain"]
            print(
                f"durable run log: reg.run median {ms['run']:.3f} ms, the same through the plain "
                f"run log {ms['plain']:.3f} ms, ratio {durable:.3f} (target <= 1.10) "
                f"{'OK' if durable <= 1.10 else 'FAIL'}"
            )
            runs, secs, tratio = throughput(reg, slow, args.per_thread)
            print(
                f"throughput: {runs} runs in {secs:.2f} s = {runs / secs:.1f} runs/s with "
                f"{THREADS} threads at {LATENCY * 1000:.0f} ms; ideal {THREADS / LATENCY:.0f} "
                f"runs/s; ratio {tratio:.3f} (target >= 0.9) {'OK' if tratio >= 0.9 else 'FAIL'}"
            )
        finally:
            plain.close()
            reg.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
