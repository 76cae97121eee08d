"""apply: write a plan to the store in the caller's transaction; every changed definition is a new version."""

from datetime import datetime

from sqlmodel import Session, col, delete, select

from nurture.leads.enrollment import stop_enrollments_of
from nurture.project.plan import Plan, SequenceChange
from nurture.spec.models import SequenceSpec
from nurture.spec.names import slugify
from nurture.store.tables import Funnel, FunnelAssignment, Sequence, SequenceVersion, Step


def apply_plan(session: Session, plan: Plan, now: datetime, canary: float | None = None) -> None:
    """Create, update and delete sequences as planned; the caller commits. With `canary` (a
    share), a new version of a sequence takes that share of new enrollments only."""
    for change in plan.changes:
        if change.action in ("create", "update"):
            _write(session, change, now, canary)
        elif change.action == "delete":
            _delete(session, change.slug, now)
    session.flush()


def _write(session: Session, change: SequenceChange, now: datetime, canary: float | None) -> None:
    spec = change.spec
    assert spec is not None, "create and update changes carry their spec"
    row = session.exec(select(Sequence).where(Sequence.slug == change.slug)).first()
    if row is None:
        row = Sequence(
            name=spec.name,
            slug=spec.slug,
            category=spec.category,
            fingerprint="",
            current_version=0,
            created_at=now,
            updated_at=now,
        )
    _copy_identity(row, spec, change.path, now)
    if row.current_version == 0:
        session.add(row)
        session.flush()
        row.current_version, row.fingerprint = 1, spec.fingerprint()
        _add_version(session, row, spec, 1, change.path, now)
    else:
        _version(session, row, change, now, canary)
    session.add(row)
    session.flush()
    _assign(session, row, spec.funnels, spec.split, now)


def _version(
    session: Session, row: Sequence, change: SequenceChange, now: datetime, share: float | None
) -> None:
    """A new version (current, or a canary's), a canary's rollout, or the canary dropped."""
    spec = change.spec
    assert spec is not None, "create and update changes carry their spec"
    fingerprint, canary = spec.fingerprint(), change.canary
    latest = max(row.current_version, row.canary_version or 0)
    if share is not None and fingerprint != row.fingerprint:
        if canary is None or canary.fingerprint != fingerprint:
            _add_version(session, row, spec, latest + 1, change.path, now)
            row.canary_version, row.canary_started_at = latest + 1, now
        row.canary_share = share
        return
    if change.rollout and row.canary_version is not None:
        row.current_version, row.fingerprint = row.canary_version, fingerprint
    elif fingerprint != row.fingerprint:
        _add_version(session, row, spec, latest + 1, change.path, now)
        row.current_version, row.fingerprint = latest + 1, fingerprint
    row.canary_version = row.canary_share = row.canary_started_at = None


def _copy_identity(row: Sequence, spec: SequenceSpec, path: str | None, now: datetime) -> None:
    row.name, row.description, row.category = spec.name, spec.description, spec.category
    row.active, row.priority, row.source_path = spec.active, spec.priority, path
    row.updated_at, row.deleted_at = now, None


def _add_version(
    session: Session,
    row: Sequence,
    spec: SequenceSpec,
    number: int,
    path: str | None,
    now: datetime,
) -> None:
    definition = spec.definition()
    version = SequenceVersion(
        sequence_id=row.id,
        version=number,
        fingerprint=spec.fingerprint(),
        definition=definition,
        source_path=path,
        applied_at=now,
    )
    session.add(version)
    session.flush()
    for position, (step, data) in enumerate(zip(spec.steps, definition["steps"], strict=True)):
        session.add(
            Step(
                version_id=version.id,
                position=position,
                step_id=step.key,
                name=step.name,
                action_type=step.action_type.value,
                action_config=data.get("action_config", step.action_config.model_dump(mode="json")),
                delay_seconds=int(step.delay.total_seconds()),
                conditions=data["conditions"],
                active=step.active,
            )
        )


def _assign(
    session: Session, row: Sequence, funnel_names: list[str], split: dict[str, int], now: datetime
) -> None:
    """Make the sequence's funnel assignments exactly the declared ones, with their weights."""
    funnels = ensure_funnels(session, {slugify(n): n for n in funnel_names}, now)
    wanted = {funnel.id for funnel in funnels}
    current = set(
        session.exec(
            select(FunnelAssignment.funnel_id).where(FunnelAssignment.sequence_id == row.id)
        ).all()
    )
    if current - wanted:
        session.exec(
            delete(FunnelAssignment).where(
                col(FunnelAssignment.sequence_id) == row.id,
                col(FunnelAssignment.funnel_id).in_(current - wanted),
            )
        )
    for funnel_id in sorted(wanted - current):
        session.add(FunnelAssignment(funnel_id=funnel_id, sequence_id=row.id, created_at=now))
    session.flush()
    weights = {slugify(name): weight for name, weight in split.items()}
    for funnel in funnels:
        assignment = session.get_one(FunnelAssignment, (funnel.id, row.id))
        weight = weights.get(funnel.slug)
        if assignment.weight != weight:
            assignment.weight = weight
            session.add(assignment)


def ensure_funnels(session: Session, names_by_slug: dict[str, str], now: datetime) -> list[Funnel]:
    """The funnels with these slugs, creating the missing ones under the given names."""
    found = session.exec(select(Funnel).where(col(Funnel.slug).in_(names_by_slug))).all()
    known = {funnel.slug for funnel in found}
    created = [
        Funnel(name=name, slug=slug, created_at=now)
        for slug, name in names_by_slug.items()
        if slug not in known
    ]
    session.add_all(created)
    session.flush()
    return [*found, *created]


def _delete(session: Session, slug: str, now: datetime) -> None:
    """Soft delete: the versions stay for history; the sequence leaves every funnel, and its
    leads in flight stop (nothing more is sent for a sequence that is gone)."""
    row = session.exec(select(Sequence).where(Sequence.slug == slug)).one()
    row.deleted_at, row.active, row.updated_at = now, False, now
    session.add(row)
    session.exec(delete(FunnelAssignment).where(col(FunnelAssignment.sequence_id) == row.id))
    stop_enrollments_of(session, row.id, now)
