"""Prompt and label names: the nearest existing names suggested for a missing prompt."""

from __future__ import annotations

import pytest

from registry import NotFound, Registry
from registry.names import closest_names, prompt_not_found
from tests.conftest import simple_version

KNOWN = ["support/support-answer", "support/classify-ticket", "summarize", "extract-metrics"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("support-answer", ["support/support-answer"]),  # the folder was left out
        ("summarise", ["summarize"]),  # a spelling
        ("support/classify-tickets", ["support/classify-ticket"]),
        ("team/extract-metrics", ["extract-metrics"]),  # a wrong folder
        ("SUMMARIZE", ["summarize"]),
        ("completely-different", []),
        ("summarize", []),  # the name itself is never suggested
    ],
)
def test_closest_names(name: str, expected: list[str]) -> None:
    assert closest_names(name, KNOWN) == expected


def test_closest_names_are_at_most_three() -> None:
    known = [f"team{i}/answer" for i in range(10)]
    assert len(closest_names("answer", known)) == 3


def test_not_found_message_lists_suggestions() -> None:
    one = prompt_not_found("support-answer", KNOWN)
    assert one.message == (
        "prompt 'support-answer' does not exist; did you mean support/support-answer?"
    )
    several = prompt_not_found("answer", ["a/answer", "b/answer"])
    assert several.message.endswith("did you mean a/answer or b/answer?")
    none = prompt_not_found("zzz", KNOWN)
    assert "`prompt-registry prompts list`" in none.message
    assert isinstance(one, LookupError)


def test_registry_suggests_on_get_prompt_and_label_moves(reg: Registry) -> None:
    reg.create_version("support/support-answer", **simple_version())
    for call in (
        lambda: reg.get("support-answer"),
        lambda: reg.prompt("support-answer"),
        lambda: reg.versions("support-answer"),
        lambda: reg.set_label("support-answer", "staging", 1, actor="ana"),
    ):
        with pytest.raises(NotFound, match="did you mean support/support-answer\\?"):
            call()
