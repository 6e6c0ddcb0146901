"""Admin pages of experiments: list, create, start, stop, promote and the report with its
charts, by role, CSRF on."""

from __future__ import annotations

import html
import uuid
import xml.etree.ElementTree as ET

import pytest
from flask import Flask

from registry import experiments as ex
from registry.experiments.charts import metric_chart
from registry.models.runs import RunRow
from registry.web import get_registry
from tests.conftest import simple_version
from tests.test_admin import _fast_hashes, app, client_as, post  # noqa: F401  (fixtures)

PROMPT = "support-answer"
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def exp_app(app: Flask) -> Flask:  # noqa: F811
    reg = get_registry(app)
    reg.create_version(PROMPT, **simple_version(labels=["production"]))
    reg.create_version(PROMPT, **simple_version(system="friendlier"))
    return app


def text(response: object) -> str:
    return " ".join(html.unescape(response.get_data(as_text=True)).split())  # type: ignore[attr-defined]


def add_runs(flask_app: Flask, key: str) -> None:
    rows = [
        {
            "id": uuid.uuid4().hex,
            "prompt": PROMPT,
            "experiment": key,
            "variant": variant,
            "status": "error" if i % 10 == 0 else "ok",
            "source": "app",
            "latency_ms": 100.0 + i + (30 if variant == "friendly" else 0),
            "input_tokens": 10 + i % 3,
            "output_tokens": 20,
            "cost_usd": 0.001,
        }
        for variant in ("control", "friendly")
        for i in range(30)
    ]
    with get_registry(flask_app).db.transaction() as s:
        s.execute(RunRow.__table__.insert(), rows)


def test_editor_creates_publisher_starts_and_promotes(exp_app: Flask) -> None:
    editor = client_as(exp_app, "editor")
    form = editor.get("/admin/experiments/new")
    assert form.status_code == 200 and PROMPT in text(form)
    created = post(
        editor,
        "/admin/experiments/new",
        {
            "key": "tone",
            "prompt": PROMPT,
            "variants": "control=1:50\nfriendly=2:50",
            "coverage": "0.5",
            "guardrails": "error_rate:0.1",
            "min_runs": "20",
            "sticky": "1",
            "label": "production",
            "unit": "user_id",
            "description": "friendlier tone",
        },
    )
    assert created.status_code == 302 and created.headers["Location"].endswith(
        "/admin/experiments/tone"
    )
    exp = ex.get(get_registry(exp_app), "tone")
    assert exp.coverage == 0.5 and exp.sticky and exp.created_by == "editor"
    assert str(exp.guardrails[0]) == "error_rate:0.1"
    # an editor may not start: that changes what apps are served
    assert post(editor, "/admin/experiments/tone/start").status_code == 403
    publisher = client_as(exp_app, "publisher")
    assert post(publisher, "/admin/experiments/tone/start").status_code == 302
    assert ex.get(get_registry(exp_app), "tone").status == "running"
    add_runs(exp_app, "tone")
    page = publisher.get("/admin/experiments/tone")
    body = page.get_data(as_text=True)
    assert page.status_code == 200
    assert body.count('class="experiment-chart"') == 6  # one chart per run metric
    assert 'id="promote-form"' in body and "Stop" in body
    assert "worse" in text(page)  # friendly is 30 ms slower
    listing = publisher.get("/admin/experiments/")
    assert 'data-experiment="tone"' in listing.get_data(as_text=True)
    promoted = post(
        publisher, "/admin/experiments/tone/promote", {"variant": "friendly", "reason": "kinder"}
    )
    assert promoted.status_code == 302
    assert get_registry(exp_app).get(PROMPT).version == 2
    final = text(publisher.get("/admin/experiments/tone"))
    assert "promoted friendly" in final and "kinder" in final


def test_viewer_reads_but_cannot_change(exp_app: Flask) -> None:
    ex.create(
        get_registry(exp_app), "tone", prompt=PROMPT, variants=["control=1:1", "friendly=2:1"]
    )
    viewer = client_as(exp_app, "viewer")
    assert viewer.get("/admin/experiments/").status_code == 200
    page = viewer.get("/admin/experiments/tone")
    assert page.status_code == 200 and "start-experiment" not in page.get_data(as_text=True)
    assert viewer.get("/admin/experiments/new").status_code == 403
    assert post(viewer, "/admin/experiments/tone/stop").status_code == 403
    assert viewer.get("/admin/experiments/nope").status_code == 404
    anonymous = exp_app.test_client().get("/admin/experiments/")
    assert anonymous.status_code == 302 and "/admin/login/" in anonymous.headers["Location"]


def test_form_errors_are_shown_and_nothing_is_created(exp_app: Flask) -> None:
    editor = client_as(exp_app, "editor")
    page = post(
        editor,
        "/admin/experiments/new",
        {"key": "bad", "prompt": PROMPT, "variants": "control=1:50", "coverage": "x"},
    )
    assert page.status_code == 200 and "coverage must be a number" in text(page)
    page = post(
        editor,
        "/admin/experiments/new",
        {"key": "bad", "prompt": PROMPT, "variants": "control=1:50"},
    )
    assert "at least two variants" in text(page)
    assert ex.list_experiments(get_registry(exp_app)) == []


def test_stop_records_the_reason_and_conflicts_are_flashed(exp_app: Flask) -> None:
    reg = get_registry(exp_app)
    ex.create(reg, "one", prompt=PROMPT, variants=["control=1:1", "friendly=2:1"])
    ex.create(reg, "two", prompt=PROMPT, variants=["control=1:1", "friendly=2:1"])
    publisher = client_as(exp_app, "publisher")
    post(publisher, "/admin/experiments/one/start")
    refused = post(publisher, "/admin/experiments/two/start", follow_redirects=True)
    assert "already running" in text(refused)
    stopped = post(
        publisher, "/admin/experiments/one/stop", {"reason": "bad idea"}, follow_redirects=True
    )
    assert "bad idea" in text(stopped)
    assert ex.get(reg, "one").stop_reason == "bad idea"


def test_chart_draws_each_variant_with_its_interval(exp_app: Flask) -> None:
    reg = get_registry(exp_app)
    ex.create(reg, "tone", prompt=PROMPT, variants=["control=1:1", "friendly=2:1"])
    ex.start(reg, "tone")
    add_runs(exp_app, "tone")
    report = ex.build_report(reg, "tone")
    svg = ET.fromstring(metric_chart(report, "latency_ms"))
    groups = {g.get("data-variant"): g for g in svg.iter(f"{SVG}g")}
    assert set(groups) == {"control", "friendly"}
    for g in groups.values():
        dot = float(g.find(f"{SVG}circle").get("cx"))  # type: ignore[union-attr]
        bar = g.find(f"{SVG}line")
        assert bar is not None and bar.get("class") == "interval"
        assert float(bar.get("x1")) < dot < float(bar.get("x2"))  # type: ignore[arg-type]
    control_x = float(groups["control"].find(f"{SVG}circle").get("cx"))  # type: ignore[union-attr]
    friendly_x = float(groups["friendly"].find(f"{SVG}circle").get("cx"))  # type: ignore[union-attr]
    assert friendly_x > control_x  # slower: further right
    assert svg.find(f"{SVG}title") is not None
    # a metric without data draws no dots
    empty = ET.fromstring(metric_chart(report, "refusal_rate"))
    assert len(list(empty.iter(f"{SVG}circle"))) == 2  # rates of 0 are data
