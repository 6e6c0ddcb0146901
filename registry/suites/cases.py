"""Test cases per prompt: stored, validated at save, synced from YAML ``tests:`` and exported.

A case has a name (unique per prompt), the variables to render the prompt with and a list of
assertions (see :mod:`registry.suites.assertions`). The YAML shape, used by prompt files,
exports and :func:`export_cases`, is::

    tests:
      - name: q2-report
        variables: {document: "Q2 revenue reached $4.2M"}
        assert:
          - {type: is-json}
          - {type: contains, value: "4.2"}
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pydantic
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from ..errors import ConflictError, NotFound, ValidationError
from ..labels import lock_prompt
from ..models import PromptRow, utcnow
from ..models.suites import SuiteCaseRow
from ..names import check_prompt_name
from .assertions import normalize_assertions

if TYPE_CHECKING:
    from ..service import RegistryService

MAX_CASE_NAME = 200

#: a validated case: (name, variables, canonical assertions)
CaseFields = tuple[str, dict[str, Any], list[dict[str, Any]]]


@dataclass(frozen=True)
class Case:
    """One stored test case of a prompt."""

    id: int
    prompt: str
    name: str
    position: int
    variables: dict[str, Any]
    assertions: list[dict[str, Any]]
    created_by: str
    created_at: datetime
    updated_by: str
    updated_at: datetime

    def to_dict(self) -> dict[str, Any]:
        """The YAML ``tests:`` item of this case: ``{name, variables, assert}``."""
        return {"name": self.name, "variables": self.variables, "assert": self.assertions}


class CaseSpec(BaseModel):
    """A test case as written in YAML; unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str
    variables: dict[str, Any] = Field(default_factory=dict)
    assertions: list[Any] = Field(default_factory=list, alias="assert")


def check_case_name(name: object) -> str:
    """Return ``name`` stripped if it is a usable case name, else raise ``ValidationError``."""
    if not isinstance(name, str) or not name.strip():
        raise ValidationError("a test case needs a non-empty name", field="name")
    name = name.strip()
    if len(name) > MAX_CASE_NAME:
        raise ValidationError(
            f"test case name is {len(name)} characters; the limit is {MAX_CASE_NAME}", field="name"
        )
    if any(ch in name for ch in "\r\n\t"):
        raise ValidationError(f"test case name {name!r} must be on one line", field="name")
    return name


def validate_case(name: object, variables: object, assertions: object) -> CaseFields:
    """Check a case's fields; returns (name, variables, canonical assertions).

    Errors name the case and, for assertions, which one and why.
    """
    case_name = check_case_name(name)
    if variables is None:
        variables = {}
    if not isinstance(variables, Mapping):
        raise ValidationError(
            f"test case {case_name!r}: variables must be a mapping of name -> value",
            field="variables",
        )
    bad = [k for k in variables if not isinstance(k, str)]
    if bad:
        raise ValidationError(
            f"test case {case_name!r}: variable names must be strings, got {bad[0]!r}",
            field="variables",
        )
    try:
        json.dumps(dict(variables))
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            f"test case {case_name!r}: variables must be JSON values ({exc})", field="variables"
        ) from None
    return case_name, dict(variables), normalize_assertions(assertions, case=case_name)


def parse_case_specs(tests: Sequence[Any]) -> list[CaseFields]:
    """Validate a YAML ``tests:`` list; duplicate names and bad assertions are errors."""
    if not isinstance(tests, Sequence) or isinstance(tests, str | bytes):
        raise ValidationError("'tests' must be a list of test cases", field="tests")
    out = []
    seen: set[str] = set()
    for i, item in enumerate(tests):
        if not isinstance(item, Mapping):
            raise ValidationError(
                f"test case {i + 1} must be a mapping with name, variables and assert",
                field="tests",
            )
        label = item.get("name") if isinstance(item.get("name"), str) else f"#{i + 1}"
        try:
            spec = CaseSpec.model_validate(dict(item))
        except pydantic.ValidationError as exc:
            details = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'case'}: "
                + ("unknown field" if e["type"] == "extra_forbidden" else e["msg"])
                for e in exc.errors()
            )
            raise ValidationError(f"test case {label!r}: {details}", field="tests") from None
        case = validate_case(spec.name, spec.variables, spec.assertions)
        if case[0] in seen:
            raise ValidationError(
                f"test case names must be unique per prompt: {case[0]!r} appears twice",
                field="tests",
            )
        seen.add(case[0])
        out.append(case)
    return out


def _to_case(row: SuiteCaseRow, prompt: str) -> Case:
    return Case(
        id=row.id,
        prompt=prompt,
        name=row.name,
        position=row.position,
        variables=dict(row.variables or {}),
        assertions=list(row.assertions or []),
        created_by=row.created_by,
        created_at=row.created_at,
        updated_by=row.updated_by,
        updated_at=row.updated_at,
    )


def prompt_id_of(session: Session, name: str) -> int:
    """The id of prompt ``name`` (``NotFound`` if it does not exist)."""
    check_prompt_name(name)
    found = session.scalar(sa.select(PromptRow.id).where(PromptRow.name == name))
    if found is None:
        raise NotFound(f"prompt {name!r} does not exist", prompt=name)
    return int(found)


def _case_rows(session: Session, prompt_id: int) -> list[SuiteCaseRow]:
    return list(
        session.scalars(
            sa.select(SuiteCaseRow)
            .where(SuiteCaseRow.prompt_id == prompt_id)
            .order_by(SuiteCaseRow.position, SuiteCaseRow.id)
        )
    )


def list_cases(reg: RegistryService, name: str) -> list[Case]:
    """The test cases of a prompt in suite order (``NotFound`` if the prompt does not exist)."""
    with reg.db.snapshot() as s:
        prompt_id = prompt_id_of(s, name)
        return [_to_case(r, name) for r in _case_rows(s, prompt_id)]


def case_variables(reg: RegistryService, name: str) -> list[tuple[str, Mapping[str, Any]]]:
    """``(case, variables)`` of a prompt's test cases in suite order ([] for a new prompt)."""
    query = (
        sa.select(SuiteCaseRow.name, SuiteCaseRow.variables)
        .join(PromptRow, PromptRow.id == SuiteCaseRow.prompt_id)
        .where(PromptRow.name == name)
        .order_by(SuiteCaseRow.position, SuiteCaseRow.id)
    )
    with reg.db.snapshot() as s:
        return [(row[0], row[1] or {}) for row in s.execute(query)]


def count_cases(session: Session, prompt_id: int) -> int:
    """How many test cases a prompt has (inside the caller's session)."""
    return int(
        session.scalar(
            sa.select(sa.func.count())
            .select_from(SuiteCaseRow)
            .where(SuiteCaseRow.prompt_id == prompt_id)
        )
        or 0
    )


def case_counts(reg: RegistryService) -> dict[str, int]:
    """Number of test cases per prompt name (prompts without cases are absent)."""
    with reg.db.snapshot() as s:
        rows = s.execute(
            sa.select(PromptRow.name, sa.func.count(SuiteCaseRow.id))
            .join(SuiteCaseRow, SuiteCaseRow.prompt_id == PromptRow.id)
            .group_by(PromptRow.name)
        ).all()
    return {name: int(n) for name, n in rows}


def get_case(reg: RegistryService, name: str, case_name: str) -> Case:
    """One test case of a prompt by name."""
    with reg.db.snapshot() as s:
        prompt_id = prompt_id_of(s, name)
        row = s.scalars(
            sa.select(SuiteCaseRow).where(
                SuiteCaseRow.prompt_id == prompt_id, SuiteCaseRow.name == case_name
            )
        ).one_or_none()
        if row is None:
            raise NotFound(f"prompt {name!r} has no test case {case_name!r}", prompt=name)
        return _to_case(row, name)


def get_case_by_id(reg: RegistryService, case_id: int) -> Case:
    """One test case by its id."""
    with reg.db.snapshot() as s:
        found = s.execute(
            sa.select(SuiteCaseRow, PromptRow.name)
            .join(PromptRow, PromptRow.id == SuiteCaseRow.prompt_id)
            .where(SuiteCaseRow.id == case_id)
        ).one_or_none()
        if found is None:
            raise NotFound(f"there is no test case with id {case_id}")
        return _to_case(found[0], found[1])


def cases_fingerprint(cases: Iterable[Case | tuple[str, Mapping[str, Any], Sequence[Any]]]) -> str:
    """sha256 of the cases' names, variables and assertions (order-independent).

    A suite run stores it; the gate compares it with the current cases to notice edits.
    """
    items = []
    for c in cases:
        if isinstance(c, Case):
            items.append([c.name, c.variables, c.assertions])
        else:
            items.append([c[0], dict(c[1]), list(c[2])])
    items.sort(key=lambda x: str(x[0]))
    blob = json.dumps(items, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def current_fingerprint(session: Session, prompt_id: int) -> str:
    """The fingerprint of a prompt's stored cases (inside the caller's session)."""
    rows = session.execute(
        sa.select(SuiteCaseRow.name, SuiteCaseRow.variables, SuiteCaseRow.assertions).where(
            SuiteCaseRow.prompt_id == prompt_id
        )
    ).all()
    return cases_fingerprint((r[0], r[1] or {}, r[2] or []) for r in rows)


def create_case(
    reg: RegistryService,
    name: str,
    case_name: str,
    *,
    variables: Mapping[str, Any] | None = None,
    assertions: Sequence[Mapping[str, Any]] = (),
    actor: str = "",
) -> Case:
    """Add a test case to a prompt; ``ConflictError`` if the prompt already has one so named."""
    case_name, values, checks = validate_case(case_name, variables, list(assertions))
    with reg.db.transaction() as s:
        prompt = lock_prompt(s, name)
        rows = _case_rows(s, prompt.id)
        if any(r.name == case_name for r in rows):
            raise ConflictError(
                f"prompt {name!r} already has a test case {case_name!r}: "
                "edit it or pick another name"
            )
        now = utcnow()
        row = SuiteCaseRow(
            prompt_id=prompt.id,
            name=case_name,
            position=max((r.position for r in rows), default=-1) + 1,
            variables=values,
            assertions=checks,
            created_by=actor,
            created_at=now,
            updated_by=actor,
            updated_at=now,
        )
        s.add(row)
        s.flush()
        return _to_case(row, name)


def update_case(
    reg: RegistryService,
    name: str,
    case_name: str,
    *,
    new_name: str | None = None,
    variables: Mapping[str, Any] | None = None,
    assertions: Sequence[Mapping[str, Any]] | None = None,
    actor: str = "",
) -> Case:
    """Change a test case (its name, variables and/or assertions); omitted fields are kept."""
    with reg.db.transaction() as s:
        prompt = lock_prompt(s, name)
        rows = _case_rows(s, prompt.id)
        row = next((r for r in rows if r.name == case_name), None)
        if row is None:
            raise NotFound(f"prompt {name!r} has no test case {case_name!r}", prompt=name)
        final_name, values, checks = validate_case(
            new_name if new_name is not None else row.name,
            variables if variables is not None else row.variables,
            list(assertions) if assertions is not None else row.assertions,
        )
        if final_name != row.name and any(r.name == final_name for r in rows):
            raise ConflictError(f"prompt {name!r} already has a test case {final_name!r}")
        if (final_name, values, checks) != (row.name, row.variables, row.assertions):
            row.name, row.variables, row.assertions = final_name, values, checks
            row.updated_by = actor
            row.updated_at = utcnow()
        s.flush()
        return _to_case(row, name)


def delete_case(reg: RegistryService, name: str, case_name: str, *, actor: str = "") -> None:
    """Remove a test case from a prompt (its past results stay in the suite-run history)."""
    with reg.db.transaction() as s:
        prompt = lock_prompt(s, name)
        deleted = s.execute(
            sa.delete(SuiteCaseRow).where(
                SuiteCaseRow.prompt_id == prompt.id, SuiteCaseRow.name == case_name
            )
        )
        if not deleted.rowcount:  # type: ignore[attr-defined]
            raise NotFound(f"prompt {name!r} has no test case {case_name!r}", prompt=name)


def sync_cases_from_file(
    reg: RegistryService, prompt_name: str, tests: Sequence[Any], *, author: str = ""
) -> dict[str, int]:
    """Create or update a prompt's cases from a YAML ``tests:`` list (seed and import).

    Idempotent: a case identical to the stored one is left alone, a changed one is updated
    (the file wins), a new one is added. Cases that exist only in the database (added in the
    admin) are kept. Everything is validated before anything is written.
    Returns ``{"created": n, "updated": n, "unchanged": n}``.
    """
    specs = parse_case_specs(tests)
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    if not specs:
        return counts
    with reg.db.transaction() as s:
        prompt = lock_prompt(s, prompt_name)
        existing = {r.name: r for r in _case_rows(s, prompt.id)}
        now = utcnow()
        for position, (case_name, values, checks) in enumerate(specs):
            row = existing.get(case_name)
            if row is None:
                s.add(
                    SuiteCaseRow(
                        prompt_id=prompt.id,
                        name=case_name,
                        position=position,
                        variables=values,
                        assertions=checks,
                        created_by=author,
                        created_at=now,
                        updated_by=author,
                        updated_at=now,
                    )
                )
                counts["created"] += 1
            elif (row.variables, row.assertions, row.position) != (values, checks, position):
                row.variables, row.assertions, row.position = values, checks, position
                row.updated_by, row.updated_at = author, now
                counts["updated"] += 1
            else:
                counts["unchanged"] += 1
    return counts


def export_cases(reg: RegistryService, name: str) -> list[dict[str, Any]]:
    """A prompt's cases in the YAML ``tests:`` format (what :func:`sync_cases_from_file` reads)."""
    return [c.to_dict() for c in list_cases(reg, name)]


__all__ = [
    "Case",
    "CaseSpec",
    "case_counts",
    "case_variables",
    "cases_fingerprint",
    "check_case_name",
    "count_cases",
    "create_case",
    "current_fingerprint",
    "delete_case",
    "export_cases",
    "get_case",
    "get_case_by_id",
    "list_cases",
    "prompt_id_of",
    "sync_cases_from_file",
    "update_case",
    "validate_case",
]
