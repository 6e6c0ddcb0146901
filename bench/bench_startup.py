"""Start-up costs of the package, as an app and an operator meet them.

    .venv/bin/python bench/bench_startup.py [--quick]

Each figure is the median wall time of fresh interpreters (writing and using .pyc files, as an
installed package does), interleaved with its baseline measured in the same run:

1. ``import registry.client`` (an app that fetches and renders over HTTP)
   vs ``import requests, jinja2``                                          (target <= 1.3)
   It must load none of SQLAlchemy, Flask, Flask-Admin, scipy, psycopg, redis, anthropic.
2. ``prompt-registry prompts list`` on an empty SQLite registry (the console script)
   vs ``python -c "import sqlalchemy, click"``                             (target <= 1.5)

Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVER_STACK = ("sqlalchemy", "flask", "flask_admin", "scipy", "psycopg", "redis", "anthropic")
#: children write and use .pyc files, whatever this shell says
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _timed(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, cwd=cwd, env=env, stdout=subprocess.DEVNULL)
    return (time.perf_counter() - start) * 1000


def compare(
    name: str,
    subject: list[str],
    baseline: list[str],
    rounds: int,
    target: float,
    env: dict[str, str],
    cwd: Path,
) -> tuple[float, bool]:
    """Median ms of ``subject`` and ``baseline`` (interleaved); prints and returns the ratio."""
    for argv in (subject, baseline):  # warm the .pyc files and the page cache
        _timed(argv, env, cwd)
    times: dict[str, list[float]] = {"subject": [], "baseline": []}
    for _ in range(rounds):
        times["subject"].append(_timed(subject, env, cwd))
        times["baseline"].append(_timed(baseline, env, cwd))
    a, b = statistics.median(times["subject"]), statistics.median(times["baseline"])
    ratio = a / b
    ok = ratio <= target
    print(f"{name}: {a:.0f} ms vs baseline {b:.0f} ms")
    print(f"   ratio {ratio:.2f} (target <= {target}) {'OK' if ok else 'MISSED'}")
    return ratio, ok


def loaded_server_modules() -> list[str]:
    probe = "import sys, registry.client; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True, env=ENV
    ).stdout.split()
    return sorted({m.split(".")[0] for m in out} & set(SERVER_STACK))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Fewer rounds.")
    args = parser.parse_args()
    rounds = 9 if args.quick else 25
    python = sys.executable
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        loaded = loaded_server_modules()
        print(f"import registry.client loads from the server stack: {loaded or 'nothing'}")
        results.append(
            compare(
                "1. import registry.client",
                [python, "-c", "import registry.client"],
                [python, "-c", "import requests, jinja2"],
                rounds,
                1.3,
                ENV,
                work,
            )
        )
        env = {**ENV, "REGISTRY_DATABASE_URL": f"sqlite:///{work / 'empty.db'}"}
        command = shutil.which("prompt-registry", path=str(Path(python).parent))
        cli = [command] if command else [python, "-m", "registry"]
        subprocess.run([*cli, "init", "--no-seed"], check=True, env=env, capture_output=True)
        results.append(
            compare(
                "2. prompt-registry prompts list (empty registry)",
                [*cli, "prompts", "list"],
                [python, "-c", "import sqlalchemy, click"],
                rounds,
                1.5,
                env,
                work,
            )
        )
    ratios = ", ".join(f"{r:.2f}" for r, _ in results)
    print(f"ratios: {ratios}; server modules loaded by the client: {len(loaded)}")
    return 0 if all(ok for _, ok in results) and not loaded else 1


if __name__ == "__main__":
    sys.exit(main())
