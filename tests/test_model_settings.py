"""Model settings: validated on save, in step with the installed anthropic SDK."""

from __future__ import annotations

import inspect

import pytest

from registry import ValidationError
from registry.model_settings import (
    REQUEST_ONLY_PARAMS,
    SAMPLING_PARAMS,
    settings_fields,
    validate_settings,
)

BASE = {"model": "claude-sonnet-4-6", "max_tokens": 100}


def test_settings_keys_match_the_sdk_messages_create_signature() -> None:
    from anthropic.resources.messages import Messages

    sdk = set(inspect.signature(Messages.create).parameters) - {"self"}
    ours = settings_fields()
    assert sdk - REQUEST_ONLY_PARAMS == ours - set(SAMPLING_PARAMS), (
        "the SDK's messages.create parameters changed: update registry/model_settings.py"
    )
    assert not set(SAMPLING_PARAMS) & sdk, (
        "the SDK takes sampling params again: stop using extra_body"
    )


def test_valid_settings_are_normalised() -> None:
    full = {
        **BASE,
        "temperature": 0.3,
        "top_p": 0.9,
        "top_k": 40,
        "stop_sequences": ["\n\n"],
        "metadata": {"user_id": "u1"},
        "tools": [{"name": "lookup", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "auto"},
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "output_config": {
            "effort": "high",
            "format": {"type": "json_schema", "schema": {"type": "object"}},
        },
        "service_tier": "auto",
        "cache_control": {"type": "ephemeral", "ttl": "1h"},
        "speed": "fast",
    }
    full["max_tokens"] = 4000
    out = validate_settings(full)
    assert out["output_config"]["format"]["schema"] == {"type": "object"}
    assert out["temperature"] == 0.3
    assert validate_settings({**BASE, "temperature": None}) == BASE


@pytest.mark.parametrize(
    ("settings", "expected_error"),
    [
        (None, "settings are required"),
        ([], "must be a mapping"),
        ({"max_tokens": 10}, "model: Field required"),
        ({"model": "m"}, "max_tokens: Field required"),
        ({**BASE, "max_tokens": 0}, "max_tokens: Input should be greater than or equal to 1"),
        ({**BASE, "temperature": 1.5}, "temperature: Input should be less than or equal to 1"),
        ({**BASE, "temperature": -0.1}, "temperature: Input should be greater than or equal to 0"),
        ({**BASE, "top_p": 2}, "top_p: Input should be less than or equal to 1"),
        ({**BASE, "top_k": 0}, "top_k: Input should be greater than or equal to 1"),
        ({**BASE, "temprature": 0.2}, "temprature: unknown key"),
        ({**BASE, "stop_sequences": [""]}, "stop sequences must be non-empty"),
        ({**BASE, "stop_sequences": "x"}, "stop_sequences"),
        ({**BASE, "thinking": {"type": "enabled"}}, "needs budget_tokens"),
        (
            {**BASE, "thinking": {"type": "enabled", "budget_tokens": 100}},
            "greater than or equal to 1024",
        ),
        (
            {**BASE, "max_tokens": 1500, "thinking": {"type": "enabled", "budget_tokens": 2000}},
            "smaller than max_tokens",
        ),
        ({**BASE, "tool_choice": {"type": "tool"}}, "needs the tool's name"),
        ({**BASE, "tools": [{"description": "x"}]}, "tool #1 needs a non-empty 'name'"),
        ({**BASE, "service_tier": "premium"}, "service_tier"),
        ({**BASE, "model": "bad model name"}, "model: String should match pattern"),
        ({**BASE, "output_config": {"format": {"type": "xml"}}}, "output_config.format"),
        ({**BASE, "max_tokens": "100"}, "max_tokens: Input should be a valid integer"),
        ({**BASE, "max_tokens": True}, "max_tokens: Input should be a valid integer"),
        ({**BASE, "temperature": True}, "temperature: Input should be a valid number"),
        ({**BASE, "stop_sequences": [1]}, "stop_sequences.0"),
    ],
)
def test_invalid_settings_name_the_field(settings: object, expected_error: str) -> None:
    with pytest.raises(ValidationError) as info:
        validate_settings(settings)  # type: ignore[arg-type]
    assert expected_error in info.value.message
