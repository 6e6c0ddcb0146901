"""The durable run log: a row for every result, in the database or in the local spool.

Text the database cannot store is escaped the same way on both engines and read back as it
was; rows spooled while the database is down are replayed exactly once, by the process itself
or (after it died) by ``prompt-registry worker``; costs and the budget count them meanwhile.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from registry import DatabaseUnavailable, NotFound, Registry, RenderError
from registry.cli import main
from registry.models.runs import RunRow
from registry.runner import RetryPolicy, cost_report
from registry.runner.runlog import spent_since
from registry.spool import Spool, insert_rows, read_rows, spool_dir, spool_files
from registry.testing import FakeAnthropic, Reply
from registry.text import from_storable, to_storable
from registry.worker import JOBS, Worker

from .conftest import simple_version
from .pg_cluster import PrivateCluster

ROOT = Path(__file__).resolve().parent.parent
NASTY = "nul\x00 bell\x07 esc\x1b del\x7f tab\t nl\n literal \\u0000 back\\slash é ✓"


def _rows(reg: Registry) -> dict[str, dict[str, Any]]:
    with reg.db.engine.connect() as conn:
        rows = conn.execute(sa.select(RunRow.__table__)).mappings()
        return {r["id"]: dict(r) for r in rows}


def _wait(condition: Any, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture
def api(fake_anthropic: FakeAnthropic) -> FakeAnthropic:
    return fake_anthropic


# -- text the database cannot store -------------------------------------------------------


def test_escaping_reverses_exactly() -> None:
    for text in ["", "plain", "a\x00b", "\\u0000", "\\\\u0000", "x\ud800y", "\\u005c", NASTY]:
        stored = to_storable(text)
        assert "\x00" not in stored
        stored.encode("utf-8")  # no lone surrogate left
        assert from_storable(stored) == text
    assert to_storable({"k\x00": ["v\x00", 1, None]}) == {"k\\u0000": ["v\\u0000", 1, None]}
    unchanged = "no escape needed"
    assert to_storable(unchanged) is unchanged


def test_nul_and_control_characters_in_a_run_are_stored_escaped_and_read_back(
    reg: Registry, api: FakeAnthropic
) -> None:
    reg.create_version(
        "echo",
        **simple_version(
            labels=["production"],
            variables={"question": {"type": "string"}, "extra": {"type": "object"}},
        ),
    )
    api.enqueue(Reply.text("answer " + NASTY))
    variables = {"question": NASTY, "extra": {"key\x00": [NASTY, 1.5]}}

    result = reg.run("echo", variables, unit_id="unit\x00\ud800", metadata={"note": NASTY})

    assert result.text == "answer " + NASTY
    row = _rows(reg)[result.run_id]
    # the same stored form on both engines: escaped, never dropped
    assert row["output_text"] == to_storable(result.text)
    assert row["variables"] == to_storable(variables)
    assert row["unit_id"] == "unit\\u0000\\ud800"
    assert row["metadata"] == {"note": to_storable(NASTY)}
    back = reg.runner.get_run(result.run_id)
    assert back.text == result.text
    assert back.unit_id == "unit\x00\ud800"
    assert back.metadata == {"note": NASTY}
    with reg.db.engine.connect() as conn:
        variables_back = conn.execute(
            sa.select(RunRow.variables).where(RunRow.id == result.run_id)
        ).scalar_one()
    assert from_storable(variables_back) == variables


def test_over_long_and_invalid_selectors_still_leave_their_row(
    reg: Registry, api: FakeAnthropic
) -> None:
    reg.create_version("echo", **simple_version(labels=["production"]))
    with pytest.raises(Exception) as caught:  # an invalid label (ValidationError)
        reg.run("echo\x00" + "x" * 300, {"question": "q"}, label="L" * 100 + "\x00")
    run_id = caught.value.run_id  # type: ignore[attr-defined]
    row = _rows(reg)[run_id]
    assert len(row["prompt"]) == 200 and len(row["label"]) == 64 and row["status"] == "error"
    with pytest.raises(RenderError) as render:
        reg.run("echo", {"question": 3})
    assert render.value.run_id in _rows(reg)  # type: ignore[attr-defined]


def test_feedback_comments_refuse_nul(reg: Registry, api: FakeAnthropic) -> None:
    reg.create_version("echo", **simple_version(labels=["production"]))
    run_id = reg.run("echo", {"question": "q"}).run_id
    with pytest.raises(Exception, match="NUL") as caught:
        reg.feedback(run_id, "thumbs_up", 1.0, comment="bad\x00")
    assert caught.value.field == "comment"  # type: ignore[attr-defined]
    reg.feedback(run_id, "thumbs_up", 1.0, comment="fine\ttabs\nand lines")


# -- the spool ----------------------------------------------------------------------------


def test_the_spool_lives_next_to_sqlite_else_in_REGISTRY_SPOOL_DIR(
    sqlite_reg: Registry, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("REGISTRY_SPOOL_DIR")
    db_file = Path(str(sqlite_reg.db.url.database))
    assert spool_dir(sqlite_reg.db) == db_file.with_name(db_file.name + ".spool")
    monkeypatch.setenv("REGISTRY_SPOOL_DIR", str(tmp_path / "elsewhere"))
    folder = spool_dir(sqlite_reg.db)
    assert folder.parent == tmp_path / "elsewhere" and len(folder.name) == 16


def test_replaying_is_idempotent_on_run_id(reg: Registry, api: FakeAnthropic) -> None:
    reg.create_version("echo", **simple_version(labels=["production"]))
    result = reg.run("echo", {"question": "q"})
    row = _rows(reg)[result.run_id]
    insert_rows(reg.db, [row, row])
    insert_rows(reg.db, [row])
    assert list(_rows(reg)) == [result.run_id]


def _orphan(reg: Registry, rows: list[dict[str, Any]]) -> Path:
    """A spool file as a dead process leaves it (written, then its lock released)."""
    spool = Spool(reg.db)
    for row in rows:
        spool.append(row)
    path = spool.path
    assert path is not None
    spool.close()
    return path


def test_the_worker_replays_dead_processes_spools_and_costs_count_them_meanwhile(
    reg: Registry, api: FakeAnthropic
) -> None:
    reg.create_version("echo", **simple_version(labels=["production"]))
    api.enqueue(Reply.text("x", input_tokens=1000, output_tokens=1000))
    logged = reg.run("echo", {"question": "q"})
    spooled = []
    for i in range(3):
        row = dict(_rows(reg)[logged.run_id])
        row["id"] = f"spooled{i:025d}"
        spooled.append(row)
    path = _orphan(reg, spooled)
    live = Spool(reg.db)
    live.append({**spooled[0], "id": "live" + "0" * 28})  # a live process's file: left alone
    assert len(spool_files(spool_dir(reg.db))) == 2

    midnight = logged.created_at.replace(hour=0, minute=0, second=0, microsecond=0)
    cost = logged.cost_usd or 0.0
    assert cost > 0
    before = {line.key: line for line in cost_report(reg.db, by="prompt")}
    assert before["echo"].runs == 5 and before["echo"].cost_usd == pytest.approx(5 * cost)
    assert spent_since(reg.db, midnight) == pytest.approx(5 * cost)

    reports = Worker(reg, [JOBS["run-spool"]]).run_once()
    assert [(r.job, r.handled, r.error) for r in reports] == [("run-spool", 3, None)]
    assert not path.exists() and live.path is not None and live.path.exists()
    assert set(_rows(reg)) == {logged.run_id, *(r["id"] for r in spooled)}
    after = {line.key: line for line in cost_report(reg.db, by="prompt")}
    assert after["echo"].runs == 5 and after["echo"].cost_usd == pytest.approx(5 * cost)
    assert Worker(reg, [JOBS["run-spool"]]).run_once()[0].handled == 0
    assert live.replay() == 1
    assert len(_rows(reg)) == 5
    live.close()


def test_a_row_the_database_refuses_for_good_is_set_aside_not_blocking(
    sqlite_reg: Registry,
) -> None:
    good = {
        "id": "g" * 32,
        "created_at": RunRow.created_at.default.arg(None),  # type: ignore[union-attr]
        "prompt": "p",
        "status": "ok",
    }
    bad = {**good, "id": "b" * 32, "status": "weird"}  # breaks the status check constraint
    path = _orphan(sqlite_reg, [bad, good])
    assert Worker(sqlite_reg, [JOBS["run-spool"]]).run_once()[0].handled == 2
    assert set(_rows(sqlite_reg)) == {"g" * 32}
    rejected = path.parent / "rejected.jsonl"
    assert [r["id"] for r in read_rows(rejected)] == ["b" * 32]


def test_worker_command_lists_and_runs_its_jobs(sqlite_reg: Registry, api: FakeAnthropic) -> None:
    sqlite_reg.create_version("echo", **simple_version(labels=["production"]))
    run_id = sqlite_reg.run("echo", {"question": "q"}).run_id
    row = _rows(sqlite_reg)[run_id]
    _orphan(sqlite_reg, [{**row, "id": "o" * 32}])
    db = ["--database", sqlite_reg.db.url.render_as_string(hide_password=False)]
    runner = CliRunner()
    listed = runner.invoke(main, [*db, "worker", "--list", "--json"])
    assert listed.exit_code == 0, listed.output
    assert "run-spool" in [j["job"] for j in json.loads(listed.output)]
    once = runner.invoke(main, [*db, "worker", "--once", "--json"])
    assert once.exit_code == 0, once.output
    assert json.loads(once.output)[0] == {
        "job": "run-spool",
        "handled": 1,
        "error": None,
        "seconds": pytest.approx(0, abs=30),
    }
    assert "o" * 32 in _rows(sqlite_reg)
    bad = runner.invoke(main, [*db, "worker", "--job", "nope"])
    assert bad.exit_code == 2 and "unknown job(s) nope" in bad.output


def test_serve_runs_the_worker_in_the_background(sqlite_reg: Registry, api: FakeAnthropic) -> None:
    from registry.web import create_app

    sqlite_reg.create_version("echo", **simple_version(labels=["production"]))
    run_id = sqlite_reg.run("echo", {"question": "q"}).run_id
    row = _rows(sqlite_reg)[run_id]
    _orphan(sqlite_reg, [{**row, "id": "w" * 32}])
    app = create_app({"REGISTRY": sqlite_reg, "SECRET_KEY": "x", "REGISTRY_WORKER": True})
    assert app.extensions["registry_worker"] is not None
    _wait(lambda: "w" * 32 in _rows(sqlite_reg), what="the server's worker to replay")


# -- outages on a private PostgreSQL cluster -----------------------------------------------


@pytest.fixture
def outage_reg(outage_url: str) -> Iterator[Registry]:
    reg = Registry(outage_url, cache_ttl=0)
    reg.runner.retry = RetryPolicy(base_delay=0.01, max_delay=0.05)
    yield reg
    reg.close()


@pytest.mark.postgres
def test_runs_during_an_outage_are_spooled_then_replayed_once_by_the_process(
    private_pg: PrivateCluster, outage_reg: Registry, api: FakeAnthropic
) -> None:
    reg = outage_reg
    reg.create_version("echo", **simple_version(labels=["production"]))
    first = reg.run("echo", {"question": "warm"})
    private_pg.stop()

    during = [reg.run("echo", {"question": f"q{i}\x00"}) for i in range(5)]
    with pytest.raises(RenderError) as failed:
        reg.run("echo", {"question": 3})
    ids = {first.run_id, *(r.run_id for r in during), failed.value.run_id}  # type: ignore[attr-defined]
    assert all(r.ok for r in during) and reg.runner.runlog.spool.pending == 6
    path = reg.runner.runlog.spool.path
    assert path is not None and len(read_rows(path)) == 6
    with pytest.raises(DatabaseUnavailable):
        reg.feedback(during[0].run_id, "thumbs_up", 1.0)

    private_pg.start()
    _wait(lambda: not path.exists(), what="the process to replay its spool")
    rows = _rows(reg)
    assert set(rows) == ids
    assert rows[during[0].run_id]["variables"] == {"question": "q0\\u0000"}
    reg.feedback(during[0].run_id, "thumbs_up", 1.0)


@pytest.mark.postgres
def test_with_a_budget_and_its_store_down_runs_fail_with_database_unavailable(
    private_pg: PrivateCluster,
    outage_reg: Registry,
    api: FakeAnthropic,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reg = outage_reg
    monkeypatch.setenv("REGISTRY_DAILY_BUDGET_USD", "100")
    reg.create_version("echo", **simple_version(labels=["production"]))
    reg.run("echo", {"question": "warm"})  # the budget read today's spend
    private_pg.stop()
    sent = len(api.requests)
    for _ in range(2):
        with pytest.raises(DatabaseUnavailable) as caught:
            reg.run("echo", {"question": "q"})
        assert "REGISTRY_DAILY_BUDGET_USD" in caught.value.message
    assert len(api.requests) == sent  # nothing was sent on a guessed budget
    private_pg.start()
    _wait(lambda: len(_rows(reg)) == 3, what="the refused runs' rows")
    assert {r["error_type"] for r in _rows(reg).values()} == {None, "database_unavailable"}


CHILD = textwrap.dedent(
    """
    import os, sys, time
    from registry import Registry
    reg = Registry(sys.argv[1], cache_ttl=0)
    reg.get("echo")
    print("ready", flush=True)
    sys.stdin.readline()  # the parent stopped the database
    for i in range(3):
        print(reg.run("echo", {"question": f"child {i}"}).run_id, flush=True)
    print("done", flush=True)
    time.sleep(600)
    """
)


@pytest.mark.postgres
def test_a_process_killed_with_spooled_rows_has_them_replayed_by_the_worker(
    private_pg: PrivateCluster, outage_reg: Registry, api: FakeAnthropic, tmp_path: Path
) -> None:
    reg = outage_reg
    reg.create_version("echo", **simple_version(labels=["production"]))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, reg.db.url.render_as_string(hide_password=False)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline().strip() == "ready"
        private_pg.stop()
        child.stdin.write("go\n")
        child.stdin.flush()
        run_ids = [child.stdout.readline().strip() for _ in range(3)]
        assert child.stdout.readline().strip() == "done"
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
    assert all(len(r) == 32 for r in run_ids)
    private_pg.start()
    (orphan,) = spool_files(spool_dir(reg.db))
    assert [r["id"] for r in read_rows(orphan)] == run_ids
    lines = {line.key: line for line in cost_report(reg.db, by="prompt")}
    assert lines["echo"].runs == 3  # counted before the worker replayed them
    deadline = time.monotonic() + 30
    while Worker(reg, [JOBS["run-spool"]]).run_once()[0].error:  # the server is starting
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert set(_rows(reg)) == set(run_ids) and not orphan.exists()
    with pytest.raises(NotFound):
        reg.runner.get_run("0" * 32)
