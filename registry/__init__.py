"""Prompt template registry with database-backed versioning.

Prompts leave the code: every save is an immutable numbered version in SQL, labels such as
``production`` point at versions, and apps fetch, render and run them::

    from registry import Registry

    reg = Registry()  # REGISTRY_DATABASE_URL or sqlite:///registry.db
    version = reg.get("support-answer")  # label production
    request = version.render(question="Where is my invoice?").to_request()

``RunResult``, ``VersionDiff``, ``PromptSource`` and ``RegistryService`` are loaded on first
access (they are not needed to fetch and render); ``from registry import *`` loads them too, and
none of them loads the ORM or the ``anthropic`` SDK.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (
    AuthenticationError,
    BudgetExceeded,
    ConfigurationError,
    ConflictError,
    DatabaseUnavailable,
    NotFound,
    OutputValidationError,
    ParameterRefused,
    PermissionDenied,
    RateLimited,
    RegistryError,
    RenderError,
    RenderLimitExceeded,
    RunError,
    RunTimeout,
    SchemaError,
    SecurityError,
    ServiceUnavailable,
    StreamInterrupted,
    SuiteGateError,
    TemplateSyntaxError,
    UnpricedModel,
    ValidationError,
)
from .labels import LabelEvent, LabelMove, Release
from .listing import Prompt
from .registry import Registry
from .rendering import Rendered
from .versions import PromptVersion

if TYPE_CHECKING:
    from .diff import VersionDiff
    from .run_result import RunResult
    from .service import RegistryService
    from .source import PromptSource

__version__ = "0.1.0"

#: names loaded on first access (PEP 562), so that ``import registry`` stays lean for apps
#: that only fetch and render; none of them loads the ORM or the anthropic SDK
_LAZY = {
    "PromptSource": "source",
    "RegistryService": "service",
    "RunResult": "run_result",
    "VersionDiff": "diff",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'registry' has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


__all__ = [
    "AuthenticationError",
    "BudgetExceeded",
    "ConfigurationError",
    "ConflictError",
    "DatabaseUnavailable",
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
    "RenderLimitExceeded",
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
    "UnpricedModel",
    "ValidationError",
    "VersionDiff",
    "__version__",
]
