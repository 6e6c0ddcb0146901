"""Test-case storage: validated at save, synced idempotently from YAML (seed, import), exported
in the same format, edited like the admin does; seeding the real templates_seed with the gate on."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
import yaml

from registry import ConflictError, NotFound, Registry, ValidationError
from registry.suites import (
    create_case,
    delete_case,
    export_cases,
    get_case,
    get_case_by_id,
    list_cases,
    sync_cases_from_file,
    update_case,
)
from registry.suites.cases import case_counts
from tests.conftest import SEED_DIR, simple_version

TESTS = [
    {
        "name": "q2-report",
        "variables": {"question": "Q2 revenue reached $4.2M"},
        "assert": [{"type": "is-json"}, {"type": "contains", "value": "4.2"}],
    },
    {
        "name": "short",
        "variables": {"question": "hi"},
        "assert": [{"type": "max-length", "value": 50}],
    },
]


@pytest.fixture
def prompt(reg: Registry) -> str:
    reg.create_version("p", **simple_version(labels=["staging"]))
    return "p"


def test_sync_creates_then_is_idempotent_then_updates(reg: Registry, prompt: str) -> None:
    assert sync_cases_from_file(reg, prompt, TESTS, author="seed") == {
        "created": 2,
        "updated": 0,
        "unchanged": 0,
    }
    first = list_cases(reg, prompt)
    assert [c.name for c in first] == ["q2-report", "short"]
    assert first[0].assertions == TESTS[0]["assert"] and first[0].created_by == "seed"
    assert sync_cases_from_file(reg, prompt, TESTS, author="seed")["unchanged"] == 2
    assert list_cases(reg, prompt) == first  # nothing rewritten, not even timestamps
    changed = [dict(TESTS[0], variables={"question": "Q3"}), TESTS[1]]
    assert sync_cases_from_file(reg, prompt, changed, author="bob")["updated"] == 1
    case = get_case(reg, prompt, "q2-report")
    assert case.variables == {"question": "Q3"} and case.updated_by == "bob"
    assert case.created_by == "seed" and len(list_cases(reg, prompt)) == 2


def test_cases_added_in_the_admin_survive_a_sync(reg: Registry, prompt: str) -> None:
    create_case(reg, prompt, "from-admin", variables={"question": "x"}, actor="ana")
    sync_cases_from_file(reg, prompt, TESTS, author="seed")
    assert {c.name for c in list_cases(reg, prompt)} == {"from-admin", "q2-report", "short"}


@pytest.mark.parametrize(
    ("tests", "expected_error"),
    [
        (
            [{"name": "a", "assert": [{"type": "contains"}]}],
            "test case 'a', assertion 1 (contains): value",
        ),
        (
            [{"name": "a", "assert": [{"type": "regexp", "value": "x"}]}],
            "unknown assertion type 'regexp'",
        ),
        ([{"name": "a"}, {"name": "a"}], "'a' appears twice"),
        ([{"name": "", "variables": {}}], "non-empty name"),
        ([{"variables": {}}], "name: Field required"),
        ([{"name": "a", "vars": {}}], "test case 'a': vars: unknown field"),
        ([{"name": "a", "variables": ["x"]}], "test case 'a': variables"),
        (["just a string"], "test case 2 must be a mapping"),
    ],
)
def test_sync_validates_everything_before_writing(
    sqlite_reg: Registry, tests: list[object], expected_error: str
) -> None:
    sqlite_reg.create_version("p", **simple_version())
    good = {"name": "good", "assert": [{"type": "is-json"}]}
    with pytest.raises(ValidationError) as info:
        sync_cases_from_file(sqlite_reg, "p", [good, *tests], author="seed")
    assert expected_error in info.value.message, info.value.message
    assert list_cases(sqlite_reg, "p") == []


def test_export_round_trips_through_sync(reg: Registry, prompt: str) -> None:
    sync_cases_from_file(reg, prompt, TESTS, author="seed")
    exported = export_cases(reg, prompt)
    assert exported == TESTS
    reg.create_version("q", **simple_version())
    assert sync_cases_from_file(reg, "q", exported, author="import")["created"] == 2
    assert export_cases(reg, "q") == exported


def test_create_update_delete_like_the_admin(reg: Registry, prompt: str) -> None:
    case = create_case(
        reg,
        prompt,
        "polite",
        variables={"question": "hello"},
        assertions=[{"type": "icontains", "value": "hello"}],
        actor="ana",
    )
    assert get_case_by_id(reg, case.id) == case and case.position == 0
    second = create_case(reg, prompt, "second", actor="ana")
    assert second.position == 1 and second.assertions == []
    with pytest.raises(ConflictError, match="already has a test case 'polite'"):
        create_case(reg, prompt, "polite", actor="ana")
    with pytest.raises(ValidationError, match="assertion 1 \\(max-length\\)"):
        update_case(reg, prompt, "polite", assertions=[{"type": "max-length", "value": -2}])
    renamed = update_case(reg, prompt, "polite", new_name="courteous", actor="bob")
    assert renamed.name == "courteous" and renamed.variables == {"question": "hello"}
    assert renamed.updated_by == "bob" and renamed.id == case.id
    with pytest.raises(ConflictError):
        update_case(reg, prompt, "courteous", new_name="second")
    delete_case(reg, prompt, "courteous", actor="bob")
    with pytest.raises(NotFound, match="no test case 'courteous'"):
        get_case(reg, prompt, "courteous")
    with pytest.raises(NotFound):
        delete_case(reg, prompt, "courteous")
    with pytest.raises(NotFound, match="prompt 'nope' does not exist"):
        list_cases(reg, "nope")


def test_seeding_the_real_templates_with_the_gate_on(
    reg: Registry, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Fresh seed: every prompt gets production (no cases yet when its labels are set) and its
    cases. Re-seed: nothing. A changed file: a new version on staging; production waits for
    the new version's suite (with a warning that names the command to run)."""
    seeds = tmp_path / "seeds"
    shutil.copytree(SEED_DIR, seeds)
    results = reg.seed(seeds)
    assert len(results) >= 5 and all(created for *_, created in results)
    counts = case_counts(reg)
    for name, *_ in results:
        assert counts.get(name, 0) >= 1, f"{name} has no test cases after seeding"
        assert reg.prompt(name).labels["production"] == 1
    events = sum(len(reg.label_history(n)) for n, *_ in results)
    assert not any(created for *_, created in reg.seed(seeds))
    assert sum(len(reg.label_history(n)) for n, *_ in results) == events

    path = seeds / "summarize.yaml"
    data = yaml.safe_load(path.read_text())
    data["system"] += " Keep it neutral."
    data["tests"][0]["assert"].append({"type": "not-contains", "value": "I think"})
    path.write_text(yaml.safe_dump(data))
    with caplog.at_level(logging.WARNING, logger="registry.prompt_files"):
        again = {name: (version, created) for name, version, created in reg.seed(seeds)}
    assert again["summarize"] == (2, True)
    assert reg.prompt("summarize").labels == {"production": 1, "staging": 2}
    assert (
        "summarize.yaml" in caplog.text
        and "prompt-registry test summarize --version 2" in caplog.text
    )
    assert {"type": "not-contains", "value": "I think"} in list_cases(reg, "summarize")[
        0
    ].assertions


def test_export_and_import_carry_the_cases(seeded_reg: Registry, tmp_path: Path) -> None:
    path = tmp_path / "export.yaml"
    seeded_reg.export(path)
    doc = yaml.safe_load(path.read_text())
    by_name = {p["name"]: p for p in doc["prompts"]}
    original = yaml.safe_load((SEED_DIR / "extract-metrics.yaml").read_text())["tests"]
    assert by_name["extract-metrics"]["tests"] == original
    with Registry(f"sqlite:///{tmp_path / 'copy.db'}") as copy:
        copy.import_(path)
        for name in by_name:
            assert export_cases(copy, name) == export_cases(seeded_reg, name)
        copy.import_(path)  # twice: still the same cases
        assert case_counts(copy) == case_counts(seeded_reg)
