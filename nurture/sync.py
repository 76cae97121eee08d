"""Keep the sequence files and the store together: plan, apply, and edits that touch both."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from sqlmodel import Session

from nurture.apply import apply_plan
from nurture.plan import Plan, SequenceChange, build_plan
from nurture.project import Project
from nurture.spec.edit import Edit, edit_file


def plan_project(session: Session, project: Project, *, prune: bool = False) -> Plan:
    """What apply would do; raises SpecError (touching nothing) if any file is invalid."""
    return build_plan(session, project.files(), root=project.root, prune=prune)


def apply_changes(session: Session, plan: Plan, now: datetime) -> Plan:
    """Apply a plan in one transaction."""
    apply_plan(session, plan, now)
    session.commit()
    return plan


def change_files(
    session: Session,
    project: Project,
    now: datetime,
    *,
    edits: dict[Path, Edit] | None = None,
    create: dict[Path, str] | None = None,
    delete: Path | None = None,
) -> Plan:
    """Edit, create or delete sequence files and apply just those; a failure restores the files."""
    edits, create = edits or {}, create or {}
    touched = [*edits, *create, *([delete] if delete else [])]
    with _restored_on_failure(touched):
        removal = [_delete_change(project, delete)] if delete else []
        for path, text in create.items():
            path.write_text(text, encoding="utf-8")
        for path, change in edits.items():
            edit_file(path, change)
        if delete:
            delete.unlink()
        wanted = {path.resolve() for path in [*edits, *create]}
        files = [file for file in project.files() if file.path.resolve() in wanted]
        plan = build_plan(session, files, root=project.root, complete=False)
        return apply_changes(session, Plan((*plan.changes, *removal)), now)


def _delete_change(project: Project, path: Path) -> SequenceChange:
    spec = next(file.spec for file in project.files() if file.path.resolve() == path.resolve())
    return SequenceChange(spec.name, spec.slug, "delete", str(path.relative_to(project.root)))


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
