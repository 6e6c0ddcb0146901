"""Bulk jobs (``prompt-registry batch``): a 1,000-line JSONL through one Message Batch, output
in input order at batch prices, every item a run; bad lines refused before anything is sent;
errored/expired/canceled items; resuming; ``--sync``; the daily budget at submission."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from registry import BudgetExceeded, InputFileError, Registry
from registry.batch import batches_of, read_input, resume_bulk, run_bulk, submit_bulk
from registry.batch.store import listing
from registry.cli import main
from registry.models.runs import RunRow
from registry.tables import batches
from registry.testing import FakeAnthropic, Reply

runs = RunRow.__table__

PROMPT = "summarize"


def answer(body: dict[str, Any]) -> Reply:
    text = body["messages"][-1]["content"]
    return Reply.text(
        f"summary of {text.split(':', 1)[1].strip()}", input_tokens=40, output_tokens=10
    )


def make_prompt(reg: Registry, **kw: Any) -> None:
    reg.create_version(
        PROMPT,
        messages=[{"role": "user", "content": "Summarize: {{ text }}"}],
        settings={"model": "claude-sonnet-4-6", "max_tokens": 100},
        variables={"text": {"type": "string", "required": True}},
        labels=["production"],
        **kw,
    )


def write_lines(path: Path, lines: list[Any]) -> Path:
    path.write_text(
        "".join(json.dumps(x) + "\n" if not isinstance(x, str) else x + "\n" for x in lines)
    )
    return path


@pytest.fixture
def job(reg: Registry, fake_anthropic: FakeAnthropic, monkeypatch: pytest.MonkeyPatch) -> Registry:
    monkeypatch.setenv("REGISTRY_BATCH_POLL_SECONDS", "0.01")
    fake_anthropic.responder = answer
    make_prompt(reg)
    return reg


def read_output(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_1000_line_file_goes_as_one_batch_and_comes_back_in_input_order(
    job: Registry, fake_anthropic: FakeAnthropic, tmp_path: Path
) -> None:
    source = write_lines(tmp_path / "in.jsonl", [{"text": f"doc {i}"} for i in range(1000)])
    out = tmp_path / "out" / "results.jsonl"
    report = run_bulk(job, PROMPT, source, out)
    assert len(fake_anthropic.batches) == 1 and fake_anthropic.requests_to("/v1/messages") == []
    lines = read_output(out)
    assert len(lines) == 1000
    assert [line["line"] for line in lines] == list(range(1, 1001))
    assert [line["custom_id"] for line in lines] == [f"line-{i}" for i in range(1, 1001)]
    assert all(line["text"] == f"summary of doc {i}" for i, line in enumerate(lines))
    one = (40 * 1.5 + 10 * 7.5) / 1e6  # sonnet at batch prices ($1.5 / $7.5 per M)
    assert all(line["cost_usd"] == pytest.approx(one) for line in lines)
    assert lines[0]["usage"] == {
        "input_tokens": 40,
        "output_tokens": 10,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }
    assert lines[0]["error"] is None and lines[0]["status"] == "ok"
    assert (report.total, report.succeeded, report.failed) == (1000, 1000, 0)
    assert report.cost_usd == pytest.approx(1000 * one)
    with job.db.engine.connect() as conn:
        logged = conn.execute(
            sa.select(sa.func.count(), sa.func.sum(runs.c.cost_usd)).where(runs.c.source == "batch")
        ).one()
        stored = conn.execute(sa.select(batches)).one()
    assert logged[0] == 1000 and logged[1] == pytest.approx(1000 * one)
    assert stored.status == "done" and stored.reserved_usd == 0 and stored.spent_usd > 0
    with job.db.engine.connect() as conn:
        assert {line["run_id"] for line in lines} == set(
            conn.execute(sa.select(runs.c.id)).scalars()
        )


@pytest.mark.parametrize(
    ("lines", "line", "expected"),
    [
        ([{"text": "a"}, "{not json", {"text": "c"}], 2, "line 2: not JSON"),
        ([{"text": "a"}, [1, 2]], 2, "line 2: must be a JSON object"),
        ([{"text": "a"}, {"text": "b", "custom_id": "has space"}], 2, "custom_id 'has space'"),
        ([{"text": "a", "custom_id": "x"}, {"text": "b", "custom_id": "x"}], 2, "repeats line 1"),
        ([{"text": "a"}, {}, {"text": "c"}], 2, "line 2:"),
        ([{"text": "a"}, {"text": 7}], 2, "line 2:"),
        ([{"text": "a"}, {"text": "b", "extra": 1}], 2, "line 2:"),
    ],
)
def test_a_bad_line_is_named_and_nothing_is_sent(
    job: Registry,
    fake_anthropic: FakeAnthropic,
    tmp_path: Path,
    lines: list[Any],
    line: int,
    expected: str,
) -> None:
    source = write_lines(tmp_path / "in.jsonl", lines)
    with pytest.raises(InputFileError) as info:
        run_bulk(job, PROMPT, source, tmp_path / "out.jsonl")
    assert info.value.line == line and expected in info.value.message
    assert "nothing was sent" in info.value.message
    assert fake_anthropic.batches == [] and listing(job.db) == []
    assert not (tmp_path / "out.jsonl").exists()


def test_every_bad_line_is_listed(tmp_path: Path) -> None:
    source = write_lines(tmp_path / "in.jsonl", ["{", "[", "", '{"a": 1}', "x"] * 5)
    with pytest.raises(InputFileError) as info:
        read_input(source)
    assert info.value.line == 1 and "and 5 more" in info.value.message


def test_errored_expired_and_canceled_items_are_logged_runs_with_typed_errors(
    job: Registry, fake_anthropic: FakeAnthropic, tmp_path: Path
) -> None:
    fake_anthropic.enqueue(
        Reply.text("fine"),
        Reply.error(400, message="prompt is too long"),
        Reply.expired(),
        Reply.canceled(),
        endpoint="batch_items",
    )
    source = write_lines(
        tmp_path / "in.jsonl", [{"text": t, "custom_id": f"id-{t}"} for t in "abcd"]
    )
    report = run_bulk(job, PROMPT, source, tmp_path / "out.jsonl")
    lines = {line["custom_id"]: line for line in read_output(tmp_path / "out.jsonl")}
    assert lines["id-a"]["error"] is None and lines["id-a"]["text"] == "fine"
    assert lines["id-b"]["error"]["type"] == "batch_item_failed"
    assert "invalid_request_error: prompt is too long" in lines["id-b"]["error"]["message"]
    assert lines["id-c"]["error"]["type"] == "batch_expired"
    assert lines["id-d"]["error"]["type"] == "batch_canceled"
    assert (report.succeeded, report.failed) == (1, 3)
    with job.db.engine.connect() as conn:
        rows = conn.execute(sa.select(runs.c.status, runs.c.error_type)).all()
    assert sorted(r.error_type or "" for r in rows) == [
        "",
        "batch_canceled",
        "batch_expired",
        "invalid_request_error",
    ]
    assert all(lines[k]["run_id"] for k in lines)


def test_running_the_same_job_again_resumes_its_batch(
    job: Registry, fake_anthropic: FakeAnthropic, tmp_path: Path
) -> None:
    fake_anthropic.batch_polls = 10_000
    source = write_lines(tmp_path / "in.jsonl", [{"text": "a"}, {"text": "b"}])
    first = submit_bulk(job, PROMPT, source, tmp_path / "out.jsonl")
    assert first.status == "in_progress" and first.api_id
    again = submit_bulk(job, PROMPT, source, tmp_path / "out.jsonl")
    assert again.id == first.id and len(fake_anthropic.batches) == 1
    fake_anthropic.end_batch(first.api_id)
    report = run_bulk(job, PROMPT, source, tmp_path / "out.jsonl")
    assert report.batch is not None and report.batch.id == first.id
    assert len(fake_anthropic.batches) == 1 and report.succeeded == 2
    # resuming a finished job writes the output again and logs nothing twice
    (tmp_path / "out.jsonl").unlink()
    resumed = resume_bulk(job, first.api_id)
    assert resumed.succeeded == 2 and len(read_output(tmp_path / "out.jsonl")) == 2
    with job.db.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(runs)).scalar() == 2


def test_a_batch_reserves_its_worst_case_against_the_daily_budget(
    job: Registry, fake_anthropic: FakeAnthropic, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = write_lines(tmp_path / "in.jsonl", [{"text": "x" * 200}] * 10)
    # worst case per item: ~300 bytes at $1.5/M + 100 output tokens at $7.5/M ~= $0.0012
    monkeypatch.setenv("REGISTRY_DAILY_BUDGET_USD", "0.005")
    with pytest.raises(BudgetExceeded, match="nothing was sent"):
        run_bulk(job, PROMPT, source, tmp_path / "out.jsonl")
    assert fake_anthropic.batches == [] and listing(job.db) == []
    monkeypatch.setenv("REGISTRY_DAILY_BUDGET_USD", "1")
    fake_anthropic.batch_polls = 10_000
    batch = submit_bulk(job, PROMPT, source, tmp_path / "out.jsonl")
    assert 0.01 < batch.reserved_usd < 0.02
    runner = job.runner
    assert runner.budget.spent_today(refresh=True) == pytest.approx(batch.reserved_usd)
    fake_anthropic.end_batch(batch.api_id or "")
    report = run_bulk(job, PROMPT, source, tmp_path / "out.jsonl")
    assert runner.budget.spent_today(refresh=True) == pytest.approx(report.cost_usd)
    assert report.cost_usd < batch.reserved_usd


def test_cancel_then_resume_logs_canceled_items(
    job: Registry, fake_anthropic: FakeAnthropic, tmp_path: Path
) -> None:
    fake_anthropic.batch_polls = 10_000
    source = write_lines(tmp_path / "in.jsonl", [{"text": t} for t in "abc"])
    batch = submit_bulk(job, PROMPT, source, tmp_path / "out.jsonl")
    canceling = batches_of(job).cancel(batch.name)
    assert canceling.status == "canceling"
    report = resume_bulk(job, batch.name)
    assert report.failed == 3
    assert {line["error"]["type"] for line in read_output(tmp_path / "out.jsonl")} == {
        "batch_canceled"
    }


def cli(db_url: str, *args: str) -> Result:
    return CliRunner().invoke(main, ["--database", db_url, *args], env={"COLUMNS": "240"})


def test_the_batch_command(
    sqlite_url: str, fake_anthropic: FakeAnthropic, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REGISTRY_BATCH_POLL_SECONDS", "0.01")
    fake_anthropic.responder = answer
    with Registry(sqlite_url) as reg:
        make_prompt(reg)
    source = write_lines(tmp_path / "in.jsonl", [{"text": f"d{i}"} for i in range(5)])
    out = tmp_path / "out.jsonl"
    done = cli(sqlite_url, "batch", PROMPT, "--input", str(source), "--output", str(out))
    assert done.exit_code == 0, done.output
    assert "5 items: 5 ok, 0 failed" in done.stdout and len(read_output(out)) == 5
    assert "submitted batch msgbatch_" in done.stderr and "succeeded 5" in done.stderr
    listed = cli(sqlite_url, "batch", "--list")
    assert listed.exit_code == 0 and "done" in listed.stdout and PROMPT in listed.stdout
    as_json = json.loads(cli(sqlite_url, "batch", "--list", "--json").stdout)
    assert as_json[0]["status"] == "done" and as_json[0]["counts"]["succeeded"] == 5

    bad = write_lines(tmp_path / "bad.jsonl", [{"text": "a"}, "nope"])
    refused = cli(sqlite_url, "batch", PROMPT, "--input", str(bad), "--output", str(out))
    assert refused.exit_code == 1 and "line 2: not JSON" in refused.stderr
    assert len(fake_anthropic.batches) == 1

    sync_out = tmp_path / "sync.jsonl"
    synced = cli(
        sqlite_url, "batch", PROMPT, "--input", str(source), "--output", str(sync_out), "--sync"
    )
    assert synced.exit_code == 0, synced.output
    assert "(synchronous)" in synced.stdout
    assert len(fake_anthropic.requests_to("/v1/messages")) == 5
    sync_lines = read_output(sync_out)
    assert [line["text"] for line in sync_lines] == [f"summary of d{i}" for i in range(5)]
    standard = (40 * 3 + 10 * 15) / 1e6
    assert all(line["cost_usd"] == pytest.approx(standard) for line in sync_lines)
    with Registry(sqlite_url) as reg, reg.db.engine.connect() as conn:
        sources = conn.execute(sa.select(runs.c.source, sa.func.count()).group_by(runs.c.source))
        assert dict(sources.all()) == {"batch": 10}

    assert cli(sqlite_url, "batch").exit_code == 2
    assert cli(sqlite_url, "batch", PROMPT, "--input", str(source)).exit_code == 2
