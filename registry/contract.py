"""The variable contract of a version: which variables a template takes, of what type.

A contract maps a variable name to a spec ``{type, required, default, description,
sensitive}``; the spec is validated on save by :mod:`registry.contract_spec`.
Values are checked before rendering: a missing required variable, an unknown extra one and a
value of the wrong type are :class:`~registry.errors.RenderError` naming the variable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .errors import RenderError

VariableType = Literal["string", "integer", "number", "boolean", "array", "object"]

VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")

_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list, tuple),
    "object": (dict,),
}


def is_type(value: Any, type_name: str) -> bool:
    """True when ``value`` is of contract type ``type_name`` (a bool is not a number)."""
    if type_name in ("integer", "number") and isinstance(value, bool):
        return False
    return isinstance(value, _PYTHON_TYPES[type_name])


@dataclass(frozen=True, slots=True)
class _Check:
    name: str
    types: tuple[type, ...]
    type_name: str
    required: bool
    default: Any
    reject_bool: bool


class CompiledContract:
    """A contract turned into a fast checker; built once per immutable version."""

    __slots__ = ("_checks", "_names", "sensitive")

    def __init__(self, contract: Mapping[str, Mapping[str, Any]]) -> None:
        self._checks = tuple(
            _Check(
                name=name,
                types=_PYTHON_TYPES[spec.get("type", "string")],
                type_name=spec.get("type", "string"),
                required=bool(spec.get("required", True)),
                default=spec.get("default"),
                reject_bool=spec.get("type", "string") in ("integer", "number"),
            )
            for name, spec in contract.items()
        )
        self._names = frozenset(contract)
        self.sensitive = frozenset(n for n, s in contract.items() if s.get("sensitive"))

    def check(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Return the values to render with (defaults filled in) or raise ``RenderError``."""
        for key in values:
            if key not in self._names:
                known = ", ".join(sorted(self._names)) or "none"
                raise RenderError(
                    f"unknown variable '{key}': the contract declares {known}", variable=key
                )
        out: dict[str, Any] = {}
        for c in self._checks:
            if c.name in values:
                value = values[c.name]
                if value is None:
                    if c.required:
                        raise RenderError(
                            f"variable '{c.name}' is required and may not be null", variable=c.name
                        )
                elif not isinstance(value, c.types) or (c.reject_bool and isinstance(value, bool)):
                    raise RenderError(
                        f"variable '{c.name}' must be of type {c.type_name}, "
                        f"got {type(value).__name__}",
                        variable=c.name,
                    )
                out[c.name] = value
            elif c.default is not None:
                out[c.name] = c.default
            elif c.required:
                raise RenderError(f"missing required variable '{c.name}'", variable=c.name)
            else:
                out[c.name] = None
        return out

    def redact(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of the values with every sensitive variable replaced by ``"[redacted]"``."""
        return {k: ("[redacted]" if k in self.sensitive else v) for k, v in values.items()}


#: a value of each contract type, for renders that have no real values (previews, save checks)
PLACEHOLDERS: dict[str, Any] = {
    "string": "example",
    "integer": 1,
    "number": 1.5,
    "boolean": True,
    "array": ["example"],
    "object": {"key": "example"},
}


def placeholder_values(contract: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Values of the right type for every required variable (declared defaults where set)."""
    out: dict[str, Any] = {}
    for name, spec in contract.items():
        if spec.get("default") is not None:
            out[name] = spec["default"]
        elif spec.get("required", True):
            out[name] = PLACEHOLDERS.get(spec.get("type", "string"), "example")
    return out
