"""``/admin/playground/``: run a version with variables and watch the answer stream in.

The page posts JSON to ``/admin/playground/run`` (CSRF token in the ``X-CSRFToken`` header);
the answer comes back as Server-Sent Events: ``start`` (run id), ``text`` (chunks), then
``done`` (tokens, cost, latency) or ``error``. Errors before the call starts (no
``ANTHROPIC_API_KEY``, bad variables, over budget) are a JSON ``{"error": {type, message}}``
with the error's HTTP status. Every run is logged with ``source="playground"``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

from flask import Response, request, stream_with_context

from ...contract import placeholder_values
from ...errors import RegistryError
from ...text import has_lone_surrogate
from .. import get_registry
from . import editing
from .base import expose
from .prompt_queries import prompt_info, version_numbers
from .security import ProtectedView, actor_name

#: longest answer text the playground keeps streaming (characters); the rest is cut
MAX_STREAM_CHARS = 200_000


def sse(event: str, data: Any) -> str:
    """One Server-Sent Event."""
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False, default=str)}\n\n"


def _error_response(exc: RegistryError) -> Response:
    body = json.dumps({"error": exc.to_dict() | {"run_id": getattr(exc, "run_id", None)}})
    return Response(
        body, status=exc.status if 400 <= exc.status < 600 else 500, mimetype="application/json"
    )


def result_summary(result: Any) -> dict[str, Any]:
    """What the page shows after a run (tokens, cost, latency, ids)."""
    return {
        "run_id": result.run_id,
        "version": result.version,
        "model": result.model,
        "input_tokens": result.input_tokens,
        "output_tokens": result.output_tokens,
        "cost_usd": result.cost_usd,
        "latency_ms": round(result.latency_ms, 1),
        "ttft_ms": round(result.ttft_ms, 1) if result.ttft_ms is not None else None,
        "stop_reason": result.stop_reason,
        "status": result.status,
        "cached": result.cached,
    }


class PlaygroundView(ProtectedView):
    """Try a version against the Messages API (editors: a run costs money)."""

    required_role = "editor"

    @expose("/")
    def index(self) -> Any:
        """Pick a prompt and version, type variables, run."""
        reg = get_registry()
        name = request.args.get("name", "").strip()
        info = prompt_info(reg, name) if name else None
        versions = version_numbers(reg, name) if info else []
        version = None
        try:
            version = int(request.args.get("version", "")) if request.args.get("version") else None
        except ValueError:
            version = None
        if info and version not in versions:
            version = versions[0] if versions else None
        cases = editing.sample_cases(reg, name) if info else []
        variables_text = ""
        if info and version:
            if cases:
                variables_text = json.dumps(cases[0][1], indent=2, ensure_ascii=False)
            else:
                v = reg.get(name, version=version)
                variables_text = json.dumps(
                    placeholder_values(v.variables), indent=2, ensure_ascii=False
                )
        return self.render(
            "admin_ui/playground.html",
            name=name,
            info=info,
            versions=versions,
            version=version,
            cases=cases,
            variables_text=variables_text,
            has_key=bool(os.environ.get("ANTHROPIC_API_KEY")),
        )

    @expose("/run", methods=["POST"])
    def run(self) -> Any:
        """Start the run and stream it as Server-Sent Events."""
        reg = get_registry()
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            data = request.form.to_dict()
        name = str(data.get("name") or "")
        raw_vars: Any = data.get("variables", {})
        if isinstance(raw_vars, str):
            values, error = editing.parse_variables(raw_vars)
        elif isinstance(raw_vars, dict) and has_lone_surrogate(raw_vars):
            values, error = None, editing.SURROGATE_MESSAGE
        elif isinstance(raw_vars, dict):
            values, error = raw_vars, None
        else:
            values, error = None, "the variables must be a mapping"
        try:
            version = int(data.get("version"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            error = error or "choose a version to run"
            version = 0
        if error or values is None:
            return Response(
                json.dumps({"error": {"type": "validation_error", "message": error}}),
                status=422,
                mimetype="application/json",
            )
        try:
            stream: Any = reg.stream(
                name,
                values,
                version=version,
                source="playground",
                metadata={"user": actor_name()},
            )
        except RegistryError as exc:
            return _error_response(exc)

        def events() -> Iterator[str]:
            sent = 0
            try:
                yield sse("start", {"run_id": stream.run_id, "name": name, "version": version})
                for chunk in stream:
                    if sent >= MAX_STREAM_CHARS:
                        continue
                    sent += len(chunk)
                    yield sse("text", {"text": chunk})
                result = stream.result
                yield sse("done", result_summary(result) if result is not None else {})
            except RegistryError as exc:
                yield sse("error", exc.to_dict() | {"run_id": getattr(exc, "run_id", None)})
            finally:
                stream.close()

        return Response(
            stream_with_context(events()),
            mimetype="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
