"""``manage.py test``: tables on stdout, progress on stderr that degrades when not a terminal,
JUnit XML, exit status, ``--against``, ``--all``, ``--history``; init + seed + test --all."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from rich.console import Console

from registry import Registry
from registry.cli import main
from registry.cli.suites import progress_reporter
from registry.suites import create_case, run_suite, suite_runs, sync_cases_from_file
from registry.testing import FakeAnthropic, Reply
from tests.conftest import SEED_DIR
from tests.test_suites import CASES, capitals_responder, make_prompt

ROOT = Path(__file__).resolve().parent.parent
ANSI = "\x1b["


@pytest.fixture
def db(sqlite_url: str, fake_anthropic: FakeAnthropic) -> str:
    """A SQLite registry with ``capitals``: v1 good (production, staging), v2 bad; 4 cases."""
    fake_anthropic.responder = capitals_responder
    with Registry(sqlite_url) as reg:
        make_prompt(reg, labels=["production", "staging"])
        sync_cases_from_file(reg, "capitals", CASES, author="ana")
        make_prompt(reg, system="BAD", labels=[])
    return sqlite_url


def invoke(db: str, *args: str) -> Result:
    # a wide table whatever COLUMNS the calling shell exports, so assertions see whole cells
    return CliRunner().invoke(
        main, ["--database", db, *args], catch_exceptions=False, env={"COLUMNS": "240"}
    )


def test_a_passing_suite_prints_a_table_and_exits_0(db: str, tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    result = invoke(db, "test", "capitals", "--version", "1", "--junit", str(junit), "-k", "2")
    assert result.exit_code == 0, result.output
    assert "capitals v1: 4 passed (suite run #1)" in result.stdout
    assert "France" in result.stdout and "passed" in result.stdout
    # not a terminal: one plain progress line per case on stderr, no escape codes anywhere
    assert "capitals v1: 4 case(s), suite run #1" in result.stderr
    assert sorted(line.split("]")[0] for line in result.stderr.splitlines() if "[" in line) == [
        "  [1/4",
        "  [2/4",
        "  [3/4",
        "  [4/4",
    ]
    assert ANSI not in result.stdout and ANSI not in result.stderr
    root = ET.parse(junit).getroot()
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("4", "0", "0")
    [suite] = root.findall("testsuite")
    assert suite.get("name") == "capitals v1" and len(suite.findall("testcase")) == 4
    assert [c.get("name") for c in suite.iter("testcase")] == ["France", "Japan", "Italy", "Spain"]
    assert suite.find("testcase/system-out").text == "The capital is Paris."  # type: ignore[union-attr]


def test_a_failing_suite_exits_1_with_failures_in_table_and_junit(
    db: str, tmp_path: Path, fake_anthropic: FakeAnthropic
) -> None:
    with Registry(db) as reg:
        create_case(
            reg,
            "capitals",
            "control\x01chars",
            variables={"country": "Spain"},
            assertions=[{"type": "icontains", "value": "madrid"}],
            actor="ana",
        )
    fake_anthropic.enqueue(Reply.error(400, "invalid_request_error", "bad <request> & more"))
    junit = tmp_path / "junit.xml"
    result = invoke(
        db,
        "test",
        "capitals",
        "--version",
        "2",
        "--junit",
        str(junit),
        "-k",
        "1",
        "--timeout",
        "30",
    )
    assert result.exit_code == 1
    assert 'contains "Tokyo": expected to contain "Tokyo"' in " ".join(result.stdout.split())
    assert "0 passed, 4 failed, 1 errored" in result.stdout
    root = ET.parse(junit).getroot()
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("5", "4", "1")
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert "bad <request> & more" in cases["France"].find("error").get("message", "")  # type: ignore[union-attr]
    failure = cases["Japan"].find("failure")
    assert failure is not None and failure.get("message") == 'contains "Tokyo"'
    assert "I am not sure" in (failure.text or "")
    assert "control\ufffdchars" in cases


def test_json_output_and_history(db: str) -> None:
    result = invoke(db, "test", "capitals", "--label", "staging", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["status"] == "passed" and data["label"] == "staging" and len(data["results"]) == 4
    invoke(db, "test", "capitals", "--version", "2")
    history = invoke(db, "test", "capitals", "--history")
    assert history.exit_code == 0
    assert "#2" in history.stdout and "failed" in history.stdout and "0/4" in history.stdout
    runs = json.loads(
        invoke(db, "test", "capitals", "--history", "--json", "--version", "1").stdout
    )
    assert [r["id"] for r in runs] == [1]


def test_compare_shows_both_outputs_changes_and_deltas(db: str) -> None:
    result = invoke(db, "test", "capitals", "--version", "2", "--against", "1")
    assert result.exit_code == 1  # the new version fails
    out = " ".join(result.stdout.split())
    assert "v2 (suite run #2) against v1 (suite run #1)" in out
    assert "The capital is Paris." in out and "I am not sure, sorry." in out
    assert 'contains "Paris": pass->fail' in out and "passed -> failed" in out
    assert "4 regression(s), 0 fix(es)" in out and "latency" in out
    data = json.loads(
        invoke(db, "test", "capitals", "--version", "1", "--against", "2", "--json").stdout
    )
    assert data["fixes"] == ["France", "Japan", "Italy", "Spain"] and data["regressions"] == []
    assert data["cases"][0]["changes"] == [
        {"assertion": 'contains "Paris"', "change": "fail->pass"}
    ]


def test_all_runs_staging_suites_and_says_what_it_skips(db: str) -> None:
    with Registry(db) as reg:
        make_prompt(reg, "no-cases", labels=["staging"])
        make_prompt(reg, "no-staging", labels=["production"])
        sync_cases_from_file(reg, "no-staging", CASES[:1])
    result = invoke(db, "test", "--all")
    assert result.exit_code == 0, result.output
    assert "skip no-cases: no test cases" in result.stderr
    assert "skip no-staging: no staging label" in result.stderr
    assert "1 suite(s) run, 1 passed, 0 failed" in result.stdout
    with Registry(db) as reg:
        reg.set_label("capitals", "staging", 2, actor="bob")
    failing = invoke(db, "test", "--all")
    assert failing.exit_code == 1 and "0 passed, 1 failed: capitals v2" in failing.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["test"], "give a prompt NAME, or --all"),
        (["test", "capitals", "--all"], "--all runs every prompt"),
        (["test", "capitals", "--version", "1", "--label", "staging"], "not both"),
        (["test", "capitals", "-k", "0"], "0 is not in the range"),
        (["test", "capitals", "--timeout", "0"], "--timeout"),
    ],
)
def test_usage_errors(db: str, args: list[str], message: str) -> None:
    result = invoke(db, *args)
    assert result.exit_code == 2 and message in result.output


def test_registry_errors_are_one_line(db: str) -> None:
    result = invoke(db, "test", "capitals", "--version", "9")
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: prompt 'capitals' has no version 9 (its newest is 2)"


def test_an_unwritable_junit_path_is_one_line_after_the_run_is_stored(
    db: str, tmp_path: Path
) -> None:
    target = tmp_path / "missing-dir" / "junit.xml"
    result = invoke(db, "test", "capitals", "--version", "1", "--junit", str(target))
    assert result.exit_code == 1
    last = result.stderr.strip().splitlines()[-1]  # progress lines come first on stderr
    assert last.startswith("error: cannot write the JUnit XML file")
    assert "Traceback" not in result.stderr and not target.exists()
    assert "France" in result.stdout  # the results were printed before the write failed
    with Registry(db) as reg:
        assert suite_runs(reg, "capitals")[0].status == "passed"


def test_progress_bar_on_a_terminal(db: str) -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=100, color_system="standard")
    with Registry(db) as reg, progress_reporter(console, "capitals") as (on_start, on_case):
        run = run_suite(reg, "capitals", version=2, on_start=on_start, progress=on_case)
    assert not run.ok
    screen = buffer.getvalue()
    assert ANSI in screen  # a live display was drawn...
    assert "capitals v2" in screen and "4/4" in screen and "4 failed" in screen


def test_through_a_real_pipe(db: str, fake_anthropic: FakeAnthropic) -> None:
    env = {**os.environ, "ANTHROPIC_API_KEY": "sk-test", "ANTHROPIC_BASE_URL": fake_anthropic.url}
    env.pop("FORCE_COLOR", None)
    done = subprocess.run(
        [sys.executable, "manage.py", "--database", db, "test", "capitals", "--version", "2"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert "[4/4]" in done.stderr and ANSI not in done.stderr and ANSI not in done.stdout
    assert "0 passed, 4 failed" in done.stdout


def seed_responder(body: dict[str, Any]) -> Reply | None:
    """Answers that satisfy the seed prompts' own tests."""
    system = str(body.get("system", ""))
    if "Classify the ticket" in system:
        return Reply.text("billing", stop_reason="stop_sequence")
    if "data analyst" in system:
        return Reply.text('{"revenue": "$4.2M", "growth": "23%"}')
    return None  # echo


def test_init_then_test_all_on_a_fresh_database(
    tmp_path: Path, fake_anthropic: FakeAnthropic
) -> None:
    """The seeds have tests and production labels: init still works with the gate on, and every
    seeded prompt's suite passes at staging."""
    fake_anthropic.responder = seed_responder
    db = f"sqlite:///{tmp_path / 'fresh.db'}"
    init = CliRunner().invoke(main, ["--database", db, "init", "--seed-dir", str(SEED_DIR)])
    assert init.exit_code == 0, init.output
    result = invoke(db, "test", "--all", "-k", "4")
    assert result.exit_code == 0, result.output
    assert "5 suite(s) run, 5 passed, 0 failed" in result.stdout


def test_the_label_command_is_gated_and_overrides_need_a_reason(db: str) -> None:
    refused = invoke(db, "label", "capitals", "production", "2", "--actor", "bob")
    assert refused.exit_code == 1
    assert refused.stderr.strip() == (
        "error: cannot move 'production' of 'capitals' to v2: its regression suite has never run "
        "on v2; run `prompt-registry test capitals --version 2`; an admin may override with a reason"
    )
    no_reason = invoke(db, "label", "capitals", "production", "2", "--override")
    assert no_reason.exit_code == 1 and "needs a reason" in no_reason.stderr
    done = invoke(
        db,
        "label",
        "capitals",
        "production",
        "2",
        "--override",
        "--reason",
        "known flake",
        "--actor",
        "root",
    )
    assert done.exit_code == 0, done.output
    with Registry(db) as reg:
        last = reg.label_history("capitals", "production")[-1]
    assert (last.kind, last.reason, last.actor) == ("override", "known flake", "root")
    assert invoke(db, "label", "capitals", "staging", "2").exit_code == 0  # never gated
