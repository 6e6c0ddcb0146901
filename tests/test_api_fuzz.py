"""schemathesis against /api/v1/openapi.json: no 5xx, and every answer matches the document.

Generated requests (valid and invalid) go to every operation with a write-scope key; runs go to
the fake Anthropic server. ``REGISTRY_FUZZ_EXAMPLES`` sets the examples per operation.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings

from registry import Registry
from registry.testing import FakeAnthropic
from registry.web.api.openapi import openapi_document
from tests.api_support import SEED_DIR, bearer, build_app, make_keys

EXAMPLES = int(os.environ.get("REGISTRY_FUZZ_EXAMPLES", "25"))


class CurrentApp:
    """A WSGI app that forwards to the app of the running test (the schema is module-level)."""

    app: Flask | None = None

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        assert self.app is not None, "no test app is active"
        return self.app(environ, start_response)


CURRENT = CurrentApp()

# The document is static (generated from the operation table): load it at import time and send
# the generated requests to each test's own app. (schemathesis 4.32's lazy ``from_fixture``
# loader does not run under pytest 9, hence this forwarding app.)
schema = schemathesis.openapi.from_dict(openapi_document())
schema.app = CURRENT
schema.config.generation.update(max_examples=EXAMPLES, deterministic=True)
# A schema-valid request may still be refused with 422 for what a schema cannot say: variables
# that do not fit the prompt's contract, a template using an undeclared variable, a label and a
# version together in a query string, moving the computed label `latest`. 422 is the right
# answer there; every other status stays as schemathesis expects of valid data.
schema.config.checks.positive_data_acceptance.expected_statuses = [
    "2XX",
    "3XX",
    "401",
    "403",
    "404",
    "409",
    "422",
    "429",
]


@pytest.fixture
def fuzz_app(sqlite_reg: Registry, fake_anthropic: FakeAnthropic) -> Iterator[Flask]:
    sqlite_reg.seed(SEED_DIR)
    app = build_app(sqlite_reg)
    app.config["FUZZ_KEY"] = make_keys(sqlite_reg)["write"]
    CURRENT.app = app
    yield app
    CURRENT.app = None


@schema.parametrize()
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_api_conforms_to_its_document(case: Any, fuzz_app: Flask) -> None:
    case.call_and_validate(headers=bearer(fuzz_app.config["FUZZ_KEY"]))
