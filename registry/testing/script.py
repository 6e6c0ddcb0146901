"""Script files for the fake Anthropic server: scripted replies, latency and rate limits.

A script is a YAML (or JSON) file; unknown keys are errors, so a typo never goes unnoticed::

    latency: 0.05                 # seconds added to every request
    default: {text: "fallback"}   # the answer once the replies run out (else an echo)
    rate_limit: {requests: 50, window: 60, enforce: true}
    replies:                      # one per /v1/messages request, in order (retries included)
      - text: "Your invoice is under Billing."
        chunks: 4                 # text deltas when streamed
        delay: 0.2                # seconds before answering
      - error: 429                # status; the error type follows it (rate_limit_error)
        retry_after: 1
      - error: 529                # overloaded_error
      - error: 500
        message: "upstream failed"
      - cut_stream: "Half an ans" # the connection drops mid-stream (mid-body when not streamed)
      - stream_error: overloaded_error   # deltas of `text`, then an `event: error`
        text: "partial "
      - malformed: '{"id": "msg_' # a body that is not JSON
        repeat: 3                 # the same reply three times
      - text: "cached"            # usage as given (else the prompt cache accounts for it)
        cache_read_input_tokens: 1800
    rules:                        # when the replies run out: the first rule whose text occurs
      - contains: refund          # in the request (system or messages) answers
        reply: {text: "Refunds take 5 days."}
    prompt_cache: {min_tokens: 1024}   # or `prompt_cache: null`: no cache accounting
    batch:                        # Message Batches
      polls: 2                    # retrieves answered in_progress before a batch ends
      order: shuffled             # results order: shuffled, submitted or reversed
      items:                      # one per batch item, in submission order (then as above)
        - text: "first answer"
        - {error: 500}            # an errored item
        - {expired: true}         # an expired item (also canceled: true)

:func:`load_script` reads one; :meth:`Script.apply` loads it into a
:class:`~registry.testing.FakeAnthropic`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..errors import ValidationError
from .prompt_cache import PromptCache
from .replies import ERROR_TYPE_BY_STATUS, STATUS_BY_ERROR_TYPE, Reply, request_text

if TYPE_CHECKING:
    from .fake_anthropic import FakeAnthropic
    from .rate_limit import RateLimit

ReplyKey = Literal[
    "text", "error", "cut_stream", "stream_error", "malformed", "expired", "canceled"
]
KINDS: tuple[ReplyKey, ...] = (
    "text",
    "error",
    "cut_stream",
    "stream_error",
    "malformed",
    "expired",
    "canceled",
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ReplySpec(_Strict):
    """One scripted reply: exactly one of ``text``, ``error``, ``cut_stream``,
    ``stream_error``, ``malformed`` (or, for batch items, ``expired`` or ``canceled``), with
    the options that kind takes."""

    text: str | None = Field(
        None,
        description="A message with this text (or, with "
        "stream_error, the text streamed before the error).",
    )
    error: int | None = Field(None, ge=400, le=599, description="An HTTP error status.")
    cut_stream: str | None = Field(None, description="Text sent before the connection drops.")
    stream_error: str | None = Field(None, description="Error type sent as an SSE error event.")
    malformed: str | None = Field(None, description="A body that is not valid JSON.")
    expired: Literal[True] | None = Field(None, description="A batch item that expired.")
    canceled: Literal[True] | None = Field(None, description="A batch item that was canceled.")
    error_type: str | None = Field(None, description="Error type (default: from the status).")
    message: str | None = Field(None, description="Error message.")
    retry_after: float | None = Field(None, ge=0, description="retry-after header, seconds.")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra response headers.")
    status: int = Field(200, ge=100, le=599, description="Status of a malformed answer.")
    stop_reason: str = "end_turn"
    stop_sequence: str | None = None
    input_tokens: int | None = Field(None, ge=0)
    output_tokens: int | None = Field(None, ge=0)
    cache_creation_input_tokens: int | None = Field(None, ge=0)
    cache_read_input_tokens: int | None = Field(None, ge=0)
    cache_ttl: Literal["5m", "1h"] = "5m"
    delay: float = Field(0.0, ge=0, description="Seconds before answering.")
    chunk_delay: float = Field(0.0, ge=0, description="Seconds between streamed events.")
    chunks: int = Field(4, ge=1, description="Text deltas of a streamed answer.")
    repeat: int = Field(1, ge=1, le=100_000, description="How many times this reply is queued.")

    @model_validator(mode="after")
    def _one_kind(self) -> ReplySpec:
        given = [k for k in KINDS if getattr(self, k) is not None]
        if self.stream_error is not None and "text" in given:
            given.remove("text")  # the text before the error event
        if len(given) != 1:
            raise ValueError(
                "a reply needs exactly one of "
                + ", ".join(KINDS)
                + (f" (got {', '.join(given)})" if given else "")
            )
        if self.stream_error is not None and self.stream_error not in STATUS_BY_ERROR_TYPE:
            raise ValueError(
                f"unknown stream_error {self.stream_error!r}: use one of "
                + ", ".join(sorted(STATUS_BY_ERROR_TYPE))
            )
        return self

    def to_reply(self) -> Reply:
        """The :class:`Reply` this entry describes."""
        headers = dict(self.headers)
        if self.retry_after is not None:
            headers.setdefault("retry-after", f"{self.retry_after:g}")
        if self.error is not None:
            return Reply.error(self.error, self.error_type, self.message, headers, delay=self.delay)
        if self.cut_stream is not None:
            return Reply.cut_stream(
                self.cut_stream, chunks=self.chunks, chunk_delay=self.chunk_delay, delay=self.delay
            )
        if self.stream_error is not None:
            return Reply.stream_error_event(
                self.text if self.text is not None else "partial ",
                self.stream_error,
                self.message,
                chunks=self.chunks,
                chunk_delay=self.chunk_delay,
                delay=self.delay,
            )
        if self.expired:
            return Reply.expired()
        if self.canceled:
            return Reply.canceled()
        if self.malformed is not None:
            return Reply.malformed(
                self.malformed.encode("utf-8"), status=self.status, delay=self.delay
            ).replace(headers=headers)
        assert self.text is not None
        return Reply.text(
            self.text,
            stop_reason=self.stop_reason,
            stop_sequence=self.stop_sequence,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cache_creation_input_tokens=self.cache_creation_input_tokens,
            cache_read_input_tokens=self.cache_read_input_tokens,
            cache_ttl=self.cache_ttl,
            chunks=self.chunks,
            chunk_delay=self.chunk_delay,
            headers=headers,
            delay=self.delay,
        )


class RuleSpec(_Strict):
    """A reply chosen by content: used once the scripted replies run out."""

    contains: str = Field(min_length=1, description="Text to look for in the request.")
    reply: ReplySpec


class RateLimitSpec(_Strict):
    """Rate-limit headers on every answer, and 429s once a limit is spent if ``enforce``."""

    requests: int | None = Field(None, ge=1, description="Requests per window.")
    input_tokens: int | None = Field(None, ge=1, description="Input tokens per window.")
    output_tokens: int | None = Field(None, ge=1, description="Output tokens per window.")
    window: float = Field(60.0, gt=0, description="Window length in seconds.")
    enforce: bool = Field(False, description="Answer 429 with retry-after once spent.")

    def to_rate_limit(self) -> RateLimit:
        """The :class:`~registry.testing.RateLimit` this entry describes."""
        from .rate_limit import RateLimit

        return RateLimit(
            requests=self.requests,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            window=self.window,
            enforce=self.enforce,
        )


class PromptCacheSpec(_Strict):
    """The fake's prompt cache (cache writes and reads for ``cache_control`` marks)."""

    min_tokens: int = Field(1024, ge=0, description="Minimum cacheable prefix, in tokens.")


class BatchSpec(_Strict):
    """How the fake's Message Batches behave."""

    polls: int = Field(1, ge=0, description="Retrieves answered in_progress before the end.")
    order: Literal["shuffled", "submitted", "reversed"] = "shuffled"
    items: list[ReplySpec] = Field(default_factory=list)


class Script(_Strict):
    """A whole script file."""

    latency: float = Field(0.0, ge=0, description="Seconds added to every request.")
    default: ReplySpec | None = None
    rate_limit: RateLimitSpec | None = None
    replies: list[ReplySpec] = Field(default_factory=list)
    rules: list[RuleSpec] = Field(default_factory=list)
    prompt_cache: PromptCacheSpec | None = PromptCacheSpec()
    batch: BatchSpec = BatchSpec()

    def queue(self) -> list[Reply]:
        """The scripted replies in order, repeats expanded."""
        return [spec.to_reply() for spec in self.replies for _ in range(spec.repeat)]

    def apply(self, fake: FakeAnthropic) -> None:
        """Load this script into ``fake``: latency, default, rate limit, rules, replies, the
        prompt cache and Message Batches."""
        fake.latency = self.latency
        fake.prompt_cache = (
            PromptCache(min_tokens=self.prompt_cache.min_tokens)
            if self.prompt_cache is not None
            else None
        )
        fake.batch_polls = self.batch.polls
        fake.batch_result_order = self.batch.order
        fake.enqueue(
            *(spec.to_reply() for spec in self.batch.items for _ in range(spec.repeat)),
            endpoint="batch_items",
        )
        if self.default is not None:
            fake.default = self.default.to_reply()
        if self.rate_limit is not None:
            fake.rate_limit = self.rate_limit.to_rate_limit()
        if self.rules:
            rules = [(rule.contains, rule.reply.to_reply()) for rule in self.rules]

            def responder(body: dict[str, Any]) -> Reply | None:
                text = request_text(body)
                return next((reply for needle, reply in rules if needle in text), None)

            fake.responder = responder
        fake.enqueue(*self.queue())


def parse_script(data: Any, *, source: str = "script") -> Script:
    """Validate a script already parsed from YAML or JSON."""
    try:
        return Script.model_validate(data if data is not None else {})
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "top level"
        message = first["msg"].removeprefix("Value error, ")
        raise ValidationError(f"{source}: {where}: {message}", field=where) from None


def load_script(path: str | Path) -> Script:
    """Read and validate a script file (``.json``, else YAML)."""
    import yaml

    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
        data = json.loads(text) if file.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise ValidationError(f"cannot read the script {file}: {exc}") from None
    return parse_script(data, source=str(file))


__all__ = [
    "ERROR_TYPE_BY_STATUS",
    "BatchSpec",
    "PromptCacheSpec",
    "RateLimitSpec",
    "ReplySpec",
    "RuleSpec",
    "Script",
    "load_script",
    "parse_script",
]
