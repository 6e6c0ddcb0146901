"""The error hierarchy: every error the registry raises derives from :class:`RegistryError`.

Specific errors also subclass the builtin a caller would naturally catch
(``NotFound`` is a ``LookupError``, ``ValidationError`` a ``ValueError``), so both
``except registry.NotFound`` and ``except LookupError`` work.
Every message says what went wrong and, where it can, what to do next.
"""

from __future__ import annotations

from typing import Any

#: details an error carries over HTTP (``{"error": {"type", "message", <these>}}``), so that
#: ``RegistryClient`` raises the same class with the same attributes as the server did
PUBLIC_DETAILS = (
    "field",
    "variable",
    "run_id",
    "retry_after",
    "retryable",
    "raw_text",
    "errors",
    "partial_text",
    "parameter",
    "expected",
    "actual",
    "limit",
    "maximum",
)


class RegistryError(Exception):
    """Base class of every error raised by the registry.

    ``details`` holds the keyword arguments the error was built with; those named in
    :data:`PUBLIC_DETAILS` also travel in the HTTP API's error body (:meth:`to_dict`).
    """

    #: short machine-readable name, used by the HTTP API as ``error.type``
    type: str = "registry_error"
    #: HTTP status the API answers with for this error
    status: int = 500

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of the error used by the HTTP API: type, message, public details."""
        body: dict[str, Any] = {"type": self.type, "message": self.message}
        for name in PUBLIC_DETAILS:
            value = self.details.get(name, getattr(self, name, None))
            if value is not None and value != "" and value != []:
                body[name] = value
        return body


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


class UnpricedModel(ValidationError):
    """A model has no price (``REGISTRY_PRICES_FILE``): it cannot be saved in a version or run.

    ``model`` is the name; the message names the file to add its price to.
    """

    type = "unpriced_model"

    def __init__(
        self, message: str, *, model: str = "", field: str = "settings.model", **details: Any
    ) -> None:
        super().__init__(message, field=field, model=model, **details)
        self.model = model


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


class RenderLimitExceeded(RenderError):
    """A render went over one of its bounds (output size, value size, steps, integer size, time).

    ``limit`` names the environment variable that sets the bound and ``maximum`` its value, so
    the message can say how to raise it.
    """

    type = "render_limit_exceeded"

    def __init__(self, message: str, *, limit: str = "", maximum: int = 0, **details: Any) -> None:
        super().__init__(message, limit=limit, maximum=maximum, **details)
        self.limit = limit
        self.maximum = maximum


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


class DatabaseUnavailable(RegistryError):
    """The database cannot be reached or failed the statement (HTTP 503 with ``Retry-After``).

    ``database`` names it (password hidden); ``retryable`` says whether trying again is worth it
    (the server is down, restarting, busy or a lock timed out) or not (a wrong URL, a missing
    database, refused credentials); ``retry_after`` is the suggested wait in seconds.
    """

    type = "database_unavailable"
    status = 503

    def __init__(
        self,
        message: str,
        *,
        database: str = "",
        retryable: bool = True,
        retry_after: float | None = None,
        **details: Any,
    ) -> None:
        if retry_after is None:
            retry_after = 5.0 if retryable else 60.0
        super().__init__(
            message, database=database, retryable=retryable, retry_after=retry_after, **details
        )
        self.database = database
        self.retryable = retryable
        self.retry_after = retry_after


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


class RateLimited(RunError):
    """No request slot in time: the client-side queue or the API's rate limit (429) said wait."""

    type = "rate_limited"
    status = 429

    def __init__(self, message: str, *, retry_after: float | None = None, **details: Any) -> None:
        super().__init__(message, retry_after=retry_after, **details)
        self.retry_after = retry_after


class BudgetExceeded(RunError):
    """Today's logged spend reached ``REGISTRY_DAILY_BUDGET_USD``: runs refused until tomorrow."""

    type = "budget_exceeded"
    status = 429


class RunTimeout(RunError):
    """The call did not finish within its ``timeout`` (queueing and retries included)."""

    type = "run_timeout"
    status = 504


class OutputValidationError(RunError):
    """The answer is not JSON matching the version's output schema (after one repair try).

    ``raw_text`` is the model's last answer; ``errors`` what was wrong with it.
    """

    type = "output_validation_error"
    status = 502

    def __init__(
        self, message: str, *, raw_text: str = "", errors: list[str] | None = None, **details: Any
    ) -> None:
        super().__init__(message, raw_text=raw_text, errors=list(errors or []), **details)
        self.raw_text = raw_text
        self.errors = list(errors or [])


class StreamInterrupted(RunError):
    """A stream broke after text was already delivered; ``partial_text`` is what arrived."""

    type = "stream_interrupted"
    status = 502

    def __init__(self, message: str, *, partial_text: str = "", **details: Any) -> None:
        super().__init__(message, partial_text=partial_text, **details)
        self.partial_text = partial_text


class ParameterRefused(RunError):
    """The API refused a setting of the version; ``parameter`` names the one to remove."""

    type = "parameter_refused"
    status = 422

    def __init__(self, message: str, *, parameter: str | None = None, **details: Any) -> None:
        super().__init__(message, parameter=parameter, **details)
        self.parameter = parameter


class BatchError(RunError):
    """A Message Batch as a whole could not be submitted, followed or read.

    ``batch_id`` is the API's id of the batch when it has one (``msgbatch_...``).
    """

    type = "batch_error"
    status = 502

    def __init__(self, message: str, *, batch_id: str | None = None, **details: Any) -> None:
        super().__init__(message, batch_id=batch_id, **details)
        self.batch_id = batch_id


class BatchItemFailed(RunError):
    """One item of a Message Batch did not succeed (its run is logged with this error).

    ``outcome`` is the API's result type (``errored``, ``expired``, ``canceled``);
    ``error_type`` the API's error type of an errored item (``overloaded_error``...), which is
    also the run's ``error_type``; ``custom_id`` the item.
    """

    type = "batch_item_failed"
    status = 502

    def __init__(
        self,
        message: str,
        *,
        outcome: str = "errored",
        error_type: str | None = None,
        custom_id: str | None = None,
        **details: Any,
    ) -> None:
        super().__init__(
            message, outcome=outcome, error_type=error_type, custom_id=custom_id, **details
        )
        self.outcome = outcome
        self.error_type = error_type
        self.custom_id = custom_id


class BatchItemExpired(BatchItemFailed):
    """A batch item was not processed before its batch expired (24 hours after submission)."""

    type = "batch_expired"


class BatchItemCanceled(BatchItemFailed):
    """A batch item was not processed because its batch was canceled."""

    type = "batch_canceled"


class InputFileError(ValidationError):
    """A line of an input file is not usable; ``line`` is its number (1-based)."""

    type = "invalid_input"

    def __init__(self, message: str, *, line: int | None = None, **details: Any) -> None:
        super().__init__(message, line=line, **details)
        self.line = line


class AuthenticationError(RegistryError):
    """An API key is missing, unknown or revoked (HTTP 401)."""

    type = "unauthorized"
    status = 401


class ServiceUnavailable(RegistryError):
    """The registry server cannot be reached (or fails) and no cached or fallback copy exists."""

    type = "unavailable"
    status = 503


__all__ = [
    "PUBLIC_DETAILS",
    "AuthenticationError",
    "BatchError",
    "BatchItemCanceled",
    "BatchItemExpired",
    "BatchItemFailed",
    "BudgetExceeded",
    "ConfigurationError",
    "ConflictError",
    "DatabaseUnavailable",
    "InputFileError",
    "NotFound",
    "OutputValidationError",
    "ParameterRefused",
    "PermissionDenied",
    "RateLimited",
    "RegistryError",
    "RenderError",
    "RenderLimitExceeded",
    "RunError",
    "RunTimeout",
    "SchemaError",
    "SecurityError",
    "ServiceUnavailable",
    "StreamInterrupted",
    "SuiteGateError",
    "TemplateSyntaxError",
    "UnpricedModel",
    "ValidationError",
]
