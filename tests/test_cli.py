"""The command line: every command has help and is documented; errors are one clear line."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from registry.cli import main
from tests.conftest import SEED_DIR

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def walk(
    group: click.Group, prefix: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], click.Command]]:
    found = []
    for name, command in sorted(group.commands.items()):
        path = (*prefix, name)
        found.append((path, command))
        if isinstance(command, click.Group):
            found.extend(walk(command, path))
    return found


COMMANDS = walk(main)


@pytest.mark.parametrize("path", [p for p, _ in COMMANDS], ids=" ".join)
def test_every_command_has_help_and_is_documented(path: tuple[str, ...]) -> None:
    command = dict(COMMANDS)[path]
    assert command.help, f"{' '.join(path)} has no help text"
    for param in command.params:
        if isinstance(param, click.Option):
            assert param.help, f"option {param.name} of {' '.join(path)} has no help"
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert f"`{path[0]}" in README, f"`{path[0]}` is not documented in README.md"
    # a subcommand is named on a README line that also names its group
    words = [set(re.findall(r"[\w-]+", line)) for line in README.splitlines()]
    assert any(set(path) <= line for line in words), f"`{' '.join(path)}` is not in README.md"


@pytest.fixture
def cli(tmp_path: Path) -> tuple[CliRunner, list[str]]:
    return CliRunner(), ["--database", f"sqlite:///{tmp_path / 'cli.db'}"]


def test_init_seed_list_show_render_label_history_diff(
    cli: tuple[CliRunner, list[str]], tmp_path: Path
) -> None:
    runner, db = cli
    result = runner.invoke(main, [*db, "init", "--seed-dir", str(SEED_DIR)])
    assert result.exit_code == 0, result.output
    assert "seeded 5 prompts" in result.output and "users create" in result.output
    assert (
        runner.invoke(main, [*db, "seed", str(SEED_DIR)])
        .output.strip()
        .endswith("0 new version(s) from 5 file(s)")
    )
    listing = json.loads(runner.invoke(main, [*db, "prompts", "list", "--json"]).output)
    assert {p["name"] for p in listing} >= {"extract-metrics", "summarize"}
    shown = json.loads(runner.invoke(main, [*db, "prompts", "show", "summarize", "--json"]).output)
    assert shown["version"] == 1 and "production" in shown["labels"]
    out = runner.invoke(
        main, [*db, "render", "summarize", "--var", "text=Hello there", "--var", "bullets=2"]
    )
    assert out.exit_code == 0 and "Summarise the text below in 2 bullet points" in out.output
    req = json.loads(
        runner.invoke(main, [*db, "render", "summarize", "--var", "text=x", "--request"]).output
    )
    assert req["extra_body"] == {"temperature": 0.4}
    data = tmp_path / "vars.json"
    data.write_text(json.dumps({"text": "From a file"}))
    assert (
        "From a file"
        in runner.invoke(main, [*db, "render", "summarize", "--vars-file", str(data)]).output
    )
    # a new version, a label move with compare-and-set, history, diff
    export = tmp_path / "all.yaml"
    assert runner.invoke(main, [*db, "export", str(export)]).exit_code == 0
    assert (
        runner.invoke(main, [*db, "label", "summarize", "staging", "1", "--expect", "1"]).exit_code
        == 0
    )
    history = runner.invoke(main, [*db, "prompts", "history", "summarize", "--labels"])
    assert "production" in history.output
    assert (
        runner.invoke(main, [*db, "prompts", "diff", "summarize", "1", "1"])
        .output.strip()
        .endswith("(no differences)")
    )
    imported = runner.invoke(
        main, ["--database", f"sqlite:///{tmp_path / 'other.db'}", "import", str(export)]
    )
    assert imported.exit_code == 0 and "5 prompt(s)" in imported.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["prompts", "show", "nope"], "error: prompt 'nope' does not exist"),
        (["render", "summarize"], "error: missing required variable 'text'"),
        (
            ["render", "summarize", "--var", "text=x", "--var", "extra=1"],
            "error: unknown variable 'extra'",
        ),
        (
            ["render", "summarize", "--label", "staging", "--version", "1"],
            "error: give a label or a version, not both",
        ),
        (["label", "summarize", "production", "9"], "error: prompt 'summarize' has no version 9"),
        (
            ["label", "summarize", "production", "1", "--expect", "3"],
            "error: label 'production' of 'summarize' is at version 1",
        ),
        (["label", "summarize", "latest", "1"], "error: 'latest' is computed"),
        (["prompts", "diff", "summarize", "1", "5"], "error: prompt 'summarize' has no version 5"),
    ],
)
def test_errors_are_one_line_and_nonzero(
    cli: tuple[CliRunner, list[str]], args: list[str], message: str
) -> None:
    runner, db = cli
    runner.invoke(main, [*db, "seed", str(SEED_DIR)])
    result = runner.invoke(main, [*db, *args])
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(message), result.output
    assert "Traceback" not in result.output


def test_bad_var_syntax_is_a_usage_error(cli: tuple[CliRunner, list[str]]) -> None:
    runner, db = cli
    result = runner.invoke(main, [*db, "render", "summarize", "--var", "novalue"])
    assert result.exit_code == 2 and re.search(r"not KEY=VALUE", result.output)


def test_usage_errors_are_one_line_that_names_the_help(cli: tuple[CliRunner, list[str]]) -> None:
    runner, db = cli
    for args, message in [
        (["render"], "error: Missing argument 'NAME'. (see `main render --help`)"),
        (["prompts", "lst"], "error: No such command 'lst'. Did you mean 'list'?"),
    ]:
        result = runner.invoke(main, [*db, *args])
        assert result.exit_code == 2
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith(message), result.output


def test_a_missing_prompt_suggests_the_nearest_names(cli: tuple[CliRunner, list[str]]) -> None:
    runner, db = cli
    runner.invoke(main, [*db, "seed", str(SEED_DIR)])
    result = runner.invoke(main, [*db, "prompts", "show", "support-answer"])
    assert result.exit_code == 1
    assert result.output.strip() == (
        "error: prompt 'support-answer' does not exist; did you mean support/support-answer?"
    )
    typo = runner.invoke(main, [*db, "render", "summarise", "--var", "text=x"])
    assert "did you mean summarize?" in typo.output
    nothing = runner.invoke(main, [*db, "prompts", "history", "zzz"])
    assert "`prompt-registry prompts list` shows the prompts" in nothing.output


def test_an_unreachable_database_is_one_line_naming_the_setting() -> None:
    result = CliRunner().invoke(
        main, ["--database", "postgresql+psycopg://nobody@127.0.0.1:1/x", "prompts", "list"]
    )
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "error: the database postgresql+psycopg://nobody@127.0.0.1:1/x is unavailable ("
    )
    assert lines[0].endswith("retry in a few seconds (--database or REGISTRY_DATABASE_URL)")


def test_piped_tables_are_tab_separated_and_never_cut(cli: tuple[CliRunner, list[str]]) -> None:
    runner, db = cli
    runner.invoke(main, [*db, "seed", str(SEED_DIR)])
    # CliRunner's stdout is not a terminal, like a pipe
    lines = runner.invoke(main, [*db, "prompts", "list"]).output.splitlines()
    assert lines[0] == "name\tlatest\tlabels\ttags\tdescription"
    rows = {line.split("\t")[0]: line.split("\t") for line in lines[1:]}
    assert set(rows) == {
        "extract-metrics",
        "onboarding-chat",
        "summarize",
        "support/classify-ticket",
        "support/support-answer",
    }
    answer = rows["support/support-answer"]
    assert answer[1:4] == ["v1", "production=v1, staging=v1", "rag, support"]
    assert answer[4] == "Answer a customer question from the help-centre articles retrieved for it"
    assert all("…" not in line for line in lines)

    history = runner.invoke(main, [*db, "prompts", "history", "support/support-answer"])
    head, row = history.output.splitlines()
    assert head.split("\t") == ["version", "when", "author", "labels", "message"]
    assert row.split("\t")[0] == "v1" and row.split("\t")[3] == "production, staging"


def test_tsv_values_with_tabs_and_newlines_stay_on_one_line(
    cli: tuple[CliRunner, list[str]],
) -> None:
    from registry import Registry

    runner, db = cli
    reg = Registry(db[1])
    reg.create_version(
        "multi",
        system="x",
        messages=[{"role": "user", "content": "hi"}],
        settings={"model": "claude-sonnet-4-6", "max_tokens": 10},
        message="first line\nsecond\tcolumn \\ end",
        author="ana",
    )
    reg.close()
    lines = runner.invoke(main, [*db, "prompts", "history", "multi"]).output.splitlines()
    assert len(lines) == 2
    assert lines[1].split("\t")[4] == "first line\\nsecond\\tcolumn \\\\ end"


#: commands that list or report something: each takes --json
LISTINGS = [
    ("prompts", "list"),
    ("prompts", "show"),
    ("prompts", "history"),
    ("prompts", "diff"),
    ("seed",),
    ("import",),
    ("costs",),
    ("prices",),
    ("run",),
    ("test",),
    ("users", "list"),
    ("apikeys", "list"),
    ("apikeys", "create"),
    ("experiments", "list"),
    ("experiments", "report"),
    ("experiments", "create"),
    ("db", "current"),
]


@pytest.mark.parametrize("path", LISTINGS, ids=" ".join)
def test_listings_and_reports_take_json(path: tuple[str, ...]) -> None:
    command = dict(COMMANDS)[path]
    assert any("--json" in p.opts for p in command.params), f"{' '.join(path)} has no --json"


def test_prompts_history_json(cli: tuple[CliRunner, list[str]]) -> None:
    runner, db = cli
    runner.invoke(main, [*db, "seed", str(SEED_DIR)])
    runner.invoke(main, [*db, "label", "summarize", "canary", "1", "--reason", "try"])
    versions = json.loads(
        runner.invoke(main, [*db, "prompts", "history", "summarize", "--json"]).output
    )
    assert [v["version"] for v in versions] == [1]
    assert versions[0]["labels"] == ["canary", "production", "staging"]
    assert versions[0]["created_at"].startswith("20") and len(versions[0]["content_hash"]) == 64
    moves = json.loads(
        runner.invoke(main, [*db, "prompts", "history", "summarize", "--labels", "--json"]).output
    )
    canary = [m for m in moves if m["label"] == "canary"]
    assert canary and canary[0]["to_version"] == 1 and canary[0]["reason"] == "try"
    assert "T" in canary[0]["created_at"]  # ISO 8601


def test_db_current_json(cli: tuple[CliRunner, list[str]]) -> None:
    from registry.db import SCHEMA_REVISION

    runner, db = cli
    runner.invoke(main, [*db, "init", "--no-seed"])
    report = json.loads(runner.invoke(main, [*db, "db", "current", "--json"]).output)
    assert report == {"database": SCHEMA_REVISION, "code": SCHEMA_REVISION, "current": True}


def test_dotenv_fills_in_what_the_environment_lacks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("REGISTRY_DATABASE_URL")
    monkeypatch.setenv("REGISTRY_PROTECTED_LABELS", "production")
    monkeypatch.setenv("REGISTRY_TEST_DOTENV", "")  # so the value .env sets is undone after
    monkeypatch.delenv("REGISTRY_TEST_DOTENV")
    (tmp_path / ".env").write_text(
        "# kept out of git\n"
        f"REGISTRY_DATABASE_URL=sqlite:///{tmp_path / 'from-dotenv.db'}\n"
        "REGISTRY_PROTECTED_LABELS=from-dotenv\n"
        "REGISTRY_TEST_DOTENV=loaded\n"
    )
    result = CliRunner().invoke(main, ["init", "--no-seed"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "from-dotenv.db").exists()
    assert os.environ["REGISTRY_TEST_DOTENV"] == "loaded"
    assert os.environ["REGISTRY_PROTECTED_LABELS"] == "production"  # never overridden


def test_dotenv_never_overrides_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REGISTRY_DATABASE_URL", f"sqlite:///{tmp_path / 'from-env.db'}")
    (tmp_path / ".env").write_text(f"REGISTRY_DATABASE_URL=sqlite:///{tmp_path / 'dotenv.db'}\n")
    assert CliRunner().invoke(main, ["init", "--no-seed"]).exit_code == 0
    assert (tmp_path / "from-env.db").exists() and not (tmp_path / "dotenv.db").exists()


def test_users_create_without_a_terminal_names_the_password_variable(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'u.db'}"
    done = subprocess.run(
        [sys.executable, "-m", "registry", "--database", database, "users", "create", "bot"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [
        "error: no password: set REGISTRY_USER_PASSWORD when there is no terminal to type it in "
        "(see `python -m registry users create --help`)"
    ]


def test_apikeys_scope_choices_are_the_services() -> None:
    from registry.api_keys import SCOPES
    from registry.cli import apikeys

    assert apikeys.SCOPES == SCOPES
