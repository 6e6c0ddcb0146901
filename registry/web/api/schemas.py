"""Request and response models of the HTTP API.

The same pydantic models validate requests and generate ``/api/v1/openapi.json``, so the
document cannot drift from the behaviour. Request bodies are strict (``"3"`` is not a
version number, an unknown key is an error naming it); query strings are parsed leniently
since everything in a URL is text, but an unknown parameter is an error there too.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ...model_settings import ModelSettings
from ...names import LABEL_NAME, MAX_PROMPT_NAME, PROMPT_NAME

#: JSON Schema patterns shared by the path parameters and the bodies
PROMPT_NAME_PATTERN = PROMPT_NAME.pattern
LABEL_PATTERN = LABEL_NAME.pattern


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _Query(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Response(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- requests -----------------------------------------------------------------------------


class ListPromptsQuery(_Query):
    """Filters of ``GET /prompts``."""

    folder: str | None = Field(None, max_length=MAX_PROMPT_NAME, description="Only this folder.")
    tag: str | None = Field(None, max_length=64, description="Only prompts with this tag.")
    search: str | None = Field(None, max_length=MAX_PROMPT_NAME, description="Name contains.")
    include_archived: bool = Field(False, description="Also archived prompts.")


class VersionsQuery(_Query):
    """Which prompt ``GET /versions`` lists."""

    prompt: str = Field(
        min_length=1, max_length=MAX_PROMPT_NAME, description="Prompt name (with its folders)."
    )


class SelectorQuery(_Query):
    """Which version: a label (default ``production``), a number, or a unit's variant."""

    label: str | None = Field(
        None,
        pattern=LABEL_PATTERN,
        description="Label to resolve (default `production`; `latest` is the newest version).",
    )
    version: int | None = Field(None, ge=1, description="Version number (not with `label`).")
    unit_id: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="Experiment unit (user, session...): its variant when an experiment runs.",
    )


class Message(_Request):
    """One message template."""

    role: Literal["user", "assistant"]
    content: str = Field(description="Jinja2 template of the message text.")


class CreateVersionRequest(_Request):
    """Body of ``POST /prompts/{name}/versions``: the content of the new version."""

    system: str | None = Field(None, description="Jinja2 template of the system prompt.")
    messages: list[Message] = Field(min_length=1, description="Message templates, user first.")
    settings: ModelSettings = Field(description="Messages API parameters (model, max_tokens...).")
    variables: dict[str, Any] = Field(
        default_factory=dict,
        description="Variable contract: name -> {type, required, default, description} or a type.",
    )
    output_schema: dict[str, Any] | None = Field(None, description="JSON Schema of the answer.")
    message: str = Field("", max_length=10_000, description="Commit message.")
    author: str = Field("", max_length=200, description="Author (default: the API key's name).")
    labels: list[str] = Field(
        default_factory=list,
        description="Labels to point at the new version (protected labels are refused).",
    )
    description: str | None = Field(None, description="New description of the prompt.")
    tags: list[str] | None = Field(None, description="New tags of the prompt.")


class MoveLabelRequest(_Request):
    """Body of ``PUT /prompts/{name}/labels/{label}``."""

    version: int = Field(ge=1, description="Version the label should point at.")
    expected_version: int | None = Field(
        None,
        ge=0,
        description="Compare-and-set: the version you believe the label is at (0: unset).",
    )
    reason: str = Field("", max_length=10_000, description="Why (kept in the audit).")


class RenderRequest(_Request):
    """Body of ``POST /prompts/{name}/render``."""

    variables: dict[str, Any] = Field(default_factory=dict, description="Template variables.")
    label: str | None = Field(
        None, pattern=LABEL_PATTERN, description="Label (default production)."
    )
    version: int | None = Field(None, ge=1, description="Version number (not with `label`).")
    unit_id: str | None = Field(None, min_length=1, max_length=200, description="Experiment unit.")


class RunRequest(RenderRequest):
    """Body of ``POST /prompts/{name}/run``."""

    stream: bool = Field(
        False,
        description="Answer Server-Sent Events: `delta` events with text, then `done` with "
        "the run summary (or `error`).",
    )
    cache: bool | None = Field(
        None, description="Serve and store the answer in the response cache (deterministic)."
    )
    timeout: float | None = Field(
        None, gt=0, le=600, description="Seconds the whole call may take, retries included."
    )
    metadata: dict[str, Any] | None = Field(
        None, description="Small JSON object kept with the run."
    )

    def run_options(self) -> dict[str, Any]:
        """The runner options this request sets."""
        return {
            k: v
            for k, v in (
                ("cache", self.cache),
                ("timeout", self.timeout),
                ("metadata", self.metadata),
            )
            if v is not None
        }


class FeedbackRequest(_Request):
    """Body of ``POST /runs/{run_id}/feedback``."""

    name: str = Field(min_length=1, max_length=100, description="Kind of score, e.g. thumbs_up.")
    value: float = Field(allow_inf_nan=False, description="The score (thumbs up = 1.0).")
    comment: str = Field("", max_length=10_000, description="Free text.")


# -- responses ----------------------------------------------------------------------------


class PromptSummary(_Response):
    """A prompt as listed."""

    name: str
    description: str
    tags: list[str]
    labels: dict[str, int] = Field(description="Label -> version number.")
    latest_version: int
    created_at: str
    updated_at: str
    archived: bool


class PromptList(_Response):
    """Answer of ``GET /prompts``."""

    prompts: list[PromptSummary]


class VersionOut(_Response):
    """One version of a prompt: content and metadata."""

    id: int
    name: str
    version: int
    system: str | None
    messages: list[dict[str, str]]
    settings: dict[str, Any]
    variables: dict[str, dict[str, Any]]
    output_schema: dict[str, Any] | None
    content_hash: str
    message: str
    author: str
    created_at: str
    labels: list[str] = Field(description="Labels pointing at this version now.")
    experiment: str | None = Field(description="Experiment that chose this version, if any.")
    variant: str | None = Field(description="Experiment variant, if any.")
    includes: dict[str, str] = Field(
        description="Source text of every prompt this one includes (directly or not), keyed "
        "by reference (`name@label` or `name@3`), resolved now: enough to render offline."
    )


class VersionList(_Response):
    """Answer of ``GET /prompts/{name}/versions``."""

    versions: list[VersionOut] = Field(description="Every version, oldest first.")


class CreatedVersion(VersionOut):
    """Answer of ``POST /prompts/{name}/versions``."""

    created: bool = Field(description="False when the content equals the newest version.")


class LabelOut(_Response):
    """Answer of ``PUT /prompts/{name}/labels/{label}``."""

    name: str
    label: str
    version: int


class RenderedOut(_Response):
    """A rendered prompt."""

    name: str
    version: int
    system: str | None
    messages: list[dict[str, Any]]
    settings: dict[str, Any]
    variables: dict[str, Any] = Field(description="Values used, defaults filled in.")
    request: dict[str, Any] = Field(
        description="The JSON body for the Messages API (`POST /v1/messages`)."
    )


class RunOut(BaseModel):
    """Summary of a run (``RunResult.to_dict()``): id, text, parsed output, usage, cost."""

    model_config = ConfigDict(extra="allow")

    run_id: str
    name: str
    version: int | None
    model: str | None
    text: str
    parsed: Any = Field(description="The JSON answer when the version has an output schema.")
    status: str
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    latency_ms: float
    experiment: str | None = None
    variant: str | None = None


class FeedbackOut(_Response):
    """Answer of ``POST /runs/{run_id}/feedback``."""

    run_id: str
    name: str
    value: float
    comment: str


class ExperimentReport(BaseModel):
    """An experiment's report (its shape belongs to the experiments module)."""

    model_config = ConfigDict(extra="allow")


class Health(_Response):
    """Answer of ``GET /health``."""

    status: Literal["ok"]
    database: str
    version: str


class ErrorDetail(_Response):
    """What went wrong."""

    type: str = Field(description="Machine-readable kind, e.g. not_found, validation_error.")
    message: str = Field(description="What went wrong and what to do next.")
    field: str | None = Field(None, description="The request field at fault, when one is.")
    variable: str | None = Field(None, description="The template variable at fault.")
    run_id: str | None = Field(None, description="The run that failed (its row is kept).")
    retry_after: float | None = Field(None, description="Seconds to wait before retrying.")
    limit: str | None = Field(
        None, description="The render limit exceeded: the environment variable that sets it."
    )
    maximum: int | None = Field(None, description="The value of that render limit.")
    retryable: bool | None = Field(
        None, description="database_unavailable: whether trying again later is worth it."
    )
    raw_text: str | None = Field(
        None, description="output_validation_error: the model's answer that did not validate."
    )
    errors: list[str] | None = Field(
        None, description="output_validation_error: what was wrong with the answer."
    )
    partial_text: str | None = Field(
        None, description="stream_interrupted: the text sent before the stream broke."
    )
    parameter: str | None = Field(
        None, description="parameter_refused: the model setting the API refused."
    )
    expected: int | None = Field(None, description="conflict: the version the caller expected.")
    actual: int | None = Field(None, description="conflict: the version the label is at.")


class ErrorOut(_Response):
    """Every error answer."""

    error: ErrorDetail


class StreamEvent(_Response):
    """Not sent as JSON: documents the Server-Sent Events of a streamed run.

    ``event: delta`` / ``data: {"text": "..."}``, then ``event: done`` / ``data: <RunOut>``,
    or ``event: error`` / ``data: <ErrorDetail>``.
    """

    text: str


__all__ = [
    "CreateVersionRequest",
    "CreatedVersion",
    "ErrorDetail",
    "ErrorOut",
    "ExperimentReport",
    "FeedbackOut",
    "FeedbackRequest",
    "Health",
    "LabelOut",
    "ListPromptsQuery",
    "Message",
    "MoveLabelRequest",
    "PromptList",
    "PromptSummary",
    "RenderRequest",
    "RenderedOut",
    "RunOut",
    "RunRequest",
    "SelectorQuery",
    "StreamEvent",
    "VersionList",
    "VersionOut",
    "VersionsQuery",
]
