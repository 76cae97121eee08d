"""Engine test helpers: apply sequences, put leads in them directly, run the engine, read the log."""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from builders import write
from sqlalchemy import insert, select

from nurture.channels.memory import MemoryChannel
from nurture.engine import dispatch
from nurture.engine.dispatch import EngineConfig
from nurture.project.layout import Project
from nurture.project.sync import apply_changes, plan_project
from nurture.rules.schedule import step_due
from nurture.rules.steps import spec_of
from nurture.spec.names import slugify
from nurture.spec.templates import COACH_KEYS
from nurture.store.db import Store
from nurture.store.tables import Enrollment, Execution, Lead, Sequence, SequenceVersion

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)  # a Monday
COACH = {"name": "Coach Kim", "email": "kim@example.com", "booking_url": "https://x.test/book"}


def apply(store: Store, project: Path, *docs: dict[str, Any], now: datetime = T0) -> None:
    """Write the sequence files and apply them, as `nurture apply` does."""
    for doc in docs:
        write(project, f"{slugify(doc['name'])}.yaml", doc)
    with store.session(immediate=True) as session:
        files = Project(project, project / "sequences", COACH_KEYS)
        apply_changes(session, plan_project(session, files), now)


def enroll(store: Store, sequence: str, now: datetime = T0, **lead: Any) -> int:
    """A new lead, enrolled at `now` in the sequence's current version; the enrollment id."""
    with store.begin(immediate=True) as connection:
        row = connection.execute(
            select(Sequence.__table__).where(Sequence.slug == slugify(sequence))
        ).one()
        definition = connection.execute(
            select(SequenceVersion.definition).where(
                SequenceVersion.sequence_id == row.id,
                SequenceVersion.version == row.current_version,
            )
        ).scalar_one()
        spec = spec_of(definition)
        values = {"name": "Sam Carter", "email": "sam@example.com", "phone": "+15555550100"} | lead
        values.setdefault("first_name", values["name"].split()[0])
        values |= {"created_at": now, "updated_at": now}
        lead_id = connection.execute(
            insert(Lead.__table__).values(**_lead_defaults(values))
        ).inserted_primary_key[0]
        first = spec.steps[0]
        due = step_due(now, first, spec, values.get("timezone"), "UTC").at
        enrollment = {
            "lead_id": lead_id, "sequence_id": row.id, "version": row.current_version,
            "step_id": first.id, "next_run_at": due, "enrolled_at": now, "updated_at": now,
        }  # fmt: skip
        return connection.execute(
            insert(Enrollment.__table__).values(**enrollment)
        ).inserted_primary_key[0]


def _lead_defaults(values: dict[str, Any]) -> dict[str, Any]:
    return {"tags": [], "fields": {}, "opted_out": [], "score": 0} | values


def drain(store: Store, now: datetime, channel: MemoryChannel | None = None, **options: Any) -> int:
    """The engine's drain until nothing is due at `now` (EngineConfig's `options`); how many ran."""
    channels = dict.fromkeys(
        ("whatsapp", "sms", "email", "notification"), channel or MemoryChannel()
    )
    config = EngineConfig(**({"worker": "test", "coach": COACH} | options))
    return dispatch.drain(store, now, config, channels)


def run_days(
    store: Store,
    start: datetime,
    days: float,
    channel: MemoryChannel,
    step: timedelta = timedelta(minutes=30),
) -> None:
    """Run the engine every `step` from `start` for `days`, as a daemon would."""
    now = start
    while now <= start + timedelta(days=days):
        drain(store, now, channel)
        now += step


def log(store: Store, enrollment_id: int) -> list[tuple[str, int, str]]:
    """(step, attempt, status) of every execution, in order."""
    query = select(Execution.step_id, Execution.attempt, Execution.status).where(
        Execution.enrollment_id == enrollment_id
    )
    with store.begin() as connection:
        return [tuple(row) for row in connection.execute(query.order_by(Execution.id))]


def executions(store: Store, enrollment_id: int) -> list[Any]:
    query = select(Execution.__table__).where(Execution.enrollment_id == enrollment_id)
    with store.begin() as connection:
        return list(connection.execute(query.order_by(Execution.id)))


def enrollment(store: Store, enrollment_id: int) -> Any:
    with store.begin() as connection:
        return connection.execute(
            select(Enrollment.__table__).where(Enrollment.id == enrollment_id)
        ).one()


def lead_of(store: Store, enrollment_id: int) -> Any:
    with store.begin() as connection:
        lead_id = enrollment(store, enrollment_id).lead_id
        return connection.execute(select(Lead.__table__).where(Lead.id == lead_id)).one()


def set_enrollment(store: Store, enrollment_id: int, **values: Any) -> None:
    table = Enrollment.__table__
    with store.begin(immediate=True) as connection:
        connection.execute(table.update().where(table.c.id == enrollment_id).values(**values))
