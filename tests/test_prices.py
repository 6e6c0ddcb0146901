"""Prices are data: the shipped table, REGISTRY_PRICES_FILE, costs, and no model without a price
(saves, imports and runs of an unpriced model are refused, naming the file to add it to)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from registry import ConfigurationError, Registry, UnpricedModel, ValidationError
from registry.cli import main
from registry.models.runs import RunRow
from registry.prices import (
    PRICE_KEYS,
    Usage,
    cost_usd,
    parse_prices,
    price_of,
    price_table,
    shipped_prices_path,
    supports_structured_output,
)
from registry.testing import FakeAnthropic
from tests.conftest import simple_version

# -- the shipped table and the cost of usage ----------------------------------------------------


@pytest.mark.parametrize(
    ("model", "usage", "expected"),
    [
        ("claude-opus-4-8", Usage(1_000_000, 1_000_000), 30.0),
        ("claude-sonnet-4-6", Usage(1_000_000, 0), 3.0),
        ("claude-haiku-4-5", Usage(0, 1_000_000), 5.0),
        ("claude-sonnet-4-6", Usage(0, 0, cache_read_input_tokens=1_000_000), 0.3),
        ("claude-sonnet-4-6", Usage(0, 0, cache_creation_input_tokens=1_000_000), 3.75),
        (
            "claude-sonnet-4-6",
            Usage(0, 0, cache_creation_input_tokens=1_000_000, cache_creation_1h_tokens=1_000_000),
            6.0,
        ),
        ("claude-fable-5", Usage(0, 0, cache_read_input_tokens=1_000_000), 1.0),
        ("claude-fable-5-1", Usage(0, 0, cache_read_input_tokens=1_000_000), 0.25),
        ("claude-fable-5-1", Usage(1_000_000, 1_000_000), 60.0),
        ("claude-sonnet-4-6-20260101", Usage(1_000_000, 0), 3.0),
        ("claude-opus-4-20250514", Usage(1_000_000, 0), 15.0),
    ],
)
def test_cost_follows_the_price_table(model: str, usage: Usage, expected: float) -> None:
    assert cost_usd(model, usage) == pytest.approx(expected)


def test_batch_prices_halve_input_output_and_cache_tokens() -> None:
    price = price_of("claude-sonnet-4-6")
    assert (price.batch_input, price.batch_output) == (1.5, 7.5)
    usage = Usage(1_000_000, 1_000_000, cache_read_input_tokens=1_000_000)
    assert price.cost(usage, batch=True) == pytest.approx((3.0 + 15.0 + 0.3) / 2)
    assert price.cost(usage) == pytest.approx(3.0 + 15.0 + 0.3)


def test_dated_snapshots_use_the_longest_matching_entry() -> None:
    assert price_of("claude-fable-5-1-20270101").model == "claude-fable-5-1"
    assert price_of("claude-fable-5-20270101").model == "claude-fable-5"
    assert price_of("claude-haiku-4-5@beta").model == "claude-haiku-4-5"
    assert price_table().get("claude-fable-55") is None
    assert cost_usd("claude-fable-55", Usage(10, 10)) is None


def test_the_shipped_table_is_a_data_file_with_every_key() -> None:
    path = shipped_prices_path()
    assert path.name == "prices.yaml" and path.is_file()
    table = parse_prices(path.read_text(), str(path))
    assert "claude-sonnet-4-6" in table and len(table) >= 5
    for price in table.values():
        assert all(getattr(price, key) >= 0 for key in PRICE_KEYS)
        assert price.output >= price.input > 0
    assert supports_structured_output("claude-sonnet-4-6")
    assert not supports_structured_output("claude-3-haiku-20240307")
    assert not supports_structured_output("claude-from-the-future")


# -- REGISTRY_PRICES_FILE -------------------------------------------------------------------------


@pytest.fixture
def prices_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "prices.yaml"
    path.write_text(
        "acme-proxy-1: {input: 2, output: 8}\n"
        "claude-sonnet-4-6: {input: 4, output: 20, cache_read: 0.2, batch_output: 9}\n"
    )
    monkeypatch.setenv("REGISTRY_PRICES_FILE", str(path))
    return path


def test_prices_file_adds_models_and_overrides_shipped_ones_with_ratio_defaults(
    prices_file: Path,
) -> None:
    added = price_of("acme-proxy-1")
    assert (added.input, added.output) == (2.0, 8.0)
    assert (added.cache_write_5m, added.cache_write_1h, added.cache_read) == (2.5, 4.0, 0.2)
    assert (added.batch_input, added.batch_output) == (1.0, 4.0)
    assert added.source == str(prices_file)
    replaced = price_of("claude-sonnet-4-6")
    assert (replaced.input, replaced.cache_read, replaced.batch_output) == (4.0, 0.2, 9.0)
    assert replaced.cache_write_5m == 5.0  # 1.25x its own input price
    assert price_of("claude-haiku-4-5").source == str(shipped_prices_path())  # untouched


def test_prices_file_is_read_again_when_it_changes(prices_file: Path) -> None:
    assert price_of("acme-proxy-1").input == 2.0
    prices_file.write_text(
        "acme-proxy-1: {input: 2.5, output: 8}\nacme-proxy-2: {input: 1, output: 1}\n"
    )
    stat = prices_file.stat()
    os.utime(prices_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert price_of("acme-proxy-1").input == 2.5
    assert price_of("acme-proxy-2").output == 1.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("m: {input: 1, outptu: 2}", "unknown key(s) outptu"),
        ("m: {input: 1}", "'output' is required"),
        ("m: {input: -1, output: 2}", "m.input must be a number"),
        ("m: {input: cheap, output: 2}", "m.input must be a number"),
        ("m: {input: 1, output: 2, structured_output: maybe}", "true or false"),
        ("m: 3", "must be a mapping"),
        ("- m", "must map model names to prices"),
        ("m: {input: [1, output: 2}", "not valid YAML"),
    ],
)
def test_a_bad_prices_file_is_a_configuration_error_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, expected: str
) -> None:
    path = tmp_path / "bad-prices.yaml"
    path.write_text(text)
    monkeypatch.setenv("REGISTRY_PRICES_FILE", str(path))
    with pytest.raises(ConfigurationError) as caught:
        price_of("claude-sonnet-4-6")
    assert expected in caught.value.message and str(path) in caught.value.message


def test_a_missing_prices_file_is_a_configuration_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REGISTRY_PRICES_FILE", str(tmp_path / "nowhere.yaml"))
    with pytest.raises(ConfigurationError, match="REGISTRY_PRICES_FILE=.*nowhere.yaml"):
        price_table()


# -- every model has a price: saves, imports and runs -------------------------------------------


def _settings(model: str) -> dict[str, object]:
    return {"model": model, "max_tokens": 50}


def test_saving_a_version_of_an_unpriced_model_is_refused_naming_the_file(
    reg: Registry, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with pytest.raises(UnpricedModel) as caught:
        reg.create_version("qa", **simple_version(settings=_settings("claude-sonet-4-6")))
    error = caught.value
    assert isinstance(error, ValidationError) and error.field == "settings.model"
    assert error.model == "claude-sonet-4-6"
    assert "did you mean claude-sonnet-4-6" in error.message
    assert "REGISTRY_PRICES_FILE" in error.message and str(shipped_prices_path()) in error.message
    assert reg.prompts() == []

    path = tmp_path / "ours.yaml"
    path.write_text("acme-proxy-1: {input: 2, output: 8}\n")
    monkeypatch.setenv("REGISTRY_PRICES_FILE", str(path))
    with pytest.raises(UnpricedModel, match=f"add it to the prices file {path}"):
        reg.create_version("qa", **simple_version(settings=_settings("acme-proxy-9")))
    saved = reg.create_version("qa", **simple_version(settings=_settings("acme-proxy-1")))
    assert saved.settings["model"] == "acme-proxy-1"


def test_importing_an_unpriced_model_is_refused_and_writes_nothing(reg: Registry) -> None:
    doc = {
        "format": "prompt-registry/1",
        "prompts": [
            {
                "name": "good",
                "versions": [{"version": 1, **_content("claude-haiku-4-5")}],
            },
            {
                "name": "typo",
                "versions": [{"version": 1, **_content("claude-haiku-45")}],
            },
        ],
    }
    with pytest.raises(ValidationError, match="typo v1: model 'claude-haiku-45' has no price"):
        reg.import_(doc)
    assert reg.prompts() == []


def _content(model: str) -> dict[str, object]:
    return {
        "messages": [{"role": "user", "content": "hi"}],
        "settings": _settings(model),
    }


def test_a_run_of_an_unpriced_model_is_refused_before_any_request_and_logged(
    reg: Registry,
    fake_anthropic: FakeAnthropic,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    path = tmp_path / "ours.yaml"
    path.write_text("acme-proxy-1: {input: 2, output: 8}\n")
    monkeypatch.setenv("REGISTRY_PRICES_FILE", str(path))
    reg.create_version(
        "qa", **simple_version(settings=_settings("acme-proxy-1"), labels=["production"])
    )
    path.write_text("# the entry is gone\n")  # a later deployment dropped the price
    with pytest.raises(
        UnpricedModel, match=f"'acme-proxy-1' has no price: add it to the prices file {path}"
    ) as caught:
        reg.run("qa", {"question": "hi"})
    assert fake_anthropic.requests == []
    with reg.db.engine.connect() as conn:
        [row] = conn.execute(sa.select(RunRow.__table__)).mappings().all()
    assert row["id"] == caught.value.details["run_id"]
    assert (row["status"], row["error_type"], row["model"]) == (
        "error",
        "unpriced_model",
        "acme-proxy-1",
    )


# -- the prices command ---------------------------------------------------------------------------


def test_prices_command_lists_the_table_and_prices_models(prices_file: Path) -> None:
    listed = CliRunner().invoke(main, ["prices"])
    assert listed.exit_code == 0, listed.output
    lines = {line.split("\t")[0]: line.split("\t") for line in listed.stdout.splitlines()}
    assert lines["model"][1:3] == ["input", "output"]
    assert lines["acme-proxy-1"][1:3] == ["2", "8"] and lines["acme-proxy-1"][-1] == str(
        prices_file
    )

    one = CliRunner().invoke(main, ["prices", "claude-haiku-4-5-20251001", "--json"])
    [entry] = json.loads(one.stdout)
    assert (
        entry["model"] == "claude-haiku-4-5-20251001" and entry["priced_as"] == "claude-haiku-4-5"
    )
    assert (entry["input"], entry["batch_output"]) == (1.0, 2.5)

    missing = CliRunner().invoke(main, ["prices", "acme-proxy-7"])
    assert missing.exit_code == 1
    assert "has no price" in missing.stderr and str(prices_file) in missing.stderr
