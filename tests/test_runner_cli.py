"""``manage.py run`` and ``manage.py costs`` against the fake Anthropic server."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from registry import Registry
from registry.cli import main
from registry.cli.run import parse_since
from registry.testing import FakeAnthropic, Reply
from tests.conftest import simple_version


@pytest.fixture
def db(sqlite_url: str) -> str:
    """A database with prompt ``qa``."""
    with Registry(sqlite_url) as reg:
        reg.create_version("qa", **simple_version(labels=["production"]))
    return sqlite_url


def invoke(db: str, *args: str) -> click.testing.Result:
    return CliRunner().invoke(main, ["--database", db, *args])


def test_run_prints_the_answer_and_a_summary_on_stderr(
    db: str, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.enqueue(Reply.text("Billing > Invoices.", input_tokens=100, output_tokens=10))
    result = invoke(db, "run", "qa", "--var", "question=Where is my invoice?")
    assert result.exit_code == 0, result.output
    assert result.stdout == "Billing > Invoices.\n"
    assert "100 in / 10 out tokens" in result.stderr
    assert "$0.000450" in result.stderr and "run " in result.stderr and " ms" in result.stderr
    assert fake_anthropic.last_request is not None
    assert fake_anthropic.last_request.json["messages"][0]["content"] == "Where is my invoice?"


def test_run_streams_with_vars_file(db: str, fake_anthropic: FakeAnthropic, tmp_path: Path) -> None:
    fake_anthropic.enqueue(Reply.text("one two three", chunks=3))
    vars_file = tmp_path / "vars.json"
    vars_file.write_text(json.dumps({"question": "count"}))
    result = invoke(db, "run", "qa", "--vars-file", str(vars_file), "--stream")
    assert result.exit_code == 0, result.output
    assert result.stdout == "one two three\n"
    assert "first token" in result.stderr
    assert fake_anthropic.last_request is not None and fake_anthropic.last_request.stream


def test_run_json_and_cache_flag(db: str, fake_anthropic: FakeAnthropic) -> None:
    first = invoke(db, "run", "qa", "--var", "question=x", "--cache", "--json")
    second = invoke(db, "run", "qa", "--var", "question=x", "--cache", "--json")
    assert first.exit_code == second.exit_code == 0
    a, b = json.loads(first.stdout), json.loads(second.stdout)
    assert (a["cached"], b["cached"]) == (False, True)
    assert a["source"] == "cli" and len(fake_anthropic.requests) == 1


def test_run_errors_are_one_line_with_the_run_id(db: str, fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.default = Reply.error(529)
    result = invoke(db, "run", "qa", "--var", "question=x", "--max-retries", "0")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and "(run " in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_run_without_api_key_fails_clearly(db: str) -> None:
    result = invoke(db, "run", "qa", "--var", "question=x")
    assert result.exit_code == 1
    assert "ANTHROPIC_API_KEY is not set" in result.stderr


def test_costs_groups_runs(db: str, fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.default = Reply.text("ok", input_tokens=1000, output_tokens=100)
    for q in ("a", "b"):
        assert invoke(db, "run", "qa", "--var", f"question={q}").exit_code == 0
    table = invoke(db, "costs", "--by", "model")
    assert table.exit_code == 0, table.output
    assert "claude-sonnet-4-6" in table.stdout and "0.0090" in table.stdout
    as_json = json.loads(invoke(db, "costs", "--by", "prompt", "--since", "1d", "--json").stdout)
    assert as_json == [
        {
            "key": "qa",
            "runs": 2,
            "errors": 0,
            "cached": 0,
            "input_tokens": 2000,
            "output_tokens": 200,
            "cost_usd": 0.009,
            "unpriced": 0,
        }
    ]
    future = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    assert json.loads(invoke(db, "costs", "--since", future, "--json").stdout) == []
    assert invoke(db, "costs", "--since", "yesterday-ish").exit_code == 2


def test_since_accepts_relative_and_iso_times() -> None:
    now = datetime.now(UTC)
    assert abs((now - parse_since("7d")).total_seconds() - 7 * 86400) < 60  # type: ignore[operator]
    assert parse_since("today") == now.replace(hour=0, minute=0, second=0, microsecond=0)
    assert parse_since("2026-01-31") == datetime(2026, 1, 31, tzinfo=UTC)
    assert parse_since(None) is None


@pytest.mark.parametrize("command", ["run", "costs"])
def test_commands_have_help(command: str) -> None:
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0 and len(result.stdout) > 200
