"""pytest fixtures for apps that use the registry: ``fake_anthropic`` and ``registry_db``.

Installed with the package (a ``pytest11`` entry point named ``prompt_registry``), so an app's
test suite has them without an import; ``-p no:prompt_registry`` turns them off. Nothing here
reaches the network or the app's real database.

``fake_anthropic``
    A started :class:`~registry.testing.FakeAnthropic` on a free local port, with
    ``ANTHROPIC_BASE_URL`` and ``ANTHROPIC_API_KEY`` set for the test, so the registry's runner
    and any ``anthropic.Anthropic()`` the app builds talk to it. Script it with
    ``fake_anthropic.enqueue(...)`` and read what was sent in ``fake_anthropic.requests``.

``registry_db``
    A :class:`~registry.Registry` on a new SQLite file in the test's temporary folder, also
    exported as ``REGISTRY_DATABASE_URL`` so code that calls ``Registry()`` finds it. The
    prompt files of the folder named by the ``registry_prompts`` ini option (relative to the
    rootdir, e.g. ``registry_prompts = "prompts"``) are loaded into it. The schema is migrated
    once per session and copied, so the fixture costs milliseconds.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from registry import Registry

    from .fake_anthropic import FakeAnthropic

#: the key the fixture puts in ANTHROPIC_API_KEY (the fake accepts any key unless told)
TEST_API_KEY = "sk-ant-test-key"
PROMPTS_INI = "registry_prompts"


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register the ``registry_prompts`` ini option."""
    parser.addini(
        PROMPTS_INI,
        "Folder of YAML prompt files loaded into the registry_db fixture (relative to rootdir).",
        default="",
    )


@pytest.fixture
def fake_anthropic(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAnthropic]:
    """A fake Anthropic API on a local port; the SDK and the registry's runner use it."""
    from .fake_anthropic import FakeAnthropic

    with FakeAnthropic() as server:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", TEST_API_KEY)
        yield server


@pytest.fixture(scope="session")
def _registry_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty SQLite registry migrated to the current schema, once per session."""
    from registry.db import Database, upgrade

    path = tmp_path_factory.mktemp("registry-template") / "registry.db"
    db = Database(f"sqlite:///{path}")
    upgrade(db)
    db.dispose()
    return path


@pytest.fixture
def registry_db(
    request: pytest.FixtureRequest,
    _registry_template: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Registry]:
    """A registry on a fresh SQLite file, with the ``registry_prompts`` folder loaded."""
    from registry import Registry

    path = tmp_path / "registry.db"
    shutil.copy(_registry_template, path)
    url = f"sqlite:///{path}"
    monkeypatch.setenv("REGISTRY_DATABASE_URL", url)
    reg = Registry(url, cache_ttl=0)
    folder = str(request.config.getini(PROMPTS_INI) or "")
    if folder:
        reg.seed(request.config.rootpath / folder)
    yield reg
    reg.close()
