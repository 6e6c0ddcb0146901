"""The package as a user installs it: a wheel, installed (not editable) in a fresh virtualenv,
used from an empty directory through ``prompt-registry`` and ``python -m registry``.

The wheel is built once per run; its dependencies come from a wheelhouse kept in the user's
cache directory (keyed by the dependency list), so a run downloads them at most once and the
fresh virtualenv installs offline in a few seconds.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def _run(cmd: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _wheelhouse(wheel: Path) -> Path:
    """A folder with a wheel of every dependency, cached per dependency list."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    key = hashlib.sha256("\n".join(sorted(deps)).encode()).hexdigest()[:16]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    house = (
        cache / "prompt-registry" / f"wheelhouse-{sys.version_info[0]}{sys.version_info[1]}-{key}"
    )
    if not (house / ".complete").exists():
        partial = house.with_name(house.name + f".partial-{os.getpid()}")
        shutil.rmtree(partial, ignore_errors=True)
        _run([sys.executable, "-m", "pip", "download", "-q", "-d", str(partial), str(wheel)])
        for ours in partial.glob("prompt_registry-*"):
            ours.unlink()
        (partial / ".complete").touch()
        shutil.rmtree(house, ignore_errors=True)
        partial.rename(house)
    return house


@dataclass
class Installed:
    """A fresh virtualenv with the wheel installed, and a clean environment to run it in."""

    wheel: Path
    python: Path
    command: Path
    env: dict[str, str]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    work = tmp_path_factory.mktemp("packaging")
    dist = work / "dist"
    _run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(ROOT)],
        cwd=work,
    )
    (wheel,) = dist.glob("prompt_registry-*.whl")
    house = _wheelhouse(wheel)
    venv = work / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "-q",
            "--no-compile",
            "--no-index",
            "--find-links",
            str(house),
            str(wheel),
        ]
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("REGISTRY_", "PYTHON", "ANTHROPIC_", "VIRTUAL_ENV"))
    }
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return Installed(wheel, python, venv / "bin" / "prompt-registry", env)


@pytest.fixture
def empty_dir(tmp_path: Path) -> Path:
    path = tmp_path / "empty"
    path.mkdir()
    return path


def test_wheel_ships_migrations_seeds_templates_and_static_files(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    expected = {
        "registry/py.typed",
        "registry/prices.yaml",
        "registry/__main__.py",
        "registry/migrations/env.py",
        "registry/migrations/script.py.mako",
        "registry/web/templates/admin_ui/base.html",
        "registry/web/static/admin_ui/admin.css",
        "registry/testing/fake_anthropic.py",
    }
    expected |= {
        f"registry/migrations/versions/{p.name}" for p in ROOT.glob("migrations/versions/*.py")
    }
    expected |= {f"registry/templates_seed/{p.name}" for p in ROOT.glob("templates_seed/*.yaml")}
    assert expected <= names, sorted(expected - names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    scripts = zipfile.ZipFile(installed.wheel).read(entry_points).decode()
    assert "prompt-registry = registry.cli:main" in scripts
    assert "prompt_registry = registry.testing.pytest_plugin" in scripts  # the fixtures


def test_init_and_list_from_an_empty_directory(installed: Installed, empty_dir: Path) -> None:
    where = _run(
        [str(installed.python), "-c", "import registry; print(registry.__file__)"],
        cwd=empty_dir,
        env=installed.env,
    )
    assert where.startswith(str(installed.python.parent.parent)), where  # not the checkout

    out = _run([str(installed.command), "init"], cwd=empty_dir, env=installed.env)
    assert "seeded 5 prompts" in out, out
    assert (empty_dir / "registry.db").exists()

    listed = _run([str(installed.command), "prompts", "list"], cwd=empty_dir, env=installed.env)
    assert "support/support-answer" in listed and "support/classify-ticket" in listed, listed

    again = _run([str(installed.command), "init"], cwd=empty_dir, env=installed.env)
    assert "seeded" not in again  # an existing registry is only upgraded


def test_python_m_registry_has_every_command(installed: Installed, empty_dir: Path) -> None:
    out = _run(
        [str(installed.python), "-m", "registry", "--help"], cwd=empty_dir, env=installed.env
    )
    assert "Usage: python -m registry" in out
    for command in ("init", "serve", "seed", "prompts", "run", "db", "users", "apikeys"):
        assert f"  {command} " in out, out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(installed: Installed, empty_dir: Path) -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen(
        [str(installed.command), "serve", "--port", str(port)],
        cwd=empty_dir,
        env=installed.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(url + "/api/v1/health", timeout=2)
                break
            except requests.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    proc.kill()
                    pytest.fail(f"serve did not start:\n{proc.communicate()[0]}")
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_serve_answers_health_pages_and_static_files(served: str, empty_dir: Path) -> None:
    health = requests.get(served + "/api/v1/health", timeout=10)
    assert health.status_code == 200, health.text
    assert health.json()["status"] == "ok"
    login = requests.get(served + "/admin/login/", timeout=10)
    assert login.status_code == 200 and "<form" in login.text  # a packaged template
    stylesheets = re.findall(r'href="([^"]+\.css)"', login.text)
    assert stylesheets, login.text
    for href in stylesheets:
        css = requests.get(served + href, timeout=10)  # packaged static files
        assert css.status_code == 200 and css.content, href
    assert (empty_dir / "registry.db").exists()  # the embedded default, in the working directory
