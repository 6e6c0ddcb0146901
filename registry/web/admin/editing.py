"""The version editor: form fields <-> version content, inline errors, preview helpers.

Pure functions of the submitted form and the registry: the views in :mod:`.versions` only
route requests here and render the results.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from ...contract import placeholder_values
from ...errors import (
    RegistryError,
    RenderError,
    RenderLimitExceeded,
    SecurityError,
    ValidationError,
)
from ...registry import Registry
from ...rendering import (
    CompiledPrompt,
    IncludeRef,
    Rendered,
    analyze,
    include_source,
    make_environment,
)
from ...suites import list_cases
from ...text import has_lone_surrogate
from ...versions import SAVE_RENDER_TIMEOUT_MS, PromptVersion

#: form areas an error can be shown next to
AREAS = ("name", "system", "messages", "settings", "variables", "output_schema", "message", "tags")

_MESSAGE_FIELD = re.compile(r"^messages?\[?\s*(\d+)")
_MESSAGE_WHERE = re.compile(r"^message (\d+)")


@dataclass
class EditorForm:
    """What the edit form shows and what it submitted."""

    name: str = ""
    system: str = ""
    messages: list[dict[str, str]] = field(
        default_factory=lambda: [{"role": "user", "content": ""}]
    )
    settings: str = ""
    variables: str = ""
    output_schema: str = ""
    message: str = ""
    description: str = ""
    tags: str = ""
    base_version: int = 0
    confirm_stale: bool = False
    #: area -> error messages; ``"form"`` for errors without a field; ``messages.N`` per message
    errors: dict[str, list[str]] = field(default_factory=dict)

    def error(self, area: str, message: str) -> None:
        """Attach an error to a form area."""
        self.errors.setdefault(area, []).append(message)

    @property
    def has_errors(self) -> bool:
        """True when any area has an error."""
        return bool(self.errors)


def dump_yaml(value: Any) -> str:
    """Readable YAML of a mapping ("" for None or empty)."""
    if value is None or value == {}:
        return ""
    text: str = yaml.safe_dump(value, sort_keys=False, allow_unicode=True, default_flow_style=False)
    return text


def compact_contract(contract: Mapping[str, Mapping[str, Any]] | None) -> dict[str, dict[str, Any]]:
    """The contract without keys at their default value (easier to read and edit)."""
    out: dict[str, dict[str, Any]] = {}
    for name, spec in (contract or {}).items():
        out[name] = {
            key: value
            for key, value in spec.items()
            if not (
                (key == "default" and value is None)
                or (key == "sensitive" and value is False)
                or (key == "description" and value in ("", None))
            )
        }
    return out


def form_from_version(
    v: PromptVersion, *, description: str = "", tags: list[str] | None = None
) -> EditorForm:
    """A form prefilled from an existing version (saving creates the next version)."""
    return EditorForm(
        name=v.name,
        system=v.system or "",
        messages=[dict(m) for m in v.messages] or [{"role": "user", "content": ""}],
        settings=dump_yaml(v.settings),
        variables=dump_yaml(compact_contract(v.variables)),
        output_schema=dump_yaml(v.output_schema) if v.output_schema is not None else "",
        message="",
        description=description,
        tags=", ".join(tags or []),
        base_version=v.version,
    )


def blank_form() -> EditorForm:
    """The form of a brand-new prompt."""
    return EditorForm(
        settings="model: claude-sonnet-4-6\nmax_tokens: 1024\n",
        variables="question:\n  type: string\n  required: true\n",
        messages=[{"role": "user", "content": "{{ question }}"}],
    )


def form_from_request(data: Mapping[str, str]) -> EditorForm:
    """Read the submitted editor form (``messages-N-role``/``messages-N-content`` repeat)."""
    indexes = sorted(
        {int(m.group(1)) for key in data if (m := re.match(r"^messages-(\d+)-content$", key))}
    )
    messages = []
    for i in indexes[:200]:
        content = data.get(f"messages-{i}-content", "")
        role = data.get(f"messages-{i}-role", "user")
        if data.get(f"messages-{i}-delete") or (not content.strip() and len(indexes) > 1):
            continue
        messages.append({"role": role, "content": _newlines(content)})
    try:
        base = int(data.get("base_version", "0") or 0)
    except ValueError:
        base = 0
    return EditorForm(
        name=(data.get("name") or "").strip(),
        system=_newlines(data.get("system", "")),
        messages=messages or [{"role": "user", "content": ""}],
        settings=_newlines(data.get("settings", "")),
        variables=_newlines(data.get("variables", "")),
        output_schema=_newlines(data.get("output_schema", "")),
        message=_newlines(data.get("message", "")).strip(),
        description=_newlines(data.get("description", "")).strip(),
        tags=data.get("tags", ""),
        base_version=max(base, 0),
        confirm_stale=data.get("confirm_stale") == "1",
    )


def _newlines(text: str) -> str:
    """Browsers send textareas with CRLF: store LF."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


#: shown when an escape such as ``\\ud800`` decodes to half of a UTF-16 pair
SURROGATE_MESSAGE = (
    "a lone UTF-16 surrogate escape (such as \\ud800) is not a character: "
    "write the character itself or a complete surrogate pair"
)


def parse_structured(text: str, area: str, form: EditorForm, *, kind: str = "mapping") -> Any:
    """Parse a YAML (or JSON, which is YAML) textarea; errors name the line. ``None`` if empty."""
    if not text.strip():
        return None
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        form.error(area, f"not valid YAML or JSON{where}: {problem}")
        return None
    if has_lone_surrogate(value):
        form.error(area, SURROGATE_MESSAGE)
        return None
    if kind == "mapping" and value is not None and not isinstance(value, dict):
        form.error(area, f"must be a mapping (key: value lines), not a {type(value).__name__}")
        return None
    return value


def parse_tags(text: str) -> list[str]:
    """``"a, b  c"`` -> ``["a", "b", "c"]``."""
    return [t for t in re.split(r"[,\s]+", text or "") if t]


def content_kwargs(form: EditorForm) -> dict[str, Any] | None:
    """``create_version`` keyword arguments from the form, or None (errors are on the form)."""
    settings = parse_structured(form.settings, "settings", form)
    variables = parse_structured(form.variables, "variables", form)
    schema = parse_structured(form.output_schema, "output_schema", form)
    if form.has_errors:
        return None
    return {
        "system": form.system if form.system.strip() else None,
        "messages": form.messages,
        "settings": settings if settings is not None else {},
        "variables": variables if variables is not None else {},
        "output_schema": schema,
    }


def area_of(exc: RegistryError) -> str:
    """Which form area an error from ``create_version`` belongs to."""
    where = str(getattr(exc, "field", None) or "")
    if not where:
        text = exc.message
        if text.startswith("system"):
            return "system"
        found = _MESSAGE_WHERE.match(text)
        return f"messages.{int(found.group(1)) - 1}" if found else "form"
    if where.startswith("system"):
        return "system"
    found = _MESSAGE_FIELD.match(where) or _MESSAGE_WHERE.match(where)
    if found:
        index = int(found.group(1))
        return f"messages.{index - 1 if where.startswith('message ') else index}"
    for area in AREAS:
        if where == area or where.startswith(area + ".") or where.startswith(area + "["):
            return area
    if where in ("description",):
        return "form"
    if where.startswith("settings") or where in ("model", "max_tokens"):
        return "settings"
    return "form"


def sandbox_check(reg: Registry, name: str, content: Mapping[str, Any]) -> tuple[str, str] | None:
    """Render each unsaved template once with placeholder values.

    Returns ``(form area, message)`` for the first sandbox violation or render limit, else
    None. Other render errors depend on the values and are the preview's business. Renders
    run under the registry's limits with the save's short deadline.
    """

    def resolve(ref: IncludeRef) -> tuple[str, Any]:
        target = (
            reg.get(ref.name, version=ref.version)
            if ref.version is not None
            else reg.get(ref.name, label=ref.label)
        )
        return include_source(target.system, target.messages), lambda: False

    limits = reg.render_limits
    env = make_environment(resolve, limits=limits)
    limits = limits.with_timeout(min(limits.timeout_ms, SAVE_RENDER_TIMEOUT_MS))
    contract = dict(content.get("variables") or {})
    values = placeholder_values(contract)
    sources: list[tuple[str, str | None, list[dict[str, str]]]] = []
    if content.get("system"):
        sources.append(("system", content["system"], []))
    for i, m in enumerate(content.get("messages") or []):
        sources.append((f"messages.{i}", None, [dict(m)]))
    for area, system, messages in sources:
        try:
            CompiledPrompt(
                env,
                name=name,
                version=0,
                system=system,
                messages=messages,
                settings={},
                contract=contract,
            ).render(values, limits=limits)
        except SecurityError as exc:
            return area, "sandbox violation: " + exc.message.replace(f"{name} v0: ", "")
        except RenderLimitExceeded as exc:
            return area, "over a render limit: " + exc.message.replace(f"{name} v0: ", "")
        except RegistryError:
            continue
    return None


@dataclass(frozen=True)
class TemplateVariables:
    """Variables the templates read, next to the declared contract."""

    used: list[str]
    declared: list[str]
    undeclared: list[str]
    unused: list[str]
    error: str | None = None


def template_variables(
    system: str, messages: list[dict[str, str]], contract: Any
) -> TemplateVariables:
    """Variables the templates use vs. the contract (syntax errors are reported, not raised)."""
    used: set[str] = set()
    error = None
    sources = [("system template", system)] if system else []
    sources += [
        (f"message {i + 1} ({m.get('role', '')})", m.get("content", ""))
        for i, m in enumerate(messages)
    ]
    for where, source in sources:
        try:
            used |= analyze(source, where).variables
        except ValidationError as exc:
            error = exc.message
    declared = sorted(contract) if isinstance(contract, Mapping) else []
    return TemplateVariables(
        used=sorted(used),
        declared=declared,
        undeclared=sorted(used - set(declared)),
        unused=sorted(set(declared) - used),
        error=error,
    )


def estimate_tokens(text: str) -> int:
    """A rough token count (about four characters a token)."""
    return max(0, round(len(text) / 4))


def rendered_text(r: Rendered) -> str:
    """All text a rendered prompt sends (for the token estimate)."""
    return (r.system or "") + "".join(
        m.get("content", "") for m in r.messages if isinstance(m.get("content"), str)
    )


def sample_cases(reg: Registry, name: str) -> list[tuple[str, dict[str, Any]]]:
    """``(case name, variables)`` of the prompt's regression test cases (empty without suites)."""
    try:
        return [(c.name, dict(c.variables)) for c in list_cases(reg, name)]
    except RegistryError:
        return []


def parse_variables(text: str) -> tuple[dict[str, Any] | None, str | None]:
    """Preview variables typed as JSON or YAML: ``(values, error)``."""
    if not text.strip():
        return {}, None
    try:
        value = json.loads(text)
    except ValueError:
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            return None, f"the variables are not valid JSON or YAML{where}"
    if has_lone_surrogate(value):
        return None, SURROGATE_MESSAGE
    if not isinstance(value, dict):
        return None, 'the variables must be a mapping, e.g. {"question": "Where is my invoice?"}'
    return value, None


def preview(v: PromptVersion, values: Mapping[str, Any]) -> tuple[Rendered | None, str | None]:
    """Render a version: ``(rendered, None)`` or ``(None, error message)``."""
    try:
        return v.render(dict(values)), None
    except (RenderError, ValidationError) as exc:
        return None, exc.message
    except RegistryError as exc:
        return None, exc.message
