"""Prompt template registry with database-backed versioning.

Prompts leave the code: every save is an immutable numbered version in SQL, labels such as
``production`` point at versions, and apps fetch, render and run them::

    from registry import Registry

    reg = Registry()  # REGISTRY_DATABASE_URL or sqlite:///registry.db
    version = reg.get("support-answer")  # label production
    request = version.render(question="Where is my invoice?").to_request()

Only the errors load with the package; ``Registry`` and every other public name load on first
access (PEP 562), so ``import registry.client`` (an app that talks HTTP) never loads the
database stack. ``from registry import *`` loads them all; none of them loads the ORM or the
``anthropic`` SDK.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (
    AuthenticationError,
    BatchError,
    BatchItemCanceled,
    BatchItemExpired,
    BatchItemFailed,
    BudgetExceeded,
    ConfigurationError,
    ConflictError,
    DatabaseUnavailable,
    InputFileError,
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

if TYPE_CHECKING:
    from .diff import VersionDiff
    from .labels import LabelEvent, LabelMove, Release
    from .prompts import Prompt
    from .registry import Registry
    from .rendering import Rendered
    from .run_result import RunResult
    from .service import RegistryService
    from .source import PromptSource
    from .versions import PromptVersion

#: public names loaded on first use, so ``import registry.client`` (an app that talks HTTP)
#: or ``registry.errors`` never loads the database stack: name -> module defining it
_LAZY = {
    "LabelEvent": ".labels",
    "LabelMove": ".labels",
    "Prompt": ".prompts",
    "PromptSource": ".source",
    "PromptVersion": ".versions",
    "Registry": ".registry",
    "RegistryService": ".service",
    "Release": ".labels",
    "Rendered": ".rendering",
    "RunResult": ".run_result",
    "VersionDiff": ".diff",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'registry' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # the next access is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__version__ = "0.1.0"

__all__ = [
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
