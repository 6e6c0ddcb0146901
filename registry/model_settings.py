"""Model settings of a version: the Messages API request parameters, validated on save.

The field list mirrors the keyword arguments of the installed ``anthropic`` SDK's
``messages.create`` (a test compares the two so an SDK upgrade cannot drift silently), plus the
sampling settings users still set (``temperature``, ``top_p``, ``top_k``) which the 2.x SDK no
longer takes as arguments: the runner sends those through ``extra_body``.
"""

from __future__ import annotations

from typing import Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .errors import ValidationError

#: ``messages.create`` arguments that are not version settings: they belong to the request
#: being made (the rendered prompt, the transport) or to the account making it.
REQUEST_ONLY_PARAMS = frozenset(
    {
        "messages",
        "system",
        "stream",
        "extra_headers",
        "extra_query",
        "extra_body",
        "timeout",
        "user_profile_id",
        "workspace_id",
        "diagnostics",
    }
)

#: sampling settings kept on versions although the 2.x SDK has no argument for them
SAMPLING_PARAMS = ("temperature", "top_p", "top_k")


class _Strict(BaseModel):
    # strict: "100" is not a max_tokens and true is not a temperature; unknown keys are errors
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class ThinkingSettings(_Strict):
    """Extended thinking: ``adaptive``, ``enabled`` with a token budget, or ``disabled``."""

    type: Literal["adaptive", "enabled", "disabled"]
    budget_tokens: int | None = Field(default=None, ge=1024, description="at least 1024")
    display: Literal["summarized", "omitted"] | None = None

    @model_validator(mode="after")
    def _budget_only_when_enabled(self) -> ThinkingSettings:
        if self.type == "enabled" and self.budget_tokens is None:
            raise ValueError("thinking type 'enabled' needs budget_tokens (>= 1024)")
        if self.type != "enabled" and self.budget_tokens is not None:
            raise ValueError("budget_tokens is only allowed with thinking type 'enabled'")
        return self


class CacheControl(_Strict):
    """Prompt caching of the request prefix."""

    type: Literal["ephemeral"] = "ephemeral"
    ttl: Literal["5m", "1h"] | None = None


class ToolChoice(_Strict):
    """How the model may use tools."""

    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool | None = None

    @model_validator(mode="after")
    def _name_for_tool(self) -> ToolChoice:
        if self.type == "tool" and not self.name:
            raise ValueError("tool_choice type 'tool' needs the tool's name")
        return self


class Metadata(_Strict):
    """Request metadata (an opaque user id for abuse detection)."""

    user_id: str | None = Field(default=None, max_length=256)


class OutputFormat(_Strict):
    """Native structured output format."""

    type: Literal["json_schema"]
    schema_: dict[str, Any] = Field(alias="schema")


class OutputConfig(_Strict):
    """``output_config``: effort and native structured output."""

    effort: Literal["low", "medium", "high", "xhigh", "max"] | None = None
    format: OutputFormat | None = None


class ModelSettings(_Strict):
    """Everything about the model call that a version fixes. Unknown keys are refused."""

    model: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@/-]*$")
    max_tokens: int = Field(ge=1, le=1_000_000, description="at least 1")
    temperature: float | None = Field(default=None, ge=0.0, le=1.0, description="0 to 1")
    top_p: float | None = Field(default=None, ge=0.0, le=1.0, description="0 to 1")
    top_k: int | None = Field(default=None, ge=1, description="at least 1")
    stop_sequences: list[str] | None = Field(default=None, max_length=64)
    metadata: Metadata | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: ToolChoice | None = None
    thinking: ThinkingSettings | None = None
    output_config: OutputConfig | None = None
    service_tier: Literal["auto", "standard_only"] | None = None
    cache_control: CacheControl | None = None
    speed: Literal["standard", "fast"] | None = None
    inference_geo: str | None = Field(default=None, max_length=64)
    container: str | dict[str, Any] | None = None

    @field_validator("stop_sequences")
    @classmethod
    def _non_empty_stops(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and any(not s for s in value):
            raise ValueError("stop sequences must be non-empty strings")
        return value

    @field_validator("tools")
    @classmethod
    def _tools_have_names(cls, value: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        for i, tool in enumerate(value or []):
            if not isinstance(tool.get("name"), str) or not tool["name"]:
                raise ValueError(f"tool #{i + 1} needs a non-empty 'name'")
        return value

    @model_validator(mode="after")
    def _thinking_fits(self) -> ModelSettings:
        if (
            self.thinking is not None
            and self.thinking.budget_tokens is not None
            and self.thinking.budget_tokens >= self.max_tokens
        ):
            raise ValueError("thinking.budget_tokens must be smaller than max_tokens")
        return self

    def to_dict(self) -> dict[str, Any]:
        """The settings as plain JSON data, without unset keys."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def validate_settings(settings: dict[str, Any] | None) -> dict[str, Any]:
    """Validate model settings and return them normalised (unset keys dropped).

    Raises :class:`~registry.errors.ValidationError` naming the field and what it allows::

        >>> validate_settings({"model": "claude-sonnet-4-6", "max_tokens": 500})
        {'model': 'claude-sonnet-4-6', 'max_tokens': 500}
    """
    if settings is None:
        raise ValidationError("settings are required: at least 'model' and 'max_tokens'")
    if not isinstance(settings, dict):
        raise ValidationError("settings must be a mapping of Messages API parameters")
    try:
        return ModelSettings.model_validate(settings).to_dict()
    except pydantic.ValidationError as exc:
        raise ValidationError(
            "invalid settings: " + describe_pydantic_error(exc),
            field=_first_field(exc, prefix="settings"),
        ) from None


def describe_pydantic_error(exc: pydantic.ValidationError) -> str:
    """One readable line per problem: ``field: what is wrong``."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "value"
        if err["type"] == "extra_forbidden":
            parts.append(f"{where}: unknown key (not a Messages API parameter)")
        else:
            parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def _first_field(exc: pydantic.ValidationError, prefix: str) -> str:
    errors = exc.errors()
    if not errors or not errors[0]["loc"]:
        return prefix
    return prefix + "." + ".".join(str(p) for p in errors[0]["loc"])


def settings_fields() -> frozenset[str]:
    """The settings keys a version may hold."""
    return frozenset(
        ModelSettings.model_fields[name].alias or name for name in ModelSettings.model_fields
    )
