"""The README's code runs as printed: the Python quickstart, top to bottom, and the testing
kit's example test (tests/test_example_app.py is that block, character for character)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from registry import NotFound, Registry
from registry.testing import FakeAnthropic
from tests.conftest import SEED_DIR

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def code_block(section: str, language: str = "python") -> str:
    """The first ``language`` code block after the heading ``section``."""
    after = README[README.index(section) :]
    found = re.search(rf"```{language}\n(.*?)```", after, re.S)
    assert found, f"no {language} block after {section!r}"
    return found.group(1)


def test_python_quickstart_runs_after_init(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REGISTRY_DATABASE_URL", f"sqlite:///{tmp_path / 'registry.db'}")
    seeded = Registry()
    seeded.seed(SEED_DIR)  # what `prompt-registry init` does on an empty registry
    seeded.close()
    with FakeAnthropic() as fake:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
        namespace: dict[str, object] = {}
        exec(compile(code_block("## Python quickstart"), "README.md", "exec"), namespace)
        (request,) = fake.requests_to("/v1/messages")
    assert request.json["system"] == "You are a friendly support agent for Acme."
    reg = namespace["reg"]
    assert isinstance(reg, Registry)
    assert reg.get("support/refund-answer").version == 1  # rolled back
    assert (tmp_path / "prompts.yaml").exists()
    with pytest.raises(NotFound, match="did you mean support/support-answer"):
        reg.get("support-answer")
    reg.close()


def test_the_testing_kit_example_is_tests_test_example_app() -> None:
    example = (Path(__file__).parent / "test_example_app.py").read_text()
    block = code_block("## Testing your app's prompts offline")
    assert example.endswith("\n\n" + block), "README and tests/test_example_app.py differ"
