"""The testing kit's example app test, exactly as README.md shows it ("Testing your app's prompts
offline"); test_readme checks the two stay identical. Here the prompts come from templates_seed/
(``registry_prompts`` in pyproject.toml); test_testing_kit runs this file in an app's layout."""

import pytest

from registry import StreamInterrupted
from registry.testing import Reply

ARTICLES = [{"title": "Invoices", "body": "Invoices are under Settings > Billing > Invoices."}]
QUESTION = {"question": "Where is my invoice?", "documents": ARTICLES}


def test_the_prompt_sends_the_articles_and_returns_the_answer(registry_db, fake_anthropic):
    fake_anthropic.enqueue(Reply.text("Go to Settings > Billing > Invoices."))
    result = registry_db.run("support/support-answer", QUESTION)
    assert result.text == "Go to Settings > Billing > Invoices."
    (request,) = fake_anthropic.requests_to("/v1/messages")
    assert "Invoices are under Settings" in request.json["messages"][0]["content"]
    assert request.json["model"] == "claude-sonnet-4-6"


def test_an_overloaded_api_is_retried(registry_db, fake_anthropic):
    fake_anthropic.enqueue(Reply.error(529, headers={"retry-after": "0"}), Reply.text("Fine."))
    result = registry_db.run("support/support-answer", QUESTION)
    assert result.text == "Fine." and result.attempts == 2


def test_a_stream_cut_mid_answer_keeps_the_partial_text(registry_db, fake_anthropic):
    fake_anthropic.enqueue(Reply.cut_stream("Go to Settings"))
    chunks = []
    with pytest.raises(StreamInterrupted) as info:
        for chunk in registry_db.stream("support/support-answer", QUESTION):
            chunks.append(chunk)
    assert info.value.partial_text == "".join(chunks) == "Go to Settings"
