"""Prompt template registry with database-backed versioning.

Prompts leave the code: every save is an immutable numbered version in SQL, labels such as
``production`` point at versions, and apps fetch, render and run them::

    from registry import Registry

    reg = Registry()  # REGISTRY_DATABASE_URL or sqlite:///registry.db
    version = reg.get("support-answer")  # label production
    request = version.render(question="Where is my invoice?").to_request()
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import (
    AuthenticationError,
    BudgetExceeded,
    ConfigurationError,
    ConflictError,
    NotFound,
    OutputValidationError,
    ParameterRefused,
    PermissionDenied,
    RateLimited,
    RegistryError,
    RenderError,
    RunError,
    RunTimeout,
    SchemaError,
    SecurityError,
    ServiceUnavailable,
    StreamInterrupted,
    SuiteGateError,
    TemplateSyntaxError,
    ValidationError,
)
from .labels import LabelEvent, LabelMove
from .registry import Prompt, Registry, Release
from .rendering import Rendered
from .versions import PromptVersion

if TYPE_CHECKING:
    from .diff import VersionDiff
    from .runner import RunResult

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # the runner pulls in the anthropic SDK: load it only when asked for
    if name == "RunResult":
        from .runner import RunResult

        return RunResult
    if name == "VersionDiff":
        from .diff import VersionDiff

        return VersionDiff
    raise AttributeError(f"module 'registry' has no attribute {name!r}")


__all__ = [
    "AuthenticationError",
    "BudgetExceeded",
    "ConfigurationError",
    "ConflictError",
    "LabelEvent",
    "LabelMove",
    "NotFound",
    "OutputValidationError",
    "ParameterRefused",
    "PermissionDenied",
    "Prompt",
    "PromptVersion",
    "RateLimited",
    "Registry",
    "RegistryError",
    "Release",
    "RenderError",
    "Rendered",
    "RunError",
    "RunResult",
    "RunTimeout",
    "SchemaError",
    "SecurityError",
    "ServiceUnavailable",
    "StreamInterrupted",
    "SuiteGateError",
    "TemplateSyntaxError",
    "ValidationError",
    "VersionDiff",
    "__version__",
]
