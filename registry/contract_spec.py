"""Validation of variable contracts on save (pydantic; loaded only when a version is saved)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pydantic
from pydantic import BaseModel, ConfigDict, Field, model_validator

from .contract import VARIABLE_NAME, VariableType, is_type
from .errors import ValidationError
from .model_settings import describe_pydantic_error


class VariableSpec(BaseModel):
    """One declared variable."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: VariableType = "string"
    required: bool = True
    default: Any = None
    description: str = Field(default="", max_length=2000)
    sensitive: bool = Field(default=False, description="stored redacted in the run log")

    @model_validator(mode="after")
    def _default_matches_type(self) -> VariableSpec:
        if self.default is not None and not is_type(self.default, self.type):
            raise ValueError(f"default {self.default!r} is not of type {self.type}")
        return self


def validate_contract(variables: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Validate a variable contract and return it normalised (every key spelled out).

    A spec may be a full mapping or just a type name: ``{"question": "string"}``.
    """
    if variables is None:
        return {}
    if not isinstance(variables, Mapping):
        raise ValidationError("variables must map names to specs", field="variables")
    out: dict[str, dict[str, Any]] = {}
    for name, spec in variables.items():
        if not isinstance(name, str) or not VARIABLE_NAME.match(name):
            raise ValidationError(
                f"variable name {name!r} is not valid: use letters, digits and _ "
                "(not starting with a digit, at most 64 characters)",
                field="variables",
            )
        if isinstance(spec, str):
            spec = {"type": spec}
        if spec is None:
            spec = {}
        try:
            parsed = VariableSpec.model_validate(spec)
        except pydantic.ValidationError as exc:
            raise ValidationError(
                f"variable '{name}': {describe_pydantic_error(exc)}", field=f"variables.{name}"
            ) from None
        out[name] = parsed.model_dump(mode="json")
    return out
