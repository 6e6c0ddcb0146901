"""A testing kit for apps that use the registry: test prompts offline, in your own suite.

* :class:`FakeAnthropic`: a local fake of the Anthropic Messages API that the real ``anthropic``
  SDK (and so the registry's runner) talks to over HTTP: scripted replies, latency, rate-limit
  headers, 429/5xx/529, streams cut short or ending in an error event, malformed JSON.
  Also a command: ``prompt-registry fake-anthropic --port N [--script FILE]``.
* :class:`Reply`: what the fake answers; :class:`RateLimit`: its rate limits;
  :func:`load_script`: replies and settings from a YAML or JSON file.
* pytest fixtures, installed with the package (no import needed): ``fake_anthropic`` (a
  started fake, with ``ANTHROPIC_BASE_URL`` and ``ANTHROPIC_API_KEY`` pointing at it) and
  ``registry_db`` (a :class:`~registry.Registry` on a fresh SQLite file, loaded with the prompt
  files of the ``registry_prompts`` ini option). See :mod:`registry.testing.pytest_plugin`.

Example (a complete test file of an app)::

    from registry.testing import Reply

    def test_answer(registry_db, fake_anthropic):
        fake_anthropic.enqueue(Reply.text("Under Billing > Invoices."))
        result = registry_db.run("support/support-answer", {...})
        assert result.text == "Under Billing > Invoices."
"""

from __future__ import annotations

from .fake_anthropic import FakeAnthropic, RecordedRequest
from .rate_limit import RateLimit
from .replies import ERROR_TYPE_BY_STATUS, STATUS_BY_ERROR_TYPE, Reply, estimate_tokens
from .script import Script, load_script

__all__ = [
    "ERROR_TYPE_BY_STATUS",
    "STATUS_BY_ERROR_TYPE",
    "FakeAnthropic",
    "RateLimit",
    "RecordedRequest",
    "Reply",
    "Script",
    "estimate_tokens",
    "load_script",
]
