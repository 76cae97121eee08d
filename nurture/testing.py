"""A kit for your own tests (and the benchmarks): the memory channel, a store with your
sequences applied, a dry run of a lead through a sequence, many leads enrolled at once.

    from nurture.testing import dry_run

    def test_a_warm_lead_hears_from_us_twice_in_the_first_days():
        result = dry_run("sequences/warm-lead-welcome.yaml", {"name": "Ana", "score": 45})
        assert [(m.day, m.step) for m in result.messages][:2] == [(0, "welcome-message"), ...]

The dry run is `nurture test`'s: the real engine on a simulated clock, an in-memory store and
the memory channel; nothing is sent and no database of yours is opened.
"""

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlmodel import col

from nurture.channels.memory import MemoryChannel
from nurture.errors import ProjectNotFound
from nurture.insights.timeline import Row
from nurture.leads.records import LeadRules
from nurture.project.layout import Project as ProjectFiles
from nurture.settings import PROJECT_FILE, Settings, find_project, load_settings
from nurture.settings.sections import CoachSettings
from nurture.simulate.cases import DEFAULT_START
from nurture.simulate.dryrun import DryRun, Project, Scenario, lead_input, memory_store
from nurture.simulate.dryrun import dry_run as simulate
from nurture.spec.cases import CaseLead
from nurture.spec.durations import parse_duration
from nurture.spec.files import SEQUENCE_SUFFIXES, SequenceFile, load_sequences
from nurture.spec.times import check_span
from nurture.store import bulk
from nurture.store.db import Store
from nurture.store.tables import Enrollment, Lead, Sequence, SequenceVersion

__all__ = [
    "DryRun",
    "DryRunResult",
    "MemoryChannel",
    "Message",
    "Project",
    "dry_run",
    "enroll_many",
    "load_project",
    "project_store",
]

Source = str | Path | Iterable[str | Path]
"""A project directory (with nurture.toml), a folder of sequence files, one file, or a list."""


def load_project(source: Source = ".") -> Project:
    """The sequences and settings a dry run needs; SpecError lists every invalid file."""
    paths = [Path(source)] if isinstance(source, str | Path) else [Path(p) for p in source]
    if len(paths) == 1 and (paths[0] / PROJECT_FILE).is_file():
        settings = load_settings(paths[0])
        files = ProjectFiles.from_settings(settings).files()
        return _project(files, settings.project_dir, settings)
    enclosing = _enclosing_settings(paths[0] if paths else Path.cwd())
    coach = enclosing.coach if enclosing else CoachSettings()
    files = load_sequences(paths, coach_keys=frozenset(coach.model_dump()))
    return _project(files, enclosing.project_dir if enclosing else Path.cwd(), enclosing)


def _project(files: list[SequenceFile], root: Path, settings: Settings | None) -> Project:
    if settings is None:
        return Project(files, root, LeadRules(), CoachSettings().model_dump())
    rules, coach = LeadRules.from_settings(settings), settings.coach.model_dump()
    return Project(files, root, rules, coach, caps=settings.caps.rules())


def _enclosing_settings(path: Path) -> Settings | None:
    """The settings of the project the files are in (time zone, coach), if they are in one."""
    try:
        return load_settings(find_project(path if path.is_dir() else path.parent))
    except ProjectNotFound:
        return None


@contextmanager
def project_store(source: Source | Project = ".") -> Iterator[Store]:
    """A fresh SQLite store in memory with the sequences applied (as `nurture apply` does)."""
    project = source if isinstance(source, Project) else load_project(source)
    with memory_store(project.store_image()) as store:
        yield store


@dataclass(frozen=True)
class Message:
    """One message the lead received: on which day (0: the start's, in the lead's time zone)."""

    day: int
    at: datetime
    step: str
    channel: str
    to: str
    body: str
    subject: str | None = None
    template: dict[str, Any] | None = None


@dataclass(frozen=True)
class DryRunResult:
    """What the lead received, how the enrollment ended, and the whole dry run (`run`)."""

    run: DryRun
    start: datetime

    @property
    def messages(self) -> list[Message]:
        """Every message sent, in order (a retried send once, when it went out)."""
        zone = ZoneInfo(self.run.zone)
        first = self.start.astimezone(zone).date()
        return [
            _message(row, zone, first)
            for row in self.run.rows
            if row.kind == "step" and row.outcome == "sent" and row.message
        ]

    @property
    def status(self) -> str | None:
        """How the enrollment ended (completed, converted, stopped, failed) or `active`."""
        return self.run.status

    @property
    def lead(self) -> dict[str, Any]:
        """The lead at the end: status, score, tags, opted_out..."""
        return self.run.lead


def _message(row: Row, zone: ZoneInfo, first: date) -> Message:
    sent = row.message or {}
    return Message(
        day=(row.at.astimezone(zone).date() - first).days,
        at=row.at,
        step=row.step or "",
        channel=sent["channel"],
        to=sent["recipient"],
        body=sent.get("body", ""),
        subject=sent.get("subject"),
        template=sent.get("template"),
    )


def dry_run(
    sequence: str | Path | None,
    lead: Mapping[str, Any] | CaseLead | None = None,
    *,
    project: Source | Project | None = None,
    funnel: str | None = None,
    events: Iterable[str] = (),
    until: timedelta | str | None = None,
    start: datetime = DEFAULT_START,
) -> DryRunResult:
    """Run a lead through a sequence (a file, or a name in `project`) as `nurture test` does.

    `lead` takes a test case's keys (name, score, status, tags, timezone, fields...); `events`
    the `--event` texts (`+2d convert`); `until` a span (`3d`); `start` defaults to a Monday,
    2025-01-06 09:00 UTC, so a test gives the same result every day. With `sequence` None the
    `funnel`'s matching chooses, as `nurture leads add` does.
    """
    name, project = _resolve(sequence, project)
    person = lead if isinstance(lead, CaseLead) else CaseLead.model_validate(dict(lead or {}))
    span = check_span(parse_duration(until)) if isinstance(until, str) else until
    scenario = Scenario(lead_input(person), start, name, funnel, tuple(events), span)
    return DryRunResult(simulate(project, scenario), start)


def _resolve(
    sequence: str | Path | None, project: Source | Project | None
) -> tuple[str | None, Project]:
    """A sequence file runs in the project around it; a name, in `project` (default: here)."""
    is_file = isinstance(sequence, Path) or Path(sequence or "").suffix.lower() in SEQUENCE_SUFFIXES
    file = Path(sequence) if is_file and sequence is not None else None
    if not isinstance(project, Project):
        project = load_project(project if project is not None else file or ".")
    if file is None:
        return (None if sequence is None else str(sequence)), project
    return _name_of(project, file), project


def _name_of(project: Project, path: Path) -> str:
    """The name of the sequence in this file (it is one of the project's, or the only one)."""
    for file in project.files:
        if file.path.resolve() == path.resolve():
            return file.spec.name
    return load_sequences([path])[0].spec.name


CHUNK = 10_000  # rows per statement: memory stays flat at 1,000,000


def enroll_many(
    store: Store,
    count: int,
    due: datetime,
    sequence: str | None = None,
    *,
    spacing: timedelta = timedelta(0),
) -> None:
    """`count` new leads in a sequence (the only one, or the one with this slug), due at `due`
    (the n-th at `due + n * spacing`)."""
    with store.begin(immediate=True) as connection:
        query = select(col(Sequence.id), col(Sequence.current_version))
        row = connection.execute(
            query.where(col(Sequence.slug) == sequence) if sequence else query
        ).one()
        first_step = connection.execute(
            select(col(SequenceVersion.definition)).where(
                SequenceVersion.sequence_id == row.id,
                SequenceVersion.version == row.current_version,
            )
        ).scalar_one()["steps"][0]["id"]
        for offset in range(0, count, CHUNK):
            numbers = range(offset, min(offset + CHUNK, count))
            ids = bulk.insert_ids(connection, Lead.__table__, [_lead(n, due) for n in numbers])
            enrollments = [
                {
                    "lead_id": lead_id,
                    "sequence_id": row.id,
                    "version": row.current_version,
                    "status": "active",
                    "step_id": first_step,
                    "next_run_at": due + n * spacing,
                    "attempts": 0,
                    "enrolled_at": due,
                    "updated_at": due,
                }
                for n, lead_id in zip(numbers, ids, strict=True)
            ]
            bulk.insert(connection, Enrollment.__table__, enrollments)


def _lead(number: int, now: datetime) -> dict:
    return {
        "name": f"Lead {number + 1}",
        "first_name": "Lead",
        "phone": "+15555550100",
        "email": f"lead{number + 1}@example.com",
        "score": 0,
        "tags": [],
        "fields": {},
        "opted_out": [],
        "created_at": now,
        "updated_at": now,
    }
