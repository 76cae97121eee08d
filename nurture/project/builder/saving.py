"""Check and save a draft: `nurture validate`'s words, `nurture plan`'s plan, apply on confirm.

Where sequences are files (the project's folder is writable) saving writes the draft's file
and applies it; with `[api] sequences = "read-write"` a sequence without a file is saved to the
store; where neither, the builder checks and previews, and offers the YAML to download.
"""

import difflib
import os
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlmodel import Session

from nurture.errors import Conflict, NurtureError, SpecError
from nurture.project import stored
from nurture.project.builder.drafts import Draft, data, fingerprint
from nurture.project.layout import Project, bookable
from nurture.project.plan import Plan, build_plan, relative_path
from nurture.project.sequences import new_path
from nurture.project.sync import change_files, take_turn
from nurture.settings import Settings
from nurture.spec.diagnostics import Diagnostic, has_errors
from nurture.spec.files import SequenceFile, shown
from nurture.spec.lint import checked

Mode = Literal["file", "store", "read-only"]
READ_ONLY = (
    "sequences are read-only here (no writable sequences folder, and api.sequences is "
    '"read-only"): download the YAML, commit it to the project and run `nurture apply`'
)


def mode(settings: Settings) -> Mode:
    """How the builder saves: to files, to the store (API-managed sequences), or not at all."""
    if settings.api.sequences == "read-write":
        return "store"
    folder = settings.sequences_path
    return "file" if folder.is_dir() and os.access(folder, os.W_OK) else "read-only"


def check(settings: Settings, draft: Draft) -> list[Diagnostic]:
    """What `nurture validate` would say about the draft's file were it saved: its errors and
    warnings, each with the path of the field it is about."""
    return _checked(settings, draft)[0]


def _checked(settings: Settings, draft: Draft) -> tuple[list[Diagnostic], SequenceFile | None]:
    result = checked(
        [settings.sequences_path],
        coach_keys=frozenset(settings.coach.model_dump()),
        ignore=settings.lint_ignore,
        conversion_statuses=settings.conversion_statuses,
        drafts={draft.path: draft.text},
        bookable=bookable(settings),
    )
    name = shown(draft.path)
    mine = [d for d in result.diagnostics if d.file == name]
    path = draft.path.resolve()
    file = next((f for f in result.sequences if f.path.resolve() == path), None)
    return mine, file


@dataclass(frozen=True)
class SavePlan:
    """What saving the draft does: where it goes, the file's diff, the plan with in-flight leads."""

    draft: Draft
    target: Literal["file", "store"]
    plan: Plan
    diff: str
    diagnostics: list[Diagnostic]
    """Its warnings (errors stop a save before there is a plan)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "path": str(self.draft.path),
            "new": self.draft.new,
            "diff": self.diff,
            "plan": self.plan.to_dict(),
            "warnings": [str(d) for d in self.diagnostics],
        }


def plan_save(session: Session, settings: Settings, draft: Draft) -> SavePlan:
    """The plan of saving `draft`, changing nothing; SpecError with `validate`'s errors."""
    target = _target(settings, draft)
    diagnostics, file = _checked(settings, draft)
    if file is None or has_errors(diagnostics):
        raise SpecError([d for d in diagnostics if d.severity == "error"])
    project = Project.from_settings(settings)
    _refuse_rename(draft, file)
    if draft.new:
        new_path(project, file.spec.name, session=session)  # the name must be free
    plan = build_plan(session, [file], root=project.root, complete=False)
    if target == "store":
        plan = _without_file(plan)
    return SavePlan(draft, target, plan, _diff(project, draft), diagnostics)


def apply_save(session: Session, settings: Settings, draft: Draft, now: datetime) -> Plan:
    """Save and apply what `plan_save` showed; Conflict when the file changed since it was opened."""
    planned = plan_save(session, settings, draft)
    if planned.target == "store":
        return _save_to_store(session, settings, draft, now)
    current = draft.path.read_bytes() if draft.path.exists() else None
    if (current and fingerprint(current)) != draft.base:
        where = relative_path(draft.path, settings.project_dir)
        raise Conflict(f"{where} changed since the builder opened it: open it again, then save")
    project = Project.from_settings(settings)
    return change_files(session, project, now, create={draft.path: draft.text})


def download(draft: Draft) -> tuple[str, str]:
    """The draft as a file to download: its name and its text."""
    return draft.path.name, draft.text


def _target(settings: Settings, draft: Draft) -> Literal["file", "store"]:
    """A sequence's file is saved where it is; a new one as the mode says."""
    if draft.slug is not None and not draft.path.exists():  # it lives in the store alone
        if mode(settings) == "store":
            return "store"
        raise NurtureError(
            f"{draft.slug!r} lives in the store alone: `nurture sequences export {draft.slug}` "
            "writes its file, which the builder then edits"
        )
    if draft.path.exists():
        if os.access(draft.path, os.W_OK):
            return "file"
        raise NurtureError(READ_ONLY)
    found = mode(settings)
    if found == "read-only":
        raise NurtureError(READ_ONLY)
    return found


def _refuse_rename(draft: Draft, file: SequenceFile) -> None:
    if draft.slug is not None and draft.slug != file.spec.slug:
        raise Conflict(
            f"renaming {draft.slug!r} to {file.spec.name!r} is not supported: duplicate it, "
            "then delete",
            field="name",
        )


def _without_file(plan: Plan) -> Plan:
    """A store-only sequence's plan: no file is involved."""
    from dataclasses import replace

    changes = [
        replace(change, path=None, fields=tuple(f for f in change.fields if f.field != "file"))
        for change in plan.changes
    ]
    return Plan(tuple(changes))


def _save_to_store(session: Session, settings: Settings, draft: Draft, now: datetime) -> Plan:
    project = Project.from_settings(settings)
    spec = stored.parse_spec(data(draft.text), project.coach_keys)
    take_turn(session)
    if draft.new:
        return stored.create(session, project, spec, now)
    row = stored.resolve(session, spec.slug)
    if row.fingerprint != draft.base:
        raise Conflict(
            f"{row.name!r} changed since the builder opened it: open it again, then save"
        )
    return stored.replace(session, project, row, spec, now)


def _diff(project: Project, draft: Draft) -> str:
    """The change to the file as `git diff` shows it."""
    name = relative_path(draft.path, project.root)
    before = draft.path.read_text(encoding="utf-8") if draft.path.exists() else ""
    lines = difflib.unified_diff(
        before.splitlines(keepends=True),
        draft.text.splitlines(keepends=True),
        "/dev/null" if not before else f"a/{name}",
        f"b/{name}",
    )
    return "".join(lines)
