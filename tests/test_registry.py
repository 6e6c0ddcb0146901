"""The registry service on SQLite and PostgreSQL: versions, labels, releases, listing, diff."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from registry import (
    ConflictError,
    NotFound,
    Registry,
    RenderError,
    SchemaError,
    TemplateSyntaxError,
    ValidationError,
)
from tests.conftest import simple_version


def test_create_version_numbers_and_returns_it(reg: Registry) -> None:
    v1 = reg.create_version("support-answer", **simple_version(labels=["staging"]))
    assert (v1.name, v1.version, v1.author, v1.message) == (
        "support-answer",
        1,
        "tester",
        "test version",
    )
    assert v1.labels == ["staging"]
    v2 = reg.create_version("support-answer", **simple_version(system="Be brief."))
    assert v2.version == 2
    assert [v.version for v in reg.versions("support-answer")] == [1, 2]


def test_identical_content_creates_nothing(reg: Registry) -> None:
    v1 = reg.create_version("p", **simple_version())
    again = reg.create_version("p", **simple_version(message="other message", author="someone"))
    assert again.version == v1.version == 1
    assert len(reg.versions("p")) == 1
    # identical to an older version but not the newest: a new version
    reg.create_version("p", **simple_version(system="changed"))
    assert reg.create_version("p", **simple_version()).version == 3


def test_content_hash_covers_everything_that_affects_a_request(reg: Registry) -> None:
    base = reg.create_version("p", **simple_version())
    changes: list[dict[str, Any]] = [
        {"settings": {"model": "claude-sonnet-4-6", "max_tokens": 301}},
        {"variables": {"question": {"type": "string", "default": "hi"}}},
        {"output_schema": {"type": "object"}},
        {"messages": [{"role": "user", "content": "{{ question }}!"}]},
    ]
    hashes = {base.content_hash}
    for change in changes:
        hashes.add(reg.create_version("p", **simple_version(**change)).content_hash)
    assert len(hashes) == len(changes) + 1


def test_get_by_label_version_and_latest(reg: Registry) -> None:
    reg.create_version("p", **simple_version(labels=["production"]))
    reg.create_version("p", **simple_version(system="v2", labels=["staging"]))
    assert reg.get("p").version == 1
    assert reg.get("p", label="staging").version == 2
    assert reg.get("p", label="latest").version == 2
    assert reg.get("p", version=1).version == 1
    rendered = reg.get("p").render(question="Where is my invoice?")
    assert rendered.messages == [{"role": "user", "content": "Where is my invoice?"}]
    assert rendered.to_request()["system"] == "You are a helpful assistant."


def test_get_errors_are_clear(reg: Registry) -> None:
    reg.create_version("p", **simple_version(labels=["staging"]))
    with pytest.raises(NotFound, match="prompt 'nope' does not exist"):
        reg.get("nope")
    with pytest.raises(NotFound, match=r"no label 'production' \(labels: staging"):
        reg.get("p")
    with pytest.raises(NotFound, match="no version 7"):
        reg.get("p", version=7)
    with pytest.raises(ValidationError, match="not both"):
        reg.get("p", label="staging", version=1)
    with pytest.raises(LookupError):  # NotFound is also a LookupError
        reg.get("p", label="qa")


def test_set_label_compare_and_set_and_audit(reg: Registry) -> None:
    for i in range(3):
        reg.create_version("p", **simple_version(system=f"v{i + 1}"))
    reg.set_label("p", "production", 1, actor="ana", expected_version=0, reason="first release")
    reg.set_label("p", "production", 2, actor="bob", expected_version=1, reason="better tone")
    with pytest.raises(ConflictError) as info:
        reg.set_label("p", "production", 3, actor="eve", expected_version=1)
    assert (info.value.expected, info.value.actual) == (1, 2)
    assert reg.get("p").version == 2
    events = reg.label_history("p", "production")
    assert [(e.from_version, e.to_version, e.actor, e.reason) for e in events] == [
        (None, 1, "ana", "first release"),
        (1, 2, "bob", "better tone"),
    ]
    assert all(e.created_at.tzinfo is not None for e in events)


def test_latest_cannot_be_set_and_labels_are_validated(reg: Registry) -> None:
    reg.create_version("p", **simple_version())
    with pytest.raises(ValidationError, match="computed"):
        reg.set_label("p", "latest", 1)
    with pytest.raises(ValidationError, match="invalid label"):
        reg.set_label("p", "3", 1)
    with pytest.raises(NotFound, match="no version 9"):
        reg.set_label("p", "production", 9)


def test_rollback_moves_label_back(reg: Registry) -> None:
    reg.create_version("p", **simple_version(labels=["production"]))
    reg.create_version("p", **simple_version(system="v2"))
    reg.set_label("p", "production", 2, actor="ana")
    back = reg.rollback_label("p", "production", actor="ana", reason="v2 misbehaves")
    assert back.version == 1 == reg.get("p").version
    assert reg.label_history("p", "production")[-1].kind == "rollback"


def test_release_moves_all_or_none(reg: Registry) -> None:
    for name in ("a", "b", "c"):
        reg.create_version(name, **simple_version(labels=["production"]))
        reg.create_version(name, **simple_version(system="two"))
    release = reg.release(
        {"a": 2, "b": 2, "c": 2}, label="production", actor="ana", reason="agent v2"
    )
    assert {m.prompt for m in release.moves} == {"a", "b", "c"}
    assert all(reg.get(n).version == 2 for n in ("a", "b", "c"))
    events = [reg.label_history(n, "production")[-1] for n in ("a", "b", "c")]
    assert {e.release_id for e in events} == {release.id}
    # one bad entry: nothing moves
    with pytest.raises(NotFound):
        reg.release({"a": 1, "b": 1, "c": 99}, actor="ana")
    assert all(reg.get(n).version == 2 for n in ("a", "b", "c"))
    with pytest.raises(ConflictError):
        reg.release({"a": 1, "b": 1}, actor="ana", expected={"a": 2, "b": 1})
    assert reg.get("a").version == 2


def test_prompts_listing_folders_tags_search_archive(reg: Registry) -> None:
    reg.create_version(
        "team/support-answer", **simple_version(labels=["production"]), tags=["support"]
    )
    reg.create_version("team/classify", **simple_version(), tags=["support", "cheap"])
    reg.create_version("summarize", **simple_version(), description="Summaries")
    assert [p.name for p in reg.prompts()] == ["summarize", "team/classify", "team/support-answer"]
    assert [p.name for p in reg.prompts(folder="team")] == ["team/classify", "team/support-answer"]
    assert [p.name for p in reg.prompts(tag="cheap")] == ["team/classify"]
    assert [p.name for p in reg.prompts(search="ssif")] == ["team/classify"]
    listed = {p.name: p for p in reg.prompts()}
    assert listed["team/support-answer"].labels == {"production": 1}
    assert listed["team/support-answer"].folder == "team"
    assert listed["summarize"].description == "Summaries"
    reg.archive("summarize")
    assert "summarize" not in [p.name for p in reg.prompts()]
    assert reg.get("summarize", label="latest").version == 1  # still served
    with pytest.raises(ValidationError, match="archived"):
        reg.create_version("summarize", **simple_version(system="new"))
    reg.unarchive("summarize")
    assert reg.create_version("summarize", **simple_version(system="new")).version == 2


def test_diff_shows_templates_settings_and_contract(reg: Registry) -> None:
    reg.create_version("p", **simple_version())
    reg.create_version(
        "p",
        **simple_version(
            system="You are a terse assistant.",
            settings={"model": "claude-sonnet-4-6", "max_tokens": 300, "temperature": 0.1},
            variables={"question": {"type": "string", "description": "asked"}},
        ),
    )
    diff = reg.diff("p", 1, 2)
    text = str(diff)
    assert "-You are a helpful assistant." in text
    assert "+You are a terse assistant." in text
    assert "+ temperature: 0.1" in text
    assert "~ question:" in text
    assert not diff.is_empty
    assert reg.diff("p", 1, 1).is_empty
    assert diff.to_dict()["settings"] == [
        {"key": "temperature", "change": "added", "old": None, "new": 0.1}
    ]


LONG = "x" * 1_000_000


@pytest.mark.parametrize(
    ("name", "overrides", "error", "match"),
    [
        ("bad name", {}, ValidationError, "invalid prompt name"),
        ("", {}, ValidationError, "non-empty"),
        ("a\x00b", {}, ValidationError, "invalid prompt name"),
        ("caf\udce9", {}, ValidationError, "invalid prompt name"),
        ("x" * 201, {}, ValidationError, "limit is 200"),
        ("trailing/", {}, ValidationError, "invalid prompt name"),
        ("ok", {"messages": []}, ValidationError, "at least one message"),
        ("ok", {"messages": [{"role": "system", "content": "x"}]}, ValidationError, "role must be"),
        (
            "ok",
            {"messages": [{"role": "assistant", "content": "x"}]},
            ValidationError,
            "first message",
        ),
        (
            "ok",
            {"messages": [{"role": "user", "content": 3}]},
            ValidationError,
            "content must be a string",
        ),
        ("ok", {"system": "{% if %}"}, TemplateSyntaxError, "system template, line 1"),
        ("ok", {"system": "line\n{{ unclosed"}, TemplateSyntaxError, "line 2"),
        ("ok", {"system": "{{ other }}"}, ValidationError, r"undeclared variable\(s\) 'other'"),
        ("ok", {"system": LONG}, ValidationError, "limit is 200000"),
        (
            "ok",
            {"settings": {"model": "claude-haiku-4-5", "max_tokens": 0}},
            ValidationError,
            "max_tokens",
        ),
        (
            "ok",
            {"settings": {"model": "claude-haiku-4-5", "max_tokens": 5, "tempreture": 1}},
            ValidationError,
            "unknown key",
        ),
        ("ok", {"variables": {"1x": "string"}}, ValidationError, "variable name"),
        ("ok", {"variables": {"question": {"type": "date"}}}, ValidationError, "question"),
        (
            "ok",
            {"variables": {"question": {"type": "integer", "default": "x"}}},
            ValidationError,
            "default",
        ),
        ("ok", {"output_schema": {"type": "nonsense"}}, ValidationError, "not a valid JSON Schema"),
        ("ok", {"labels": ["latest"]}, ValidationError, "computed"),
        ("ok", {"labels": ["Prod uction"]}, ValidationError, "invalid label"),
        ("ok", {"message": "bad\x07bell"}, ValidationError, "control characters"),
        (
            "ok",
            {"system": "half a pair \ud800"},
            ValidationError,
            "system: a lone UTF-16 surrogate",
        ),
        (
            "ok",
            {"variables": {"question": {"type": "string", "description": "\udcff"}}},
            ValidationError,
            "variables: a lone",
        ),
        ("ok", {"author": "\ud83d"}, ValidationError, "author: a lone"),
        (
            "ok",
            {"system": "{{ ''.__class__.__mro__ }}"},
            ValidationError,
            "'__mro__' is not allowed",
        ),
        (
            "ok",
            {"system": "{{ cycler.__init__.__globals__ }}"},
            ValidationError,
            "'__globals__' is not allowed",
        ),
        (
            "ok",
            {"system": "x\n{{ self._TemplateReference__context }}"},
            ValidationError,
            "line 2: sandbox violation: '_TemplateReference__context'",
        ),
        ("ok", {"system": "{{ range.__class__ }}"}, ValidationError, "sandbox"),
        ("ok", {"system": "{{ question['__class__'] }}"}, ValidationError, "sandbox"),
        (
            "ok",
            {"system": '{% include "missing@production" %}'},
            ValidationError,
            "cannot be resolved",
        ),
    ],
)
def test_bad_input_is_a_typed_error_and_writes_nothing(
    reg: Registry, name: str, overrides: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        reg.create_version(name, **simple_version(**overrides))
    assert reg.prompts(include_archived=True) == []


def test_uncached_get_by_label_is_one_sql_statement(reg: Registry) -> None:
    reg.create_version("p", **simple_version(labels=["production"]))
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    sa.event.listen(reg.db.engine, "before_cursor_execute", count)
    try:
        reg.reads.version_cache.clear()
        reg.invalidate()
        assert reg.get("p").version == 1
    finally:
        sa.event.remove(reg.db.engine, "before_cursor_execute", count)
    assert len(statements) == 1, statements


def test_cache_sees_local_moves_at_once(db_url: str) -> None:
    reg = Registry(db_url, cache_ttl=60)
    try:
        reg.create_version("p", **simple_version(labels=["production"]))
        reg.create_version("p", **simple_version(system="two"))
        assert reg.get("p").version == 1
        reg.set_label("p", "production", 2)
        assert reg.get("p").version == 2
        assert reg.get("p", label="latest").version == 2
    finally:
        reg.close()


def test_compiled_templates_are_reused(reg: Registry) -> None:
    reg.create_version("p", **simple_version(labels=["production"]))
    first = reg.get("p")
    first.render(question="a")
    compiled = first.compiled()
    reg.invalidate()
    again = reg.get("p")
    assert again is first and again.compiled() is compiled


def test_composition_by_label_and_version(reg: Registry) -> None:
    reg.create_version(
        "snippets/tone",
        system="Always answer in {{ language }}.",
        messages=[{"role": "user", "content": "unused"}],
        settings={"model": "claude-sonnet-4-6", "max_tokens": 10},
        variables={"language": "string"},
        labels=["production"],
    )
    reg.create_version(
        "answer",
        **simple_version(
            system='{% include "snippets/tone@production" %} Pinned: {% include "snippets/tone@1" %}',
            variables={"question": "string", "language": "string"},
            labels=["production"],
        ),
    )
    out = reg.get("answer").render(question="q", language="French").system
    assert out == "Always answer in French. Pinned: Always answer in French."
    # the label include follows the label; the pinned one does not
    reg.create_version(
        "snippets/tone",
        system="Reply in {{ language }}, briefly.",
        messages=[{"role": "user", "content": "unused"}],
        settings={"model": "claude-sonnet-4-6", "max_tokens": 10},
        variables={"language": "string"},
    )
    reg.set_label("snippets/tone", "production", 2)
    out = reg.get("answer").render(question="q", language="German").system
    assert out == "Reply in German, briefly. Pinned: Always answer in German."


def test_included_variables_must_be_declared(reg: Registry) -> None:
    reg.create_version(
        "snip",
        system="{{ language }}",
        messages=[{"role": "user", "content": "x"}],
        settings={"model": "claude-haiku-4-5", "max_tokens": 1},
        variables={"language": "string"},
        labels=["production"],
    )
    with pytest.raises(ValidationError, match="'language'"):
        reg.create_version("p", **simple_version(system='{% include "snip" %}'))


def test_include_cycles_are_refused(reg: Registry) -> None:
    settings = {"model": "claude-haiku-4-5", "max_tokens": 1}
    msgs = [{"role": "user", "content": "x"}]
    reg.create_version("a", system="A", messages=msgs, settings=settings, labels=["production"])
    reg.create_version(
        "b", system='{% include "a" %}', messages=msgs, settings=settings, labels=["production"]
    )
    # a v2 including b is fine while a@production is v1; pointing production at it closes a loop
    reg.create_version("a", system='{% include "b" %}', messages=msgs, settings=settings)
    with pytest.raises(ValidationError, match="include cycle: a@2 -> b@1 -> a@2"):
        reg.set_label("a", "production", 2)
    with pytest.raises(ValidationError, match="include cycle"):
        reg.release({"a": 2}, label="production")
    assert reg.get("a").version == 1
    # saving with a label that the new content itself includes
    with pytest.raises(ValidationError, match="include cycle"):
        reg.create_version(
            "c",
            system='{% include "c@staging" %}',
            messages=msgs,
            settings=settings,
            labels=["staging"],
        )
    # a version that is safe on its own, but a label move would create a cycle
    reg.create_version("c", system="C", messages=msgs, settings=settings, labels=["production"])
    # including an earlier version of yourself is fine
    reg.create_version("e", system="base", messages=msgs, settings=settings)
    assert (
        reg.create_version(
            "e", system='{% include "e@1" %} more', messages=msgs, settings=settings
        ).version
        == 2
    )
    reg.create_version(
        "d", system='{% include "c" %}', messages=msgs, settings=settings, labels=["production"]
    )
    reg.create_version("c", system='{% include "d@1" %}', messages=msgs, settings=settings)
    with pytest.raises(ValidationError, match="include cycle"):
        reg.set_label("c", "production", 2)
    assert reg.get("c").version == 1


def test_include_depth_is_limited(reg: Registry) -> None:
    settings = {"model": "claude-haiku-4-5", "max_tokens": 1}
    msgs = [{"role": "user", "content": "x"}]
    reg.create_version("n0", system="leaf", messages=msgs, settings=settings, labels=["production"])
    for i in range(1, 6):  # five levels of nesting are allowed
        reg.create_version(
            f"n{i}",
            system=f'{{% include "n{i - 1}" %}}',
            messages=msgs,
            settings=settings,
            labels=["production"],
        )
    with pytest.raises(ValidationError, match="nest deeper"):
        reg.create_version("n6", system='{% include "n5" %}', messages=msgs, settings=settings)


def test_format_string_escapes_are_blocked_when_rendering(reg: Registry) -> None:
    from registry import SecurityError

    reg.create_version(
        "p",
        **simple_version(
            system="{{ '{0.__class__.__mro__}'.format(question) }}", labels=["production"]
        ),
    )
    with pytest.raises(SecurityError):
        reg.get("p").render(question="x")


def test_render_errors_name_the_variable(reg: Registry) -> None:
    reg.create_version("p", **simple_version(labels=["production"]))
    with pytest.raises(RenderError, match="'question'"):
        reg.get("p").render()
    with pytest.raises(RenderError, match="must be of type string"):
        reg.get("p").render(question=42)


def test_database_without_schema_names_the_fix(tmp_path: Any, pg_url: str) -> None:
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0001_core'"))
    try:
        with pytest.raises(SchemaError, match="prompt-registry db upgrade"):
            Registry(pg_url)
    finally:
        with engine.begin() as conn:
            from registry.db import SCHEMA_REVISION

            conn.execute(
                sa.text("UPDATE alembic_version SET version_num = :v"), {"v": SCHEMA_REVISION}
            )
        engine.dispose()


def test_embedded_sqlite_is_created_on_first_use(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    with Registry(url) as reg:
        reg.create_version("p", **simple_version(labels=["production"]))
    with Registry(url) as reg:
        assert reg.get("p").version == 1


def test_a_label_move_cannot_break_the_prompts_that_include_it(reg: Registry) -> None:
    settings = {"model": "claude-haiku-4-5", "max_tokens": 1}
    msgs = [{"role": "user", "content": "x"}]
    reg.create_version(
        "team/snip", system="Be kind.", messages=msgs, settings=settings, labels=["production"]
    )
    reg.create_version(
        "agent",
        **simple_version(system='{% include "team/snip" %} Help.', labels=["production"]),
    )
    # a new snippet version reads a variable the includer does not declare
    reg.create_version(
        "team/snip",
        system="Be kind to {{ who }}.",
        messages=msgs,
        settings=settings,
        variables={"who": "string"},
    )
    with pytest.raises(ValidationError, match=r"would break agent v1.*'who'"):
        reg.set_label("team/snip", "production", 2)
    with pytest.raises(ValidationError, match="would break agent v1"):
        reg.release({"team/snip": 2}, label="production")
    assert reg.get("team/snip").version == 1
    assert reg.get("agent").render(question="q").system == "Be kind. Help."
    # once the includer declares it, the move goes through
    reg.create_version(
        "agent",
        **simple_version(
            system='{% include "team/snip" %} Help.',
            variables={"question": "string", "who": {"type": "string", "default": "everyone"}},
            labels=["production"],
        ),
    )
    reg.set_label("team/snip", "production", 2)
    assert reg.get("agent").render(question="q").system == "Be kind to everyone. Help."


def test_deleting_labels_is_audited_and_guarded(reg: Registry) -> None:
    from registry import PermissionDenied

    settings = {"model": "claude-haiku-4-5", "max_tokens": 1}
    msgs = [{"role": "user", "content": "x"}]
    reg.create_version(
        "snip", system="S", messages=msgs, settings=settings, labels=["production", "qa", "beta"]
    )
    reg.create_version(
        "user", **simple_version(system='{% include "snip@qa" %}', labels=["staging"])
    )
    with pytest.raises(PermissionDenied, match="protected"):
        reg.delete_label("snip", "production", actor="ana")
    with pytest.raises(ValidationError, match="user v1 includes snip@qa"):
        reg.delete_label("snip", "qa", actor="ana")
    reg.delete_label("snip", "beta", actor="ana", reason="unused")
    reg.delete_label("snip", "production", actor="ana", reason="retired", override=True)
    assert reg.prompt("snip").labels == {"qa": 1}
    assert [(e.label, e.kind, e.actor) for e in reg.label_history("snip")][-2:] == [
        ("beta", "delete", "ana"),
        ("production", "delete", "ana"),
    ]


def test_archive_and_unarchive_are_audited(reg: Registry) -> None:
    reg.create_version("p", **simple_version(labels=["staging"]))
    reg.archive("p", actor="ana", reason="replaced by q")
    reg.archive("p", actor="bob")  # already archived: nothing to audit
    reg.unarchive("p", actor="carl", reason="still needed")
    events = [e for e in reg.label_history("p") if e.kind in ("archive", "unarchive")]
    assert [(e.kind, e.actor, e.reason, e.label) for e in events] == [
        ("archive", "ana", "replaced by q", ""),
        ("unarchive", "carl", "still needed", ""),
    ]
    assert [e.kind for e in reg.label_history("p", "staging")] == ["move"]
    assert not reg.prompt("p").archived
