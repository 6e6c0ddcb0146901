"""Prompt template registry with database-backed versioning.

Prompts leave the code: every save is an immutable numbered version in SQL, labels such as
``production`` point at versions, and apps fetch, render and run them::

    from registry import Registry

    reg = Registry()  # REGISTRY_DATABASE_URL or sqlite:///registry.db
    version = reg.get("support-answer")  # label production
    request = version.render(question="Where is my invoice?").to_request()
"""

from __future__ import annotations

from .diff import VersionDiff
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
from .labels import LabelEvent, LabelMove, Release
from .listing import Prompt
from .registry import Registry
from .rendering import Rendered
from .run_result import RunResult
from .service import RegistryService
from .source import PromptSource
from .versions import PromptVersion

__version__ = "0.1.0"


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
    "PromptSource",
    "PromptVersion",
    "RateLimited",
    "Registry",
    "RegistryError",
    "RegistryService",
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
