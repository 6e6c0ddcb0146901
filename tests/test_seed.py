"""Seeding from templates_seed/: realistic prompts, idempotent, one version per change."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from registry import Registry, ValidationError
from tests.conftest import SEED_DIR


def test_seed_files_load_and_render(reg: Registry) -> None:
    results = reg.seed(SEED_DIR)
    assert len(results) >= 5 and all(created for _, _, created in results)
    metrics = reg.get("extract-metrics")
    assert metrics.output_schema is not None
    request = metrics.render(document="Q2 revenue reached $4.2M").to_request()
    assert "Q2 revenue reached $4.2M" in request["messages"][0]["content"]
    support = reg.get("support/support-answer").render(
        question="Where is my invoice?",
        documents=[
            {"title": "Invoices", "body": "Settings > Billing"},
            {"title": "Refunds", "body": "30 days"},
        ],
        tone="formal",
    )
    assert support.system and "formally" in support.system
    assert support.messages[0]["content"].count("<article") == 2
    classify = reg.get("support/classify-ticket")
    assert classify.settings["stop_sequences"] == ["\n"] and classify.settings["temperature"] == 0.0
    chat = reg.get("onboarding-chat").render(goal="notes", team_size=4)
    assert [m["role"] for m in chat.messages] == ["user", "assistant", "user", "assistant", "user"]


def test_seed_twice_creates_nothing(reg: Registry) -> None:
    reg.seed(SEED_DIR)
    before = {p.name: p.latest_version for p in reg.prompts()}
    events = sum(len(reg.label_history(p)) for p in before)
    results = reg.seed(SEED_DIR)
    assert not any(created for _, _, created in results)
    assert {p.name: p.latest_version for p in reg.prompts()} == before
    assert sum(len(reg.label_history(p)) for p in before) == events


def test_a_changed_file_creates_exactly_one_version(reg: Registry, tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    shutil.copytree(SEED_DIR, seeds)
    reg.seed(seeds)
    path = seeds / "summarize.yaml"
    data = yaml.safe_load(path.read_text())
    data["system"] += " Keep it neutral."
    path.write_text(yaml.safe_dump(data))
    results = {name: (version, created) for name, version, created in reg.seed(seeds)}
    assert results["summarize"] == (2, True)
    assert sum(created for _, created in results.values()) == 1
    assert reg.get("summarize", label="latest").version == 2


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (
            "name: x\nsettings: {model: m, max_tokens: 5}\nmessages: [{role: user, content: hi}]\nlabelz: [a]\n",
            "labelz",
        ),
        ("name: x\nmessages: [{role: user, content: hi}]\n", "settings"),
        ("- just a list\n", "must be a mapping"),
        ("name: [unclosed\n", "cannot read YAML"),
    ],
)
def test_bad_prompt_files_name_the_file_and_key(
    tmp_path: Path, sqlite_reg: Registry, content: str, match: str
) -> None:
    (tmp_path / "bad.yaml").write_text(content)
    with pytest.raises(ValidationError, match=match) as info:
        sqlite_reg.seed(tmp_path)
    assert "bad.yaml" in info.value.message
    assert sqlite_reg.prompts() == []
