"""Batch results mapped back: each result line becomes its item's run, priced at batch prices.

A ``succeeded`` line is an ``ok`` run (text, stop reason, usage; with an output schema the JSON
is parsed and validated: batches have no repair turn, so an invalid answer is an
``output_validation_error`` run that keeps the text). ``errored``, ``expired`` and
``canceled`` lines, and items the results leave out, are ``error`` runs with a typed error
(:class:`~registry.errors.BatchItemFailed` and its subclasses). A run is dated when its batch
was submitted, so its cost counts on the day the budget reserved it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import (
    BatchItemCanceled,
    BatchItemExpired,
    BatchItemFailed,
    OutputValidationError,
    RunError,
)
from ..prices import ModelPrice, Usage, cost_usd
from ..runner.runlog import RunRecord
from ..runner.structured import parse_output
from .items import Item, run_id_for
from .store import StoredBatch

_NO_USAGE = Usage()


@dataclass
class ItemResult:
    """One item's outcome, as read from the results: what its run row will hold.

    ``outcome`` is the API's result type (``succeeded``, ``errored``, ``expired``,
    ``canceled``) or ``missing``; ``error`` the typed error of an item that did not succeed
    (or whose answer does not match the output schema). :attr:`record` is the run row.
    """

    item: Item
    outcome: str
    batch: StoredBatch = field(repr=False)
    text: str = ""
    parsed: Any = None
    stop_reason: str | None = None
    message_id: str | None = None
    usage: Usage = _NO_USAGE
    cost_usd: float | None = None
    error: RunError | None = None
    _record: RunRecord | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        """True when the item succeeded (and its answer matched the output schema)."""
        return self.error is None

    @property
    def run_id(self) -> str:
        """The id of the item's run row."""
        return run_id_for(self.batch.id, self.item.custom_id)

    @property
    def record(self) -> RunRecord:
        """The item's run row: dated when its batch was submitted, its latency the time the
        batch took to end, its metadata the batch and item ids."""
        if self._record is None:
            self._record = _record(self)
        return self._record


def _usage(raw: Mapping[str, Any]) -> Usage:
    creation = raw.get("cache_creation") or {}
    return Usage(
        input_tokens=int(raw.get("input_tokens") or 0),
        output_tokens=int(raw.get("output_tokens") or 0),
        cache_creation_input_tokens=int(raw.get("cache_creation_input_tokens") or 0),
        cache_read_input_tokens=int(raw.get("cache_read_input_tokens") or 0),
        cache_creation_1h_tokens=int(creation.get("ephemeral_1h_input_tokens") or 0),
    )


def _record(result: ItemResult) -> RunRecord:
    item, batch = result.item, result.batch
    run = item.template
    started = batch.submitted_at or batch.created_at
    assert started is not None
    ended = batch.ended_at or started
    error = result.error
    return RunRecord(
        id=result.run_id,
        created_at=started,
        started=0.0,
        prompt=str(run["prompt"]),
        label=run.get("label"),
        source=str(run.get("source") or "batch"),
        version=run.get("version"),
        model=run.get("model"),
        params=run.get("params"),
        variables=item.variables,
        input_hash=item.input_hash,
        suite_run_id=run.get("suite_run_id"),
        meta={"batch_id": batch.name, "custom_id": item.custom_id},
        output_text=result.text if result.outcome == "succeeded" else None,
        parsed=result.parsed,
        stop_reason=result.stop_reason,
        request_id=result.message_id,
        usage=result.usage,
        cost_usd=result.cost_usd,
        latency_ms=max(0.0, (ended - started).total_seconds() * 1000.0),
        attempts=1,
        status="ok" if error is None else "error",
        error_type=None if error is None else _error_type(error),
        error_message=None if error is None else error.message,
    )


def _error_type(error: RunError) -> str:
    """The run's ``error_type``: the API's type of an errored item, else the error's type."""
    if isinstance(error, BatchItemFailed) and type(error) is BatchItemFailed:
        return str(error.error_type or "api_error")[:64]
    return error.type[:64]


def map_result(
    item: Item,
    line: Mapping[str, Any] | None,
    batch: StoredBatch,
    schema: Mapping[str, Any] | None = None,
    price: ModelPrice | None = None,
) -> ItemResult:
    """What ``item``'s result ``line`` says (None: the results did not list it).

    ``price`` is the price of the item's model (looked up when not given).
    """
    result = (line or {}).get("result") or {}
    outcome = str(result.get("type") or "missing")
    out = ItemResult(item=item, outcome=outcome, batch=batch)
    if outcome == "succeeded":
        message = result.get("message") or {}
        out.text = text = "".join(
            str(block.get("text") or "")
            for block in message.get("content") or ()
            if type(block) is dict and block.get("type") == "text"
        )
        out.stop_reason = message.get("stop_reason")
        out.message_id = message.get("id")
        out.usage = _usage(message.get("usage") or {})
        if schema is not None:
            out.parsed, errors = parse_output(text, schema)
            if errors:
                out.error = OutputValidationError(
                    f"the answer of {_where(out)} does not match its output schema: "
                    + "; ".join(errors),
                    raw_text=text,
                    errors=errors,
                    run_id=out.run_id,
                )
    else:
        out.error = _item_error(out, result)
    if price is None:
        out.cost_usd = cost_usd(str(item.template.get("model") or ""), out.usage, batch=True)
    else:
        out.cost_usd = price.cost(out.usage, batch=True)
    return out


def _where(out: ItemResult) -> str:
    return f"batch item {out.item.custom_id} of {out.batch.name}"


def _item_error(out: ItemResult, result: Mapping[str, Any]) -> BatchItemFailed:
    """The typed error of an item that did not succeed."""
    where, custom_id, run_id = _where(out), out.item.custom_id, out.run_id
    if out.outcome == "errored":
        body = (result.get("error") or {}).get("error") or {}
        kind = str(body.get("type") or "api_error")
        return BatchItemFailed(
            f"{where} errored: {kind}: {body.get('message') or 'no message'}",
            outcome="errored",
            error_type=kind,
            custom_id=custom_id,
            run_id=run_id,
        )
    if out.outcome == "expired":
        return BatchItemExpired(
            f"{where} expired: the API did not process it within 24 hours of submission",
            outcome="expired",
            custom_id=custom_id,
            run_id=run_id,
        )
    if out.outcome == "canceled":
        return BatchItemCanceled(
            f"{where} was canceled before it was processed",
            outcome="canceled",
            custom_id=custom_id,
            run_id=run_id,
        )
    return BatchItemFailed(
        f"{where} has no result ({out.outcome}) in the batch's results",
        outcome="missing",
        error_type="batch_missing",
        custom_id=custom_id,
        run_id=run_id,
    )


__all__ = ["ItemResult", "map_result"]
