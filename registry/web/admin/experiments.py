"""``/admin/experiments/``: A/B experiments: list, create, start, stop, promote, read the report.

Pages and who may use them (viewer < editor < publisher < admin):

* ``/admin/experiments/`` every experiment with its status and split (viewers);
* ``/admin/experiments/new`` create a draft (editors);
* ``/admin/experiments/<key>`` the report: traffic, one chart per metric with each variant's
  confidence interval (SVG drawn on the server), comparisons against control, sample ratio
  check, and the actions the user's role allows (viewers);
* POST ``/<key>/start`` (publishers: it changes what apps are served), ``/<key>/stop``
  (editors: it returns everyone to the label), ``/<key>/promote`` (publishers; the label gates
  apply).
"""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, request, url_for
from markupsafe import Markup

from ... import experiments as ex
from ...errors import NotFound, RegistryError, ValidationError
from ...experiments.charts import metric_chart
from ...experiments.definitions import RUN_METRICS
from .. import get_registry
from .base import expose
from .security import ProtectedView, actor_name, require_role

EXAMPLE_VARIANTS = "control=1:50\ntreatment=2:50"


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.replace(",", "\n").splitlines() if line.strip()]


def _number(value: str, field: str, kind: type[int] | type[float]) -> Any:
    try:
        return kind(value)
    except ValueError:
        raise ValidationError(f"{field} must be a number", field=field) from None


class ExperimentsView(ProtectedView):
    """Experiments and their reports."""

    required_role = "viewer"

    @expose("/")
    def index(self) -> Any:
        """Every experiment, newest first (filter with ``?status=`` and ``?prompt=``)."""
        status = request.args.get("status") or None
        prompt = request.args.get("prompt") or None
        try:
            found = ex.list_experiments(get_registry(), prompt=prompt, status=status)
        except ValidationError as exc:
            flash(exc.message, "danger")
            found = []
        return self.render(
            "admin_ui/experiments/index.html", experiments=found, status=status, prompt=prompt
        )

    @expose("/new", methods=["GET", "POST"])
    @require_role("editor")
    def new(self) -> Any:
        """The creation form; a valid POST creates a draft and opens its page."""
        form = request.form
        if request.method == "POST":
            try:
                exp = ex.create(
                    get_registry(),
                    (form.get("key") or "").strip(),
                    prompt=(form.get("prompt") or "").strip(),
                    variants=_lines(form.get("variants") or ""),
                    unit=(form.get("unit") or "user_id").strip(),
                    coverage=_number(form.get("coverage") or "1", "coverage", float),
                    seed=(form.get("seed") or "").strip() or None,
                    guardrails=_lines(form.get("guardrails") or ""),
                    min_runs=_number(form.get("min_runs") or "100", "min_runs", int),
                    sticky=bool(form.get("sticky")),
                    label=(form.get("label") or "production").strip(),
                    description=form.get("description") or "",
                    actor=actor_name(),
                )
            except RegistryError as exc:
                flash(exc.message, "danger")
            else:
                flash(f"Experiment {exp.key} created as a draft: start it when ready.", "success")
                return redirect(url_for(".report", key=exp.key))
        return self.render(
            "admin_ui/experiments/new.html",
            prompts=get_registry().prompts(),
            values=form,
            example=EXAMPLE_VARIANTS,
            metrics=list(RUN_METRICS),
        )

    @expose("/<key>")
    def report(self, key: str) -> Any:
        """The report of one experiment, with a chart per metric."""
        reg = get_registry()
        try:
            report = ex.build_report(reg, key)
        except NotFound:
            abort(404)
        except ValidationError:
            abort(404)
        charts = {m.name: Markup(metric_chart(report, m.name)) for m in report.metrics}
        comparisons = {(c.metric, c.variant): c for c in report.comparisons}
        return self.render(
            "admin_ui/experiments/report.html",
            report=report,
            exp=report.experiment,
            charts=charts,
            comparisons=comparisons,
        )

    def _act(self, key: str, action: Any, done: str) -> Any:
        try:
            action()
        except NotFound:
            abort(404)
        except RegistryError as exc:
            flash(exc.message, "danger")
        else:
            flash(done, "success")
        return redirect(url_for(".report", key=key))

    @expose("/<key>/start", methods=["POST"])
    @require_role("publisher")
    def start(self, key: str) -> Any:
        """Start a draft: units with an id get their variant from now on."""
        return self._act(
            key,
            lambda: ex.start(get_registry(), key, actor=actor_name()),
            f"Experiment {key} started.",
        )

    @expose("/<key>/stop", methods=["POST"])
    @require_role("editor")
    def stop(self, key: str) -> Any:
        """Stop (or cancel a draft): every unit gets the label's version again."""
        reason = request.form.get("reason") or ""
        return self._act(
            key,
            lambda: ex.stop(get_registry(), key, actor=actor_name(), reason=reason),
            f"Experiment {key} stopped.",
        )

    @expose("/<key>/promote", methods=["POST"])
    @require_role("publisher")
    def promote(self, key: str) -> Any:
        """Move the experiment's label to a variant's version and stop the experiment."""
        variant = request.form.get("variant") or ""
        reason = request.form.get("reason") or ""
        return self._act(
            key,
            lambda: ex.promote(get_registry(), key, variant, actor=actor_name(), reason=reason),
            f"Variant {variant} promoted; experiment {key} stopped.",
        )


def register(admin: Any, app: Any) -> None:
    """Add the experiments pages to the admin."""
    admin.add_view(ExperimentsView(name="Experiments", endpoint="experiments", url="experiments"))


__all__ = ["ExperimentsView", "register"]
