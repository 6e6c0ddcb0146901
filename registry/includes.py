"""The include graph: prompts that include other prompts, checked before anything is written.

A template may include another prompt pinned by version (``snippets/tone@3``) or following a
label (``snippets/tone@production``). Saving a version and moving a label must leave every
labelled prompt renderable, so both are checked here first: every included target exists, the
graph has no cycle, it nests at most ``MAX_INCLUDE_DEPTH`` levels, and the includer declares
every variable the included templates read.
"""

from __future__ import annotations

from collections.abc import Mapping

import sqlalchemy as sa

from .errors import NotFound, ValidationError
from .names import DEFAULT_LABEL
from .reading import Reader
from .rendering import MAX_INCLUDE_DEPTH, IncludeRef
from .tables import labels as labels_table
from .tables import prompts as prompts_table
from .tables import versions as versions_table
from .versions import VersionContent

_V = versions_table.c
_P = prompts_table.c
_L = labels_table.c

#: ``(prompt, label)`` -> the version the label is taken to point at (None: the content
#: being saved)
Overrides = Mapping[tuple[str, str], int | None]


class IncludeGraph:
    """Checks of the include graph of one registry, reading through its :class:`Reader`."""

    def __init__(self, reader: Reader) -> None:
        self.reader = reader

    def check(
        self,
        root: str,
        content: VersionContent,
        *,
        root_version: int | None = None,
        overrides: Overrides | None = None,
    ) -> frozenset[str]:
        """Check includes reachable from ``content``: they exist, no cycle, depth bounded.

        Nodes are (prompt, version); ``root_version`` None stands for content not saved yet.
        ``overrides`` pretends labels already point elsewhere (None: at the root content), so a
        label move or a save with labels is checked as if it had happened.
        Returns the variables the included templates read (the includer must declare them).
        """
        overrides = overrides or {}
        used: set[str] = set()
        reader = self.reader

        def walk(content: VersionContent, path: tuple[tuple[str, int | None], ...]) -> None:
            _, includes = content.analyze()
            for ref in includes:
                label = ref.label or DEFAULT_LABEL
                version: int | None
                if ref.version is not None:
                    version = ref.version
                elif (ref.name, label) in overrides:
                    version = overrides[(ref.name, label)]
                else:
                    try:
                        version = reader.by_label(ref.name, label).version
                    except NotFound as exc:
                        raise _unresolved(ref, exc) from None
                node = (ref.name, version)
                if ref.name == root and version == root_version:
                    node = (root, root_version)
                if node in path:
                    chain = " -> ".join(
                        f"{n}@{v}" if v is not None else n for n, v in (*path, node)
                    )
                    raise ValidationError(f"include cycle: {chain}", field="messages")
                if len(path) > MAX_INCLUDE_DEPTH:
                    raise ValidationError(
                        f"includes nest deeper than {MAX_INCLUDE_DEPTH}: "
                        + " -> ".join(n for n, _ in path),
                        field="messages",
                    )
                if version is None:  # the root content itself (cycle caught above)
                    continue
                try:
                    target = reader.by_version(ref.name, version)
                except NotFound as exc:
                    raise _unresolved(ref, exc) from None
                inner = target.content()
                used.update(inner.analyze()[0])
                walk(inner, (*path, node))

        walk(content, ((root, root_version),))
        return frozenset(used)

    def check_includers(self, moves: Mapping[tuple[str, str], int]) -> None:
        """Labelled versions that include a moved label must still render after the move.

        Finds them by the prompt name in their templates, then re-checks their include graph
        as if the moves had happened: no cycle, depth bounded, every variable the new included
        text reads declared by the includer. Raises ``ValidationError`` naming the includer.
        """
        for includer, number, refs in self.includers_of({n for n, _ in moves}):
            if not any(
                ref.version is None and (ref.name, ref.label or DEFAULT_LABEL) in moves
                for ref in refs
            ):
                continue
            found = self.reader.by_version(includer, number)
            try:
                used = self.check(
                    includer, found.content(), root_version=number, overrides=dict(moves)
                )
            except ValidationError as exc:
                raise ValidationError(
                    f"this move would break {includer} v{number}: {exc.message}",
                    field="version",
                ) from None
            missing = sorted(used - set(found.variables))
            if missing:
                raise ValidationError(
                    f"this move would break {includer} v{number}, which includes it: its "
                    "contract does not declare " + ", ".join(repr(v) for v in missing),
                    field="version",
                )

    def check_label_unused(self, name: str, label: str) -> None:
        """Refuse (``ValidationError``) when a labelled version of a prompt includes
        ``name@label``: deleting that label would break it."""
        for includer, number, refs in self.includers_of({name}):
            if any(
                r.version is None and (r.name, r.label or DEFAULT_LABEL) == (name, label)
                for r in refs
            ):
                raise ValidationError(
                    f"{includer} v{number} includes {name}@{label}: move or delete that first"
                )

    def includers_of(self, names: set[str]) -> list[tuple[str, int, tuple[IncludeRef, ...]]]:
        """Labelled versions whose templates include one of ``names``: (prompt, version, refs)."""
        text = sa.cast(_V.messages, sa.Text)
        query = (
            sa.select(_P.name, _V.version)
            .select_from(
                versions_table.join(labels_table, _L.version_id == _V.id).join(
                    prompts_table, _P.id == _V.prompt_id
                )
            )
            .where(
                sa.or_(
                    *(
                        sa.or_(
                            _V.system.contains(n, autoescape=True),
                            text.contains(n, autoescape=True),
                        )
                        for n in sorted(names)
                    )
                )
            )
            .distinct()
        )
        with self.reader.db.engine.connect() as conn:
            candidates = conn.execute(query).all()
        out = []
        for includer, number in candidates:
            refs = self.reader.by_version(includer, number).content().analyze()[1]
            if any(ref.name in names for ref in refs):
                out.append((includer, number, refs))
        return out


def _unresolved(ref: IncludeRef, exc: NotFound) -> ValidationError:
    return ValidationError(
        f"included prompt {str(ref)!r} cannot be resolved: {exc.message}", field="messages"
    )


__all__ = ["IncludeGraph", "Overrides"]
