"""Suites through Message Batches, against the fake server's batch endpoints (real SDK):
one batch for a 40-case suite with results out of order, errored and expired items as failed
cases, the stored suite run shaped like a synchronous one at half the price, a process killed
after submitting and finished by ``--resume`` without a second batch, ``--all --batch``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from registry import Registry
from registry.cli import main
from registry.models.runs import RunRow
from registry.suites import get_suite_run, latest_suite_run, run_suite, sync_cases_from_file
from registry.suites.batched import SuiteTarget, resume_suite_batch, run_suites_batched
from registry.testing import FakeAnthropic, Reply

runs = RunRow.__table__

ROOT = Path(__file__).resolve().parent.parent
N = 40
ERRORED = (7, 23)
EXPIRED = 31


def answer(body: dict[str, Any]) -> Reply:
    """Echo the case's token, so a result mapped to the wrong case fails its assertion."""
    content = body["messages"][-1]["content"]
    return Reply.text(f"token {content.split()[-1]}", input_tokens=100, output_tokens=20)


def make_suite(reg: Registry, name: str = "tokens", cases: int = N, **kw: Any) -> None:
    kw.setdefault("labels", ["staging"])
    reg.create_version(
        name,
        messages=[{"role": "user", "content": "Repeat the token {{ token }}"}],
        settings={"model": "claude-haiku-4-5", "max_tokens": 50, "temperature": 0.0},
        variables={"token": {"type": "string", "required": True}},
        **kw,
    )
    sync_cases_from_file(
        reg,
        name,
        [
            {
                "name": f"case-{i:02d}",
                "variables": {"token": f"t{i}x"},
                "assert": [{"type": "contains", "value": f"token t{i}x"}],
            }
            for i in range(cases)
        ],
        author="ana",
    )


@pytest.fixture
def suite(
    reg: Registry, fake_anthropic: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> Registry:
    monkeypatch.setenv("REGISTRY_BATCH_POLL_SECONDS", "0.01")
    fake_anthropic.responder = answer
    fake_anthropic.batch_polls = 2
    make_suite(reg)
    return reg


def script_outcomes(fake: FakeAnthropic) -> None:
    """Items in submission order: two errored, one expired, the others answered."""
    replies: list[Reply] = []
    for i in range(N):
        if i in ERRORED:
            replies.append(Reply.error(529))
        elif i == EXPIRED:
            replies.append(Reply.expired())
        else:
            replies.append(Reply.text(f"token t{i}x", input_tokens=100, output_tokens=20))
    fake.enqueue(*replies, endpoint="batch_items")


def test_a_40_case_suite_goes_as_one_batch_and_maps_back_out_of_order(
    suite: Registry, fake_anthropic: FakeAnthropic
) -> None:
    script_outcomes(fake_anthropic)
    seen: list[dict[str, int]] = []
    (run,) = run_suites_batched(
        suite, [SuiteTarget("tokens")], actor="ana", progress=lambda b: seen.append(b.counts)
    )
    (batch,) = fake_anthropic.batches
    creations = [
        r for r in fake_anthropic.requests_to("/v1/messages/batches") if r.method == "POST"
    ]
    assert len(creations) == 1 and len(batch.custom_ids) == N
    assert batch.result_order() != list(range(N))  # the results came back shuffled
    assert fake_anthropic.requests_to("/v1/messages") == []  # nothing went synchronously
    assert seen[-1]["processing"] == 0 and seen[0]["processing"] > 0

    assert run.status == "failed" and run.batch_id == batch.id and run.model is None
    assert (run.total, run.passed, run.failed, run.errored) == (N, N - 3, 0, 3)
    by_case = {r.case: r for r in run.results}
    for i in range(N):
        result = by_case[f"case-{i:02d}"]
        if i in ERRORED:
            assert result.status == "error" and "overloaded_error" in (result.error or "")
        elif i == EXPIRED:
            assert result.status == "error" and "expired" in (result.error or "")
        else:
            assert result.passed and result.output == f"token t{i}x", result
    assert [r.case for r in run.results] == [f"case-{i:02d}" for i in range(N)]

    stored = get_suite_run(suite, run.id)
    assert stored.to_dict() == run.to_dict()
    with suite.db.engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                runs.c.id, runs.c.status, runs.c.error_type, runs.c.cost_usd, runs.c.source
            ).where(runs.c.suite_run_id == str(run.id))
        ).all()
    assert len(rows) == N and {r.source for r in rows} == {"test"}
    assert sorted(r.error_type for r in rows if r.status == "error") == [
        "batch_expired",
        "overloaded_error",
        "overloaded_error",
    ]
    # haiku at batch prices: 100 input tokens at $0.5/M, 20 output at $2.5/M
    ok_costs = [r.cost_usd for r in rows if r.status == "ok"]
    assert all(c == pytest.approx((100 * 0.5 + 20 * 2.5) / 1e6) for c in ok_costs)
    assert {r.run_id for r in run.results} == {r.id for r in rows}


def test_the_batched_run_is_stored_like_a_synchronous_one_at_half_the_price(
    suite: Registry, fake_anthropic: FakeAnthropic
) -> None:
    sync = run_suite(suite, "tokens", concurrency=4, actor="ana")
    (batched,) = run_suites_batched(suite, [SuiteTarget("tokens")], actor="ana")
    assert sync.ok and batched.ok
    assert set(sync.to_dict()) == set(batched.to_dict())
    for a, b in zip(sync.results, batched.results, strict=True):
        assert (a.case, a.status, a.output, a.position) == (b.case, b.status, b.output, b.position)
        assert set(a.to_dict()) == set(b.to_dict())
        assert b.cost_usd == pytest.approx(a.cost_usd / 2)
        assert b.latency_ms is None and a.latency_ms is not None
    assert batched.cost_usd == pytest.approx(sync.cost_usd / 2)
    assert latest_suite_run(suite, "tokens", 1) == batched.with_results([])  # the gate sees it


def test_a_case_that_cannot_render_is_an_error_and_is_not_sent(
    suite: Registry, fake_anthropic: FakeAnthropic
) -> None:
    sync_cases_from_file(
        suite,
        "tokens",
        [
            {"name": "good", "variables": {"token": "a1"}, "assert": []},
            {"name": "bad", "variables": {"token": 5}, "assert": []},
        ],
        author="ana",
    )
    (run,) = run_suites_batched(suite, [SuiteTarget("tokens")])
    (batch,) = fake_anthropic.batches
    assert len(batch.custom_ids) == N + 1  # the 40 cases and "good"
    bad = next(r for r in run.results if r.case == "bad")
    assert bad.status == "error" and "token" in (bad.error or "") and bad.run_id
    assert (run.total, run.passed, run.errored) == (N + 2, N + 1, 1)


def test_all_suites_go_in_one_batch(suite: Registry, fake_anthropic: FakeAnthropic) -> None:
    make_suite(suite, "other", cases=3)
    finished = run_suites_batched(
        suite, [SuiteTarget("tokens", label="staging"), SuiteTarget("other", label="staging")]
    )
    assert [(r.prompt, r.total, r.ok) for r in finished] == [
        ("tokens", N, True),
        ("other", 3, True),
    ]
    assert len(fake_anthropic.batches) == 1 and len(fake_anthropic.batches[0].custom_ids) == N + 3


def test_resume_finishes_without_submitting_again(
    suite: Registry, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.batch_polls = 10_000
    (running,) = run_suites_batched(suite, [SuiteTarget("tokens")], wait=False)
    assert running.status == "running" and running.batch_id
    assert "still running (batch" in running.describe()
    fake_anthropic.end_batch(running.batch_id)
    (done,) = resume_suite_batch(suite, running.batch_id)
    assert done.id == running.id and done.ok and done.batch_id == running.batch_id
    assert len(fake_anthropic.batches) == 1
    again = resume_suite_batch(suite, running.batch_id)  # finished: returned as it is
    assert [r.to_dict() for r in again] == [done.to_dict()]


def _cli(db_url: str, *args: str) -> Any:
    return CliRunner().invoke(
        main, ["--database", db_url, *args], catch_exceptions=False, env={"COLUMNS": "240"}
    )


def test_a_killed_test_batch_is_finished_by_resume_without_a_second_batch(
    db_url: str, fake_anthropic: FakeAnthropic, tmp_path: Path
) -> None:
    fake_anthropic.responder = answer
    fake_anthropic.batch_polls = 1_000_000
    with Registry(db_url) as reg:
        make_suite(reg)
    env = {
        **os.environ,
        "REGISTRY_BATCH_POLL_SECONDS": "0.05",
        "PYTHONPATH": str(ROOT),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "registry", "--database", db_url, "test", "tokens", "--batch"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            batches = fake_anthropic.batches
            if batches and batches[0].retrieved >= 2:  # submitted, stored, and polling
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        else:
            pytest.fail("the batch was not submitted in time")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    (batch,) = fake_anthropic.batches
    with Registry(db_url) as reg:
        (run,) = [r for r in [latest_suite_run(reg, "tokens", 1)] if r is not None]
        assert run.status == "running" and run.batch_id == batch.id
    fake_anthropic.end_batch(batch.id)
    os.environ["REGISTRY_BATCH_POLL_SECONDS"] = "0.01"
    try:
        resumed = _cli(db_url, "test", "--resume", batch.id)
    finally:
        del os.environ["REGISTRY_BATCH_POLL_SECONDS"]
    assert resumed.exit_code == 0, resumed.output
    assert f"tokens v1: {N} passed (suite run #{run.id})" in resumed.stdout
    assert len(fake_anthropic.batches) == 1
    with Registry(db_url) as reg:
        with reg.db.engine.connect() as conn:
            count = conn.execute(sa.select(sa.func.count()).select_from(runs)).scalar()
        assert count == N
        assert get_suite_run(reg, run.id).ok


def test_test_batch_again_resumes_the_waiting_suite_run(
    sqlite_url: str, fake_anthropic: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REGISTRY_BATCH_POLL_SECONDS", "0.01")
    fake_anthropic.responder = answer
    fake_anthropic.batch_polls = 10_000
    with Registry(sqlite_url) as reg:
        make_suite(reg, cases=3)
    submitted = _cli(sqlite_url, "test", "tokens", "--batch", "--no-wait")
    assert submitted.exit_code == 0, submitted.output
    (batch,) = fake_anthropic.batches
    assert f"submitted batch {batch.id} (3 requests)" in submitted.stderr
    assert f"prompt-registry test --resume {batch.id}" in submitted.stderr
    fake_anthropic.end_batch(batch.id)
    again = _cli(sqlite_url, "test", "tokens", "--batch")
    assert again.exit_code == 0, again.output
    assert f"resuming batch {batch.id}" in again.stderr
    assert "tokens v1: 3 passed (suite run #1)" in again.stdout
    assert len(fake_anthropic.batches) == 1
    # progress by state on stderr (not a terminal: one line per change)
    assert "succeeded 3" in again.stderr


def test_test_all_batch_and_usage_errors(
    sqlite_url: str, fake_anthropic: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REGISTRY_BATCH_POLL_SECONDS", "0.01")
    fake_anthropic.responder = answer
    fake_anthropic.batch_polls = 0
    with Registry(sqlite_url) as reg:
        make_suite(reg, cases=2)
        make_suite(reg, "other", cases=2)
    result = _cli(sqlite_url, "test", "--all", "--batch", "--json")
    assert result.exit_code == 0, result.output
    assert len(fake_anthropic.batches) == 1
    assert _cli(sqlite_url, "test", "tokens", "--no-wait").exit_code == 2
    assert _cli(sqlite_url, "test", "tokens", "--batch", "--against", "1").exit_code == 2
    missing = CliRunner().invoke(main, ["--database", sqlite_url, "test", "--resume", "nope"])
    assert missing.exit_code == 1 and "no stored batch 'nope'" in missing.stderr
