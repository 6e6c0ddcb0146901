"""``Runner``: run a prompt version against the Anthropic Messages API, and log it.

One call = one row in ``runs``, whatever happens: the version is resolved and rendered, the
request built, the daily budget checked, the response cache consulted, a slot taken from the
per-model rate limiter, the API called with retries (or streamed), the structured output
parsed, validated and repaired once, and the outcome written with tokens, cost and latency.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

import anthropic

from ..errors import (
    ConfigurationError,
    NotFound,
    OutputValidationError,
    ParameterRefused,
    RateLimited,
    RegistryError,
    RunError,
    RunTimeout,
    StreamInterrupted,
)
from ..models.base import utcnow
from ..names import DEFAULT_LABEL
from ..prices import Usage, cost_usd, price_of
from ..run_result import RunResult
from ..service import RegistryService
from ..versions import PromptVersion
from . import api
from .budget import DailyBudget
from .cache import DatabaseCache, RedisCache, ResponseCache
from .options import RunOptions, cached_prompts, default_timeout
from .ratelimit import ModelLimits, RateLimiter, parse_limits
from .request import (
    build_request,
    estimate_input_tokens,
    must_stream,
    request_hash,
    request_params,
)
from .retry import Failure, RetryPolicy, classify
from .runlog import RunLog, RunRecord, add_feedback, json_safe, load_run
from .structured import parse_output, repair_messages

logger = logging.getLogger(__name__)


class _Failed(Exception):
    """Internal: a run failed with ``error`` (raised to the caller); ``kind`` goes to the log."""

    def __init__(self, error: RegistryError, kind: str) -> None:
        super().__init__(error.message)
        self.error = error
        self.kind = kind


class _Cancelled(Exception):
    """Internal: the caller stopped reading a stream (or closed it unread)."""


@dataclass
class _Call:
    """Everything one call carries between its steps."""

    record: RunRecord
    opts: RunOptions = field(default_factory=RunOptions)
    timeout: float = 0.0
    deadline: float = float("inf")
    version: PromptVersion | None = None
    request: dict[str, Any] = field(default_factory=dict)
    client: anthropic.Anthropic | None = None
    use_cache: bool = False
    hit: RunResult | None = None

    def mark_first_token(self) -> None:
        if self.record.ttft_ms is None:
            self.record.ttft_ms = api.perf_ms(self.record.started)


def _drain(gen: Generator[str, None, api.Answer]) -> api.Answer:
    """Run an attempt loop to its end, discarding text deltas (non-streaming callers)."""
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            answer: api.Answer = stop.value
            return answer


class _Outcome:
    """Where the generator behind a stream leaves its result.

    The generator must not refer to its :class:`StreamResult`: that cycle would keep an
    abandoned stream (its HTTP response and rate-limit slot) alive until a garbage-collector
    pass, whose finalizer could then run anywhere, even inside a run-log write.
    """

    __slots__ = ("result",)

    def __init__(self) -> None:
        self.result: RunResult | None = None


class StreamResult(Iterator[str]):
    """The iterator ``Registry.stream`` returns: text chunks as they arrive.

    After exhaustion ``result`` is the :class:`RunResult`. If the stream fails, the typed error
    is raised from the iteration after the run is logged. Stop early with ``close()`` (or a
    ``with`` block): the run is then logged as ``cancelled``, as it is when the last reference
    to an unfinished stream is dropped.
    """

    def __init__(self, runner: Runner, call: _Call) -> None:
        self._runner = runner
        self._call = call
        self._started = False
        self._outcome = _Outcome()
        self._received: list[str] = []
        self._gen = runner._stream_body(call, self._outcome)

    @property
    def result(self) -> RunResult | None:
        """The run's result once the stream is exhausted (None before)."""
        return self._outcome.result

    @property
    def run_id(self) -> str:
        """The id of the run (known before the first chunk)."""
        return self._call.record.id

    @property
    def text(self) -> str:
        """The text received so far (the whole answer once the stream is exhausted)."""
        return self.result.text if self.result is not None else "".join(self._received)

    def __iter__(self) -> StreamResult:
        return self

    def __next__(self) -> str:
        self._started = True
        chunk = next(self._gen)
        self._received.append(chunk)
        return chunk

    def close(self) -> None:
        """Stop the stream and release the connection (logs a cancelled run if unfinished)."""
        if not self._started and not self._call.record.written:
            self._started = True
            self._runner._record_failure(self._call, _Cancelled("closed before reading"))
        self._gen.close()

    def __enter__(self) -> StreamResult:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        # an unread stream has no running generator to log it: log the cancelled call here
        # (a started one is logged by its generator, closed when it is freed)
        try:
            if not self._started and not self._call.record.written:
                self.close()
        except Exception:  # never raise from a finalizer (the interpreter may be exiting)
            logger.debug("could not log an abandoned stream", exc_info=True)


class Runner:
    """Runs prompt versions against the Messages API for one :class:`~registry.Registry`.

    ``retry`` (default from the environment, see :class:`RetryPolicy`), ``limits`` per model
    (default ``REGISTRY_RATE_LIMITS``), ``cache`` (default: Redis when ``REGISTRY_REDIS_URL``
    is set, else the database) and ``timeout`` (default ``REGISTRY_RUN_TIMEOUT`` or 300 s)
    can be given or changed later (``runner.retry = ...``, ``runner.limiter.configure(...)``).
    No background thread: ``close()`` releases the HTTP client and the cache connection.
    """

    def __init__(
        self,
        reg: RegistryService,
        *,
        retry: RetryPolicy | None = None,
        limits: Mapping[str, ModelLimits] | None = None,
        cache: ResponseCache | None = None,
        timeout: float | None = None,
    ) -> None:
        self.reg = reg
        self.retry = retry or RetryPolicy.from_env()
        self.limiter = RateLimiter(
            dict(limits)
            if limits is not None
            else parse_limits(os.environ.get("REGISTRY_RATE_LIMITS", ""))
        )
        self.timeout = timeout or default_timeout()
        self.cached_prompts = cached_prompts()
        self.budget = DailyBudget(reg.db)
        self.runlog = RunLog(reg.db)
        self._cache = cache
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._client_obj: anthropic.Anthropic | None = None
        self._client_ident: tuple[str, str | None] | None = None

    # -- public API ---------------------------------------------------------------------------

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
        """Render and run a prompt; returns the result after logging exactly one run row.

        Errors are raised after the row is written and carry its id (``exc.run_id``).
        """
        call = self._prepare(name, variables, label, version, unit_id, options, stream=False)
        if call.hit is not None:
            return call.hit
        try:
            answer, parsed = self._complete(call)
        except BaseException as exc:
            self._raise_failed(call, exc)
        return self._succeeded(call, answer, parsed)

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
        """Like :meth:`run` but the answer's text is yielded as it arrives.

        Resolution, rendering, configuration and budget errors are raised here; the request
        starts with the first ``next()``. A stream cut before any text is retried; after text
        arrived it raises :class:`~registry.errors.StreamInterrupted` with the partial text.
        """
        call = self._prepare(name, variables, label, version, unit_id, options, stream=True)
        return StreamResult(self, call)

    def feedback(self, run_id: str, name: str, value: float, *, comment: str = "") -> int:
        """Attach a score to a run (``NotFound`` for an unknown run); returns the feedback id.

        A run of this process still in the local spool is replayed first.
        """
        try:
            return add_feedback(self.reg.db, run_id, name, value, comment=comment)
        except NotFound:
            if not self.runlog.flush():
                raise
        return add_feedback(self.reg.db, run_id, name, value, comment=comment)

    def get_run(self, run_id: str) -> RunResult:
        """A logged run by id (``NotFound`` when there is none; a spooled one is replayed)."""
        try:
            return load_run(self.reg.db, run_id)
        except NotFound:
            if not self.runlog.flush():
                raise
        return load_run(self.reg.db, run_id)

    def clear_cache(self) -> None:
        """Forget every cached answer."""
        self._cache_store().clear()

    def close(self) -> None:
        """Release the HTTP client and the cache connection; pending retry waits end at once.

        The runner stays usable: a later call opens what it needs again.
        """
        closing, self._closed = self._closed, threading.Event()
        closing.set()
        with self._lock:
            client, self._client_obj = self._client_obj, None
            cache = self._cache
        if client is not None:
            client.close()
        if cache is not None:
            cache.close()
        self.runlog.close()

    # -- the steps of a call ------------------------------------------------------------------

    def _prepare(
        self,
        name: str,
        variables: Mapping[str, Any] | None,
        label: str | None,
        version: int | None,
        unit_id: str | None,
        options: Mapping[str, Any],
        *,
        stream: bool,
    ) -> _Call:
        """Everything before the first request; a failure is logged and raised here."""
        record = RunRecord(
            id=uuid.uuid4().hex,
            created_at=utcnow(),
            started=time.perf_counter(),
            prompt=str(name),
            label=label if label is not None else (None if version is not None else DEFAULT_LABEL),
            unit_id=None if unit_id is None else str(unit_id)[:200],
            stream=stream,
        )
        call = _Call(record)
        try:
            opts = RunOptions.parse(options)
            call.opts = opts
            record.source = opts.source
            record.suite_run_id = opts.suite_run_id
            record.meta = opts.metadata
            call.timeout = opts.timeout or self.timeout
            call.deadline = time.monotonic() + call.timeout
            v = self.reg.get(name, label=label, version=version, unit_id=unit_id)
            call.version = v
            record.version = v.version
            record.experiment = getattr(v, "experiment", None)
            record.variant = getattr(v, "variant", None)
            record.model = str(v.settings.get("model"))
            try:
                rendered = v.render(variables or {})
            except RegistryError:
                record.variables = self._redacted(v, variables)
                raise
            record.variables = json_safe(v.compiled().contract.redact(rendered.variables))
            request = build_request(v, rendered)
            call.request = request
            # UnpricedModel before any request: no run is ever logged without a cost
            price_of(str(request["model"]))
            record.params = request_params(request)
            record.input_hash = request_hash(request)
            call.client = self._client()
            call.use_cache = self._cache_wanted(opts, v)
            if call.use_cache:
                hit = self._cache_get(record.input_hash)
                if hit is not None:
                    call.hit = self._serve_hit(call, hit)
                    return call
            self.budget.check(refresh=self._database_down())
        except BaseException as exc:
            self._raise_failed(call, exc)
        return call

    def _database_down(self) -> bool:
        """Whether this process saw the database fail lately (stale reads, spooled rows)."""
        return self.reg.reads.down_until > time.monotonic() or bool(self.runlog.spool.pending)

    def _complete(self, call: _Call) -> tuple[api.Answer, Any]:
        """Call the API (with retries); parse, validate and once repair structured output."""
        assert call.version is not None
        request = call.request
        answer = _drain(self._attempts(call, request, streaming=must_stream(request)))
        schema = call.version.output_schema
        if schema is None:
            return answer, None
        parsed, errors = parse_output(answer.text, schema)
        if errors and call.opts.repair and time.monotonic() < call.deadline:
            repair = dict(request)
            repair["messages"] = repair_messages(request["messages"], answer.text, errors, schema)
            call.record.output_text = answer.text
            answer = _drain(self._attempts(call, repair, streaming=must_stream(repair)))
            parsed, errors = parse_output(answer.text, schema)
        if errors:
            self._invalid_output(call, answer, errors)
        return answer, parsed

    def _invalid_output(self, call: _Call, answer: api.Answer, errors: list[str]) -> NoReturn:
        record = call.record
        record.output_text = answer.text
        record.stop_reason = answer.stop_reason
        record.request_id = answer.request_id
        v = call.version
        where = f"{v.name} v{v.version}" if v is not None else record.prompt
        tried = " after one repair try" if call.opts.repair else ""
        hint = (
            " (the answer hit max_tokens: raise it)" if answer.stop_reason == "max_tokens" else ""
        )
        raise _Failed(
            OutputValidationError(
                f"the answer of {where} does not match its output schema{tried}: "
                + "; ".join(errors)
                + hint,
                raw_text=answer.text,
                errors=errors,
            ),
            "output_validation_error",
        )

    def _stream_body(self, call: _Call, out: _Outcome) -> Generator[str, None, None]:
        """The generator behind a :class:`StreamResult`."""
        if call.hit is not None:
            out.result = call.hit
            if call.hit.text:
                yield call.hit.text
            return
        try:
            answer = yield from self._attempts(call, call.request, streaming=True, deliver=True)
            parsed = None
            schema = call.version.output_schema if call.version is not None else None
            if schema is not None:
                parsed, errors = parse_output(answer.text, schema)
                if errors:
                    self._invalid_output(call, answer, errors)
        except GeneratorExit:
            self._record_failure(call, _Cancelled("the caller stopped reading the stream"))
            raise
        except BaseException as exc:
            self._raise_failed(call, exc)
        out.result = self._succeeded(call, answer, parsed)

    def _attempts(
        self, call: _Call, request: dict[str, Any], *, streaming: bool, deliver: bool = False
    ) -> Generator[str, None, api.Answer]:
        """Attempts with backoff until one succeeds, the policy gives up, or the deadline passes.

        ``streaming`` streams the request (text deltas are yielded); ``deliver`` means the
        deltas reach the caller, so a stream that breaks after text is not retried.
        """
        record = call.record
        policy = self.retry
        max_retries = (
            call.opts.max_retries if call.opts.max_retries is not None else policy.max_retries
        )
        model = record.model or ""
        client = call.client
        assert client is not None and call.version is not None
        settings = call.version.settings.keys()
        tokens = self._input_tokens(call, request, model)
        retries = 0
        while True:
            if time.monotonic() >= call.deadline:
                raise _Failed(self._timeout_error(call), "timeout")
            try:
                permit = self.limiter.acquire(model, deadline=call.deadline, tokens=tokens)
            except RateLimited as exc:
                raise _Failed(exc, "rate_limited") from None
            record.attempts += 1
            state = api.StreamState(on_first_text=call.mark_first_token if deliver else None)
            try:
                remaining = max(0.001, call.deadline - time.monotonic())
                if streaming:
                    answer = yield from api.stream(client, request, remaining, state)
                else:
                    answer = api.create(client, request, remaining)
                record.usage = record.usage + answer.usage
                return answer
            except Exception as exc:
                failure = classify(exc, settings=settings)
                record.request_id = failure.request_id or state.request_id or record.request_id
                if deliver and state.parts:
                    record.output_text = state.text
                    raise _Failed(
                        StreamInterrupted(
                            f"the stream of {record.prompt} broke after {len(state.text)} "
                            f"characters ({failure.kind}: {failure.message}); the partial text "
                            "is on the error (partial_text)",
                            partial_text=state.text,
                        ),
                        failure.kind,
                    ) from exc
                if not policy.retryable(failure) or retries >= max_retries:
                    raise _Failed(self._final_error(call, failure), failure.kind) from exc
                delay = policy.delay(retries + 1, failure.retry_after)
                if delay is None:
                    raise _Failed(
                        RateLimited(
                            f"the API asked to retry {record.prompt} after "
                            f"{failure.retry_after:g} s, more than the "
                            f"{policy.max_retry_after:g} s this runner waits "
                            f"({failure.kind}: {failure.message}); try later",
                            retry_after=failure.retry_after,
                        ),
                        failure.kind,
                    ) from exc
                if time.monotonic() + delay >= call.deadline:
                    raise _Failed(
                        self._final_error(call, failure, no_time=True), failure.kind
                    ) from exc
                if failure.retry_after:
                    self.limiter.pause(model, failure.retry_after)
            finally:
                permit.release()
            retries += 1
            if self._closed.wait(delay):
                raise _Failed(RunError("the runner was closed during a retry wait"), "cancelled")

    def _input_tokens(self, call: _Call, request: dict[str, Any], model: str) -> int:
        """Input tokens for a token-per-minute limit (0 when the model has none)."""
        limits = self.limiter.limits_for(model)
        if limits is None or limits.itpm is None:
            return 0
        if limits.count_tokens and call.client is not None:
            try:
                remaining = max(0.001, min(10.0, call.deadline - time.monotonic()))
                return api.count_tokens(call.client, request, remaining)
            except Exception as exc:
                logger.warning("count_tokens failed (%s); using an estimate", type(exc).__name__)
        return estimate_input_tokens(request)

    # -- errors --------------------------------------------------------------------------------

    def _timeout_error(self, call: _Call) -> RunTimeout:
        r = call.record
        return RunTimeout(
            f"{r.prompt} did not finish within its {call.timeout:g} s timeout "
            f"({r.attempts} attempt(s)); raise timeout= or try later"
        )

    def _final_error(self, call: _Call, failure: Failure, *, no_time: bool = False) -> RunError:
        r = call.record
        where = f"{r.prompt} v{r.version}"
        attempts = f"{r.attempts} attempt(s)" + (", no time left for another" if no_time else "")
        detail = f"{failure.kind}" + (f" ({failure.status})" if failure.status else "")
        if failure.kind == "parameter_refused":
            p = failure.parameter
            return ParameterRefused(
                f"the API refused the setting '{p}' of {where}: {failure.message}. "
                f"Remove '{p}' from the version's settings (or change it) and save a new version.",
                parameter=p,
            )
        if failure.kind == "timeout":
            return RunTimeout(
                f"{r.model} did not answer {where} within the {call.timeout:g} s timeout "
                f"({attempts}); raise timeout= or try later"
            )
        if failure.kind == "rate_limit_error":
            return RateLimited(
                f"the Anthropic API rate limit stopped {where} ({attempts}): {failure.message}",
                retry_after=failure.retry_after,
            )
        if failure.kind == "authentication_error":
            return RunError(
                f"the API refused the key (401 authentication_error): check ANTHROPIC_API_KEY "
                f"({attempts})"
            )
        if failure.kind == "not_found_error":
            return RunError(
                f"the API answered 404 for {where}: {failure.message}. Check settings.model "
                f"({r.model}) and ANTHROPIC_BASE_URL"
            )
        return RunError(
            f"calling {r.model} for {where} failed after {attempts}: {detail}: {failure.message}"
        )

    def _raise_failed(self, call: _Call, exc: BaseException) -> NoReturn:
        error = self._record_failure(call, exc)
        if error is exc:
            raise exc
        if isinstance(exc, _Failed | _Cancelled):
            raise error from exc.__cause__
        raise error from exc

    def _record_failure(self, call: _Call, exc: BaseException) -> BaseException:
        """Log the failed run (once) and return the exception the caller gets."""
        record = call.record
        error: BaseException
        if isinstance(exc, _Failed):
            error, kind, message = exc.error, exc.kind, exc.error.message
        elif isinstance(exc, _Cancelled):
            error, kind, message = exc, "cancelled", str(exc)
        elif isinstance(exc, RegistryError):
            error, kind, message = exc, exc.type, exc.message
        elif isinstance(exc, Exception):
            kind, message = "internal_error", f"{type(exc).__name__}: {exc}"
            error = RunError(f"the run of {record.prompt} failed unexpectedly: {message}")
        else:  # KeyboardInterrupt, SystemExit, GeneratorExit
            error, kind, message = exc, "cancelled", type(exc).__name__
        if isinstance(error, RegistryError):
            error.details["run_id"] = record.id
            setattr(error, "run_id", record.id)  # noqa: B010  (every RegistryError, not only RunError)
        if record.written:
            return error
        record.status = "error"
        record.error_type = kind[:64]
        record.error_message = message
        record.latency_ms = api.perf_ms(record.started)
        if record.model:
            record.cost_usd = cost_usd(record.model, record.usage)
        self._write(record)
        return error

    # -- success, cache, listeners -------------------------------------------------------------

    def _succeeded(self, call: _Call, answer: api.Answer, parsed: Any) -> RunResult:
        record = call.record
        record.output_text = answer.text
        record.parsed = parsed
        record.stop_reason = answer.stop_reason
        record.request_id = answer.request_id
        record.latency_ms = api.perf_ms(record.started)
        record.cost_usd = cost_usd(record.model or "", record.usage)
        self._write(record)
        self.budget.add(record.cost_usd)
        if call.use_cache and record.input_hash:
            self._cache_set(
                record.input_hash,
                {
                    "text": answer.text,
                    "parsed": parsed,
                    "stop_reason": answer.stop_reason,
                    "request_id": answer.request_id,
                },
                call.opts.cache_ttl,
            )
        return record.to_result()

    def _serve_hit(self, call: _Call, hit: dict[str, Any]) -> RunResult:
        record = call.record
        record.cached = True
        record.output_text = str(hit.get("text") or "")
        record.parsed = hit.get("parsed")
        record.stop_reason = hit.get("stop_reason")
        record.request_id = hit.get("request_id")
        record.usage = Usage()
        record.cost_usd = 0.0
        record.latency_ms = api.perf_ms(record.started)
        if record.stream:
            record.ttft_ms = record.latency_ms
        self._write(record)
        return record.to_result()

    def _write(self, record: RunRecord) -> None:
        """Write the run row (or spool it), then tell the listeners (their errors are logged).

        Raises :class:`~registry.errors.DatabaseUnavailable` when the row could be written
        neither to the database nor to the local spool: no result without its row.
        """
        self.runlog.write(record)
        hooks = self.reg.hooks
        if hooks.run_listeners:
            hooks.run_logged(record.to_result())

    def _cache_wanted(self, opts: RunOptions, v: PromptVersion) -> bool:
        if opts.cache is not None:
            return opts.cache
        names = self.cached_prompts
        return bool(names) and (v.name in names or f"{v.name}@{v.version}" in names)

    def _cache_store(self) -> ResponseCache:
        cache = self._cache
        if cache is None:
            with self._lock:
                if self._cache is None:
                    url = os.environ.get("REGISTRY_REDIS_URL", "").strip()
                    self._cache = RedisCache(url) if url else DatabaseCache(self.reg.db)
                cache = self._cache
        return cache

    def _cache_get(self, key: str) -> dict[str, Any] | None:
        try:
            return self._cache_store().get(key)
        except Exception as exc:
            logger.warning(
                "response cache read failed (%s: %s); calling the API", type(exc).__name__, exc
            )
            return None

    def _cache_set(self, key: str, value: dict[str, Any], ttl: float) -> None:
        try:
            self._cache_store().set(key, json_safe(value), ttl)
        except Exception as exc:
            logger.warning("response cache write failed (%s: %s)", type(exc).__name__, exc)

    # -- helpers ---------------------------------------------------------------------------------

    def _client(self) -> anthropic.Anthropic:
        """The SDK client (one per runner; rebuilt if the key or base URL changes)."""
        key = os.environ.get("ANTHROPIC_API_KEY", "").strip()
        if not key:
            raise ConfigurationError(
                "ANTHROPIC_API_KEY is not set: export your Anthropic API key before running "
                "prompts (no request was sent)"
            )
        base_url = os.environ.get("ANTHROPIC_BASE_URL") or None
        ident = (hashlib.sha256(key.encode()).hexdigest(), base_url)
        client = self._client_obj
        if client is None or self._client_ident != ident:
            with self._lock:
                if self._client_obj is None or self._client_ident != ident:
                    self._client_obj = anthropic.Anthropic(
                        api_key=key, base_url=base_url, max_retries=0
                    )
                    self._client_ident = ident
                client = self._client_obj
        assert client is not None
        return client

    @staticmethod
    def _redacted(v: PromptVersion, variables: Mapping[str, Any] | None) -> dict[str, Any] | None:
        if not variables:
            return None
        try:
            return dict(json_safe(v.compiled().contract.redact(variables)))
        except Exception:
            return None


def runner_of(reg: RegistryService) -> Runner:
    """The runner of ``reg`` (created on first use; ``Registry.runner`` is the same one)."""
    return reg.component(Runner)


__all__ = ["Runner", "StreamResult", "runner_of"]
