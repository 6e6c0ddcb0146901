"""Batch items: one rendered request as a Message Batches item, and the run row it becomes.

An :class:`Item` carries what the API gets (``custom_id`` and the JSON body of a
``messages.create`` call, encoded once) and what the run log needs once its result arrives:
the columns shared by every item of one prompt version and model (its :class:`Planner`'s
``template``: prompt, version, label, model, parameters, source, suite run) and its own
redacted variables and input hash, plus the caller's ``data`` (a test case, a line number) to
map the result back.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ValidationError
from ..prices import ModelPrice, price_of
from ..runner.request import build_request, request_params
from ..versions import PromptVersion

#: what the API accepts as a ``custom_id``
CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
#: the API's limit on the requests of one batch
MAX_ITEMS = 100_000
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def check_custom_id(value: Any, where: str) -> str:
    """``value`` if it is a valid ``custom_id``; ``ValidationError`` naming ``where`` if not."""
    if not isinstance(value, str) or not CUSTOM_ID.match(value):
        raise ValidationError(
            f"{where}: custom_id {value!r} is not valid: use 1 to 64 letters, digits, '_' or '-'",
            field="custom_id",
        )
    return value


def batch_params(request: Mapping[str, Any]) -> dict[str, Any]:
    """The ``params`` of a batch item: the request as the JSON body the API receives.

    Settings the SDK sends in ``extra_body`` (``temperature``, ``top_p``, ``top_k``) become
    plain body fields, as they are on the wire.
    """
    params = {k: v for k, v in request.items() if k != "extra_body"}
    extra = request.get("extra_body")
    if isinstance(extra, Mapping):
        params.update(extra)
    return params


def run_id_for(batch_id: str, custom_id: str) -> str:
    """The id of the run row an item becomes: the same on every resume, so an item is logged
    exactly once however often its results are read."""
    return hashlib.sha256(f"{batch_id}/{custom_id}".encode()).hexdigest()[:32]


def worst_case_usd(price: ModelPrice, body_bytes: int, max_tokens: int) -> float:
    """The most an item can cost at batch prices: every byte of its body an input token, and
    ``max_tokens`` output tokens (an upper bound, never a guess that can fall short)."""
    return (body_bytes * price.batch_input + max_tokens * price.batch_output) / 1_000_000


@dataclass
class Item:
    """One request of a batch and the run row it becomes.

    ``body`` is the JSON of the request (``None`` once stored: it is not kept); ``template``
    the run columns shared with the other items of its planner; ``variables`` (redacted) and
    ``input_hash`` (sha256 of ``body``) its own; ``reserve_usd`` its worst-case cost at batch
    prices; ``data`` belongs to the caller.
    """

    custom_id: str
    template: dict[str, Any]
    variables: dict[str, Any] | None
    input_hash: str
    reserve_usd: float = 0.0
    data: dict[str, Any] | None = None
    suite_run_id: int | None = None
    body: bytes | None = field(default=None, repr=False)

    def encoded(self) -> bytes:
        """The item as the API takes it: ``{"custom_id": ..., "params": ...}``."""
        assert self.body is not None, "a stored item has no request body"
        return b'{"custom_id":"' + self.custom_id.encode() + b'","params":' + self.body + b"}"


class Planner:
    """Renders one prompt version (optionally on another model) into batch items.

    Everything the items share is computed once: the run template, the price. Raises
    :class:`~registry.errors.UnpricedModel` at once for a model without a price.
    """

    def __init__(
        self,
        version: PromptVersion,
        *,
        label: str | None,
        source: str,
        model: str | None = None,
        suite_run_id: int | None = None,
    ) -> None:
        self.version = version
        self.model = model or version.model
        self.price = price_of(self.model)
        self.label = label
        self.source = source
        self.suite_run_id = suite_run_id
        self.template: dict[str, Any] | None = None
        self._redact = version.compiled().contract.redact

    def plan(
        self, variables: Mapping[str, Any], custom_id: str, data: dict[str, Any] | None = None
    ) -> Item:
        """Render ``variables`` into an item (raises what rendering raises)."""
        v = self.version
        rendered = v.render(variables)
        if self.model != v.model:
            rendered = dataclasses.replace(
                rendered, settings={**rendered.settings, "model": self.model}
            )
        request = build_request(v, rendered)
        params = batch_params(request)
        body = _ENCODER.encode(params).encode()
        if self.template is None:
            self.template = {
                "prompt": v.name,
                "version": v.version,
                "label": self.label,
                "model": self.model,
                "params": request_params(request),
                "source": self.source,
                "suite_run_id": None if self.suite_run_id is None else str(self.suite_run_id),
            }
        return Item(
            custom_id=custom_id,
            template=self.template,
            variables=self._redact(rendered.variables),
            input_hash=hashlib.sha256(body).hexdigest(),
            reserve_usd=worst_case_usd(self.price, len(body), int(params.get("max_tokens") or 0)),
            data=data,
            suite_run_id=self.suite_run_id,
            body=body,
        )


def plan_item(
    version: PromptVersion,
    variables: Mapping[str, Any],
    *,
    custom_id: str,
    label: str | None,
    source: str,
    model: str | None = None,
    suite_run_id: int | None = None,
    data: dict[str, Any] | None = None,
) -> Item:
    """One batch item of ``version`` (a :class:`Planner` for a single item)."""
    planner = Planner(version, label=label, source=source, model=model, suite_run_id=suite_run_id)
    return planner.plan(variables, custom_id, data)


__all__ = [
    "CUSTOM_ID",
    "MAX_ITEMS",
    "Item",
    "Planner",
    "batch_params",
    "check_custom_id",
    "plan_item",
    "run_id_for",
    "worst_case_usd",
]
