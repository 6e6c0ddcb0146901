"""End to end in headless Chromium (selenium): the editor's day in the web admin.

The real app runs in a thread (werkzeug ``make_server``) on 127.0.0.1 against a temporary
SQLite registry. Debian's ``chromium`` and ``chromium-driver`` are needed
(``.ci/install-browser`` installs them); without them these tests are skipped, or fail under
``CI=true``. A failing test leaves a screenshot and the page source in ``test-artifacts/``.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from registry import Registry, users
from registry.testing import FakeAnthropic, Reply
from registry.web import create_app
from tests.conftest import simple_version, unavailable

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
PASSWORD = "browser test password"
WAIT = 15  # seconds; a ceiling for slow machines, never an expected duration


class LiveServer:
    """The admin served by werkzeug in a background thread."""

    def __init__(self, reg: Registry) -> None:
        from werkzeug.serving import make_server

        self.app = create_app({"REGISTRY": reg, "SECRET_KEY": "browser-test-secret"})
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.thread.join(timeout=10)


@pytest.fixture
def live_reg(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Registry]:
    """A registry with one publisher and one prompt whose v1 is in production."""
    monkeypatch.setattr(users, "PASSWORD_METHOD", "pbkdf2:sha256:1000")
    reg = Registry(sqlite_url, cache_ttl=0)
    users.create_user(reg, "pat", PASSWORD, role="publisher")
    reg.create_version(
        "browser/demo",
        **simple_version(
            system="You help customers.",
            messages=[{"role": "user", "content": "Hi {{ question }}"}],
            labels=["production"],
            message="first",
        ),
    )
    yield reg
    reg.close()


@pytest.fixture
def live(live_reg: Registry) -> Iterator[LiveServer]:
    with LiveServer(live_reg) as server:
        yield server


@pytest.fixture
def browser(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """Headless Chromium; on failure a screenshot lands in ``test-artifacts/``."""
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        unavailable(
            "chromium", f"{CHROMIUM} or {CHROMEDRIVER} is missing (run .ci/install-browser)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1400,1000",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(arg)
    try:
        driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    except Exception as exc:  # a broken install, not a test failure
        unavailable("chromium", exc)
    driver.set_page_load_timeout(30)
    failed_before = request.session.testsfailed
    try:
        yield driver
    finally:
        if request.session.testsfailed > failed_before:
            ARTIFACTS.mkdir(exist_ok=True)
            stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
            try:
                driver.save_screenshot(str(ARTIFACTS / f"{stem}.png"))
                (ARTIFACTS / f"{stem}.html").write_text(driver.page_source, encoding="utf-8")
            except Exception:
                pass
        driver.quit()


def wait_for(driver: Any, css: str) -> Any:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT).until(ec.presence_of_element_located((By.CSS_SELECTOR, css)))


def wait_text(driver: Any, css: str, text: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, WAIT).until(
        ec.text_to_be_present_in_element((By.CSS_SELECTOR, css), text)
    )


def find(driver: Any, css: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, css)


def fill(driver: Any, css: str, value: str) -> None:
    element = find(driver, css)
    element.clear()
    element.send_keys(value)


def log_in(driver: Any, live: LiveServer) -> None:
    driver.get(live.url + "/admin/")
    wait_for(driver, "#login-form")
    fill(driver, "#name", "pat")
    fill(driver, "#password", PASSWORD)
    find(driver, "#login-button").click()
    wait_for(driver, "#current-user")


def flash_text(driver: Any) -> str:
    from selenium.webdriver.common.by import By

    return " ".join(e.text for e in driver.find_elements(By.CSS_SELECTOR, ".alert"))


def test_edit_preview_diff_and_promote_in_a_real_browser(
    live: LiveServer, live_reg: Registry, browser: Any
) -> None:
    driver = browser
    log_in(driver, live)
    assert "pat" in find(driver, "#current-user").text

    # find the prompt from the list
    driver.get(live.url + "/admin/prompts/")
    fill(driver, "#prompt-search", "demo")
    find(driver, "#prompt-search").submit()
    wait_for(driver, "#prompts-table a[href='/admin/prompts/browser/demo/-/']").click()
    wait_for(driver, "#edit-prompt").click()

    # a version with a Jinja error: the message names the line, nothing is saved
    wait_for(driver, "#edit-form")
    fill(driver, "#message-0", "Hi {{ question }}\nPlease answer: {{ question ")
    fill(driver, "#commit-message", "friendlier")
    find(driver, "#save-button").click()
    error = wait_for(driver, ".field-error[data-area='messages.0']")
    assert "line 2" in error.text
    assert live_reg.get("browser/demo", label="latest").version == 1

    # fix it and save: version 2
    fill(driver, "#message-0", "Hi {{ question }}\nPlease answer kindly.")
    find(driver, "#save-button").click()
    wait_for(driver, "#version-title")
    assert "Saved browser/demo version 2." in flash_text(driver)
    assert "v2" in find(driver, "#version-title").text

    # preview with typed-in variables
    fill(driver, "#preview-variables", json.dumps({"question": "where is my parcel?"}))
    find(driver, "#preview-button").click()
    wait_text(driver, "#preview-result", "Hi where is my parcel?")
    assert "tokens" in find(driver, "#token-estimate").text

    # diff against version 1
    from selenium.webdriver.support.ui import Select

    Select(find(driver, "#diff-old")).select_by_value("1")
    find(driver, "#diff-button").click()
    wait_for(driver, "#diff-title")
    added = [e.text for e in driver.find_elements("css selector", ".diff .add")]
    assert "+Please answer kindly." in added
    driver.back()

    # promote to staging, then production
    wait_for(driver, "form.promote-form[data-label='staging']")
    find(driver, "form.promote-form[data-label='staging'] input[name='reason']").send_keys("try it")
    find(driver, "form.promote-form[data-label='staging'] .promote-button").click()
    wait_for(driver, "#version-title")
    assert "staging of browser/demo now points at version 2." in flash_text(driver)
    find(driver, "form.promote-form[data-label='production'] input[name='reason']").send_keys(
        "ship it"
    )
    find(driver, "form.promote-form[data-label='production'] .promote-button").click()
    wait_for(driver, "#version-title")
    assert "production of browser/demo now points at version 2." in flash_text(driver)
    assert "production" in find(driver, "#version-labels").text

    # apps see it: a fresh Registry on the same database
    with Registry(live_reg.db.url.render_as_string(hide_password=False)) as fresh:
        served = fresh.get("browser/demo")
        assert served.version == 2
        assert served.render(question="x").messages[0]["content"] == "Hi x\nPlease answer kindly."

    # the history shows both moves; roll production back with one click
    driver.get(live.url + "/admin/labels/browser/demo/-/history?label=production")
    wait_for(driver, "#history-table")
    assert "ship it" in find(driver, "#history-table").text
    find(driver, ".rollback-button[data-label='production']").click()
    driver.switch_to.alert.accept()
    wait_text(driver, "body", "Rolled back: production of browser/demo points at version 1 again.")
    assert live_reg.get("browser/demo").version == 1

    # logging out ends the session
    find(driver, "#logout-button").click()
    wait_for(driver, "#login-form")
    driver.get(live.url + "/admin/prompts/")
    wait_for(driver, "#login-form")


def test_playground_streams_an_answer_in_a_real_browser(
    live: LiveServer, browser: Any, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.enqueue(Reply.text("Your parcel left the warehouse this morning."))
    driver = browser
    log_in(driver, live)
    driver.get(live.url + "/admin/playground/?name=browser/demo&version=1")
    wait_for(driver, "#run-form")
    fill(driver, "#run-variables", json.dumps({"question": "where is my parcel?"}))
    find(driver, "#run-button").click()
    wait_text(driver, "#run-status", "done")
    assert find(driver, "#playground-output").text == "Your parcel left the warehouse this morning."
    stats = find(driver, "#run-stats").text
    assert "input" in stats and "output tokens" in stats and " ms" in stats
    assert fake_anthropic.requests[-1].body["messages"][0]["content"] == "Hi where is my parcel?"


def test_playground_without_a_key_shows_a_clear_message(live: LiveServer, browser: Any) -> None:
    driver = browser
    log_in(driver, live)
    driver.get(live.url + "/admin/playground/?name=browser/demo&version=1")
    assert "No ANTHROPIC_API_KEY is set on the server" in wait_for(driver, "#no-api-key").text
    fill(driver, "#run-variables", json.dumps({"question": "hi"}))
    find(driver, "#run-button").click()
    wait_text(driver, "#run-error", "ANTHROPIC_API_KEY")
