"""Duplicates (two leads that are one person) and merging them: `nurture leads duplicates|merge`.

Old data (stored before identity, or with a key left out of `[leads] identity`) may hold two
leads with one email or phone. A merge keeps every history row: the other lead's enrollments,
executions, decisions, tasks, notifications, consent events and replies move to the kept one,
with its keys; tags and fields join (the kept lead's value wins a field both have), opt-outs
join (the stricter wins), and the merged lead's row is logged as it was (`lead_merge`).
"""

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, SQLModel, col, select

from nurture.errors import InvalidState, NotFound
from nurture.leads import consent, identity
from nurture.leads.enrollment import LIVE
from nurture.leads.lookup import find_lead
from nurture.spec.names import numeric_id
from nurture.store import keys as store_keys
from nurture.store.tables import Enrollment, Lead, LeadCap, LeadKey, LeadMerge

CONTACTS = ("email", "phone")


@dataclass(frozen=True)
class Duplicate:
    """Leads that share an email or a phone: one person, stored more than once."""

    kind: str
    value: str
    leads: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "value": self.value, "leads": self.leads}


def duplicates(session: Session) -> list[Duplicate]:
    """Every email and phone more than one lead holds (as its column, or as a key)."""
    groups: dict[tuple[str, str], set[int]] = {}
    connection = session.connection()
    for kind in CONTACTS:
        for value, lead_id in _shared(connection, kind):
            groups.setdefault((kind, value), set()).add(lead_id)
    ids = {lead_id for members in groups.values() for lead_id in members}
    named = dict(session.exec(select(Lead.id, Lead.name).where(col(Lead.id).in_(ids))).all())
    return [
        Duplicate(kind, value, [{"id": i, "name": named[i]} for i in sorted(members)])
        for (kind, value), members in sorted(groups.items())
        if len(members) > 1
    ]


def _shared(connection: Connection, kind: str) -> list[tuple[str, int]]:
    """(value, lead id) of the leads whose `kind` another lead holds too."""
    lead, key = Lead.__table__, LeadKey.__table__
    column = lead.c[kind]
    twice = sa_select(column).where(column.is_not(None)).group_by(column)
    twice = twice.having(func.count() > 1)
    shared = sa_select(column, lead.c.id).where(column.in_(twice))
    rows: list[tuple[str, int]] = [
        (value, lead_id) for value, lead_id in connection.execute(shared)
    ]
    held = sa_select(key.c.value, key.c.lead_id, lead.c.id).join(
        lead, (key.c.kind == kind) & (key.c.value == column) & (key.c.lead_id != lead.c.id)
    )
    for value, owner, other in connection.execute(held):
        rows += [(value, owner), (value, other)]
    return rows


@dataclass
class Merged:
    kept: Lead
    merged_id: int
    already: bool = False
    moved: dict[str, int] = field(default_factory=dict)
    stopped: list[int] = field(default_factory=list)
    """The merged lead's live enrollments in a sequence the kept lead runs already: stopped."""


def merge(session: Session, keep_ref: str, other_ref: str, now: datetime) -> Merged:
    """Merge the lead `other_ref` names into `keep_ref`'s; merging again changes nothing."""
    keep = find_lead(session, keep_ref)
    try:
        other = find_lead(session, other_ref)
    except NotFound:
        if (done := _merged_before(session, other_ref)) is None:
            raise
        if done.kept_id != keep.id:
            raise InvalidState(
                f"lead {done.merged_id} was merged into lead {done.kept_id} already"
            ) from None
        return Merged(keep, done.merged_id, already=True)
    if other.id == keep.id:
        raise InvalidState(f"{keep_ref!r} and {other_ref!r} are one lead ({keep.id}) already")
    keep, other = _locked(session, keep, other)
    return _merge(session, keep, other, now)


def _merged_before(session: Session, ref: str) -> LeadMerge | None:
    number = numeric_id(ref)
    if number is None:
        return None
    query = select(LeadMerge).where(col(LeadMerge.merged_id) == number)
    return session.exec(query).first()


def _locked(session: Session, keep: Lead, other: Lead) -> tuple[Lead, Lead]:
    """Both leads under a row lock, in id order (two merges at once cannot deadlock)."""
    query = select(Lead).where(col(Lead.id).in_([keep.id, other.id])).order_by(col(Lead.id))
    rows = {lead.id: lead for lead in session.exec(query.with_for_update())}
    return rows[keep.id], rows[other.id]


def _merge(session: Session, keep: Lead, other: Lead, now: datetime) -> Merged:
    snapshot = {name: getattr(other, name) for name in Lead.model_fields}
    connection = session.connection()
    stopped = _stop_twins(session, keep, other, now)
    moved = {"keys": store_keys.move(connection, other.id, keep.id)}
    moved |= _move_history(connection, other.id, keep.id)
    moved |= _join_caps(connection, other.id, keep.id)
    opted = [c for c in consent.opted_out_of(other) if c not in consent.opted_out_of(keep)]
    _join_values(keep, other)
    external_id, other.external_id = other.external_id, None
    session.add(other)
    session.flush()  # the external id is unique: the merged lead lets go of it first
    keep.external_id = keep.external_id or external_id
    keep.updated_at = now
    session.add(keep)
    session.delete(other)
    session.flush()
    columns = {kind: getattr(keep, kind) for kind in identity.KINDS}
    store_keys.claim(connection, store_keys.rows_for(keep.id, identity.keys_of(columns), now))
    if opted:
        consent.opt_out(session, keep, opted, now, "merge", f"merged lead {other.id}")
    session.add(
        LeadMerge(
            kept_id=keep.id,
            merged_id=other.id,
            merged=_jsonable(snapshot),
            moved=moved,
            merged_at=now,
        )
    )
    session.flush()
    return Merged(keep, other.id, moved=moved, stopped=stopped)


def _stop_twins(session: Session, keep: Lead, other: Lead, now: datetime) -> list[int]:
    """The other lead's live enrollments in sequences the kept lead runs too: stopped, so the
    person does not get each message twice."""
    running = select(Enrollment.sequence_id).where(
        Enrollment.lead_id == keep.id, col(Enrollment.status).in_(LIVE)
    )
    twins = list(
        session.exec(
            select(Enrollment.id).where(
                Enrollment.lead_id == other.id,
                col(Enrollment.status).in_(LIVE),
                col(Enrollment.sequence_id).in_(running),
            )
        )
    )
    if twins:
        reason = f"merged into lead {keep.id}, which runs this sequence"
        session.exec(
            update(Enrollment)
            .where(col(Enrollment.id).in_(twins))
            .values(status="stopped", exit_reason=reason, finished_at=now, updated_at=now,
                    next_run_at=None, lease_owner=None, lease_expires_at=None)
        )  # fmt: skip
    return twins


SKIPPED = frozenset({"lead", "lead_key", "lead_merge"})


def _move_history(connection: Connection, from_id: int, to_id: int) -> dict[str, int]:
    """Every row of every table that names the lead (a table added later too): moved."""
    moved = {}
    for table in SQLModel.metadata.sorted_tables:
        if table.name in SKIPPED or "lead_id" not in table.c:
            continue
        query = update(table).where(table.c.lead_id == from_id).values(lead_id=to_id)
        if count := connection.execute(query).rowcount:
            moved[table.name] = count
    return moved


def _join_caps(connection: Connection, from_id: int, to_id: int) -> dict[str, int]:
    """The messages the caps counted for the merged lead count for the kept one (one person)."""
    table = LeadCap.__table__
    rows = dict(
        connection.execute(
            sa_select(table.c.id, table.c.sent).where(table.c.id.in_([from_id, to_id]))
        ).all()
    )
    if from_id not in rows:
        return {}
    sent = sorted(json.loads(rows[from_id]) + json.loads(rows.get(to_id, "[]")))
    connection.execute(delete(table).where(table.c.id == from_id))
    if to_id in rows:
        connection.execute(update(table).where(table.c.id == to_id).values(sent=json.dumps(sent)))
    else:
        connection.execute(insert(table).values(id=to_id, sent=json.dumps(sent)))
    return {"lead_cap": 1}


def _join_values(keep: Lead, other: Lead) -> None:
    """The kept lead's values, the other's where it has none; tags and fields join."""
    for name in ("email", "phone", "source", "status", "temperature", "timezone", "funnel_id"):
        if getattr(keep, name) is None:
            setattr(keep, name, getattr(other, name))
    keep.tags = list(dict.fromkeys([*keep.tags, *other.tags]))
    keep.fields = other.fields | keep.fields
    keep.score = max(keep.score, other.score)
    keep.created_at = min(keep.created_at, other.created_at)
    inbound = [at for at in (keep.last_inbound_at, other.last_inbound_at) if at is not None]
    keep.last_inbound_at = max(inbound, default=None)
    converted = [at for at in (keep.converted_at, other.converted_at) if at is not None]
    keep.converted_at = min(converted, default=None)


def _jsonable(snapshot: dict[str, Any]) -> dict[str, Any]:
    return {
        name: value.isoformat() if isinstance(value, datetime) else value
        for name, value in snapshot.items()
    }


def merges_of(session: Session, lead_id: int) -> list[int]:
    """The ids of the leads merged into this one."""
    query = select(LeadMerge.merged_id).where(col(LeadMerge.kept_id) == lead_id)
    return list(session.exec(query.order_by(col(LeadMerge.id))))
