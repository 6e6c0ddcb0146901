"""The ``/api/v1`` endpoints. Each is declared once with :func:`~.routing.operation`."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from flask import Response, request, stream_with_context

from ... import __version__
from ...api_keys import ApiKeyInfo
from ...config import protected_labels
from ...errors import NotFound, PermissionDenied, RegistryError, ValidationError
from ...prompts import Prompt
from ...registry import Registry
from ...rendering import IncludeRef, Rendered, analyze, include_source
from ...versions import PromptVersion
from .. import get_registry
from .errors import error_body, json_response
from .routing import operation
from .schemas import (
    CreatedVersion,
    CreateVersionRequest,
    ErrorOut,
    ExperimentReport,
    FeedbackOut,
    FeedbackRequest,
    Health,
    LabelOut,
    ListPromptsQuery,
    MoveLabelRequest,
    PromptList,
    RenderedOut,
    RenderRequest,
    RunOut,
    RunRequest,
    SelectorQuery,
    VersionList,
    VersionOut,
    VersionsQuery,
)

log = logging.getLogger("registry.api")

NAME_PARAM = {"name": "Prompt name; folders are separated by '/' (e.g. support/answer)."}
#: the errors every authenticated operation can answer
AUTH_ERRORS = (401, 403)


def _actor(key: ApiKeyInfo) -> str:
    return f"api-key:{key.name}"


def _iso(value: Any) -> str:
    return str(value.isoformat())


def _prompt_dict(p: Prompt) -> dict[str, Any]:
    return {
        "name": p.name,
        "description": p.description,
        "tags": p.tags,
        "labels": p.labels,
        "latest_version": p.latest_version,
        "created_at": _iso(p.created_at),
        "updated_at": _iso(p.updated_at),
        "archived": p.archived,
    }


@lru_cache(maxsize=2048)
def _includes_in(source: str) -> tuple[IncludeRef, ...]:
    """The prompts a template includes (sources are immutable text: cached by value)."""
    return analyze(source, "template").includes


def resolve_includes(reg: Registry, v: PromptVersion) -> dict[str, str]:
    """Source of every prompt ``v`` includes, directly or not, keyed by ``name@label|N``.

    A reference that does not resolve is left out: rendering then fails exactly as it does
    on the server ("included prompt ... was not found").
    """
    found: dict[str, str] = {}
    pending = [v.system or ""] + [m["content"] for m in v.messages]
    while pending:
        source = pending.pop()
        if "{%" not in source:
            continue
        try:
            refs = _includes_in(source)
        except RegistryError:
            continue
        for ref in refs:
            key = str(ref)
            if key in found:
                continue
            try:
                if ref.version is not None:
                    target = reg.get(ref.name, version=ref.version)
                else:
                    target = reg.get(ref.name, label=ref.label)
            except RegistryError:
                continue
            text = include_source(target.system, target.messages)
            found[key] = text
            pending.append(text)
    return found


def version_dict(reg: Registry, v: PromptVersion) -> dict[str, Any]:
    """The JSON of a version as ``GET /prompts/{name}`` answers it."""
    return {
        "id": v.id,
        **v.to_dict(),
        "labels": v.labels,
        "experiment": v.experiment,
        "variant": v.variant,
        "includes": resolve_includes(reg, v),
    }


def rendered_dict(r: Rendered) -> dict[str, Any]:
    """The JSON of a rendered prompt, with the Messages API body ready to send."""
    body: dict[str, Any] = dict(r.settings)
    if r.system:
        body["system"] = r.system
    body["messages"] = r.messages
    return {
        "name": r.name,
        "version": r.version,
        "system": r.system,
        "messages": r.messages,
        "settings": r.settings,
        "variables": r.variables,
        "request": body,
    }


def _selector(label: str | None, version: int | None, unit_id: str | None) -> dict[str, Any]:
    if label is not None and version is not None:
        raise ValidationError(
            "give a label or a version, not both (a version number already names one version)",
            field="version",
        )
    return {"label": label, "version": version, "unit_id": unit_id}


def _check_protected(labels: list[str], key: ApiKeyInfo) -> None:
    protected = sorted(set(labels) & protected_labels())
    if protected:
        raise PermissionDenied(
            f"label {protected[0]!r} is protected: API keys cannot move it (key {key.name!r}). "
            "A publisher moves it in the web admin or with `prompt-registry label`."
        )


# -- prompts ------------------------------------------------------------------------------


@operation(
    "GET",
    "/prompts",
    summary="List prompts",
    scope="read",
    query=ListPromptsQuery,
    responses={200: ("Prompts with their labels, by name.", PromptList)},
    errors=(*AUTH_ERRORS, 422),
    tags=("prompts",),
)
def list_prompts(*, caller: ApiKeyInfo, query: ListPromptsQuery) -> Response:
    """Every prompt (archived ones excepted) with its labels and newest version number."""
    prompts = get_registry().prompts(
        folder=query.folder,
        tag=query.tag,
        search=query.search,
        include_archived=query.include_archived,
    )
    return json_response({"prompts": [_prompt_dict(p) for p in prompts]})


@operation(
    "GET",
    "/versions",
    summary="List the versions of a prompt",
    scope="read",
    query=VersionsQuery,
    responses={
        200: ("Every version, oldest first, as GET /prompts/{name} shows one.", VersionList)
    },
    errors=(*AUTH_ERRORS, 404, 422),
    tags=("prompts",),
)
def list_versions(*, caller: ApiKeyInfo, query: VersionsQuery) -> Response:
    """Every version of a prompt with its content, labels and included prompts, oldest first.

    The prompt is named in the query (`?prompt=support/answer`), so no prompt name can be
    mistaken for a sub-resource.
    """
    reg = get_registry()
    versions = reg.versions(query.prompt)
    return json_response({"versions": [version_dict(reg, v) for v in versions]})


@operation(
    "GET",
    "/prompts/{name}",
    summary="Fetch a version",
    scope="read",
    query=SelectorQuery,
    responses={
        200: ("The version the selector resolves to.", VersionOut),
        304: ("Not modified: the ETag given in If-None-Match is current.", None),
    },
    errors=(*AUTH_ERRORS, 404, 422),
    tags=("prompts",),
    params=NAME_PARAM,
    etag=True,
)
def get_prompt(*, name: str, caller: ApiKeyInfo, query: SelectorQuery) -> Response:
    """Resolve a label (default `production`), a version number or an experiment unit.

    The answer carries an ETag covering everything in it (content, version, labels, included
    prompts); send it back in `If-None-Match` to get `304 Not Modified` while nothing changed.
    """
    reg = get_registry()
    v = reg.get(name, **_selector(query.label, query.version, query.unit_id))
    body = json.dumps(version_dict(reg, v), ensure_ascii=False, sort_keys=True)
    etag = '"' + hashlib.sha256(body.encode("utf-8")).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if v.stale:  # the database is down: what this server last read
        headers["X-Registry-Stale"] = "1"
    if_none_match = request.if_none_match
    if if_none_match and (if_none_match.star_tag or if_none_match.contains_weak(etag.strip('"'))):
        return Response(status=304, headers=headers)
    return Response(body, status=200, headers=headers, mimetype="application/json")


@operation(
    "POST",
    "/prompts/{name}/versions",
    summary="Create a version",
    scope="write",
    body=CreateVersionRequest,
    responses={
        201: ("The new version.", CreatedVersion),
        200: ("The content equals the newest version: nothing was created.", CreatedVersion),
    },
    errors=(400, *AUTH_ERRORS, 404, 409, 413, 415, 422),
    tags=("prompts",),
    params=NAME_PARAM,
)
def create_version(
    *, name: str, caller: ApiKeyInfo, body: CreateVersionRequest, raw: dict[str, Any]
) -> Response:
    """Save a new immutable version (the prompt is created on first use).

    Protected labels (``REGISTRY_PROTECTED_LABELS``, default `production`) cannot be set
    with an API key.
    """
    _check_protected(body.labels, caller)
    reg = get_registry()
    try:
        before = reg.prompt(name).latest_version
    except (NotFound, ValidationError):
        before = 0
    fields = {k: raw[k] for k in raw if k not in ("author",)}
    v = reg.create_version(name, author=body.author or _actor(caller), **fields)
    created = v.version > before
    data = version_dict(reg, v) | {"created": created}
    return json_response(data, 201 if created else 200)


@operation(
    "PUT",
    "/prompts/{name}/labels/{label}",
    summary="Move a label",
    scope="write",
    body=MoveLabelRequest,
    responses={200: ("The label now points at the version.", LabelOut)},
    errors=(400, *AUTH_ERRORS, 404, 409, 413, 415, 422),
    tags=("labels",),
    params=NAME_PARAM | {"label": "Label to move (not a protected one, not `latest`)."},
)
def move_label(
    *, name: str, label: str, caller: ApiKeyInfo, body: MoveLabelRequest, raw: Any
) -> Response:
    """Point a label at a version, audited with the key's name as actor.

    With `expected_version` the move is a compare-and-set: 409 if someone moved it meanwhile.
    Protected labels answer 403: publishers move them in the web admin or the CLI.
    """
    _check_protected([label], caller)
    v = get_registry().set_label(
        name,
        label,
        body.version,
        actor=_actor(caller),
        expected_version=body.expected_version,
        reason=body.reason or f"moved through the API by {caller.name}",
    )
    return json_response({"name": name, "label": label, "version": v.version})


@operation(
    "POST",
    "/prompts/{name}/render",
    summary="Render a version",
    scope="read",
    body=RenderRequest,
    responses={200: ("The rendered prompt and the Messages API body.", RenderedOut)},
    errors=(400, *AUTH_ERRORS, 404, 413, 415, 422),
    tags=("prompts",),
    params=NAME_PARAM,
)
def render_prompt(*, name: str, caller: ApiKeyInfo, body: RenderRequest, raw: Any) -> Response:
    """Check the variables against the version's contract and render its templates."""
    reg = get_registry()
    v = reg.get(name, **_selector(body.label, body.version, body.unit_id))
    return json_response(rendered_dict(v.render(body.variables)))


# -- runs ---------------------------------------------------------------------------------


def _sse(event: str, data: Any) -> str:
    return (
        f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False, separators=(',', ':'))}\n\n"
    )


def _result_dict(result: Any) -> dict[str, Any]:
    data = result.to_dict() if hasattr(result, "to_dict") else dict(result)
    return json.loads(json.dumps(data, default=str))  # type: ignore[no-any-return]


@operation(
    "POST",
    "/prompts/{name}/run",
    summary="Run a version",
    scope="run",
    body=RunRequest,
    responses={200: ("The run summary, or Server-Sent Events when `stream` is true.", RunOut)},
    errors=(400, *AUTH_ERRORS, 404, 413, 415, 422, 429, 502, 503, 504),
    tags=("runs",),
    params=NAME_PARAM,
    streams=True,
)
def run_prompt(*, name: str, caller: ApiKeyInfo, body: RunRequest, raw: Any) -> Response:
    """Render and run against the Messages API; every run is logged with its outcome.

    With `"stream": true` the answer is `text/event-stream`: `event: delta` with
    `{"text": ...}` as the model writes, then `event: done` with the run summary, or
    `event: error` with `{"type", "message", "run_id"}` if it fails midway.
    """
    reg = get_registry()
    selector = _selector(body.label, body.version, body.unit_id)
    options = body.run_options() | {"source": "http"}
    if not body.stream:
        result = reg.run(name, body.variables, **selector, **options)
        return json_response(_result_dict(result))
    # resolution, rendering and configuration errors are raised here: a plain 4xx/5xx answer
    chunks = reg.stream(name, body.variables, **selector, **options)
    return Response(
        stream_with_context(_stream_events(chunks)),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _stream_events(chunks: Iterator[str]) -> Iterator[str]:
    try:
        for text in chunks:
            if text:
                yield _sse("delta", {"text": text})
        result = getattr(chunks, "result", None)
        yield _sse("done", _result_dict(result) if result is not None else {})
    except RegistryError as exc:
        yield _sse("error", error_body(exc))
    except GeneratorExit:
        raise
    except Exception:
        log.exception("streamed run failed")
        yield _sse("error", {"type": "internal_error", "message": "the run failed on the server"})
    finally:
        close = getattr(chunks, "close", None)
        if callable(close):
            close()


@operation(
    "POST",
    "/runs/{run_id}/feedback",
    summary="Score a run",
    scope="run",
    body=FeedbackRequest,
    responses={201: ("The feedback was recorded.", FeedbackOut)},
    errors=(400, *AUTH_ERRORS, 404, 413, 415, 422),
    tags=("runs",),
    params={"run_id": "The run's id (from the run answer)."},
)
def run_feedback(*, run_id: str, caller: ApiKeyInfo, body: FeedbackRequest, raw: Any) -> Response:
    """Attach a score (thumbs up = 1.0, a rating...) to a run."""
    get_registry().feedback(run_id, body.name, body.value, comment=body.comment)
    data = {"run_id": run_id, "name": body.name, "value": body.value, "comment": body.comment}
    return json_response(data, 201)


# -- experiments, health -----------------------------------------------------------------


@operation(
    "GET",
    "/experiments/{key}/report",
    summary="Experiment report",
    scope="read",
    responses={200: ("The experiment's report.", ExperimentReport)},
    errors=(*AUTH_ERRORS, 404, 422),
    tags=("experiments",),
    params={"key": "The experiment's key."},
)
def experiment_report(*, key: str, caller: ApiKeyInfo) -> Response:
    """Per-variant outcomes with the statistical comparison of an experiment."""
    from ...experiments import build_report

    report = build_report(get_registry(), key)
    return json_response(_result_dict(report))


@operation(
    "GET",
    "/health",
    summary="Health check",
    scope=None,
    responses={200: ("The service and its database answer.", Health)},
    errors=(422, 503),
    tags=("service",),
)
def health() -> Response:
    """Liveness and database check; needs no key."""
    reg = get_registry()
    try:
        with reg.db.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:
        log.warning("health check: database unreachable: %s", exc)
        return json_response(
            {"error": {"type": "unavailable", "message": "the database does not answer"}}, 503
        )
    return json_response({"status": "ok", "database": reg.db.dialect, "version": __version__})


@operation(
    "GET",
    "/openapi.json",
    summary="This API's OpenAPI document",
    scope=None,
    responses={200: ("The OpenAPI 3.1 document, generated from the same models.", None)},
    errors=(422,),
    tags=("service",),
)
def openapi() -> Response:
    """The OpenAPI 3.1 description of every endpoint; needs no key."""
    from .openapi import openapi_document

    return json_response(openapi_document())


__all__ = ["ErrorOut", "rendered_dict", "resolve_includes", "version_dict"]
