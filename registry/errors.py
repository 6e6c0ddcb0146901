"""The error hierarchy: every error the registry raises derives from :class:`RegistryError`.

Specific errors also subclass the builtin a caller would naturally catch
(``NotFound`` is a ``LookupError``, ``ValidationError`` a ``ValueError``), so both
``except registry.NotFound`` and ``except LookupError`` work.
Every message says what went wrong and, where it can, what to do next.
"""

from __future__ import annotations

from typing import Any


class RegistryError(Exception):
    """Base class of every error raised by the registry."""

    #: short machine-readable name, used by the HTTP API as ``error.type``
    type: str = "registry_error"
    #: HTTP status the API answers with for this error
    status: int = 500

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of the error used by the HTTP API."""
        return {"type": self.type, "message": self.message}


class NotFound(RegistryError, LookupError):
    """A prompt, version, label or other object does not exist."""

    type = "not_found"
    status = 404

    def __str__(self) -> str:  # LookupError would repr() the message
        return self.message


class ValidationError(RegistryError, ValueError):
    """Input was refused: bad name, bad settings, bad template, bad contract."""

    type = "validation_error"
    status = 422

    def __init__(self, message: str, *, field: str | None = None, **details: Any) -> None:
        super().__init__(message, field=field, **details)
        self.field = field


class TemplateSyntaxError(ValidationError):
    """A template does not parse; the message carries the template name and line."""

    type = "template_syntax_error"


class RenderError(RegistryError):
    """Rendering failed: a missing, unknown or mistyped variable, or a sandbox violation."""

    type = "render_error"
    status = 422

    def __init__(self, message: str, *, variable: str | None = None, **details: Any) -> None:
        super().__init__(message, variable=variable, **details)
        self.variable = variable


class SecurityError(RenderError):
    """A template tried to reach something the sandbox forbids."""

    type = "sandbox_violation"


class ConflictError(RegistryError):
    """A compare-and-set lost a race (``expected_version`` did not match) or a uniqueness clash."""

    type = "conflict"
    status = 409

    def __init__(
        self,
        message: str,
        *,
        expected: int | None = None,
        actual: int | None = None,
        **details: Any,
    ) -> None:
        super().__init__(message, expected=expected, actual=actual, **details)
        self.expected = expected
        self.actual = actual


class PermissionDenied(RegistryError):
    """The actor may not do this (for example move a protected label)."""

    type = "permission_denied"
    status = 403


class SuiteGateError(PermissionDenied):
    """A protected label may only move to a version whose latest regression-suite run passed."""

    type = "suite_gate"


class SchemaError(RegistryError):
    """The database has no schema or an outdated one."""

    type = "schema_error"
    status = 503


class RunError(RegistryError):
    """Calling the model failed after every retry, or its answer could not be used."""

    type = "run_error"
    status = 502

    def __init__(self, message: str, *, run_id: str | None = None, **details: Any) -> None:
        super().__init__(message, run_id=run_id, **details)
        self.run_id = run_id


class ConfigurationError(RegistryError):
    """The environment is missing something (for example ``ANTHROPIC_API_KEY``)."""

    type = "configuration_error"
    status = 503


class AuthenticationError(RegistryError):
    """An API key is missing, unknown or revoked (HTTP 401)."""

    type = "unauthorized"
    status = 401


__all__ = [
    "AuthenticationError",
    "ConfigurationError",
    "ConflictError",
    "NotFound",
    "PermissionDenied",
    "RegistryError",
    "RenderError",
    "RunError",
    "SchemaError",
    "SecurityError",
    "SuiteGateError",
    "TemplateSyntaxError",
    "ValidationError",
]
