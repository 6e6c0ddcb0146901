"""Version content: validation on save, the content hash, and the public ``PromptVersion``."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .contract import placeholder_values
from .errors import RegistryError, RenderLimitExceeded, ValidationError
from .render_limits import RenderLimits
from .rendering import CompiledPrompt, IncludeRef, Rendered, TemplateInfo, analyze
from .text import has_lone_surrogate

ROLES = ("user", "assistant")
MAX_MESSAGES = 200
MAX_COMMIT_MESSAGE = 10_000
MAX_AUTHOR = 200
#: deadline of the dry render at save, in ms (at most REGISTRY_RENDER_TIMEOUT_MS): a save
#: answers fast even for a template that would never finish
SAVE_RENDER_TIMEOUT_MS = 250


#: why a string holding half of a UTF-16 surrogate pair is refused
LONE_SURROGATE = (
    "a lone UTF-16 surrogate (such as \\ud800) is not a character: write the character "
    "itself or a complete surrogate pair"
)


def canonical_json(data: Any) -> str:
    """Deterministic JSON: sorted keys, no spaces, UTF-8 kept as is."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class VersionContent:
    """Validated content of a version: everything that affects a request."""

    system: str | None
    messages: list[dict[str, str]]
    settings: dict[str, Any]
    variables: dict[str, dict[str, Any]]
    output_schema: dict[str, Any] | None
    _analysis: tuple[frozenset[str], tuple[IncludeRef, ...]] | None = field(
        default=None, init=False, compare=False, repr=False
    )

    def content_hash(self) -> str:
        """sha256 of the canonical JSON of the content."""
        doc = {
            "system": self.system,
            "messages": self.messages,
            "settings": self.settings,
            "variables": self.variables,
            "output_schema": self.output_schema,
        }
        return hashlib.sha256(canonical_json(doc).encode()).hexdigest()

    def templates(self) -> list[tuple[str, str]]:
        """``(where, source)`` of every template in the version."""
        out = [("system template", self.system)] if self.system else []
        out += [
            (f"message {i + 1} ({m['role']})", m["content"]) for i, m in enumerate(self.messages)
        ]
        return out

    def analyze(self) -> tuple[frozenset[str], tuple[IncludeRef, ...]]:
        """Variables the templates read and prompts they include (syntax errors raise).

        Parsed once per content object: validation and include checks both ask.
        """
        if self._analysis is None:
            infos: list[TemplateInfo] = [analyze(src, where) for where, src in self.templates()]
            used = frozenset().union(*(i.variables for i in infos)) if infos else frozenset()
            includes = tuple(ref for i in infos for ref in i.includes)
            object.__setattr__(self, "_analysis", (used, includes))
        assert self._analysis is not None
        return self._analysis


def _check_text(value: Any, field: str, *, limit: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationError(f"{field} must be a string", field=field)
    if len(value) > limit:
        raise ValidationError(f"{field} is longer than {limit} characters", field=field)
    if any(ord(c) < 32 and c not in "\t\n\r" for c in value):
        raise ValidationError(f"{field} contains control characters", field=field)
    if has_lone_surrogate(value):
        raise ValidationError(f"{field}: {LONE_SURROGATE}", field=field)
    return value


def check_commit_fields(message: Any, author: Any) -> tuple[str, str]:
    """Validate a commit message and an author name."""
    return (
        _check_text(message, "message", limit=MAX_COMMIT_MESSAGE),
        _check_text(author, "author", limit=MAX_AUTHOR),
    )


def validate_content(
    *,
    system: Any,
    messages: Any,
    settings: Any,
    variables: Any,
    output_schema: Any,
    check_price: bool = True,
) -> VersionContent:
    """Validate everything a version holds; raise ``ValidationError`` naming the field.

    ``check_price`` refuses a model without a price (:class:`~registry.errors.UnpricedModel`,
    see :mod:`registry.prices`): on for saves and imports, off when reading an export.
    """
    # validation libraries load on first save, not at import (apps mostly only read)
    import jsonschema

    from .contract_spec import validate_contract
    from .model_settings import validate_settings
    from .prices import price_of

    for field_name, value in (
        ("system", system),
        ("messages", messages),
        ("settings", settings),
        ("variables", variables),
        ("output_schema", output_schema),
    ):
        if has_lone_surrogate(value):
            raise ValidationError(f"{field_name}: {LONE_SURROGATE}", field=field_name)
    if system is not None and not isinstance(system, str):
        raise ValidationError("system must be a string template", field="system")
    if messages is None:
        messages = []
    if not isinstance(messages, list | tuple):
        raise ValidationError("messages must be a list of {role, content}", field="messages")
    if not messages:
        raise ValidationError(
            "messages must hold at least one message, e.g. "
            '[{"role": "user", "content": "{{ question }}"}]',
            field="messages",
        )
    if len(messages) > MAX_MESSAGES:
        raise ValidationError(f"at most {MAX_MESSAGES} messages are allowed", field="messages")
    clean: list[dict[str, str]] = []
    for i, m in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(m, Mapping) or set(m) - {"role", "content"}:
            raise ValidationError(
                f"{where} must be a mapping with only 'role' and 'content'", field=where
            )
        role, content = m.get("role"), m.get("content")
        if role not in ROLES:
            raise ValidationError(f"{where}.role must be 'user' or 'assistant'", field=where)
        if not isinstance(content, str):
            raise ValidationError(f"{where}.content must be a string template", field=where)
        clean.append({"role": role, "content": content})
    if clean[0]["role"] != "user":
        raise ValidationError("the first message must have role 'user'", field="messages[0]")
    if output_schema is not None:
        if not isinstance(output_schema, Mapping):
            raise ValidationError(
                "output_schema must be a JSON Schema object", field="output_schema"
            )
        try:
            jsonschema.Draft202012Validator.check_schema(dict(output_schema))
        except jsonschema.SchemaError as exc:
            raise ValidationError(
                f"output_schema is not a valid JSON Schema: {exc.message}", field="output_schema"
            ) from None
        output_schema = json.loads(canonical_json(output_schema))
    clean_settings = validate_settings(settings)
    if check_price:
        price_of(str(clean_settings["model"]))
    content = VersionContent(
        system=system or None,
        messages=clean,
        settings=clean_settings,
        variables=validate_contract(variables),
        output_schema=output_schema,
    )
    used, _ = content.analyze()
    undeclared = sorted(used - set(content.variables))
    if undeclared:
        raise ValidationError(
            "the template uses undeclared variable(s) "
            + ", ".join(repr(v) for v in undeclared)
            + ": add them to the variable contract",
            field="variables",
            variables=undeclared,
        )
    return content


def case_samples(tests: Iterable[Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """``(name, variables)`` of the well-formed entries of a prompt file's ``tests:`` list."""
    out: list[tuple[str, Mapping[str, Any]]] = []
    for test in tests:
        if isinstance(test, Mapping) and isinstance(test.get("variables") or {}, Mapping):
            out.append((str(test.get("name", "")), test.get("variables") or {}))
    return out


def render_samples(
    contract: Mapping[str, Mapping[str, Any]], cases: Iterable[tuple[str, Mapping[str, Any]]]
) -> list[tuple[str, Mapping[str, Any]]]:
    """What a save renders with: the contract's defaults and placeholders, then each case."""
    samples: list[tuple[str, Mapping[str, Any]]] = [
        ("the contract's defaults and placeholder values", placeholder_values(contract))
    ]
    samples += [(f"test case {case!r}", dict(values)) for case, values in cases]
    return samples


def dry_render(
    compiled: CompiledPrompt,
    samples: Iterable[tuple[str, Mapping[str, Any]]],
    limits: RenderLimits,
) -> None:
    """Render unsaved content once per sample; refuse it when a render goes over a limit.

    Raises ``RenderLimitExceeded`` naming the sample (for example ``test case 'q2'``). Other
    render errors are the samples' business (placeholders cannot satisfy every template;
    a failing test case is reported by its suite), so they are ignored here.
    """
    limits = limits.with_timeout(min(limits.timeout_ms, SAVE_RENDER_TIMEOUT_MS))
    prefix = f"{compiled.name} v{compiled.version}: "
    for what, values in samples:
        try:
            compiled.render(values, limits=limits)
        except RenderLimitExceeded as exc:
            raise RenderLimitExceeded(
                f"{compiled.name}: not saved: rendering it with {what} goes over a limit: "
                + exc.message.removeprefix(prefix),
                limit=exc.limit,
                maximum=exc.maximum,
                sample=what,
            ) from None
        except RegistryError:
            continue


class PromptVersion:
    """One immutable version of a prompt, as apps see it.

    ``render(**variables)`` checks the values against the contract and renders the templates
    (compiled once per version and reused).
    """

    __slots__ = (
        "_compile_lock",
        "_compiled",
        "_compiler",
        "_content",
        "_labels_of",
        "author",
        "content_hash",
        "created_at",
        "experiment",
        "id",
        "message",
        "messages",
        "name",
        "output_schema",
        "settings",
        "stale",
        "system",
        "variables",
        "variant",
        "version",
    )

    def __init__(
        self,
        *,
        id: int,
        name: str,
        version: int,
        system: str | None,
        messages: list[dict[str, str]],
        settings: dict[str, Any],
        variables: dict[str, dict[str, Any]],
        output_schema: dict[str, Any] | None,
        content_hash: str,
        message: str,
        author: str,
        created_at: datetime,
        compiler: Callable[[PromptVersion], CompiledPrompt] | None = None,
        labels_of: Callable[[PromptVersion], list[str]] | None = None,
    ) -> None:
        self.id = id
        self.name = name
        self.version = version
        self.system = system
        self.messages = messages
        self.settings = settings
        self.variables = variables
        self.output_schema = output_schema
        self.content_hash = content_hash
        self.message = message
        self.author = author
        self.created_at = created_at
        self.experiment: str | None = None
        self.variant: str | None = None
        #: True when served from memory because the database could not be reached
        self.stale = False
        self._compiler = compiler
        self._labels_of = labels_of
        self._compiled: CompiledPrompt | None = None
        self._content: VersionContent | None = None
        self._compile_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<PromptVersion {self.name} v{self.version}>"

    @property
    def model(self) -> str:
        """The model this version runs on."""
        return str(self.settings["model"])

    @property
    def labels(self) -> list[str]:
        """Labels that point at this version now (looked up on access)."""
        return self._labels_of(self) if self._labels_of else []

    def compiled(self) -> CompiledPrompt:
        """The compiled templates of this version (compiled on first use)."""
        compiled = self._compiled
        if compiled is None:
            with self._compile_lock:
                if self._compiled is None:
                    if self._compiler is None:
                        raise ValidationError("this version was built without a compiler")
                    self._compiled = self._compiler(self)
                compiled = self._compiled
        return compiled

    def render(self, values: Mapping[str, Any] | None = None, /, **variables: Any) -> Rendered:
        """Render with variables given as a mapping, as keywords, or both.

        >>> v.render(question="Where is my invoice?").to_request()  # doctest: +SKIP
        """
        if values:
            variables = {**values, **variables}
        return self.compiled().render(variables)

    def _copy(self) -> PromptVersion:
        copy = PromptVersion.__new__(PromptVersion)
        for slot in PromptVersion.__slots__:
            object.__setattr__(copy, slot, getattr(self, slot))
        return copy

    def with_assignment(self, experiment: str, variant: str) -> PromptVersion:
        """A copy marked as served by an experiment variant (shares the compiled templates)."""
        copy = self._copy()
        copy.experiment = experiment
        copy.variant = variant
        return copy

    def as_stale(self) -> PromptVersion:
        """A copy marked ``stale``: the label was last seen here, the database is unreachable."""
        copy = self._copy()
        copy.stale = True
        return copy

    def content(self) -> VersionContent:
        """The content of this version (built once: include checks parse it repeatedly)."""
        if self._content is None:
            self._content = VersionContent(
                system=self.system,
                messages=self.messages,
                settings=self.settings,
                variables=self.variables,
                output_schema=self.output_schema,
            )
        return self._content

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description of the version (content and metadata)."""
        return {
            "name": self.name,
            "version": self.version,
            "system": self.system,
            "messages": self.messages,
            "settings": self.settings,
            "variables": self.variables,
            "output_schema": self.output_schema,
            "content_hash": self.content_hash,
            "message": self.message,
            "author": self.author,
            "created_at": self.created_at.isoformat(),
        }
