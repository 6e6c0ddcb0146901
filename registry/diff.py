"""Readable differences between versions: templates line by line, settings and contract by key."""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .versions import PromptVersion


@dataclass(frozen=True)
class KeyChange:
    """A key added, removed or changed between two mappings."""

    key: str
    change: str  # "added" | "removed" | "changed"
    old: Any = None
    new: Any = None

    def __str__(self) -> str:
        if self.change == "added":
            return f"+ {self.key}: {_short(self.new)}"
        if self.change == "removed":
            return f"- {self.key}: {_short(self.old)}"
        return f"~ {self.key}: {_short(self.old)} -> {_short(self.new)}"


@dataclass(frozen=True)
class TemplateDiff:
    """Unified diff of one template (system or a message)."""

    where: str
    lines: list[str]


@dataclass(frozen=True)
class VersionDiff:
    """What changed from version ``old`` to version ``new`` of a prompt."""

    name: str
    old: int
    new: int
    templates: list[TemplateDiff] = field(default_factory=list)
    settings: list[KeyChange] = field(default_factory=list)
    variables: list[KeyChange] = field(default_factory=list)
    output_schema: list[KeyChange] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        """True when the two versions have the same content."""
        return not (self.templates or self.settings or self.variables or self.output_schema)

    def __str__(self) -> str:
        out = [f"{self.name}: v{self.old} -> v{self.new}"]
        if self.is_empty:
            out.append("(no differences)")
        for t in self.templates:
            out.append(f"## {t.where}")
            out.extend(t.lines)
        for title, changes in (
            ("settings", self.settings),
            ("variables", self.variables),
            ("output schema", self.output_schema),
        ):
            if changes:
                out.append(f"## {title}")
                out.extend(str(c) for c in changes)
        return "\n".join(out)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form of the diff."""

        def keys(changes: list[KeyChange]) -> list[dict[str, Any]]:
            return [{"key": c.key, "change": c.change, "old": c.old, "new": c.new} for c in changes]

        return {
            "name": self.name,
            "old": self.old,
            "new": self.new,
            "templates": [{"where": t.where, "diff": t.lines} for t in self.templates],
            "settings": keys(self.settings),
            "variables": keys(self.variables),
            "output_schema": keys(self.output_schema),
        }


def _short(value: Any) -> str:
    text = (
        json.dumps(value, ensure_ascii=False, sort_keys=True)
        if not isinstance(value, str)
        else repr(value)
    )
    return text if len(text) <= 200 else text[:197] + "..."


def diff_mappings(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> list[KeyChange]:
    """Keys added, removed or changed, sorted by key."""
    old, new = old or {}, new or {}
    changes = []
    for key in sorted(set(old) | set(new)):
        if key not in old:
            changes.append(KeyChange(key, "added", new=new[key]))
        elif key not in new:
            changes.append(KeyChange(key, "removed", old=old[key]))
        elif old[key] != new[key]:
            changes.append(KeyChange(key, "changed", old=old[key], new=new[key]))
    return changes


def _template_diff(where: str, old: str, new: str, a: int, b: int) -> TemplateDiff | None:
    if old == new:
        return None
    lines = list(
        difflib.unified_diff(
            old.splitlines(), new.splitlines(), fromfile=f"v{a}", tofile=f"v{b}", lineterm=""
        )
    )
    return TemplateDiff(where, lines)


def diff_versions(old: PromptVersion, new: PromptVersion) -> VersionDiff:
    """Compare two versions of one prompt."""
    templates: list[TemplateDiff] = []
    found = _template_diff("system", old.system or "", new.system or "", old.version, new.version)
    if found:
        templates.append(found)
    for i in range(max(len(old.messages), len(new.messages))):
        om = old.messages[i] if i < len(old.messages) else {"role": "", "content": ""}
        nm = new.messages[i] if i < len(new.messages) else {"role": "", "content": ""}
        role = nm["role"] or om["role"]
        where = f"message {i + 1} ({role})"
        if om["role"] != nm["role"] and om["role"] and nm["role"]:
            where = f"message {i + 1} (role {om['role']} -> {nm['role']})"
        found = _template_diff(where, om["content"], nm["content"], old.version, new.version)
        if found is None and om["role"] != nm["role"]:
            found = TemplateDiff(where, [f"role: {om['role'] or '-'} -> {nm['role'] or '-'}"])
        if found:
            templates.append(found)
    schema_old = {"schema": old.output_schema} if old.output_schema is not None else {}
    schema_new = {"schema": new.output_schema} if new.output_schema is not None else {}
    return VersionDiff(
        name=new.name,
        old=old.version,
        new=new.version,
        templates=templates,
        settings=diff_mappings(old.settings, new.settings),
        variables=diff_mappings(old.variables, new.variables),
        output_schema=diff_mappings(schema_old, schema_new),
    )
