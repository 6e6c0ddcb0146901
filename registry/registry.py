"""``Registry``: the class apps and editors use; the one place capabilities are wired in.

:class:`~registry.service.RegistryService` is the core (reads, writes, label moves, hooks).
``Registry`` adds what sits above it and registers each capability's hooks in
``__init__``, here and nowhere else:

- label moves announced to every process (PostgreSQL ``LISTEN``/``NOTIFY``, :mod:`registry.notify`);
- the promotion gate of the regression suites (a label guard, :mod:`registry.suites.gate`),
  and their test cases as what a save dry-renders a new version with (render samples);
- A/B experiments (a serving policy, :mod:`registry.experiments.serving`, whose runtime adds
  its guardrail run listener when it starts);
- running prompts (:mod:`registry.runner`), import/export (:mod:`registry.transfer`) and
  seeding from YAML files (:mod:`registry.prompt_files`), as thin methods.

Capabilities load on first use, not at import: ``from registry import Registry`` and a first
``get`` load neither the ORM nor the ``anthropic`` SDK (each lazy import below says so).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .service import RegistryService
from .versions import PromptVersion

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from .experiments.serving import ExperimentRuntime
    from .labels import LabelMove
    from .run_result import RunResult
    from .runner import Runner, StreamResult


class Registry(RegistryService):
    """Versioned prompts in SQL: create, fetch, render, label, diff, release, run.

    >>> reg = Registry("sqlite:///registry.db")                     # doctest: +SKIP
    >>> reg.get("support-answer").render(question="Hi").to_request()  # doctest: +SKIP

    ``url`` defaults to ``REGISTRY_DATABASE_URL`` or ``sqlite:///registry.db``. An embedded
    SQLite database is created or upgraded on first use; any other database must have been
    upgraded with ``prompt-registry db upgrade`` (the error says so).
    ``cache_ttl`` is how long a resolved label is trusted in this process (default
    ``REGISTRY_CACHE_TTL`` or 1 s); moves made through this instance are seen at once.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        cache_ttl: float | None = None,
        auto_upgrade: bool | None = None,
        **engine_kwargs: Any,
    ) -> None:
        super().__init__(url, cache_ttl=cache_ttl, auto_upgrade=auto_upgrade, **engine_kwargs)
        self._experiments: ExperimentRuntime | None = None
        # -- the capabilities, each on its hooks (see registry.hooks) ----------------------
        if self.db.dialect == "postgresql":
            # lazy for cold start: SQLite never needs it (one process, nothing to announce)
            from .notify import install_notifier

            install_notifier(self)  # label guard + label listener: moves reach every process
        self.hooks.label_guards.append(self._suite_gate)
        self.hooks.render_samples.append(self._test_cases)
        self.hooks.serving_policies.append(self._experiment_variant)
        self.hooks.run_listeners.append(self._guardrails)

    def _suite_gate(self, session: Session, move: LabelMove) -> None:
        """Label guard: protected labels only move to versions whose regression suite passed."""
        # lazy for cold start: the suites load on the first label move
        from .suites.gate import gate

        gate(self, session, move)

    def _test_cases(self, name: str) -> list[tuple[str, Mapping[str, Any]]]:
        """Render samples: a save dry-renders the new version with each of the prompt's cases."""
        # lazy for cold start: the suites load on the first save
        from .suites.cases import case_variables

        return case_variables(self, name)

    def _experiment_variant(
        self, name: str, unit_id: str, label: str | None
    ) -> PromptVersion | None:
        """Serving policy: the unit's variant when an experiment runs on the prompt."""
        runtime = self._experiments
        if runtime is None:
            runtime = self._experiments = self.experiments
        return runtime.assign(name, unit_id, label)

    def _guardrails(self, result: RunResult) -> None:
        """Run listener: a run served by an experiment variant may trip its guardrails."""
        if result.experiment is None:
            return
        # lazy for cold start: the guardrails load the experiments' statistics
        from .experiments.guardrails import guardrail_watch

        guardrail_watch(self).on_run(result)

    @property
    def experiments(self) -> ExperimentRuntime:
        """The experiment runtime of this registry (serving, exposures, guardrails)."""
        # lazy for cold start: apps that never pass a unit_id do not load experiments
        from .experiments.serving import ExperimentRuntime

        return self.component(ExperimentRuntime)

    # -- running (the runner lives in registry.runner) ---------------------------------------

    @property
    def runner(self) -> Runner:
        """The runner that calls the Anthropic Messages API for this registry."""
        # lazy for cold start: the runner loads the anthropic SDK
        from .runner import Runner

        return self.component(Runner)

    def run(
        self,
        name: str,
        variables: Mapping[str, Any] | None = None,
        *,
        label: str | None = None,
        version: int | None = None,
        unit_id: str | None = None,
        **options: Any,
    ) -> RunResult:
        """Render and run a prompt against the Messages API; logs one run row whatever happens.

        ``options``: see :class:`registry.runner.options.RunOptions` (``cache``, ``timeout``,
        ``metadata``, ``source``...). Errors are raised after the row is written and carry
        its id (``exc.run_id``).
        """
        return self.runner.run(
            name, variables, label=label, version=version, unit_id=unit_id, **options
        )

    def stream(
        self,
        name: str,
        variables: Mapping[str, Any] | None = None,
        *,
        label: str | None = None,
        version: int | None = None,
        unit_id: str | None = None,
        **options: Any,
    ) -> StreamResult:
        """Like ``run`` but yields text as it arrives; the iterator's ``result`` is the result."""
        return self.runner.stream(
            name, variables, label=label, version=version, unit_id=unit_id, **options
        )

    def feedback(self, run_id: str, name: str, value: float, *, comment: str = "") -> None:
        """Attach a score (thumbs up = 1.0, a rating...) to a run (``NotFound`` for an unknown
        run)."""
        self.runner.feedback(run_id, name, value, comment=comment)

    # -- import, export, seed ---------------------------------------------------------------

    def export(
        self, path: str | Path | None = None, *, names: Iterable[str] | None = None
    ) -> dict[str, Any]:
        """Every prompt with its versions and labels; written as YAML or JSON to ``path``."""
        # lazy for cold start: pydantic and YAML are for tools, not apps
        from .transfer import export_registry

        return export_registry(self, path, names=names)

    def import_(
        self, source: str | Path | Mapping[str, Any], *, actor: str = "import"
    ) -> dict[str, Any]:
        """Load an export (file or dict); versions already present are skipped."""
        # lazy for cold start: pydantic and YAML are for tools, not apps
        from .transfer import import_registry

        return import_registry(self, source, actor=actor)

    def seed(self, directory: str | Path, *, author: str = "seed") -> list[tuple[str, int, bool]]:
        """Load every ``*.yaml`` prompt file of ``directory``; returns (name, version, created)."""
        # lazy for cold start: pydantic and YAML are for tools, not apps
        from .prompt_files import seed_directory

        return seed_directory(self, Path(directory), author=author)


__all__ = ["Registry"]
