"""The command line: every command has help and is documented; errors are one clear line."""

from __future__ import annotations

import json
import re
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
