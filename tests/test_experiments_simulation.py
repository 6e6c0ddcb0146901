"""Simulated experiments on the fake Anthropic server, through the real runner.

The fake server's responder answers per variant, recognised by a marker in the rendered system
prompt. Running 20,000 real HTTP runs would take minutes on a small machine, so the latency
simulation runs a few dozen units through the real runner (proving the wiring: variant served,
run row tagged, exposure logged) and writes the bulk of the 20,000 units' run rows directly,
drawn from the same per-variant latency distribution the responder uses.
"""

from __future__ import annotations

import itertools
import random
import threading
import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from registry import Registry, RunError
from registry import experiments as ex
from registry.models.experiments import AssignmentRow
from registry.models.runs import RunRow
from registry.testing import FakeAnthropic, Reply
from tests.conftest import simple_version

PROMPT = "support-answer"
UNITS = 20_000
#: per variant: mean latency (ms) of the fake model; B is 10 % slower
LATENCY_MS = {"a": 20.0, "b": 22.0}
LATENCY_SD = 4.0


def latency_ms(rng: random.Random, variant: str) -> float:
    return max(1.0, rng.gauss(LATENCY_MS[variant], LATENCY_SD))


def make_prompt(reg: Registry) -> None:
    reg.create_version(PROMPT, **simple_version(system="[variant:a] answer", labels=["production"]))
    reg.create_version(PROMPT, **simple_version(system="[variant:b] answer"))


def variant_of(body: dict[str, Any]) -> str:
    system = body.get("system")
    text = system if isinstance(system, str) else " ".join(b.get("text", "") for b in system or [])
    return "b" if "[variant:b]" in text else "a"


def test_slower_variant_is_flagged_over_20000_units(
    reg: Registry, db_url: str, fake_anthropic: FakeAnthropic
) -> None:
    make_prompt(reg)
    ex.create(reg, "speed", prompt=PROMPT, variants=["a=1:50", "b=2:50"])
    ex.start(reg, "speed")
    rng = random.Random(11)
    lock = threading.Lock()

    def responder(body: dict[str, Any]) -> Reply:
        with lock:
            delay = latency_ms(rng, variant_of(body)) / 1000
        return Reply.text(f"answer from {variant_of(body)}", delay=delay)

    fake_anthropic.responder = responder
    # 1. the wiring: real runs through the runner and the fake server
    for i in range(40):
        result = reg.run(PROMPT, {"question": "hi"}, unit_id=f"user-{i}")
        assert result.ok and result.experiment == "speed"
        assert result.text == f"answer from {result.variant}"
        assert result.version == (2 if result.variant == "b" else 1)
    # 2. the bulk: the other units are served through a warm registry (as an app process would)
    app = Registry(db_url, cache_ttl=60)
    try:
        served = {
            f"user-{i}": app.get(PROMPT, unit_id=f"user-{i}").variant for i in range(40, UNITS)
        }
    finally:
        app.close()  # writes the exposures
    rows = [
        {
            "id": uuid.uuid4().hex,
            "prompt": PROMPT,
            "version": 2 if variant == "b" else 1,
            "experiment": "speed",
            "variant": variant,
            "unit_id": unit,
            "source": "app",
            "status": "ok",
            "stop_reason": "end_turn",
            "input_tokens": 12,
            "output_tokens": 4,
            "cost_usd": 0.0001,
            "latency_ms": latency_ms(rng, variant),
        }
        for unit, variant in served.items()
        if variant is not None
    ]
    with reg.db.transaction() as s:
        s.execute(RunRow.__table__.insert(), rows)
    report = ex.build_report(reg, "speed")
    assert sum(v.units for v in report.variants) == UNITS
    assert sum(v.runs for v in report.variants) == UNITS
    assert not report.srm
    latency = report.comparison("latency_ms", "b")
    assert latency.p_value < 0.05 and latency.significant and latency.better is False
    assert latency.low > 0  # the interval of the difference excludes 0
    assert [f"{c.variant}:{c.metric}" for c in report.flagged] == ["b:latency_ms"]


def test_broken_variant_trips_the_guardrail_and_stops_the_experiment(
    reg: Registry, fake_anthropic: FakeAnthropic
) -> None:
    from registry.runner import RetryPolicy

    make_prompt(reg)
    ex.create(
        reg,
        "broken",
        prompt=PROMPT,
        variants=["a=1:50", "b=2:50"],
        guardrails=["error_rate"],
        min_runs=20,
    )
    ex.start(reg, "broken")
    counter = itertools.count()

    def responder(body: dict[str, Any]) -> Reply:
        if variant_of(body) == "b" and next(counter) % 2 == 0:
            return Reply.error(500, "api_error", "variant b is broken")
        return Reply.text("fine")

    fake_anthropic.responder = responder
    reg.runner.retry = RetryPolicy(max_retries=0)
    ex.guardrail_watch(reg).interval = 0  # check after every run
    errors = runs = 0
    for i in range(400):
        try:
            reg.run(PROMPT, {"question": "hi"}, unit_id=f"user-{i}")
        except RunError:
            errors += 1
        runs += 1
        if ex.get(reg, "broken").status == "stopped":
            break
    exp = ex.get(reg, "broken")
    assert exp.status == "stopped", f"{runs} runs, {errors} errors"
    assert exp.stopped_by == "guardrail" and "error_rate" in exp.stop_reason
    assert "'b'" in exp.stop_reason
    assert 40 <= runs < 400 and errors > 5
    after = reg.run(PROMPT, {"question": "hi"}, unit_id="user-1")
    assert after.experiment is None and after.version == 1  # the label is served again
    ex.runtime(reg).flush()  # the exposures of every run's get()
    with reg.db.snapshot() as s:
        logged = s.execute(
            sa.select(RunRow.variant, sa.func.count())
            .where(RunRow.experiment == "broken")
            .group_by(RunRow.variant)
        ).all()
        units = s.scalar(sa.select(sa.func.count()).select_from(AssignmentRow))
    assert sum(n for _, n in logged) == runs
    assert units == runs  # one unit per run (coverage 1), each with its assignment row


@pytest.mark.parametrize("stream", [False, True])
def test_runs_and_streams_log_experiment_and_variant(
    sqlite_reg: Registry, fake_anthropic: FakeAnthropic, stream: bool
) -> None:
    make_prompt(sqlite_reg)
    ex.create(sqlite_reg, "tags", prompt=PROMPT, variants=["a=1:1", "b=2:1"])
    ex.start(sqlite_reg, "tags")
    unit = "user-5"
    expected = sqlite_reg.get(PROMPT, unit_id=unit).variant
    if stream:
        s = sqlite_reg.stream(PROMPT, {"question": "hi"}, unit_id=unit)
        "".join(s)
        result = s.result
    else:
        result = sqlite_reg.run(PROMPT, {"question": "hi"}, unit_id=unit)
    assert result is not None and (result.experiment, result.variant) == ("tags", expected)
    sqlite_reg.feedback(result.run_id, "thumbs_up", 1.0)
    report = ex.build_report(sqlite_reg, "tags")
    variant = report.variant(expected)
    assert variant.runs == 1 and variant.units == 1 and variant.exposures == 2
    assert variant.metrics["feedback:thumbs_up"].mean == 1.0
