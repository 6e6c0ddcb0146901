"""The package's shape: the import-linter layers hold (and catch a breach), and the read path
stays lean (no ORM, Alembic, anthropic or Flask to fetch and render a prompt)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
HEAVY = ("sqlalchemy.orm", "alembic", "anthropic", "flask", "pydantic", "yaml", "scipy")


def _lint(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def test_the_layer_contracts_hold() -> None:
    out = _lint(ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout


def test_an_upward_import_breaks_the_layer_contract(tmp_path: Path) -> None:
    shutil.copytree(
        ROOT / "registry", tmp_path / "registry", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    reading = tmp_path / "registry" / "reading.py"
    source = reading.read_text()
    reading.write_text(
        source.replace(
            "from .db import Database\n",
            "from .db import Database\nfrom .registry import Registry  # noqa\n",
            1,
        )
    )
    out = _lint(tmp_path)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "registry.reading is not allowed to import registry.registry" in out.stdout


def _loaded(code: str) -> list[str]:
    probe = code + f"\nimport sys\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return [m for m in out.stdout.strip().split(",") if m]


def test_star_import_loads_neither_anthropic_nor_the_orm() -> None:
    assert (
        _loaded("from registry import *\nassert RunResult and VersionDiff and PromptSource") == []
    )


def test_fetch_and_render_load_nothing_heavy(db_url: str) -> None:
    from registry import Registry
    from tests.conftest import simple_version

    reg = Registry(db_url)
    reg.create_version("p", **simple_version(labels=["production"]))
    reg.close()
    code = (
        "from registry import Registry\n"
        f"reg = Registry({db_url!r})\n"
        "v = reg.get('p')\n"
        "v.render({k: 'x' for k, s in v.variables.items() if s.get('required', True)})\n"
    )
    assert _loaded(code) == []
