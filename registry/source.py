"""``PromptSource``: what an app codes against, whether prompts come from SQL or over HTTP.

:class:`registry.Registry` (the database) and :class:`registry.client.RegistryClient` (the
HTTP API) both satisfy it with the same signatures, so an app can take either::

    def answer(source: PromptSource, question: str) -> str:
        return source.run("support-answer", {"question": question}).text
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Protocol, runtime_checkable

from .prompts import Prompt
from .rendering import Rendered
from .run_result import RunResult
from .versions import PromptVersion


@runtime_checkable
class RunStream(Protocol):
    """Text chunks of a run as the model writes them; ``result`` once it is exhausted."""

    @property
    def result(self) -> RunResult | None:
        """The run's result after the last chunk (None before)."""

    @property
    def text(self) -> str:
        """The text received so far."""

    def __iter__(self) -> Iterator[str]: ...

    def __next__(self) -> str: ...

    def close(self) -> None:
        """Stop reading (a stream closed early is logged as cancelled)."""


@runtime_checkable
class PromptSource(Protocol):
    """Fetch, render and run prompts, score runs, list prompts and versions (see
    :class:`registry.Registry`)."""

    def get(
        self,
        name: str,
        *,
        label: str | None = None,
        version: int | None = None,
        unit_id: str | None = None,
    ) -> PromptVersion:
        """A version by label (default ``production``), by number, or ``latest``."""

    def render(
        self,
        name: str,
        variables: Mapping[str, Any] | None = None,
        *,
        label: str | None = None,
        version: int | None = None,
        unit_id: str | None = None,
    ) -> Rendered:
        """``get`` then ``render``."""

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
        """Run the prompt against the Messages API (one run row is logged)."""

    def stream(
        self,
        name: str,
        variables: Mapping[str, Any] | None = None,
        *,
        label: str | None = None,
        version: int | None = None,
        unit_id: str | None = None,
        **options: Any,
    ) -> RunStream:
        """Like ``run``, yielding text as it arrives."""

    def feedback(self, run_id: str, name: str, value: float, *, comment: str = "") -> None:
        """Attach a score (thumbs up = 1.0, a rating...) to a run."""

    def prompts(
        self,
        *,
        folder: str | None = None,
        tag: str | None = None,
        search: str | None = None,
        include_archived: bool = False,
    ) -> list[Prompt]:
        """Prompts with their labels and newest version number, sorted by name."""

    def versions(self, name: str) -> list[PromptVersion]:
        """Every version of a prompt, oldest first."""


__all__ = ["PromptSource", "RunStream"]
