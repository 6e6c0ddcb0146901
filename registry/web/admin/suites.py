"""``/admin/suites/``: test cases per prompt, suite runs started from a version, results, history.

Pages (viewers read; editors edit cases and start runs):

* ``/admin/suites/`` every prompt with its number of cases and its latest suite run;
* ``/admin/suites/prompt/<name>`` the prompt's cases, its suite-run history and a form to run
  the suite on a version;
* ``/admin/suites/new/<name>``, ``/admin/suites/case/<id>`` create / edit a case (variables as
  YAML or JSON, assertions as a YAML list; errors shown on the form); delete with a POST;
* ``/admin/suites/version/<n>/<name>`` the suite panel of one version: its latest run, whether
  the gate lets it receive ``production``, a *Run suite* button (the version page links here);
* ``/admin/suites/result/<id>`` one suite run case by case (refreshes while it runs);
* ``/admin/suites/compare?old=<id>&new=<id>`` two runs side by side.

A suite started here runs on a background thread of the server process; its results are stored
case by case, so the result page shows progress.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

import yaml
from flask import Flask, abort, current_app, flash, redirect, request, url_for

from ...errors import NotFound, RegistryError, RunError, ValidationError
from ...suites import (
    ASSERTION_TYPES,
    Case,
    SuiteRun,
    case_counts,
    compare_runs,
    create_case,
    delete_case,
    get_case_by_id,
    get_suite_run,
    latest_suite_run,
    list_cases,
    promotion_status,
    run_suite,
    suite_runs,
    update_case,
)
from ...suites.cases import count_cases, prompt_id_of
from ...suites.gate import is_protected
from ...suites.results import latest_by_prompt
from ...suites.runner import default_concurrency
from .. import get_registry
from .base import Admin, expose
from .security import ProtectedView, actor_name, require_role

logger = logging.getLogger(__name__)

#: seconds a POST waits for a background suite run to start (or fail) before redirecting
START_WAIT = 15.0
EXAMPLE_ASSERTIONS = '- {type: contains, value: "invoice"}\n- {type: max-length, value: 800}\n'


def _dump(value: Any) -> str:
    if value in ({}, [], None):
        return ""
    return yaml.safe_dump(value, sort_keys=False, allow_unicode=True, width=100)


def _load(text: str, field: str, kind: type) -> Any:
    """Parse a YAML (or JSON) text area; an empty one is an empty mapping/list."""
    if not text.strip():
        return kind()
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValidationError(f"{field}: not valid YAML or JSON: {exc}", field=field) from None
    if not isinstance(value, kind):
        shape = "a mapping (name: value)" if kind is dict else "a list (- {type: ...})"
        raise ValidationError(f"{field}: must be {shape}", field=field)
    return value


def _threads(app: Flask) -> list[threading.Thread]:
    found: list[threading.Thread] = app.extensions.setdefault("suite_threads", [])
    found[:] = [t for t in found if t.is_alive()]
    return found


def start_suite_run(
    app: Flask,
    name: str,
    *,
    version: int,
    concurrency: int,
    actor: str,
) -> SuiteRun:
    """Start a suite run on a background thread; returns it once it is stored (``running``).

    Errors raised before the run starts (no cases, unknown version...) are raised here.
    """
    reg = get_registry(app)
    started: list[SuiteRun] = []
    failed: list[BaseException] = []
    ready = threading.Event()

    def on_start(run: SuiteRun) -> None:
        started.append(run)
        ready.set()

    def work() -> None:
        try:
            run_suite(
                reg,
                name,
                version=version,
                concurrency=concurrency,
                actor=actor,
                on_start=on_start,
            )
        except BaseException as exc:  # reported to the request, or stored on the run row
            failed.append(exc)
        finally:
            ready.set()

    thread = threading.Thread(target=work, name=f"admin-suite-{name}-v{version}", daemon=True)
    _threads(app).append(thread)
    thread.start()
    ready.wait(START_WAIT)
    if started:
        return started[0]
    if failed:
        exc = failed[0]
        if isinstance(exc, RegistryError):
            raise exc
        # the view reports RegistryErrors on the form; anything else would be a bare 500
        logger.error("the suite of %s v%s could not start", name, version, exc_info=exc)
        raise RunError(
            f"the suite could not start: {type(exc).__name__}: {exc}; see the server log"
        ) from exc
    raise ValidationError("the suite did not start in time; look at its history in a moment")


class SuitesView(ProtectedView):
    """Test cases, suite runs and their results."""

    required_role = "viewer"

    # -- reading ----------------------------------------------------------------------------

    @expose("/")
    def index(self) -> Any:
        """Every prompt with its case count and its newest suite run."""
        reg = get_registry()
        counts = case_counts(reg)
        latest = latest_by_prompt(reg)
        rows = [
            {"prompt": p, "cases": counts.get(p.name, 0), "latest": latest.get(p.name)}
            for p in reg.prompts()
        ]
        return self.render("admin_ui/suites/index.html", rows=rows)

    @expose("/prompt/<path:name>")
    def prompt(self, name: str) -> Any:
        """A prompt's cases, its suite-run history and the run form."""
        reg = get_registry()
        try:
            info = reg.prompt(name)
            cases = list_cases(reg, name)
            history = suite_runs(reg, name, limit=50)
        except NotFound:
            abort(404)
        return self.render(
            "admin_ui/suites/prompt.html",
            prompt=info,
            cases=cases,
            history=history,
            versions=list(range(info.latest_version, 0, -1)),
            concurrency=default_concurrency(),
        )

    @expose("/version/<int:version>/<path:name>")
    def version(self, version: int, name: str) -> Any:
        """The suite panel of one version: latest run, gate status, run button, history."""
        reg = get_registry()
        try:
            target = reg.get(name, version=version)
            history = suite_runs(reg, name, version=version, limit=20)
            cases = list_cases(reg, name)
        except NotFound:
            abort(404)
        as_saved = [r for r in history if r.model is None]  # matrix runs never gate
        latest = get_suite_run(reg, as_saved[0].id) if as_saved else None
        label = request.args.get("label", "production")
        gate = promotion_status(reg, name, version, label)
        return self.render(
            "admin_ui/suites/version.html",
            name=name,
            version=target,
            history=history,
            latest=latest,
            cases=cases,
            gate_label=label,
            gate_problem=gate,
            protected=is_protected(label),
            concurrency=default_concurrency(),
        )

    @expose("/result/<int:run_id>")
    def result(self, run_id: int) -> Any:
        """One suite run case by case."""
        try:
            run = get_suite_run(get_registry(), run_id)
        except NotFound:
            abort(404)
        previous = [
            r
            for r in suite_runs(get_registry(), run.prompt, limit=20)
            if r.id != run.id and r.status not in ("running",)
        ]
        return self.render("admin_ui/suites/result.html", run=run, others=previous)

    @expose("/compare")
    def compare(self) -> Any:
        """Two stored suite runs of a prompt side by side (``?old=ID&new=ID``)."""
        reg = get_registry()
        try:
            old = get_suite_run(reg, request.args.get("old", type=int) or 0)
            new = get_suite_run(reg, request.args.get("new", type=int) or 0)
        except NotFound:
            abort(404)
        if old.prompt != new.prompt:
            flash("Those two suite runs belong to different prompts.", "warning")
            return redirect(url_for(".result", run_id=new.id))
        return self.render("admin_ui/suites/compare.html", cmp=compare_runs(old, new))

    # -- editing cases ----------------------------------------------------------------------

    def _case_form(
        self,
        name: str,
        *,
        case: Case | None,
        values: dict[str, str],
        error: str | None = None,
        status: int = 200,
    ) -> Any:
        body = self.render(
            "admin_ui/suites/case_form.html",
            name=name,
            case=case,
            values=values,
            error=error,
            types=ASSERTION_TYPES,
            example=EXAMPLE_ASSERTIONS,
        )
        return current_app.response_class(body, status=status)

    def _submitted(self) -> tuple[dict[str, str], str, dict[str, Any], list[Any]]:
        values = {
            "name": request.form.get("name", ""),
            "variables": request.form.get("variables", ""),
            "assertions": request.form.get("assertions", ""),
        }
        variables = _load(values["variables"], "variables", dict)
        assertions = _load(values["assertions"], "assertions", list)
        return values, values["name"], variables, assertions

    @expose("/new/<path:name>", methods=["GET", "POST"])
    @require_role("editor")
    def new(self, name: str) -> Any:
        """Create a test case for ``name``."""
        reg = get_registry()
        try:
            reg.prompt(name)
        except NotFound:
            abort(404)
        if request.method == "GET":
            sample = {k: "" for k in reg.get(name, label="latest").variables}
            values = {"name": "", "variables": _dump(sample), "assertions": EXAMPLE_ASSERTIONS}
            return self._case_form(name, case=None, values=values)
        values = dict(request.form)
        try:
            values, case_name, variables, assertions = self._submitted()
            case = create_case(
                reg,
                name,
                case_name,
                variables=variables,
                assertions=assertions,
                actor=actor_name(),
            )
        except RegistryError as exc:
            return self._case_form(name, case=None, values=values, error=exc.message, status=422)
        flash(f"Test case {case.name!r} added to {name}.", "success")
        return redirect(url_for(".prompt", name=name))

    @expose("/case/<int:case_id>", methods=["GET", "POST"])
    def edit(self, case_id: int) -> Any:
        """Show a test case; editors may change it."""
        reg = get_registry()
        try:
            case = get_case_by_id(reg, case_id)
        except NotFound:
            abort(404)
        if request.method == "GET":
            values = {
                "name": case.name,
                "variables": _dump(case.variables),
                "assertions": _dump(case.assertions),
            }
            return self._case_form(case.prompt, case=case, values=values)
        return self._save(case)

    @require_role("editor")
    def _save(self, case: Case) -> Any:
        values = dict(request.form)
        try:
            values, case_name, variables, assertions = self._submitted()
            saved = update_case(
                get_registry(),
                case.prompt,
                case.name,
                new_name=case_name,
                variables=variables,
                assertions=assertions,
                actor=actor_name(),
            )
        except RegistryError as exc:
            return self._case_form(
                case.prompt, case=case, values=values, error=exc.message, status=422
            )
        flash(f"Test case {saved.name!r} saved.", "success")
        return redirect(url_for(".prompt", name=case.prompt))

    @expose("/case/<int:case_id>/delete", methods=["POST"])
    @require_role("editor")
    def delete(self, case_id: int) -> Any:
        """Delete a test case (its past results stay in the history)."""
        reg = get_registry()
        try:
            case = get_case_by_id(reg, case_id)
            delete_case(reg, case.prompt, case.name, actor=actor_name())
        except NotFound:
            abort(404)
        flash(f"Test case {case.name!r} deleted.", "success")
        return redirect(url_for(".prompt", name=case.prompt))

    # -- running ------------------------------------------------------------------------------

    @expose("/run/<path:name>", methods=["POST"])
    @require_role("editor")
    def run(self, name: str) -> Any:
        """Start the suite of ``name`` on the posted version, then show its result page."""
        version = request.form.get("version", type=int)
        concurrency = request.form.get("concurrency", type=int) or default_concurrency()
        back = request.form.get("back") or url_for(".prompt", name=name)
        if version is None:
            flash("Pick a version to test.", "danger")
            return redirect(back)
        try:
            run = start_suite_run(
                current_app._get_current_object(),  # type: ignore[attr-defined]
                name,
                version=version,
                concurrency=concurrency,
                actor=actor_name(),
            )
        except RegistryError as exc:
            flash(exc.message, "danger")
            return redirect(back)
        flash(f"Suite run #{run.id} started on {name} v{version}.", "info")
        return redirect(url_for(".result", run_id=run.id))


def suite_summary(name: str, version: int) -> dict[str, Any]:
    """For the version page: the latest suite run of a version and the production gate status.

    ``{"cases": n, "latest": SuiteRun | None, "gate": str | None, "url": panel url}``.
    """
    reg = get_registry()
    latest = latest_suite_run(reg, name, version)
    with reg.db.snapshot() as s:
        cases = count_cases(s, prompt_id_of(s, name))
    return {
        "cases": cases,
        "latest": latest,
        "gate": promotion_status(reg, name, version) if cases else None,
        "url": url_for("suites.version", name=name, version=version),
    }


def _json_pretty(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def register(admin: Admin, app: Flask) -> None:
    """Add the suites pages, and ``suite_summary`` for other templates (the version page)."""
    admin.add_view(SuitesView(name="Test suites", endpoint="suites", url="suites"))
    app.jinja_env.globals["suite_summary"] = suite_summary
    app.jinja_env.filters.setdefault("compact_json", _json_pretty)


__all__ = ["SuitesView", "register", "start_suite_run", "suite_summary"]
