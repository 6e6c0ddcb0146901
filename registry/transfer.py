"""Export every prompt (all versions, labels) to YAML or JSON, and import it back.

A round trip into an empty registry reproduces every prompt, version number, content, commit
message, author, creation time and label. Importing into a registry that already has some of
the versions skips those whose number and content match and appends the rest.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pydantic
import yaml
from pydantic import BaseModel, ConfigDict, Field

from .errors import ValidationError
from .labels import MoveRequest, move_labels
from .model_settings import describe_pydantic_error
from .versions import VersionContent, case_samples, validate_content

if TYPE_CHECKING:
    from .service import RegistryService

FORMAT = "prompt-registry/1"


class ExportedVersion(BaseModel):
    """One version in an export file."""

    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1)
    system: str | None = None
    messages: list[dict[str, Any]]
    settings: dict[str, Any]
    variables: dict[str, Any] = Field(default_factory=dict)
    output_schema: dict[str, Any] | None = None
    message: str = ""
    author: str = ""
    created_at: datetime | None = None


class ExportedPrompt(BaseModel):
    """One prompt in an export file."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    archived: bool = False
    labels: dict[str, int] = Field(default_factory=dict)
    versions: list[ExportedVersion]
    tests: list[dict[str, Any]] = Field(default_factory=list)


class ExportDocument(BaseModel):
    """The whole export file."""

    model_config = ConfigDict(extra="forbid")

    format: str = FORMAT
    exported_at: datetime | None = None
    prompts: list[ExportedPrompt]


def export_registry(
    reg: RegistryService, path: str | Path | None = None, *, names: Iterable[str] | None = None
) -> dict[str, Any]:
    """Build the export document; write it to ``path`` (``.json`` or YAML) when given."""
    wanted = set(names) if names is not None else None
    prompts = []
    for p in reg.prompts(include_archived=True):
        if wanted is not None and p.name not in wanted:
            continue
        prompts.append(
            {
                "name": p.name,
                "description": p.description,
                "tags": p.tags,
                "archived": p.archived,
                "labels": p.labels,
                "versions": [
                    {
                        "version": v.version,
                        "system": v.system,
                        "messages": v.messages,
                        "settings": v.settings,
                        "variables": v.variables,
                        "output_schema": v.output_schema,
                        "message": v.message,
                        "author": v.author,
                        "created_at": v.created_at.isoformat(),
                    }
                    for v in reg.versions(p.name)
                ],
                "tests": _export_tests(reg, p.name),
            }
        )
    if wanted is not None:
        missing = wanted - {p["name"] for p in prompts}
        if missing:
            raise ValidationError("no such prompt(s) to export: " + ", ".join(sorted(missing)))
    doc = {"format": FORMAT, "exported_at": datetime.now(UTC).isoformat(), "prompts": prompts}
    if path is not None:
        path = Path(path)
        if path.suffix == ".json":
            text = json.dumps(doc, indent=2, ensure_ascii=False)
        else:
            text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100)
        path.write_text(text, encoding="utf-8")
    return doc


def _export_tests(reg: RegistryService, name: str) -> list[dict[str, Any]]:
    from .suites import export_cases

    return export_cases(reg, name)


def read_document(source: str | Path | Mapping[str, Any]) -> ExportDocument:
    """Parse and validate an export document from a file or a mapping."""
    if isinstance(source, Mapping):
        data: Any = dict(source)
    else:
        path = Path(source)
        try:
            text = path.read_text(encoding="utf-8")
            data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
            raise ValidationError(f"{path}: cannot read the export: {exc}") from None
    if not isinstance(data, dict):
        raise ValidationError("an export must be a mapping with a 'prompts' list")
    try:
        doc = ExportDocument.model_validate(data)
    except pydantic.ValidationError as exc:
        raise ValidationError("invalid export: " + describe_pydantic_error(exc)) from None
    if doc.format != FORMAT:
        raise ValidationError(f"unsupported export format {doc.format!r}; expected {FORMAT!r}")
    return doc


def import_registry(
    reg: RegistryService, source: str | Path | Mapping[str, Any], *, actor: str = "import"
) -> dict[str, Any]:
    """Import an export. Returns ``{"created": n, "skipped": n, "labels": n, "prompts": [...]}``.

    Every version is validated before anything is written, so a bad file writes nothing.
    """
    doc = read_document(source)
    contents: dict[tuple[str, int], VersionContent] = {}
    for p in doc.prompts:
        for v in p.versions:
            try:
                contents[(p.name, v.version)] = validate_content(
                    system=v.system,
                    messages=v.messages,
                    settings=v.settings,
                    variables=v.variables,
                    output_schema=v.output_schema,
                )
            except ValidationError as exc:
                raise ValidationError(f"{p.name} v{v.version}: {exc.message}") from None
            reg.check_render(
                p.name, contents[(p.name, v.version)], pending_cases=case_samples(p.tests)
            )
        numbers = {v.version for v in p.versions}
        for lbl, n in p.labels.items():
            if n not in numbers:
                raise ValidationError(
                    f"{p.name}: label {lbl!r} points at version {n}, which the file does not hold"
                )
    created = skipped = labels = 0
    mappings: dict[str, dict[int, int]] = {}
    # 1. every version of every prompt (includes are resolved once all labels exist)
    for p in doc.prompts:
        existing: dict[int, str] = {}
        try:
            existing = {v.version: v.content_hash for v in reg.versions(p.name)}
            if reg.prompt(p.name).archived:
                reg.unarchive(p.name, actor=actor)  # archived again below if the export says so
        except LookupError:
            pass
        mapping: dict[int, int] = {}
        for v in sorted(p.versions, key=lambda x: x.version):
            content = contents[(p.name, v.version)]
            if existing.get(v.version) == content.content_hash():
                mapping[v.version] = v.version
                skipped += 1
                continue
            saved = reg.create_version(
                p.name,
                system=v.system,
                messages=v.messages,
                settings=v.settings,
                variables=v.variables,
                output_schema=v.output_schema,
                message=v.message,
                author=v.author,
                created_at=v.created_at,
                check_includes=False,
            )
            mapping[v.version] = saved.version
            created += 1
        reg.update_prompt(p.name, description=p.description, tags=p.tags)
        mappings[p.name] = mapping
    # 2. labels, then archive state and test cases
    for p in doc.prompts:
        mapping = mappings[p.name]
        moves = [MoveRequest(p.name, lbl, mapping[n]) for lbl, n in p.labels.items()]
        if moves:
            with reg.db.transaction() as s:
                labels += len(move_labels(s, moves, actor=actor, reason="import", kind="import"))
            reg.invalidate(p.name)
        if p.archived:
            reg.archive(p.name, actor=actor)
        if p.tests:
            _import_tests(reg, p.name, p.tests, actor)
    return {
        "created": created,
        "skipped": skipped,
        "labels": labels,
        "prompts": [p.name for p in doc.prompts],
    }


def _import_tests(reg: RegistryService, name: str, tests: list[dict[str, Any]], actor: str) -> None:
    from .suites import sync_cases_from_file

    sync_cases_from_file(reg, name, tests, author=actor)
