"""Concurrent writers: gapless version numbers and compare-and-set label moves."""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from registry import ConflictError, Registry
from tests.conftest import simple_version

WRITERS = 8
PER_WRITER = 100


def _write_versions(url: str, writer: int, count: int) -> list[int]:
    reg = Registry(url, cache_ttl=0)
    try:
        return [
            reg.create_version(
                "shared", **simple_version(system=f"writer {writer} draft {i}")
            ).version
            for i in range(count)
        ]
    finally:
        reg.close()


def _assert_gapless(reg: Registry, numbers: list[int]) -> None:
    total = WRITERS * PER_WRITER
    assert sorted(numbers) == list(range(1, total + 1))
    assert [v.version for v in reg.versions("shared")] == list(range(1, total + 1))
    assert reg.prompt("shared").latest_version == total


def test_threads_on_sqlite_get_gapless_versions(sqlite_url: str) -> None:
    with ThreadPoolExecutor(WRITERS) as pool:
        results = list(
            pool.map(lambda w: _write_versions(sqlite_url, w, PER_WRITER), range(WRITERS))
        )
    with Registry(sqlite_url) as reg:
        _assert_gapless(reg, [n for r in results for n in r])


def _process_writer(url: str, writer: int, count: int, queue: Any) -> None:
    try:
        queue.put(("ok", _write_versions(url, writer, count)))
    except Exception as exc:  # reported to the parent, which fails the test
        queue.put(("error", repr(exc)))


@pytest.mark.parametrize("engine", ["postgres", "sqlite"])
def test_processes_get_gapless_versions(engine: str, request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue("pg_url" if engine == "postgres" else "sqlite_url")
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [
        ctx.Process(target=_process_writer, args=(url, w, PER_WRITER, queue))
        for w in range(WRITERS)
    ]
    for p in procs:
        p.start()
    outcomes = [queue.get(timeout=240) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    errors = [detail for status, detail in outcomes if status == "error"]
    assert not errors, errors
    with Registry(url) as reg:
        _assert_gapless(reg, [n for _, numbers in outcomes for n in numbers])


def test_concurrent_compare_and_set_has_one_winner(reg: Registry) -> None:
    reg.create_version("p", **simple_version(labels=["production"]))
    for i in range(2, 10):
        reg.create_version("p", **simple_version(system=f"candidate {i}"))
    url = reg.db.url.render_as_string(hide_password=False)
    barrier = threading.Barrier(8)

    def attempt(version: int) -> str:
        other = Registry(url, cache_ttl=0)
        try:
            barrier.wait()
            other.set_label(
                "p", "production", version, actor=f"editor{version}", expected_version=1
            )
            return "won"
        except ConflictError:
            return "conflict"
        finally:
            other.close()

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(attempt, range(2, 10)))
    assert sorted(outcomes) == ["conflict"] * 7 + ["won"]
    moves = reg.label_history("p", "production")
    assert len(moves) == 2  # the creation and the single winning move
    assert reg.get("p").version == moves[-1].to_version


def test_concurrent_first_creation_of_a_prompt(reg: Registry) -> None:
    url = reg.db.url.render_as_string(hide_password=False)
    barrier = threading.Barrier(6)

    def create(i: int) -> int:
        other = Registry(url, cache_ttl=0)
        try:
            barrier.wait()
            return other.create_version("brand-new", **simple_version(system=f"draft {i}")).version
        finally:
            other.close()

    with ThreadPoolExecutor(6) as pool:
        numbers = sorted(pool.map(create, range(6)))
    assert numbers == [1, 2, 3, 4, 5, 6]
