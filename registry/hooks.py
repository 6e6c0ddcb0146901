"""Where capabilities plug into the core: typed hook lists a ``Registry`` calls at fixed points.

The core (reads, writes, label moves) knows nothing of experiments, suites, notifications,
metrics or webhooks. Each of those registers callables here when a ``Registry`` is built
(see :class:`registry.Registry`, the one place that wires them), and the core calls them:

=====================  ======================================  ==================================
hook                   called                                  may
=====================  ======================================  ==================================
``label_guards``       inside a label move's transaction,      refuse the move (raise a
                       before it is written                    ``RegistryError``); add statements
                                                               to the same transaction
``label_listeners``    after cached labels are dropped (a      react (announce, refresh); never
                       move, a new version, an archive...)     fails the caller
``version_listeners``  after a new version is committed        react (webhooks, metrics)
``run_listeners``      after a run's row is written (or        react (guardrails, metrics)
                       spooled while the database is down)
``serving_policies``   by ``get(name, unit_id=...)`` before    return the version to serve, or
                       the label is resolved                   None to let the label apply
``render_samples``     by a save's dry render (before it       give ``(case, variables)`` the
                       writes anything)                        new version is rendered with
``closers``            by ``Registry.close()``, in order       release threads and connections
=====================  ======================================  ==================================

Listeners' errors are logged and swallowed (the change they react to is already committed);
guards' errors abort the move.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeAlias

from .labels import LabelGuard

if TYPE_CHECKING:
    from .run_result import RunResult
    from .versions import PromptVersion

log = logging.getLogger("registry.hooks")

#: ``(prompt, label)`` whose cached resolution was dropped; prompt '' means every prompt,
#: label None every label of the prompt
LabelListener: TypeAlias = Callable[[str, "str | None"], None]
#: a version just committed by ``create_version`` (not called when identical content
#: returned the existing version)
VersionListener: TypeAlias = "Callable[[PromptVersion], None]"
#: a run whose row was just written (successful or not)
RunListener: TypeAlias = "Callable[[RunResult], None]"
#: ``(prompt, unit_id, label)`` -> the version to serve that unit, or None (the label applies)
ServingPolicy: TypeAlias = "Callable[[str, str, str | None], PromptVersion | None]"
#: prompt -> ``(case, variables)`` a new version of it is dry-rendered with at save, besides
#: its contract's defaults (the regression suites give the prompt's test cases)
RenderSamples: TypeAlias = Callable[[str], Iterable[tuple[str, Mapping[str, Any]]]]


class Hooks:
    """The hook lists of one registry (see the module documentation for when each runs)."""

    __slots__ = (
        "closers",
        "label_guards",
        "label_listeners",
        "render_samples",
        "run_listeners",
        "serving_policies",
        "version_listeners",
    )

    def __init__(self) -> None:
        self.label_guards: list[LabelGuard] = []
        self.label_listeners: list[LabelListener] = []
        self.version_listeners: list[VersionListener] = []
        self.run_listeners: list[RunListener] = []
        self.serving_policies: list[ServingPolicy] = []
        self.render_samples: list[RenderSamples] = []
        self.closers: list[Callable[[], None]] = []

    def labels_dropped(self, name: str, label: str | None) -> None:
        """Tell the label listeners (their errors are logged, never raised)."""
        for listener in list(self.label_listeners):
            try:
                listener(name, label)
            except Exception:
                log.exception("label listener %r failed for %s@%s", listener, name, label)

    def version_created(self, version: PromptVersion) -> None:
        """Tell the version listeners (their errors are logged, never raised)."""
        for listener in list(self.version_listeners):
            try:
                listener(version)
            except Exception:
                log.exception("version listener %r failed for %r", listener, version)

    def run_logged(self, result: RunResult) -> None:
        """Tell the run listeners (their errors are logged, never raised)."""
        for listener in list(self.run_listeners):
            try:
                listener(result)
            except Exception:
                log.exception("run listener %r failed for run %s", listener, result.run_id)

    def close(self) -> None:
        """Run the closers, last registered first (their errors are logged)."""
        for closer in reversed(self.closers):
            try:
                closer()
            except Exception:
                log.exception("closing %r failed", closer)


__all__ = [
    "Hooks",
    "LabelGuard",
    "LabelListener",
    "RenderSamples",
    "RunListener",
    "ServingPolicy",
    "VersionListener",
]
