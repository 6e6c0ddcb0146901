"""Sandboxed Jinja2 rendering of prompt versions. Pure: no database, no HTTP.

Every editor-written template runs in an :class:`jinja2.sandbox.ImmutableSandboxedEnvironment`
with :class:`jinja2.StrictUndefined`, so templates can neither reach Python internals nor
silently drop an unknown variable. Templates are compiled once per immutable version
(:class:`CompiledPrompt`) and rendered many times.

Composition: ``{% include "snippet@production" %}`` (by label) or ``{% include "snippet@3" %}``
(by version; plain ``"snippet"`` means the ``production`` label) inserts the system template of
another prompt, or its first message when it has no system template. Includes are resolved by a
callback the registry provides, so this module never touches storage.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jinja2
from jinja2 import StrictUndefined, meta, nodes
from jinja2.exceptions import SecurityError as SandboxViolation

from .contract import CompiledContract
from .errors import (
    RenderError,
    RenderLimitExceeded,
    SecurityError,
    TemplateSyntaxError,
    ValidationError,
)
from .fastpath import FastPrompt
from .render_limits import RenderLimits, open_budget
from .sandbox import PromptSandbox, find_variables, render_template

#: largest template source accepted, in characters
MAX_TEMPLATE_CHARS = 200_000
#: how deep includes may nest
MAX_INCLUDE_DEPTH = 5
#: the label an include without ``@`` refers to
DEFAULT_INCLUDE_LABEL = "production"

_INCLUDE_REF = re.compile(r"^(?P<name>[^@]+?)(?:@(?P<sel>[^@]+))?$")


@dataclass(frozen=True, slots=True)
class IncludeRef:
    """A parsed include target: a prompt name and either a label or a version."""

    name: str
    label: str | None = None
    version: int | None = None

    @classmethod
    def parse(cls, ref: str) -> IncludeRef:
        """Parse ``name``, ``name@label`` or ``name@3``."""
        m = _INCLUDE_REF.match(ref.strip())
        if not m:
            raise ValidationError(f"include target {ref!r} is not 'name', 'name@label' or 'name@N'")
        sel = m.group("sel")
        if sel is None:
            return cls(m.group("name"), label=DEFAULT_INCLUDE_LABEL)
        if sel.isdigit():
            return cls(m.group("name"), version=int(sel))
        return cls(m.group("name"), label=sel)

    def __str__(self) -> str:
        return f"{self.name}@{self.version if self.version is not None else self.label}"


IncludeResolver = Callable[[IncludeRef], tuple[str, Callable[[], bool]]]


class _RegistryLoader(jinja2.BaseLoader):
    def __init__(self, resolve: IncludeResolver | None) -> None:
        self._resolve = resolve

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool] | None]:
        if self._resolve is None:
            raise jinja2.TemplateNotFound(template)
        try:
            ref = IncludeRef.parse(template)
            source, uptodate = self._resolve(ref)
        except LookupError as exc:
            raise jinja2.TemplateNotFound(template, str(exc)) from None
        return source, None, uptodate


def make_environment(
    resolve: IncludeResolver | None = None, *, limits: RenderLimits | None = None
) -> PromptSandbox:
    """A sandboxed, bounded environment; ``resolve`` turns an include reference into its source.

    ``limits`` default to :meth:`RenderLimits.from_env` (the ``REGISTRY_RENDER_*`` variables).
    """
    return PromptSandbox(
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        loader=_RegistryLoader(resolve),
        auto_reload=True,
        cache_size=1000,
        limits=limits,
    )


_CHECK_ENV = make_environment(limits=RenderLimits())
_GLOBAL_NAMES = frozenset(_CHECK_ENV.globals)


@dataclass(frozen=True)
class TemplateInfo:
    """What static analysis of one template found."""

    variables: frozenset[str]
    includes: tuple[IncludeRef, ...]


def analyze(source: str, where: str) -> TemplateInfo:
    """Parse a template; return the variables it reads and the prompts it includes.

    Raises :class:`TemplateSyntaxError` with the line for a template that does not parse.
    """
    if not isinstance(source, str):
        raise ValidationError(f"{where} must be a string", field=where)
    if len(source) > MAX_TEMPLATE_CHARS:
        raise ValidationError(
            f"{where} is {len(source)} characters; the limit is {MAX_TEMPLATE_CHARS}", field=where
        )
    try:
        ast = _CHECK_ENV.parse(source)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateSyntaxError(
            f"{where}, line {exc.lineno}: {exc.message}", field=where, line=exc.lineno
        ) from None
    includes: list[IncludeRef] = []
    for ref in meta.find_referenced_templates(ast):
        if ref is None:
            raise ValidationError(
                f"{where}: includes must name a prompt literally, e.g. "
                '{% include "snippet@production" %}',
                field=where,
            )
        includes.append(IncludeRef.parse(ref))
    if any(True for _ in ast.find_all((nodes.Extends, nodes.Import, nodes.FromImport))):
        raise ValidationError(
            f"{where}: only {{% include %}} is supported for composition", field=where
        )
    _refuse_private_access(ast, where)
    used = frozenset(find_variables(ast)) - _GLOBAL_NAMES
    return TemplateInfo(variables=used, includes=tuple(includes))


def _refuse_private_access(ast: nodes.Template, where: str) -> None:
    """Refuse at save what the sandbox would block at render: names starting with ``_``.

    Format-string tricks (``'{0.__class__}'.format(x)``) cannot be seen statically; the sandbox
    still blocks them when rendering.
    """
    for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
        if isinstance(node, nodes.Getattr):
            name = node.attr
        elif (
            isinstance(node, nodes.Getitem)
            and isinstance(node.arg, nodes.Const)
            and isinstance(node.arg.value, str)
        ):
            name = node.arg.value
        else:
            continue
        if name.startswith("_"):
            raise ValidationError(
                f"{where}, line {node.lineno}: sandbox violation: '{name}' is not allowed "
                "(templates may not use attributes starting with '_')",
                field=where,
                line=node.lineno,
            )


def include_source(system: str | None, messages: Iterable[Mapping[str, Any]]) -> str:
    """The text another prompt gets when it includes this one."""
    if system:
        return system
    for message in messages:
        return str(message.get("content", ""))
    return ""


@dataclass(frozen=True)
class Rendered:
    """A rendered prompt: ready to send to the Messages API.

    ``to_request()`` gives the keyword arguments for ``anthropic.Anthropic().messages.create``.
    """

    name: str
    version: int
    system: str | None
    messages: list[dict[str, Any]]
    settings: dict[str, Any]
    variables: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        *,
        name: str,
        version: int,
        system: str | None,
        messages: list[dict[str, Any]],
        settings: dict[str, Any],
        variables: dict[str, Any],
    ) -> Rendered:
        """The constructor without a frozen dataclass's ``__setattr__`` per field (hot path)."""
        rendered = object.__new__(cls)
        rendered.__dict__.update(
            name=name,
            version=version,
            system=system,
            messages=messages,
            settings=settings,
            variables=variables,
        )
        return rendered

    def to_request(self) -> dict[str, Any]:
        """Keyword arguments for ``client.messages.create(**rendered.to_request())``.

        Sampling settings the 2.x SDK has no argument for (``temperature``, ``top_p``,
        ``top_k``) travel in ``extra_body``.
        """
        request: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in self.settings.items():
            if isinstance(value, dict | list):
                value = copy.deepcopy(value)  # tools, metadata...: never shared with the cache
            if key in ("temperature", "top_p", "top_k"):
                extra[key] = value
            else:
                request[key] = value
        if self.system:
            request["system"] = self.system
        request["messages"] = [dict(m) for m in self.messages]
        if extra:
            request["extra_body"] = extra
        return request


class CompiledPrompt:
    """The templates of one immutable version, compiled once and rendered many times.

    Templates proven safe against the contract (:mod:`registry.fastpath`) also get a plain
    compiled copy that renders without the sandbox's per-call checks; everything else, and
    anything the fast path declines, renders in the bounded sandbox.
    """

    __slots__ = (
        "_env",
        "_fast",
        "_guarded",
        "_roles",
        "_sources",
        "contract",
        "name",
        "settings",
        "version",
    )

    def __init__(
        self,
        env: PromptSandbox,
        *,
        name: str,
        version: int,
        system: str | None,
        messages: list[dict[str, Any]],
        settings: dict[str, Any],
        contract: Mapping[str, Mapping[str, Any]],
    ) -> None:
        self.name = name
        self.version = version
        self.settings = settings
        self.contract = CompiledContract(contract)
        self._env = env
        self._roles = [m["role"] for m in messages]
        #: system (when there is one) then every message, the order texts render in
        self._sources: list[str] = ([system] if system else []) + [m["content"] for m in messages]
        self._fast = FastPrompt.compile(self._sources, contract) if env.limits.fast_path else None
        # the sandboxed copy is compiled now unless the fast path covers the version; then
        # only when a render falls back to it (a syntax error is reported either way)
        self._guarded: list[jinja2.Template] | None = None
        if self._fast is None:
            self._guarded = self._compile_guarded()

    def _compile_guarded(self) -> list[jinja2.Template]:
        try:
            return [self._env.from_string(source) for source in self._sources]
        except jinja2.TemplateSyntaxError as exc:  # stored content was checked at save
            raise TemplateSyntaxError(
                f"{self.name} v{self.version}, line {exc.lineno}: {exc.message}"
            ) from None

    @property
    def fast(self) -> bool:
        """True when every template of the version is proven safe for the fast path."""
        return self._fast is not None

    def render(self, values: Mapping[str, Any], *, limits: RenderLimits | None = None) -> Rendered:
        """Check ``values`` against the contract, then render system and messages.

        The whole render (system and every message) runs under one budget: ``limits``, or
        the environment's (``REGISTRY_RENDER_*``). Over a bound: ``RenderLimitExceeded``.
        """
        checked = self.contract.check(values)
        limits = limits or self._env.limits
        if self._fast is not None:
            texts = self._fast.render(checked, limits)
            if texts is not None:
                return self._rendered(texts, checked)
        return self._rendered(self._render_guarded(checked, limits), checked)

    def _render_guarded(self, checked: dict[str, Any], limits: RenderLimits) -> list[str]:
        """Render every template in the sandbox under one budget."""
        templates = self._guarded
        if templates is None:
            templates = self._guarded = self._compile_guarded()
        where = f"{self.name} v{self.version}"
        try:
            with open_budget(limits, checked) as budget:
                return [render_template(t, checked, budget) for t in templates]
        except RenderLimitExceeded as exc:
            raise RenderLimitExceeded(
                f"{where}: {exc.message}", limit=exc.limit, maximum=exc.maximum
            ) from None
        except RenderError:
            raise
        except SandboxViolation as exc:
            raise SecurityError(f"{where}: blocked by the sandbox: {exc}") from None
        except jinja2.UndefinedError as exc:
            raise RenderError(f"{where}: {exc.message}") from None
        except jinja2.TemplateNotFound as exc:
            raise RenderError(f"{where}: included prompt {exc.name!r} was not found") from None
        except RecursionError:
            raise RenderError(
                f"{where}: nesting too deep (a macro calling itself, includes in a cycle, or "
                "a value nested too deeply?)"
            ) from None
        except Exception as exc:  # a template error at render time, e.g. 1/0 or a bad filter
            raise RenderError(f"{where}: {type(exc).__name__}: {exc}") from None

    def _rendered(self, texts: list[str], checked: dict[str, Any]) -> Rendered:
        has_system = len(texts) > len(self._roles)
        return Rendered.build(
            name=self.name,
            version=self.version,
            system=texts[0] if has_system else None,
            messages=[
                {"role": role, "content": body}
                for role, body in zip(self._roles, texts[1:] if has_system else texts, strict=True)
            ],
            settings=dict(self.settings),  # a caller may change it; the cached version stays as is
            variables=checked,
        )


__all__ = [
    "DEFAULT_INCLUDE_LABEL",
    "MAX_INCLUDE_DEPTH",
    "MAX_TEMPLATE_CHARS",
    "CompiledPrompt",
    "IncludeRef",
    "IncludeResolver",
    "PromptSandbox",
    "RenderLimits",
    "Rendered",
    "TemplateInfo",
    "analyze",
    "include_source",
    "make_environment",
]
