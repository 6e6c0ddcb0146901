"""Cold start: a fresh process imports ``registry``, fetches a prompt and renders it.

    .venv/bin/python bench/bench_coldstart.py [--quick] [--postgres URL]

Each figure is the median wall time of fresh interpreters, interleaved with the floor measured
in the same run:

1. SQLite: ``from registry import Registry`` + ``Registry(url).get(...).render(...)``
   vs a process that only runs ``import sqlalchemy, jinja2``             (target <= 1.1)
2. PostgreSQL (with ``--postgres`` or ``$REGISTRY_TEST_PG_URL``): the same
   vs ``import sqlalchemy, jinja2, psycopg``                            (target <= 1.1)

It also reports which heavy packages the read path loaded (it must load none of
``sqlalchemy.orm``, ``alembic``, ``anthropic``, ``flask``). Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from registry import Registry  # noqa: E402

HEAVY = ("sqlalchemy.orm", "alembic", "anthropic", "flask", "pydantic", "yaml")
TARGET = 1.1


def _read_path_code(url: str) -> str:
    return (
        "from registry import Registry\n"
        f"reg = Registry({url!r})\n"
        "reg.get('cold', label='production').render({'question': 'Where is my invoice?'})\n"
    )


def _seed(url: str) -> None:
    reg = Registry(url, cache_ttl=0)
    reg.create_version(
        "cold",
        system="You are the support assistant of {{ company }}.",
        messages=[{"role": "user", "content": "{{ question }}"}],
        settings={"model": "claude-sonnet-4-6", "max_tokens": 300},
        variables={
            "question": {"type": "string"},
            "company": {"type": "string", "default": "Acme"},
        },
        labels=["production"],
    )
    reg.close()


#: children write and use .pyc files, as an installed app does (whatever this shell says)
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _timed(src: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", src], check=True, cwd=ROOT, env=ENV)
    return (time.perf_counter() - start) * 1000


def _loaded(src: str) -> list[str]:
    probe = src + (f"import sys\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))\n")
    out = subprocess.run(
        [sys.executable, "-c", probe], check=True, cwd=ROOT, env=ENV, capture_output=True, text=True
    ).stdout.strip()
    return [m for m in out.split(",") if m]


def measure(label: str, url: str, floor: str, runs: int) -> float:
    """Median cold start of the read path over the median of ``floor``, interleaved."""
    code = _read_path_code(url)
    _timed(code)  # warm the OS file cache and .pyc files
    _timed(floor)
    ours: list[float] = []
    base: list[float] = []
    for _ in range(runs):
        ours.append(_timed(code))
        base.append(_timed(floor))
    ratio = statistics.median(ours) / statistics.median(base)
    heavy = _loaded(code)
    print(
        f"{label}: import+get+render median {statistics.median(ours):.0f} ms vs "
        f"`{floor}` {statistics.median(base):.0f} ms -> ratio {ratio:.2f} "
        f"(target <= {TARGET}); heavy modules loaded: {', '.join(heavy) or 'none'}"
    )
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="5 processes each instead of 21")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("REGISTRY_TEST_PG_URL"),
        help="admin URL of a PostgreSQL server to create a scratch database on",
    )
    args = parser.parse_args()
    runs = 5 if args.quick else 21
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'cold.db'}"
        _seed(url)
        ok &= measure("1. SQLite", url, "import sqlalchemy, jinja2", runs) <= TARGET
    if args.postgres:
        admin = sa.create_engine(args.postgres, isolation_level="AUTOCOMMIT")
        name = f"registry_bench_cold_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        try:
            url = sa.make_url(args.postgres).set(database=name).render_as_string(False)
            Registry(url, auto_upgrade=True).close()
            _seed(url)
            floor = "import sqlalchemy, jinja2, psycopg"
            ok &= measure("2. PostgreSQL", url, floor, runs) <= TARGET
        finally:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    else:
        print("2. PostgreSQL: skipped (no --postgres URL and no $REGISTRY_TEST_PG_URL)")
    print("all targets met" if ok else "some targets missed (see above)")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
