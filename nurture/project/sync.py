"""Keep the sequence files and the store together: plan, apply, and edits that touch both."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from nurture.errors import NurtureError
from nurture.project.layout import Project
from nurture.project.plan import Plan, SequenceChange, build_plan, relative_path, stored_sequences
from nurture.spec.files import SequenceFile

if TYPE_CHECKING:  # `nurture plan` loads no ORM (nor SQLAlchemy for a store not made yet)
    from sqlmodel import Session

    from nurture.project.applied import Reader
    from nurture.spec.edit import Edit

APPLY_LOCK = 0x6E757275  # the Postgres advisory lock that makes concurrent applies take turns


def plan_project(
    reader: "Reader | None",
    project: Project,
    *,
    prune: bool = False,
    files: list[SequenceFile] | None = None,
) -> Plan:
    """What apply would do; raises SpecError (touching nothing) if any file is invalid.
    `reader` None: against a store not made yet (everything is to create)."""
    files = project.files() if files is None else files
    return build_plan(reader, files, root=project.root, prune=prune)


def plan_to_apply(
    session: "Session", project: Project, *, prune: bool = False, files: list[SequenceFile]
) -> Plan:
    """The plan in the transaction that will apply it, once concurrent applies are done."""
    take_turn(session)
    return plan_project(session, project, prune=prune, files=files)


def take_turn(session: "Session") -> None:
    """Serialise plan-and-apply across processes (SQLite's BEGIN IMMEDIATE does it there)."""
    from sqlalchemy import text

    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": APPLY_LOCK})


def apply_changes(
    session: "Session", plan: Plan, now: datetime, canary: float | None = None
) -> Plan:
    """Apply a plan in one transaction (with `canary`, new versions as canaries: nurture.project.apply)."""
    from nurture.project.apply import apply_plan

    apply_plan(session, plan, now, canary)
    session.commit()
    return plan


def change_files(
    session: "Session",
    project: Project,
    now: datetime,
    *,
    edits: "dict[Path, Edit] | None" = None,
    create: dict[Path, str] | None = None,
    delete: Path | None = None,
) -> Plan:
    """Edit, create or delete sequence files and apply just those; a failure restores the files."""
    from nurture.spec.edit import edit_file

    edits, create = edits or {}, create or {}
    touched = [*edits, *create, *([delete] if delete else [])]
    take_turn(session)
    _refuse_pending(session, project, list(edits))
    with _restored_on_failure(touched):
        removal = _delete_change(session, project, delete) if delete else []
        for path, content in create.items():
            path.write_text(content, encoding="utf-8")
        for path, change in edits.items():
            edit_file(path, change)
        if delete:
            delete.unlink()
        wanted = {path.resolve() for path in [*edits, *create]}
        files = [file for file in project.files() if file.path.resolve() in wanted]
        plan = build_plan(session, files, root=project.root, complete=False)
        return apply_changes(session, Plan((*plan.changes, *removal)), now)


def _refuse_pending(session: "Session", project: Project, paths: list[Path]) -> None:
    """A command changes one thing: a file with other unapplied edits must be applied first."""
    wanted = {path.resolve() for path in paths}
    files = [file for file in project.files() if file.path.resolve() in wanted]
    pending = build_plan(session, files, root=project.root, complete=False).by_action("update")
    if pending:
        names = ", ".join(f"{change.path}" for change in pending)
        raise NurtureError(
            f"{names} has changes that are not applied yet; run `nurture plan` and apply or revert them first"
        )


def _delete_change(session: "Session", project: Project, path: Path) -> list[SequenceChange]:
    """The store side of deleting a file: nothing when the sequence was never applied."""
    spec = next(file.spec for file in project.files() if file.path.resolve() == path.resolve())
    stored = stored_sequences(session).get(spec.slug)
    if stored is None or stored.row.deleted_at is not None:
        return []
    return [SequenceChange(spec.name, spec.slug, "delete", relative_path(path, project.root))]


@contextmanager
def _restored_on_failure(paths: list[Path]) -> Iterator[None]:
    """Git and the store never silently disagree: a failed change puts the files back as they were."""
    saved = {path: path.read_bytes() if path.exists() else None for path in paths}
    try:
        yield
    except BaseException:
        for path, content in saved.items():
            if content is None:
                path.unlink(missing_ok=True)
            else:
                path.write_bytes(content)
        raise
