"""Web admin page times on a big registry, against the same pages on a small one.

    .venv/bin/python bench/bench_admin.py [--quick] [--postgres URL]

Builds a registry of 1,000 prompts (3 versions each, labels, label moves) and 50,000 runs by
bulk-inserting rows, then times the main admin pages with the Flask test client (logged in,
median of several requests). The baseline is the same pages on a registry of 10 prompts and
100 runs built the same way, measured in the same run. Targets: every page under 1 second
(the issue's budget) and a big/small ratio that shows the pages do not grow with the data
(paginated, indexed queries). Exit status 1 when a page misses the 1 second budget.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from registry import Registry, users  # noqa: E402
from registry.models import LabelEventRow, LabelRow, PromptRow, VersionRow  # noqa: E402
from registry.models.runs import RunRow  # noqa: E402
from registry.versions import validate_content  # noqa: E402
from registry.web import create_app  # noqa: E402

BUDGET_MS = 1000.0
PASSWORD = "benchmark password"


def content(i: int, v: int) -> dict[str, Any]:
    """A realistic small version."""
    return {
        "system": f"You are assistant {i}. Answer in at most {v + 2} sentences.\nBe precise.",
        "messages": [
            {"role": "user", "content": "Context: {{ context }}\nQuestion: {{ question }}"}
        ],
        "settings": {"model": "claude-sonnet-4-6", "max_tokens": 300 + v, "temperature": 0.2},
        "variables": {"context": {"type": "string"}, "question": {"type": "string"}},
        "output_schema": None,
    }


def build(url: str, prompts: int, runs: int) -> Registry:
    """Bulk-insert ``prompts`` prompts (3 versions, labels, events) and ``runs`` runs."""
    reg = Registry(url, cache_ttl=0)
    now = datetime.now(UTC)
    prompt_rows, version_rows, label_rows, event_rows = [], [], [], []
    version_id = 0
    for i in range(prompts):
        name = f"team{i % 20}/prompt-{i:04d}"
        prompt_rows.append(
            {
                "id": i + 1,
                "name": name,
                "description": f"Prompt number {i}",
                "tags": ["bench", f"t{i % 7}"],
                "latest_version": 3,
                "created_at": now - timedelta(days=30),
                "updated_at": now - timedelta(minutes=i),
                "archived_at": None,
            }
        )
        for v in (1, 2, 3):
            version_id += 1
            c = validate_content(**content(i, v))
            version_rows.append(
                {
                    "id": version_id,
                    "prompt_id": i + 1,
                    "version": v,
                    "system": c.system,
                    "messages": c.messages,
                    "settings": c.settings,
                    "variables": c.variables,
                    "output_schema": None,
                    "content_hash": c.content_hash(),
                    "message": f"change {v}",
                    "author": "bench",
                    "created_at": now - timedelta(days=3 - v),
                }
            )
        for label, v in (("production", 2), ("staging", 3)):
            label_rows.append(
                {
                    "prompt_id": i + 1,
                    "name": label,
                    "version_id": version_id - 3 + v,
                    "updated_at": now,
                    "updated_by": "bench",
                }
            )
            event_rows.append(
                {
                    "prompt_id": i + 1,
                    "label": label,
                    "from_version": None,
                    "to_version": v,
                    "actor": "bench",
                    "reason": "bench",
                    "kind": "move",
                    "created_at": now,
                }
            )
    run_rows = []
    for r in range(runs):
        i = r % prompts
        run_rows.append(
            {
                "id": uuid.uuid4().hex,
                "created_at": now - timedelta(seconds=r * 30),
                "prompt": f"team{i % 20}/prompt-{i:04d}",
                "version": 2,
                "label": "production",
                "model": "claude-sonnet-4-6",
                "params": {"max_tokens": 300},
                "variables": {"context": "some context " * 5, "question": "why?"},
                "output_text": "An answer of moderate length. " * 10,
                "input_tokens": 120,
                "output_tokens": 80,
                "cost_usd": 0.0015,
                "latency_ms": 800.0 + r % 400,
                "attempts": 1,
                "status": "error" if r % 50 == 0 else "ok",
                "error_type": "rate_limit_error" if r % 50 == 0 else None,
                "source": "app",
            }
        )
    with reg.db.transaction() as s:
        s.execute(sa.insert(PromptRow), prompt_rows)
        s.execute(sa.insert(VersionRow), version_rows)
        s.execute(sa.insert(LabelRow), label_rows)
        s.execute(sa.insert(LabelEventRow), event_rows)
        for start in range(0, len(run_rows), 5000):
            s.execute(sa.insert(RunRow), run_rows[start : start + 5000])
    if reg.db.dialect == "postgresql":
        with reg.db.engine.begin() as conn:
            conn.execute(sa.text("ANALYZE"))
        with reg.db.engine.begin() as conn:  # keep id sequences past the inserted ids
            for table in ("prompts", "versions"):
                conn.execute(
                    sa.text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
                    )
                )
    users.create_user(reg, "bench", PASSWORD, role="admin")
    return reg


def pages(prompts: int) -> dict[str, str]:
    """The pages to time (a prompt in the middle of the list)."""
    mid = prompts // 2
    name = f"team{mid % 20}/prompt-{mid:04d}"
    day = (datetime.now(UTC) - timedelta(days=2)).date().isoformat()
    return {
        "home": "/admin/",
        "prompts list": "/admin/prompts/",
        "prompts list, last page": f"/admin/prompts/?page={max(1, -(-prompts // 50))}",
        "prompts search": "/admin/prompts/?q=prompt-00",
        "prompts by tag": "/admin/prompts/?tag=t3",
        "prompts by folder": "/admin/prompts/?folder=team7",
        "prompt page": f"/admin/prompts/{name}/-/",
        "version page + preview": f"/admin/prompts/{name}/-/v/2",
        "diff": f"/admin/prompts/{name}/-/diff?old=1&new=3",
        "editor": f"/admin/prompts/{name}/-/edit",
        "label history": f"/admin/labels/{name}/-/history",
        "runs": "/admin/runs/",
        "runs, page 20": "/admin/runs/?page=20",
        "runs of a prompt": f"/admin/runs/?prompt={name}",
        "runs with errors": "/admin/runs/?status=error",
        "runs of a day": f"/admin/runs/?since={day}&until={day}",
        "label moves": "/admin/audit/",
        "playground": f"/admin/playground/?name={name}",
    }


def time_pages(reg: Registry, prompts: int, repeat: int) -> dict[str, float]:
    """Median milliseconds per page for a logged-in admin."""
    app = create_app({"REGISTRY": reg, "SECRET_KEY": "bench", "WTF_CSRF_ENABLED": False})
    client = app.test_client()
    response = client.post("/admin/login/", data={"name": "bench", "password": PASSWORD})
    assert response.status_code == 302, response.status_code
    out: dict[str, float] = {}
    for label, url in pages(prompts).items():
        response = client.get(url)  # warm up (template compile, caches)
        assert response.status_code == 200, (url, response.status_code)
        samples = []
        for _ in range(repeat):
            start = time.perf_counter()
            response = client.get(url)
            samples.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200
        out[label] = statistics.median(samples)
    # the run detail page of one run
    with reg.db.engine.connect() as conn:
        run_id = conn.execute(sa.select(RunRow.id).limit(1)).scalar_one()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        assert client.get(f"/admin/runs/{run_id}").status_code == 200
        samples.append((time.perf_counter() - start) * 1000)
    out["run detail"] = statistics.median(samples)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Fewer repetitions.")
    parser.add_argument(
        "--postgres", metavar="URL", help="Also run on this (empty, migrated) PostgreSQL database."
    )
    args = parser.parse_args()
    repeat = 3 if args.quick else 7
    users.PASSWORD_METHOD = "pbkdf2:sha256:1000"
    with tempfile.TemporaryDirectory() as tmp:
        targets = [("sqlite", f"sqlite:///{tmp}/small.db", f"sqlite:///{tmp}/big.db")]
        if args.postgres:
            targets.append(("postgresql", "", args.postgres))
        worst = 0.0
        for engine, small_url, big_url in targets:
            started = time.perf_counter()
            big = build(big_url, 1000, 50_000)
            print(
                f"[{engine}] built 1,000 prompts / 3,000 versions / 50,000 runs in {time.perf_counter() - started:.1f} s"
            )
            big_times = time_pages(big, 1000, repeat)
            big.close()
            small_times: dict[str, float] = {}
            if small_url:
                small = build(small_url, 10, 100)
                small_times = time_pages(small, 10, repeat)
                small.close()
            print(f"{'page':<28}{'1k prompts/50k runs':>22}{'10 prompts/100 runs':>22}{'ratio':>8}")
            for label, ms in big_times.items():
                base = small_times.get(label)
                ratio = f"{ms / base:.2f}" if base else "-"
                base_text = f"{base:.1f} ms" if base else "-"
                flag = "" if ms < BUDGET_MS else "  OVER BUDGET"
                print(f"{label:<28}{ms:>19.1f} ms{base_text:>22}{ratio:>8}{flag}")
                worst = max(worst, ms)
        print(
            f"slowest page: {worst:.1f} ms (budget {BUDGET_MS:.0f} ms) -> {'OK' if worst < BUDGET_MS else 'FAIL'}"
        )
    return 0 if worst < BUDGET_MS else 1


if __name__ == "__main__":
    raise SystemExit(main())
