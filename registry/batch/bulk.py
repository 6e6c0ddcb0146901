"""Bulk jobs: a JSONL file of variables through one prompt version, one output line per input.

Each input line is a JSON object of variables; an optional ``custom_id`` key names the item
(1 to 64 letters, digits, ``_`` or ``-``; by default ``line-N``). The whole file is read and
every line rendered before anything is sent: a line that is not a JSON object, a bad or
repeated ``custom_id``, or variables the prompt's contract refuses stop the job with an
:class:`~registry.errors.InputFileError` naming the line, and nothing is submitted.

As a Message Batch (:func:`run_bulk`) every item is a run with ``source=batch`` at batch
prices; the job is resumable: run it again with the same input and output (or
``resume_bulk(batch_id)``) and it follows the batch it submitted before. ``sync=True`` runs
the lines through the normal runner instead (rate limits, standard prices).

Output lines, in input order::

    {"custom_id": "line-1", "line": 1, "status": "ok", "text": "...", "parsed": null,
     "stop_reason": "end_turn", "usage": {"input_tokens": 12, ...}, "cost_usd": 0.0001,
     "run_id": "...", "error": null}
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError, InputFileError, RegistryError, ValidationError
from ..names import DEFAULT_LABEL
from . import store
from .items import CUSTOM_ID, MAX_ITEMS, Item, Planner
from .jobs import BatchProgress, batches_of
from .results import ItemResult
from .store import StoredBatch

if TYPE_CHECKING:
    from ..run_result import RunResult
    from ..service import RegistryService
    from ..versions import PromptVersion

#: the ``source`` of a bulk job's runs
SOURCE = "batch"
#: input problems listed in one error before "and N more"
MAX_REPORTED = 10


@dataclass(frozen=True)
class InputLine:
    """One line of an input file: its number (1-based), item id and variables."""

    line: int
    custom_id: str
    variables: dict[str, Any]


@dataclass(frozen=True)
class BulkReport:
    """What a bulk job did: items, outcomes, cost, where the output went."""

    total: int
    succeeded: int
    failed: int
    cost_usd: float
    output_path: str
    batch: StoredBatch | None = None

    def describe(self) -> str:
        """One line such as ``1000 items: 998 ok, 2 failed, $0.0123 (batch msgbatch_...)``."""
        where = f" (batch {self.batch.name})" if self.batch is not None else " (synchronous)"
        return (
            f"{self.total} items: {self.succeeded} ok, {self.failed} failed, "
            f"${self.cost_usd:.4f}{where} -> {self.output_path}"
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {
            "total": self.total,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "cost_usd": self.cost_usd,
            "output": self.output_path,
            "batch": self.batch.to_dict() if self.batch is not None else None,
        }


def read_input(path: str | Path) -> tuple[list[InputLine], str]:
    """The lines of a JSONL input file and the sha256 of its bytes.

    Blank lines are skipped. Raises :class:`InputFileError` naming the first bad line (and
    how many others are bad).
    """
    file = Path(path)
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise InputFileError(f"cannot read the input file {file}: {exc.strerror}") from None
    lines: list[InputLine] = []
    problems: list[tuple[int, str]] = []
    seen: dict[str, int] = {}
    for number, text in enumerate(raw.decode("utf-8", errors="replace").splitlines(), 1):
        if not text.strip():
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            problems.append((number, f"not JSON ({exc.msg} at column {exc.colno})"))
            continue
        if not isinstance(value, dict):
            problems.append((number, "must be a JSON object of variables"))
            continue
        custom_id = value.pop("custom_id", None)
        if custom_id is None:
            custom_id = f"line-{number}"
        if not isinstance(custom_id, str) or not CUSTOM_ID.match(custom_id):
            problems.append(
                (number, f"custom_id {custom_id!r} must be 1-64 letters, digits, '_' or '-'")
            )
            continue
        if custom_id in seen:
            problems.append((number, f"custom_id {custom_id!r} repeats line {seen[custom_id]}"))
            continue
        seen[custom_id] = number
        lines.append(InputLine(number, custom_id, value))
    if problems:
        raise _input_error(file, problems)
    if not lines:
        raise InputFileError(f"the input file {file} has no lines: one JSON object per line")
    if len(lines) > MAX_ITEMS:
        raise InputFileError(
            f"the input file {file} has {len(lines)} lines; a batch holds at most {MAX_ITEMS}: "
            "split it"
        )
    return lines, hashlib.sha256(raw).hexdigest()


def _input_error(file: Path, problems: Sequence[tuple[int, str]]) -> InputFileError:
    first_line = problems[0][0]
    listed = "; ".join(f"line {n}: {why}" for n, why in problems[:MAX_REPORTED])
    more = len(problems) - MAX_REPORTED
    return InputFileError(
        f"{file}: {listed}" + (f"; and {more} more" if more > 0 else "") + "; nothing was sent",
        line=first_line,
    )


def plan_items(
    version: PromptVersion, lines: Sequence[InputLine], *, label: str | None, file: str
) -> list[Item]:
    """Every line rendered into a batch item; :class:`InputFileError` names the bad lines."""
    items: list[Item] = []
    problems: list[tuple[int, str]] = []
    planner = Planner(version, label=label, source=SOURCE)
    for entry in lines:
        try:
            items.append(planner.plan(entry.variables, entry.custom_id, {"line": entry.line}))
        except ConfigurationError:
            raise
        except RegistryError as exc:
            problems.append((entry.line, exc.message))
    if problems:
        raise _input_error(Path(file), problems)
    return items


def output_line(
    custom_id: str, line: int, result: RunResult | None, error: RegistryError | None
) -> dict[str, Any]:
    """One line of the output file from a run (``result``) and its error, if any."""
    out: dict[str, Any] = {"custom_id": custom_id, "line": line}
    if result is None:
        out.update(status="error", text=None, parsed=None, stop_reason=None, usage=None)
        out.update(cost_usd=None, run_id=getattr(error, "run_id", None))
    else:
        out.update(
            status=result.status,
            text=result.text,
            parsed=result.parsed,
            stop_reason=result.stop_reason,
            usage={
                "input_tokens": result.input_tokens,
                "output_tokens": result.output_tokens,
                "cache_creation_input_tokens": result.cache_creation_input_tokens,
                "cache_read_input_tokens": result.cache_read_input_tokens,
            },
            cost_usd=result.cost_usd,
            run_id=result.run_id,
        )
    out["error"] = None if error is None else {"type": error.type, "message": error.message}
    return out


def write_output(path: str | Path, lines: Sequence[Mapping[str, Any]]) -> None:
    """Write JSONL lines to ``path`` atomically (a partial file never replaces a good one)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=str(target.parent))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            for line in lines:
                out.write(json.dumps(line, ensure_ascii=False, default=str))
                out.write("\n")
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _resolve(
    reg: RegistryService, name: str, label: str | None, version: int | None
) -> tuple[PromptVersion, str | None]:
    if label is not None and version is not None:
        raise ValidationError("give a label or a version, not both", field="version")
    if version is not None:
        return reg.get(name, version=version), None
    chosen = label or DEFAULT_LABEL
    return reg.get(name, label=chosen), chosen


def _report(batch: StoredBatch, mapped: Sequence[ItemResult], output: str) -> BulkReport:
    ok = sum(1 for r in mapped if r.ok)
    return BulkReport(
        total=len(mapped),
        succeeded=ok,
        failed=len(mapped) - ok,
        cost_usd=round(sum(r.cost_usd or 0.0 for r in mapped), 10),
        output_path=output,
        batch=batch,
    )


def submit_bulk(
    reg: RegistryService,
    name: str,
    input_path: str | Path,
    output_path: str | Path,
    *,
    label: str | None = None,
    version: int | None = None,
    actor: str = "",
) -> StoredBatch:
    """Check every line of ``input_path`` and submit them as one Message Batch of ``name``.

    The version is ``version``, else ``label``'s (default ``production``). When a batch of the
    same prompt version, input file (same bytes) and output path is still open, that batch is
    returned instead of submitting again.
    """
    target, chosen = _resolve(reg, name, label, version)
    lines, digest = read_input(input_path)
    output = str(Path(output_path).resolve())
    found = store.find_open(
        reg.db,
        "bulk",
        input_hash=digest,
        output_path=output,
        prompt=target.name,
        version=target.version,
    )
    if found is not None:
        return found
    items = plan_items(target, lines, label=chosen, file=str(input_path))
    return batches_of(reg).submit(
        "bulk",
        items,
        prompt=target.name,
        version=target.version,
        input_hash=digest,
        output_path=output,
        options={"label": chosen, "input": str(Path(input_path).resolve())},
        actor=actor,
    )


def run_bulk(
    reg: RegistryService,
    name: str,
    input_path: str | Path,
    output_path: str | Path,
    *,
    label: str | None = None,
    version: int | None = None,
    actor: str = "",
    progress: BatchProgress | None = None,
    on_submitted: Callable[[StoredBatch], None] | None = None,
    timeout: float | None = None,
) -> BulkReport:
    """Run every line of ``input_path`` through ``name`` as one Message Batch.

    :func:`submit_bulk` (which resumes an open batch of the same job), then the batch is
    followed to its end (``progress`` after each poll; ``timeout`` bounds the wait), every
    item logged as a run, and ``output_path`` written.
    """
    batch = submit_bulk(
        reg, name, input_path, output_path, label=label, version=version, actor=actor
    )
    if on_submitted is not None:
        on_submitted(batch)
    return _complete(reg, batch, progress=progress, timeout=timeout)


def _complete(
    reg: RegistryService,
    batch: StoredBatch,
    *,
    progress: BatchProgress | None,
    timeout: float | None,
) -> BulkReport:
    batches = batches_of(reg)
    batch = batches.follow(batch, progress=progress, timeout=timeout)
    assert batch.prompt is not None and batch.version is not None
    schema = reg.get(batch.prompt, version=batch.version).output_schema
    mapped = batches.collect(batch, schemas={(batch.prompt, batch.version): schema})
    lines = [
        output_line(
            r.item.custom_id,
            int((r.item.data or {}).get("line") or 0),
            r.record.to_result(),
            r.error,
        )
        for r in mapped
    ]
    output = batch.output_path or ""
    write_output(output, lines)
    return _report(batches.finish(batch), mapped, output)


def resume_bulk(
    reg: RegistryService,
    batch_id: str,
    *,
    progress: BatchProgress | None = None,
    timeout: float | None = None,
) -> BulkReport:
    """Finish a bulk job submitted earlier (by our id or the API's): follow it, log its runs
    (once), and write its output file again."""
    batch = batches_of(reg).get(batch_id)
    if batch.kind != "bulk":
        raise ValidationError(
            f"batch {batch.name} runs test cases: resume it with "
            f"`prompt-registry test --resume {batch.name}`",
            field="batch_id",
        )
    return _complete(reg, batch, progress=progress, timeout=timeout)


def run_bulk_sync(
    reg: RegistryService,
    name: str,
    input_path: str | Path,
    output_path: str | Path,
    *,
    label: str | None = None,
    version: int | None = None,
    concurrency: int = 4,
    progress: Callable[[int, int], None] | None = None,
    timeout: float | None = None,
) -> BulkReport:
    """Run every line through the normal runner (rate limits, standard prices), ``concurrency``
    at a time; the same checks before anything is sent, the same output file."""
    # lazy for cold start: the runner loads the anthropic SDK
    from ..runner import runner_of

    target, chosen = _resolve(reg, name, label, version)
    lines, _ = read_input(input_path)
    plan_items(target, lines, label=chosen, file=str(input_path))  # refuse bad lines first
    runner = runner_of(reg)
    options: dict[str, Any] = {"source": SOURCE}
    if timeout is not None:
        options["timeout"] = timeout
    done = [0]
    lock = threading.Lock()

    def one(entry: InputLine) -> dict[str, Any]:
        result: RunResult | None = None
        error: RegistryError | None = None
        try:
            result = runner.run(
                target.name,
                entry.variables,
                version=target.version,
                metadata={"custom_id": entry.custom_id},
                **options,
            )
        except ConfigurationError:
            raise
        except RegistryError as exc:
            error = exc
            run_id = getattr(exc, "run_id", None)
            if run_id:
                result = runner.get_run(run_id)
        with lock:
            done[0] += 1
            if progress is not None:
                progress(done[0], len(lines))
        return output_line(entry.custom_id, entry.line, result, error)

    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="bulk") as pool:
        out = list(pool.map(one, lines))
    write_output(output_path, out)
    ok = sum(1 for line in out if line["status"] == "ok" and line["error"] is None)
    return BulkReport(
        total=len(out),
        succeeded=ok,
        failed=len(out) - ok,
        cost_usd=round(sum(line["cost_usd"] or 0.0 for line in out), 10),
        output_path=str(Path(output_path).resolve()),
    )


__all__ = [
    "BulkReport",
    "InputLine",
    "output_line",
    "plan_items",
    "read_input",
    "resume_bulk",
    "run_bulk",
    "run_bulk_sync",
    "submit_bulk",
    "write_output",
]
