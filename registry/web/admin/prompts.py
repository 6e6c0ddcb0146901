"""``/admin/prompts/``: list, prompt page, version page (preview, labels), diff, editor.

URLs put ``/-/`` after the prompt name (a name part can never be ``-``), so names with
folders work: ``/admin/prompts/support/support-answer/-/v/3``.
Versions are immutable: "Edit" opens a form prefilled from a version and saving creates the
next one.
"""

from __future__ import annotations

import json
from typing import Any

from flask import flash, make_response, redirect, request, url_for

from ... import config
from ...contract import placeholder_values
from ...errors import NotFound, RegistryError, ValidationError
from ...suites import promotion_status
from ...versions import PromptVersion, validate_content
from .. import get_registry
from . import editing
from .base import expose
from .pagination import page_number
from .prompt_queries import (
    folders_and_tags,
    label_states,
    list_prompts,
    list_versions,
    prompt_info,
    version_numbers,
)
from .security import ProtectedView, actor_name, current_user, require_role

#: labels offered on every version page even before they exist
SUGGESTED_LABELS = ("staging", "production")


def diff_line_class(line: str, index: int) -> str:
    """CSS class of line ``index`` of a unified diff (the two header lines come first)."""
    if index < 2 and line.startswith(("---", "+++")):
        return "file"
    if line.startswith("@@"):
        return "hunk"
    if line.startswith("+"):
        return "add"
    if line.startswith("-"):
        return "del"
    return "ctx"


def gate_problem(name: str, version: int, label: str) -> str | None:
    """Why the regression-suite gate would refuse moving ``label`` here (None: allowed/unknown)."""
    try:
        return promotion_status(get_registry(), name, version, label)
    except RegistryError:
        return None


class PromptsView(ProtectedView):
    """Prompts and their versions."""

    required_role = "viewer"

    def _version_or_404(self, name: str, version: int) -> PromptVersion:
        try:
            return get_registry().get(name, version=version)
        except (NotFound, ValidationError) as exc:
            self.not_found(exc.message)

    # -- list -----------------------------------------------------------------------------

    @expose("/")
    def index(self) -> Any:
        """Prompts sorted by name: search, folder and tag filters, 50 a page."""
        reg = get_registry()
        search = request.args.get("q", "").strip()[:200]
        folder = request.args.get("folder", "").strip()[:200]
        tag = request.args.get("tag", "").strip()[:64]
        archived = request.args.get("archived") == "1"
        page = list_prompts(
            reg, search=search, folder=folder, tag=tag, archived=archived, page=page_number()
        )
        folders, tags = folders_and_tags(reg)
        return self.render(
            "admin_ui/prompts.html",
            page=page,
            search=search,
            folder=folder,
            tag=tag,
            archived=archived,
            folders=folders,
            tags=tags,
            protected=config.protected_labels(),
        )

    # -- one prompt -----------------------------------------------------------------------

    @expose("/<path:name>/-/")
    def prompt(self, name: str) -> Any:
        """The prompt: labels, versions (newest first), description and tags."""
        reg = get_registry()
        info = prompt_info(reg, name)
        if info is None:
            self.not_found(f"prompt {name!r} does not exist")
        return self.render(
            "admin_ui/prompt.html",
            info=info,
            labels=label_states(reg, name),
            versions=list_versions(reg, name, page=page_number()),
            protected=config.protected_labels(),
            cases=editing.sample_cases(reg, name),
        )

    @expose("/<path:name>/-/v/<int:version>", methods=["GET", "POST"])
    def version(self, name: str, version: int) -> Any:
        """A version: content, preview with sample variables (POST re-renders), labels, diff."""
        reg = get_registry()
        v = self._version_or_404(name, version)
        info = prompt_info(reg, name)
        cases = editing.sample_cases(reg, name)
        case_name = request.values.get("case", "")
        if request.method == "POST":
            variables_text = request.form.get("variables", "")
        elif case_name and any(c[0] == case_name for c in cases):
            variables_text = json.dumps(dict(cases)[case_name], indent=2, ensure_ascii=False)
        elif cases:
            case_name = cases[0][0]
            variables_text = json.dumps(cases[0][1], indent=2, ensure_ascii=False)
        else:
            variables_text = json.dumps(
                placeholder_values(v.variables), indent=2, ensure_ascii=False
            )
        values, error = editing.parse_variables(variables_text)
        rendered = None
        if values is not None:
            rendered, error = editing.preview(v, values)
        labels = label_states(reg, name)
        here = {lbl.name for lbl in labels if lbl.version == version}
        offered = [lbl for lbl in SUGGESTED_LABELS if lbl not in {x.name for x in labels}]
        protected = config.protected_labels()
        gate = {
            lbl: gate_problem(name, version, lbl)
            for lbl in {x.name for x in labels} | set(offered)
            if lbl in protected and lbl not in here
        }
        status = 422 if request.method == "POST" and error else 200
        body = self.render(
            "admin_ui/version.html",
            v=v,
            info=info,
            cases=cases,
            case_name=case_name,
            variables_text=variables_text,
            rendered=rendered,
            preview_error=error,
            tokens=editing.estimate_tokens(editing.rendered_text(rendered)) if rendered else None,
            template_tokens=editing.estimate_tokens(
                (v.system or "") + "".join(m["content"] for m in v.messages)
            ),
            labels=labels,
            here=sorted(here),
            offered=offered,
            protected=protected,
            gate=gate,
            versions=version_numbers(reg, name),
            settings_yaml=editing.dump_yaml(v.settings),
            variables_yaml=editing.dump_yaml(editing.compact_contract(v.variables)),
            schema_yaml=editing.dump_yaml(v.output_schema) if v.output_schema is not None else "",
        )
        return make_response(body, status)

    @expose("/<path:name>/-/diff")
    def diff(self, name: str) -> Any:
        """Two versions compared: templates line by line, settings and contract by key."""
        reg = get_registry()
        numbers = version_numbers(reg, name)
        if not numbers:
            self.not_found(f"prompt {name!r} does not exist")
        try:
            new = int(request.args.get("new", numbers[0]))
            old = int(request.args.get("old", max(new - 1, 1)))
            found = reg.diff(name, old, new)
        except (ValueError, RegistryError) as exc:
            message = exc.message if isinstance(exc, RegistryError) else "versions must be numbers"
            self.not_found(message)
        return self.render(
            "admin_ui/diff.html",
            name=name,
            d=found,
            versions=numbers,
            line_class=diff_line_class,
        )

    # -- the editor -------------------------------------------------------------------------

    @expose("/new", methods=["GET", "POST"])
    @require_role("editor")
    def new(self) -> Any:
        """A new prompt: its name and first version."""
        if request.method == "GET":
            return self._editor(editing.blank_form(), is_new=True)
        form = editing.form_from_request(request.form)
        if not form.name:
            form.error("name", "give the prompt a name, e.g. support/answer-refund")
        elif prompt_info(get_registry(), form.name) is not None:
            form.error(
                "name", f"a prompt named {form.name!r} already exists: open it and edit it instead"
            )
        return self._save(form, form.name, is_new=True)

    @expose("/<path:name>/-/edit", methods=["GET", "POST"])
    @require_role("editor")
    def edit(self, name: str) -> Any:
        """Edit: prefilled from ``?from=N`` (default newest); saving creates the next version."""
        reg = get_registry()
        info = prompt_info(reg, name)
        if info is None:
            self.not_found(f"prompt {name!r} does not exist")
        if request.method == "GET":
            try:
                start = int(request.args.get("from", info.latest_version))
            except ValueError:
                start = info.latest_version
            v = self._version_or_404(name, start)
            return self._editor(
                editing.form_from_version(v, description=info.description, tags=info.tags),
                is_new=False,
                latest=info.latest_version,
            )
        form = editing.form_from_request(request.form)
        form.name = name
        if info.archived:
            form.error("form", "this prompt is archived: unarchive it before adding versions")
        elif (
            form.base_version
            and form.base_version != info.latest_version
            and not form.confirm_stale
        ):
            form.error(
                "stale",
                f"Version {info.latest_version} was saved while you edited (you started from "
                f"version {form.base_version}). Compare them, then save again to create a version "
                "from your text anyway.",
            )
            form.confirm_stale = True
        return self._save(form, name, is_new=False, latest=info.latest_version)

    def _editor(
        self, form: editing.EditorForm, *, is_new: bool, latest: int = 0, status: int = 200
    ) -> Any:
        reg = get_registry()
        contract = editing.parse_structured(form.variables, "_ignored", editing.EditorForm())
        body = self.render(
            "admin_ui/edit.html",
            form=form,
            is_new=is_new,
            latest=latest,
            found=editing.template_variables(form.system, form.messages, contract or {}),
            versions=version_numbers(reg, form.name) if not is_new else [],
        )
        return make_response(body, status)

    def _save(self, form: editing.EditorForm, name: str, *, is_new: bool, latest: int = 0) -> Any:
        reg = get_registry()
        kwargs = editing.content_kwargs(form)
        if kwargs is not None:
            try:
                validate_content(**kwargs)
            except RegistryError as exc:
                form.error(editing.area_of(exc), exc.message)
            else:
                blocked = editing.sandbox_check(reg, name, kwargs)
                if blocked:
                    form.error(*blocked)
        if not form.message:
            form.error("message", "describe your change in a commit message")
        if form.has_errors or kwargs is None:
            status = 409 if "stale" in form.errors and len(form.errors) == 1 else 422
            return self._editor(form, is_new=is_new, latest=latest, status=status)
        before = prompt_info(reg, name)
        try:
            saved = reg.create_version(
                name,
                **kwargs,
                message=form.message,
                author=actor_name(),
                description=form.description,
                tags=editing.parse_tags(form.tags),
            )
        except RegistryError as exc:
            form.error(editing.area_of(exc), exc.message)
            return self._editor(form, is_new=is_new, latest=latest, status=422)
        if not is_new and saved.version <= latest:
            note = ""
            if before is not None and (
                before.description != form.description
                or before.tags != sorted(set(editing.parse_tags(form.tags)))
            ):
                note = " The description and tags were updated."
            flash(
                f"Nothing saved: the content is identical to version {saved.version}.{note}", "info"
            )
        else:
            flash(f"Saved {name} version {saved.version}.", "success")
        return redirect(url_for(".version", name=name, version=saved.version))

    @expose("/-/analyze", methods=["POST"])
    @require_role("editor")
    def analyze(self) -> Any:
        """The "variables" card of the editor for the submitted (unsaved) form."""
        form = editing.form_from_request(request.form)
        contract = editing.parse_structured(form.variables, "_ignored", editing.EditorForm())
        found = editing.template_variables(form.system, form.messages, contract or {})
        return self.render("admin_ui/_variables_found.html", found=found)

    # -- archive ----------------------------------------------------------------------------

    @expose("/<path:name>/-/archive", methods=["POST"])
    @require_role("publisher")
    def archive(self, name: str) -> Any:
        """Archive (hide from lists, keep serving) or unarchive a prompt."""
        reg = get_registry()
        try:
            if request.form.get("archived") == "1":
                reg.archive(name, actor=actor_name())
                flash(f"{name} is archived: hidden from lists, still served to apps.", "success")
            else:
                reg.unarchive(name, actor=actor_name())
                flash(f"{name} is back in the lists.", "success")
        except RegistryError as exc:
            flash(exc.message, "danger")
        return redirect(url_for(".prompt", name=name))

    def is_current_user_publisher(self) -> bool:
        """True when the user may move protected labels (used by templates)."""
        user = current_user()
        return user is not None and user.can("publisher")
