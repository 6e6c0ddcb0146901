"""Export and import: a round trip reproduces every prompt, version and label."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registry import Registry, ValidationError
from tests.conftest import simple_version


def snapshot(reg: Registry) -> list[dict[str, Any]]:
    out = []
    for p in reg.prompts(include_archived=True):
        out.append(
            {
                "name": p.name,
                "description": p.description,
                "tags": p.tags,
                "labels": p.labels,
                "archived": p.archived,
                "versions": [
                    {k: v for k, v in ver.to_dict().items()} for ver in reg.versions(p.name)
                ],
            }
        )
    return out


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_round_trip_is_identical(seeded_reg: Registry, tmp_path: Path, suffix: str) -> None:
    reg = seeded_reg
    reg.create_version(
        "summarize", **simple_version(system="Shorter.", variables={"question": "string"})
    )
    reg.set_label("summarize", "staging", 2, actor="ana")
    reg.archive("onboarding-chat")
    path = tmp_path / f"export{suffix}"
    reg.export(path)
    with Registry(f"sqlite:///{tmp_path / 'copy.db'}") as copy:
        report = copy.import_(path)
        assert report["created"] == sum(
            len(reg.versions(p.name)) for p in reg.prompts(include_archived=True)
        )
        assert snapshot(copy) == snapshot(reg)
        again = copy.import_(path)  # importing twice changes nothing
        assert again["created"] == 0 and again["labels"] == 0
        assert snapshot(copy) == snapshot(reg)


def test_import_refuses_a_bad_file_and_writes_nothing(sqlite_reg: Registry, tmp_path: Path) -> None:
    bad = {
        "format": "prompt-registry/1",
        "prompts": [
            {
                "name": "good",
                "versions": [
                    {
                        "version": 1,
                        "messages": [{"role": "user", "content": "hi"}],
                        "settings": {"model": "claude-haiku-4-5", "max_tokens": 5},
                    }
                ],
            },
            {
                "name": "bad",
                "versions": [
                    {
                        "version": 1,
                        "messages": [{"role": "user", "content": "{{ x"}],
                        "settings": {"model": "claude-haiku-4-5", "max_tokens": 5},
                    }
                ],
            },
        ],
    }
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(ValidationError, match="bad v1"):
        sqlite_reg.import_(path)
    assert sqlite_reg.prompts() == []
    with pytest.raises(ValidationError, match="unknown key|Extra inputs"):
        sqlite_reg.import_({"format": "prompt-registry/1", "prompts": [], "extra": 1})
    with pytest.raises(ValidationError, match="unsupported export format"):
        sqlite_reg.import_({"format": "other/9", "prompts": []})


names = st.from_regex(r"[a-z][a-z0-9-]{0,10}(/[a-z][a-z0-9]{0,5})?", fullmatch=True)
texts = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=30).map(
    lambda t: t.replace("{", "(").replace("}", ")").replace("%", "pct").replace("#", "h")
)
prompt_specs = st.dictionaries(
    names,
    st.tuples(
        st.lists(texts, min_size=1, max_size=4, unique=True),
        st.sets(st.sampled_from(["production", "staging", "qa"])),
    ),
    min_size=1,
    max_size=4,
)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(spec=prompt_specs)
def test_export_then_import_reproduces_everything(
    spec: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> None:
    tmp = tmp_path_factory.mktemp("rt")
    with Registry(f"sqlite:///{tmp / 'a.db'}") as source:
        for name, (systems, labels) in spec.items():
            for i, system in enumerate(systems):
                source.create_version(
                    name, **simple_version(system=system or None, message=f"m{i}")
                )
            for j, label in enumerate(sorted(labels)):
                source.set_label(name, label, 1 + j % len(systems))
        doc = source.export(tmp / "e.yaml")
        with Registry(f"sqlite:///{tmp / 'b.db'}") as target:
            target.import_(tmp / "e.yaml")
            assert snapshot(target) == snapshot(source)
        assert len(doc["prompts"]) == len(spec)


def test_prompts_that_include_others_round_trip_and_seed_in_any_order(tmp_path: Path) -> None:
    settings = {"model": "claude-sonnet-4-6", "max_tokens": 10}
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    # "aa-agent" sorts before the snippet it includes
    (seeds / "aa-agent.yaml").write_text(
        "name: aa-agent\nlabels: [production]\nsettings: {model: claude-sonnet-4-6, max_tokens: 10}\n"
        "system: '{% include \"zz-snippet@production\" %} Answer.'\n"
        "messages: [{role: user, content: '{{ question }}'}]\n"
        "variables: {question: string, language: string}\n"
    )
    (seeds / "zz-snippet.yaml").write_text(
        "name: zz-snippet\nlabels: [production]\nsettings: {model: claude-sonnet-4-6, max_tokens: 10}\n"
        "system: 'Reply in {{ language }}.'\nmessages: [{role: user, content: x}]\n"
        "variables: {language: string}\n"
    )
    with Registry(f"sqlite:///{tmp_path / 'a.db'}") as source:
        source.seed(seeds)
        assert (
            source.get("aa-agent").render(question="q", language="Dutch").system
            == "Reply in Dutch. Answer."
        )
        source.create_version(
            "zz-snippet",
            system="Answer in {{ language }}.",
            messages=[{"role": "user", "content": "x"}],
            settings=settings,
            variables={"language": "string"},
        )
        source.export(tmp_path / "e.json")
        with Registry(f"sqlite:///{tmp_path / 'b.db'}") as target:
            target.import_(tmp_path / "e.json")
            assert snapshot(target) == snapshot(source)
            assert (
                target.get("aa-agent").render(question="q", language="Dutch").system
                == "Reply in Dutch. Answer."
            )


def test_import_refuses_a_label_on_a_missing_version(sqlite_reg: Registry) -> None:
    doc = {
        "format": "prompt-registry/1",
        "prompts": [
            {
                "name": "p",
                "labels": {"production": 3},
                "versions": [
                    {
                        "version": 1,
                        "messages": [{"role": "user", "content": "hi"}],
                        "settings": {"model": "claude-haiku-4-5", "max_tokens": 5},
                    }
                ],
            }
        ],
    }
    with pytest.raises(ValidationError, match="points at version 3"):
        sqlite_reg.import_(doc)
    assert sqlite_reg.prompts() == []
