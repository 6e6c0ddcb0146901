"""YAML prompt files (``templates_seed/*.yaml``) and ``seed``: one file, one prompt."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pydantic
import yaml
from pydantic import BaseModel, ConfigDict, Field

from .errors import SuiteGateError, ValidationError
from .model_settings import describe_pydantic_error
from .versions import case_samples, validate_content

if TYPE_CHECKING:
    from .service import RegistryService

logger = logging.getLogger(__name__)


class PromptFile(BaseModel):
    """The YAML prompt file format. Unknown keys are errors, not silent defaults."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    labels: list[str] = Field(default_factory=list)
    settings: dict[str, Any]
    system: str | None = None
    messages: list[dict[str, Any]]
    variables: dict[str, Any] = Field(default_factory=dict)
    output_schema: dict[str, Any] | None = None
    message: str | None = Field(default=None, description="commit message of the version")
    tests: list[dict[str, Any]] = Field(default_factory=list)


def load_prompt_file(path: Path) -> PromptFile:
    """Parse and validate one YAML prompt file; errors name the file."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ValidationError(f"{path}: cannot read YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ValidationError(
            f"{path}: a prompt file must be a mapping with name, settings, messages"
        )
    try:
        return PromptFile.model_validate(data)
    except pydantic.ValidationError as exc:
        raise ValidationError(f"{path}: {describe_pydantic_error(exc)}") from None


def prompt_files(directory: Path) -> list[Path]:
    """The ``*.yaml`` / ``*.yml`` files of a directory, sorted."""
    if not directory.is_dir():
        raise ValidationError(f"{directory} is not a directory")
    return sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def save_prompt_file(
    reg: RegistryService, pf: PromptFile, *, author: str, source: str
) -> tuple[int, bool]:
    """Create a version from a prompt file (nothing if unchanged); returns (version, created)."""
    try:
        before = reg.prompt(pf.name).latest_version
    except LookupError:
        before = 0
    labels = list(pf.labels)
    content = validate_content(
        system=pf.system,
        messages=pf.messages,
        settings=pf.settings,
        variables=pf.variables,
        output_schema=pf.output_schema,
    )
    reg.check_render(pf.name, content, pending_cases=case_samples(pf.tests))
    while True:
        try:
            version = reg.create_version(
                pf.name,
                system=pf.system,
                messages=pf.messages,
                settings=pf.settings,
                variables=pf.variables,
                output_schema=pf.output_schema,
                message=pf.message or f"seeded from {source}",
                author=author,
                labels=labels,
                description=pf.description,
                tags=pf.tags,
            )
            break
        except SuiteGateError as exc:
            # a protected label waits until the new version's suite passed: it stays put
            if exc.details.get("label") not in labels:
                raise
            labels.remove(exc.details["label"])
            logger.warning("%s: %s; it stays where it is", source, exc.message)
    _sync_tests(reg, pf, author=author)
    return version.version, before != version.version


def _sync_tests(reg: RegistryService, pf: PromptFile, *, author: str) -> None:
    """Hand the file's ``tests:`` to the regression-suite module."""
    from .suites import sync_cases_from_file

    sync_cases_from_file(reg, pf.name, pf.tests, author=author)


def seed_directory(
    reg: RegistryService, directory: Path, *, author: str = "seed"
) -> list[tuple[str, int, bool]]:
    """Load every prompt file of ``directory``. Idempotent: unchanged files create nothing.

    Files are saved so that a prompt comes after the prompts it includes.
    """
    files = [(path, load_prompt_file(path)) for path in prompt_files(directory)]
    return [
        (pf.name, *save_prompt_file(reg, pf, author=author, source=path.name))
        for path, pf in _includes_first(files)
    ]


def _includes_first(files: list[tuple[Path, PromptFile]]) -> list[tuple[Path, PromptFile]]:
    """Order prompt files so that included prompts are saved before their includers."""
    from .rendering import analyze

    by_name = {pf.name: (path, pf) for path, pf in files}
    needs: dict[str, set[str]] = {}
    for path, pf in files:
        sources = [pf.system or ""] + [str(m.get("content", "")) for m in pf.messages]
        refs = {ref.name for src in sources for ref in analyze(src, str(path)).includes}
        needs[pf.name] = {name for name in refs if name in by_name and name != pf.name}
    ordered: list[tuple[Path, PromptFile]] = []
    placed: set[str] = set()

    def place(name: str, seen: tuple[str, ...]) -> None:
        if name in placed or name in seen:  # a cycle is reported when the file is saved
            return
        for dep in sorted(needs[name]):
            place(dep, (*seen, name))
        placed.add(name)
        ordered.append(by_name[name])

    for _path, pf in files:
        place(pf.name, ())
    return ordered
