"""Experiments in storage: lifecycle, serving variants through ``get``, exposures, sticky
assignments, ramp-up, promotion, guardrails, and the CLI (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections import Counter
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from registry import ConflictError, NotFound, PermissionDenied, Registry, ValidationError
from registry import experiments as ex
from registry.cli import main
from registry.models.experiments import AssignmentRow, ExperimentRow
from registry.models.runs import FeedbackRow, RunRow
from tests.conftest import simple_version

PROMPT = "support-answer"


def make_prompt(reg: Registry, name: str = PROMPT, versions: int = 3) -> None:
    """Versions 1..n; production -> v1, staging -> v2."""
    for i in range(1, versions + 1):
        labels = ["production"] if i == 1 else (["staging"] if i == 2 else [])
        reg.create_version(name, **simple_version(system=f"variant marker {i}", labels=labels))


@pytest.fixture
def prompt_reg(reg: Registry) -> Registry:
    make_prompt(reg)
    return reg


def running_experiment(reg: Registry, key: str = "tone", **kwargs: Any) -> ex.Experiment:
    kwargs.setdefault("variants", ["control=1:50", "treatment=3:50"])
    ex.create(reg, key, prompt=kwargs.pop("prompt", PROMPT), **kwargs)
    return ex.start(reg, key, actor="ana")


def insert_runs(reg: Registry, rows: list[dict[str, Any]]) -> None:
    """Write run rows directly (the bulk of a simulation; the runner writes the same columns)."""
    full = []
    for r in rows:
        row = {
            "id": uuid.uuid4().hex,
            "prompt": PROMPT,
            "status": "ok",
            "source": "app",
            "stop_reason": "end_turn",
            "input_tokens": 10,
            "output_tokens": 20,
            "cost_usd": 0.001,
            "latency_ms": 100.0,
        }
        row.update(r)
        full.append(row)
    with reg.db.transaction() as s:
        s.execute(RunRow.__table__.insert(), full)


# -- lifecycle ------------------------------------------------------------------------------


def test_create_stores_a_draft_with_its_variants(prompt_reg: Registry) -> None:
    exp = ex.create(
        prompt_reg,
        "tone",
        prompt=PROMPT,
        variants=["control=1:50", ex.Variant("friendly", 2, 50)],
        guardrails=["error_rate:0.02", "feedback:thumbs_up"],
        coverage=0.5,
        actor="ana",
        description="friendlier tone",
    )
    assert exp.status == "draft"
    assert exp.seed == "tone"
    assert exp.control == ex.Variant("control", 1, 50.0)
    assert [g.to_dict() for g in exp.guardrails] == [
        {"metric": "error_rate", "threshold": 0.02},
        {"metric": "feedback:thumbs_up", "threshold": 0.0},
    ]
    assert ex.get(prompt_reg, "tone") == exp
    assert [e.key for e in ex.list_experiments(prompt_reg, prompt=PROMPT)] == ["tone"]
    assert ex.list_experiments(prompt_reg, status="running") == []


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"variants": ["control=1:50"]}, "variants"),
        ({"variants": ["a=1:50", "a=2:50"]}, "variants"),
        ({"variants": ["a=1", "b=2:x"]}, "variants"),
        ({"variants": ["a=1:0", "b=2:0"]}, "variants"),
        ({"variants": ["a=1:-1", "b=2:1"]}, "variants"),
        ({"coverage": 0}, "coverage"),
        ({"coverage": 1.5}, "coverage"),
        ({"guardrails": ["speed"]}, "metric"),
        ({"guardrails": ["error_rate:-1"]}, "guardrails"),
        ({"unit": "user id"}, "unit"),
        ({"min_runs": 1}, "min_runs"),
        ({"label": "latest"}, "label"),
    ],
)
def test_create_refuses_bad_definitions(
    prompt_reg: Registry, kwargs: dict[str, Any], field: str
) -> None:
    kwargs.setdefault("variants", ["a=1:50", "b=2:50"])
    with pytest.raises(ValidationError) as err:
        ex.create(prompt_reg, "bad", prompt=PROMPT, **kwargs)
    assert err.value.field == field
    assert ex.list_experiments(prompt_reg) == []


def test_create_refuses_unknown_prompt_version_and_duplicate_key(prompt_reg: Registry) -> None:
    with pytest.raises(NotFound, match="does not exist"):
        ex.create(prompt_reg, "x", prompt="nope", variants=["a=1:1", "b=2:1"])
    with pytest.raises(NotFound, match="no version 9"):
        ex.create(prompt_reg, "x", prompt=PROMPT, variants=["a=1:1", "b=9:1"])
    ex.create(prompt_reg, "x", prompt=PROMPT, variants=["a=1:1", "b=2:1"])
    with pytest.raises(ConflictError, match="exists already"):
        ex.create(prompt_reg, "x", prompt=PROMPT, variants=["a=1:1", "b=2:1"])
    with pytest.raises(ValidationError):
        ex.create(prompt_reg, "bad key!", prompt=PROMPT, variants=["a=1:1", "b=2:1"])


def test_start_and_stop(prompt_reg: Registry) -> None:
    exp = running_experiment(prompt_reg)
    assert exp.status == "running" and exp.started_by == "ana" and exp.started_at is not None
    assert ex.running(prompt_reg, PROMPT) == exp
    with pytest.raises(ConflictError, match="only a draft can start"):
        ex.start(prompt_reg, "tone")
    stopped = ex.stop(prompt_reg, "tone", actor="bob", reason="enough data")
    assert stopped.status == "stopped" and stopped.stopped_by == "bob"
    assert stopped.stop_reason == "enough data"
    assert ex.running(prompt_reg, PROMPT) is None
    with pytest.raises(ConflictError, match="already stopped"):
        ex.stop(prompt_reg, "tone")
    with pytest.raises(ConflictError):
        ex.start(prompt_reg, "tone")


def test_one_running_experiment_per_prompt(prompt_reg: Registry) -> None:
    running_experiment(prompt_reg, "first")
    ex.create(prompt_reg, "second", prompt=PROMPT, variants=["a=1:1", "b=2:1"])
    with pytest.raises(ConflictError, match="'first' is already running"):
        ex.start(prompt_reg, "second")
    ex.stop(prompt_reg, "first")
    assert ex.start(prompt_reg, "second").status == "running"


def test_the_database_refuses_two_running_experiments_on_a_prompt(prompt_reg: Registry) -> None:
    running_experiment(prompt_reg, "first")
    ex.create(prompt_reg, "second", prompt=PROMPT, variants=["a=1:1", "b=2:1"])
    with pytest.raises(sa.exc.IntegrityError), prompt_reg.db.transaction() as s:
        row = s.scalars(sa.select(ExperimentRow).where(ExperimentRow.key == "second")).one()
        row.status = "running"
        row.running_prompt_id = row.prompt_id
    assert ex.get(prompt_reg, "second").status == "draft"


# -- serving --------------------------------------------------------------------------------


def test_get_with_unit_serves_the_units_variant(prompt_reg: Registry) -> None:
    assert prompt_reg.get(PROMPT, unit_id="u1").version == 1  # no experiment yet
    running_experiment(prompt_reg)
    served = Counter()
    for i in range(200):
        v = prompt_reg.get(PROMPT, unit_id=f"user-{i}")
        assert v.experiment == "tone"
        assert (v.variant, v.version) in {("control", 1), ("treatment", 3)}
        assert prompt_reg.get(PROMPT, unit_id=f"user-{i}").variant == v.variant
        served[v.variant] += 1
    assert 65 < served["treatment"] < 135
    plain = prompt_reg.get(PROMPT)
    assert plain.version == 1 and plain.experiment is None and plain.variant is None
    assert prompt_reg.get(PROMPT, label="production", unit_id="user-1").experiment == "tone"
    other = prompt_reg.get(PROMPT, label="staging", unit_id="user-1")
    assert other.version == 2 and other.experiment is None
    assert prompt_reg.get(PROMPT, version=2, unit_id="user-1").variant is None
    ex.stop(prompt_reg, "tone")
    assert prompt_reg.get(PROMPT, unit_id="user-1").experiment is None


def test_experiment_on_another_label_only_applies_to_that_label(prompt_reg: Registry) -> None:
    running_experiment(prompt_reg, label="staging", variants=["control=2:1", "treatment=3:1"])
    assert prompt_reg.get(PROMPT, unit_id="user-1").version == 1
    assert prompt_reg.get(PROMPT, label="production", unit_id="user-1").experiment is None
    assert prompt_reg.get(PROMPT, label="staging", unit_id="user-1").experiment == "tone"


def test_units_outside_coverage_get_the_label(prompt_reg: Registry) -> None:
    running_experiment(prompt_reg, coverage=0.2, variants=["a=2:1", "b=3:1"])
    versions = Counter(prompt_reg.get(PROMPT, unit_id=f"user-{i}").version for i in range(300))
    assert 30 < versions[2] + versions[3] < 90
    assert versions[1] > 200


def test_other_processes_see_a_start_within_the_cache_ttl(
    db_url: str, prompt_reg: Registry
) -> None:
    other = Registry(db_url, cache_ttl=3600)
    try:
        assert other.get(PROMPT, unit_id="user-1").experiment is None
        running_experiment(prompt_reg)
        # cached "nothing runs" until the TTL ends (or a local change invalidates it)
        assert other.get(PROMPT, unit_id="user-1").experiment is None
        ex.runtime(other).invalidate(PROMPT)
        assert other.get(PROMPT, unit_id="user-1").experiment == "tone"
        ex.stop(other, "tone")  # a local stop is seen at once
        assert other.get(PROMPT, unit_id="user-1").experiment is None
    finally:
        other.close()


def test_other_processes_stop_serving_a_stopped_experiment_after_the_ttl(
    db_url: str, prompt_reg: Registry
) -> None:
    running_experiment(prompt_reg)
    other = Registry(db_url, cache_ttl=0.2)
    try:
        assert other.get(PROMPT, unit_id="user-1").experiment == "tone"
        ex.stop(prompt_reg, "tone")
        deadline = time.monotonic() + 30  # the timer marks the cached entry stale
        while other.get(PROMPT, unit_id="user-1").experiment is not None:
            assert time.monotonic() < deadline, "the stopped experiment is still served"
            time.sleep(0.02)
        running_experiment(prompt_reg, key="tone-2")
        while other.get(PROMPT, unit_id="user-1").experiment != "tone-2":
            assert time.monotonic() < deadline, "the new experiment is not served"
            time.sleep(0.02)
    finally:
        other.close()


def test_a_forked_child_reloads_the_cached_experiment(db_url: str, prompt_reg: Registry) -> None:
    running_experiment(prompt_reg)
    other = Registry(db_url, cache_ttl=3600)
    try:
        assert other.get(PROMPT, unit_id="user-1").experiment == "tone"
        ex.stop(prompt_reg, "tone")
        assert other.get(PROMPT, unit_id="user-1").experiment == "tone"  # cached for an hour
        pid = os.fork()
        if pid == 0:  # the child: no timer thread, so it must not trust the parent's cache
            code = 1
            try:
                other.db.engine.dispose(close=False)  # never share the parent's connections
                code = 0 if other.get(PROMPT, unit_id="user-1").experiment is None else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        other.close()


def test_exposures_are_counted_per_unit(prompt_reg: Registry) -> None:
    running_experiment(prompt_reg)
    for _ in range(3):
        prompt_reg.get(PROMPT, unit_id="u1")
    prompt_reg.get(PROMPT, unit_id="u2")
    assert ex.runtime(prompt_reg).flush() == 2
    prompt_reg.get(PROMPT, unit_id="u1")
    assert ex.runtime(prompt_reg).flush() == 1
    with prompt_reg.db.snapshot() as s:
        rows = {r.unit_id: r for r in s.scalars(sa.select(AssignmentRow))}
    assert rows["u1"].exposures == 4 and rows["u2"].exposures == 1
    assert rows["u1"].variant == prompt_reg.get(PROMPT, unit_id="u1").variant
    assert rows["u1"].first_seen <= rows["u1"].last_seen


def test_exposure_logging_can_be_switched_off_and_on(prompt_reg: Registry) -> None:
    running_experiment(prompt_reg)
    rt = ex.runtime(prompt_reg)
    prompt_reg.get(PROMPT, unit_id="u1")  # the cached entry now holds the exposure sink
    rt.flush()
    rt.log_exposures = False
    served = prompt_reg.get(PROMPT, unit_id="u1")
    assert served.experiment == "tone"  # still served its variant, just not counted
    assert rt.flush() == 0
    rt.log_exposures = True
    prompt_reg.get(PROMPT, unit_id="u1")
    assert rt.flush() == 1
    with prompt_reg.db.snapshot() as s:
        count = s.scalar(sa.select(AssignmentRow.exposures).where(AssignmentRow.unit_id == "u1"))
    assert count == 2


def test_close_writes_buffered_exposures(db_url: str, prompt_reg: Registry) -> None:
    running_experiment(prompt_reg)
    other = Registry(db_url, cache_ttl=1)
    other.get(PROMPT, unit_id="u9")
    other.close()
    with prompt_reg.db.snapshot() as s:
        assert (
            s.scalar(sa.select(AssignmentRow.exposures).where(AssignmentRow.unit_id == "u9")) == 1
        )


def test_raising_coverage_keeps_units_in_their_variant(prompt_reg: Registry) -> None:
    running_experiment(prompt_reg, coverage=0.1)
    units = [f"user-{i}" for i in range(300)]
    before = {u: prompt_reg.get(PROMPT, unit_id=u).variant for u in units}
    exp = ex.update(prompt_reg, "tone", coverage=0.6, actor="ana")
    assert exp.coverage == 0.6
    after = {u: prompt_reg.get(PROMPT, unit_id=u).variant for u in units}
    kept = [u for u, v in before.items() if v is not None]
    assert kept and all(after[u] == before[u] for u in kept)
    assert sum(v is not None for v in after.values()) > 2 * len(kept)


def test_sticky_units_keep_their_variant_when_weights_change(prompt_reg: Registry) -> None:
    running_experiment(prompt_reg, sticky=True)
    units = [f"user-{i}" for i in range(100)]
    before = {u: prompt_reg.get(PROMPT, unit_id=u).variant for u in units}
    assert set(before.values()) == {"control", "treatment"}
    ex.update(prompt_reg, "tone", weights={"control": 0, "treatment": 1})
    assert {u: prompt_reg.get(PROMPT, unit_id=u).variant for u in units} == before
    newcomers = {prompt_reg.get(PROMPT, unit_id=f"new-{i}").variant for i in range(30)}
    assert newcomers == {"treatment"}
    ex.runtime(prompt_reg).flush()
    with prompt_reg.db.snapshot() as s:
        stored = dict(s.execute(sa.select(AssignmentRow.unit_id, AssignmentRow.variant)).all())
    assert all(stored[u] == before[u] for u in units)


def test_sticky_assignment_is_shared_between_processes(db_url: str, prompt_reg: Registry) -> None:
    running_experiment(prompt_reg, sticky=True)
    first = prompt_reg.get(PROMPT, unit_id="user-7").variant
    other_variant = "control" if first == "treatment" else "treatment"
    ex.update(prompt_reg, "tone", weights={first: 0, other_variant: 1})
    other = Registry(db_url, cache_ttl=0)
    try:
        assert other.get(PROMPT, unit_id="user-7").variant == first
    finally:
        other.close()


def test_non_sticky_units_follow_weight_changes(prompt_reg: Registry) -> None:
    running_experiment(prompt_reg)
    ex.update(prompt_reg, "tone", weights={"control": 0})
    assert {prompt_reg.get(PROMPT, unit_id=f"u{i}").variant for i in range(100)} == {"treatment"}


def test_update_refuses_unknown_variant_and_stopped_experiment(prompt_reg: Registry) -> None:
    running_experiment(prompt_reg)
    with pytest.raises(NotFound, match="no variant 'nope'"):
        ex.update(prompt_reg, "tone", weights={"nope": 1})
    with pytest.raises(ValidationError):
        ex.update(prompt_reg, "tone", weights={"control": 0, "treatment": 0})
    ex.stop(prompt_reg, "tone")
    with pytest.raises(ConflictError):
        ex.update(prompt_reg, "tone", coverage=0.5)


# -- promotion ------------------------------------------------------------------------------


def test_promote_moves_the_label_and_stops_in_one_audited_step(prompt_reg: Registry) -> None:
    running_experiment(prompt_reg)
    exp = ex.promote(prompt_reg, "tone", "treatment", actor="ana", reason="friendlier wins")
    assert exp.status == "stopped" and exp.promoted_variant == "treatment"
    assert exp.stopped_by == "ana" and "promoted variant treatment" in exp.stop_reason
    assert prompt_reg.get(PROMPT).version == 3
    assert prompt_reg.get(PROMPT, unit_id="user-1").experiment is None
    event = prompt_reg.label_history(PROMPT, "production")[-1]
    assert (event.from_version, event.to_version, event.actor) == (1, 3, "ana")
    assert "experiment tone" in event.reason and "friendlier wins" in event.reason
    with pytest.raises(ConflictError, match="already promoted"):
        ex.promote(prompt_reg, "tone", "control")


def test_a_refused_label_move_keeps_the_experiment_running(prompt_reg: Registry) -> None:
    running_experiment(prompt_reg)

    def refuse(session: Any, move: Any) -> None:
        raise PermissionDenied(f"{move.label} is frozen")

    prompt_reg.hooks.label_guards.append(refuse)
    with pytest.raises(PermissionDenied, match="frozen"):
        ex.promote(prompt_reg, "tone", "treatment", actor="ana")
    prompt_reg.hooks.label_guards.remove(refuse)
    assert ex.get(prompt_reg, "tone").status == "running"
    assert prompt_reg.get(PROMPT).version == 1


def test_promote_needs_a_known_variant_and_a_started_experiment(prompt_reg: Registry) -> None:
    ex.create(prompt_reg, "tone", prompt=PROMPT, variants=["control=1:1", "treatment=3:1"])
    with pytest.raises(ConflictError, match="never ran"):
        ex.promote(prompt_reg, "tone", "treatment")
    ex.start(prompt_reg, "tone")
    with pytest.raises(NotFound, match="no variant 'nope'"):
        ex.promote(prompt_reg, "tone", "nope")


# -- guardrails -----------------------------------------------------------------------------


def test_guardrail_stops_a_significantly_worse_variant(prompt_reg: Registry) -> None:
    running_experiment(prompt_reg, guardrails=["error_rate"], min_runs=50)
    rows = [{"experiment": "tone", "variant": "control", "version": 1} for _ in range(60)]
    rows += [
        {
            "experiment": "tone",
            "variant": "treatment",
            "version": 3,
            "status": "error" if i % 2 else "ok",
        }
        for i in range(40)
    ]
    insert_runs(prompt_reg, rows)
    assert ex.check_guardrails(prompt_reg, "tone") is None  # treatment below min_runs
    insert_runs(
        prompt_reg,
        [
            {
                "experiment": "tone",
                "variant": "treatment",
                "version": 3,
                "status": "error" if i % 2 else "ok",
            }
            for i in range(20)
        ],
    )
    trip = ex.check_guardrails(prompt_reg, "tone")
    assert trip is not None and trip.variant == "treatment" and trip.metric == "error_rate"
    exp = ex.get(prompt_reg, "tone")
    assert exp.status == "stopped" and exp.stopped_by == "guardrail"
    assert "error_rate" in exp.stop_reason and "treatment" in exp.stop_reason
    assert prompt_reg.get(PROMPT, unit_id="user-1").version == 1


def test_guardrail_tolerates_degradation_within_its_threshold(prompt_reg: Registry) -> None:
    running_experiment(prompt_reg, guardrails=["latency_ms:50"], min_runs=20)
    rows = [
        {"experiment": "tone", "variant": "control", "latency_ms": 100.0 + i % 5} for i in range(50)
    ]
    rows += [
        {"experiment": "tone", "variant": "treatment", "latency_ms": 130.0 + i % 5}
        for i in range(50)
    ]
    insert_runs(prompt_reg, rows)
    assert ex.check_guardrails(prompt_reg, "tone") is None
    insert_runs(
        prompt_reg,
        [
            {"experiment": "tone", "variant": "treatment", "latency_ms": 400.0 + i % 5}
            for i in range(100)
        ],
    )
    assert ex.check_guardrails(prompt_reg, "tone") is not None


def test_guardrail_on_feedback_trips_when_the_score_drops(prompt_reg: Registry) -> None:
    running_experiment(prompt_reg, guardrails=["feedback:thumbs_up"], min_runs=30)
    ids: dict[str, list[str]] = {"control": [], "treatment": []}
    rows = []
    for variant in ids:
        for _ in range(40):
            run_id = uuid.uuid4().hex
            ids[variant].append(run_id)
            rows.append({"id": run_id, "experiment": "tone", "variant": variant})
    insert_runs(prompt_reg, rows)
    with prompt_reg.db.transaction() as s:
        s.execute(
            FeedbackRow.__table__.insert(),
            [
                {"run_id": r, "name": "thumbs_up", "value": 1.0 if i % 10 else 0.0, "comment": ""}
                for i, r in enumerate(ids["control"])
            ]
            + [
                {
                    "run_id": r,
                    "name": "thumbs_up",
                    "value": 1.0 if i % 3 == 0 else 0.0,
                    "comment": "",
                }
                for i, r in enumerate(ids["treatment"])
            ],
        )
    trip = ex.check_guardrails(prompt_reg, "tone")
    assert trip is not None and trip.metric == "feedback:thumbs_up"


def test_guardrail_listener_ignores_runs_that_do_not_count(prompt_reg: Registry) -> None:
    running_experiment(prompt_reg, guardrails=["error_rate"], min_runs=10)
    rt = ex.guardrail_watch(prompt_reg)
    rt.interval = 0
    rows = [{"experiment": "tone", "variant": "control"} for _ in range(30)]
    rows += [{"experiment": "tone", "variant": "treatment", "status": "error"} for _ in range(30)]
    insert_runs(prompt_reg, [{**r, "source": "test"} for r in rows])

    class Result:
        experiment = "tone"
        source = "test"

    rt.on_run(Result())
    assert ex.get(prompt_reg, "tone").status == "running"  # test runs do not count
    insert_runs(prompt_reg, rows)
    Result.source = "app"
    rt.on_run(Result())
    assert ex.get(prompt_reg, "tone").status == "stopped"


def test_guardrail_listener_skips_a_served_experiment_without_guardrails(
    prompt_reg: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    from registry.experiments import guardrails

    checked: list[str] = []
    monkeypatch.setattr(guardrails, "check_guardrails", lambda reg, key: checked.append(key))
    running_experiment(prompt_reg, "plain")
    rt = ex.guardrail_watch(prompt_reg)
    rt.interval = 0

    class Result:
        experiment = "plain"
        source = "app"

    rt.on_run(Result())
    assert checked == ["plain"]  # not served here yet: checked (it reads the experiment)
    assert prompt_reg.get(PROMPT, unit_id="user-1").experiment == "plain"
    rt.on_run(Result())
    assert checked == ["plain"]  # served with no guardrails: nothing to read back
    ex.stop(prompt_reg, "plain")
    running_experiment(prompt_reg, "guarded", guardrails=["error_rate"])
    prompt_reg.get(PROMPT, unit_id="user-1")
    Result.experiment = "guarded"
    rt.on_run(Result())
    assert checked == ["plain", "guarded"]


# -- CLI ------------------------------------------------------------------------------------


def cli(db_url: str, *args: str) -> Any:
    return CliRunner().invoke(main, ["--database", db_url, *args], catch_exceptions=False)


def test_cli_walks_the_whole_lifecycle(db_url: str, prompt_reg: Registry) -> None:
    out = cli(
        db_url,
        "experiments", "create", "tone", "--prompt", PROMPT,
        "--variant", "control=1:50", "--variant", "friendly=3:50",
        "--unit", "user_id", "--coverage", "1.0", "--seed", "s1",
        "--guardrail", "error_rate:0.05", "--sticky", "--actor", "ana",
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "created experiment tone" in out.output
    assert cli(db_url, "experiments", "start", "tone").exit_code == 0
    listed = json.loads(cli(db_url, "experiments", "list", "--json").output)
    assert listed[0]["status"] == "running" and listed[0]["sticky"] is True
    assert listed[0]["seed"] == "s1"
    insert_runs(
        prompt_reg,
        [
            {"experiment": "tone", "variant": v, "latency_ms": 100.0 + i}
            for i in range(5)
            for v in ("control", "friendly")
        ],
    )
    table = cli(db_url, "experiments", "report", "tone")
    assert table.exit_code == 0 and "Latency" in table.output and "friendly" in table.output
    report = json.loads(cli(db_url, "experiments", "report", "tone", "--json").output)
    assert report["control"] == "control"
    assert [v["runs"] for v in report["variants"]] == [5, 5]
    assert cli(db_url, "experiments", "update", "tone", "--coverage", "0.5").exit_code == 0
    promoted = cli(db_url, "experiments", "promote", "tone", "friendly", "--reason", "nicer")
    assert promoted.exit_code == 0 and "version 3" in promoted.output
    assert prompt_reg.get(PROMPT).version == 3
    assert "stopped" in cli(db_url, "experiments", "list").output


def test_cli_errors_are_one_line_and_exit_1(db_url: str, prompt_reg: Registry) -> None:
    bad = cli(db_url, "experiments", "create", "x", "--prompt", PROMPT, "--variant", "a=1:1")
    assert bad.exit_code == 1 and "at least two variants" in bad.output
    missing = cli(db_url, "experiments", "stop", "nope")
    assert missing.exit_code == 1 and "does not exist" in missing.output


def test_cli_commands_have_help() -> None:
    group = main.commands["experiments"]
    assert group.help
    for name in ("create", "start", "stop", "report", "promote", "list", "update"):
        command = group.commands[name]  # type: ignore[attr-defined]
        assert command.help, name
        for param in command.params:
            if param.param_type_name == "option":
                assert param.help, f"{name} {param.name}"
