"""`leads import`: CSV or JSON lines, upserted by external id or email, new leads matched and enrolled.

Every bad row is reported with its row number and the reason while the good rows land;
re-running the same file changes nothing. The work goes in batches: one lookup of existing
leads per batch, the funnel's sequences loaded once, the new rows inserted together. On
Postgres a batch's inserts run on a writer thread while the next batch is parsed (the server
works while the command does); the session is used by one thread at a time.
"""

import gc
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine
from sqlmodel import Session, col, select

from nurture.errors import NurtureError
from nurture.leads import identity
from nurture.leads.import_matching import Matching
from nurture.leads.import_rows import Row, lead_input, phones, read_rows
from nurture.leads.records import (
    LeadRules,
    clean,
    find_funnel,
    lead_row,
    set_values,
    upsert_key,
)
from nurture.leads.when import happened_at
from nurture.rules.contacts import phones_ahead
from nurture.spec.names import slugify
from nurture.store import bulk
from nurture.store import keys as store_keys
from nurture.store.keys import Key
from nurture.store.tables import Enrollment, Funnel, Lead, MatchDecision, Stored

BATCH = 1000
_EMPTY = {"tags": bulk.Dumped("[]"), "fields": bulk.Dumped("{}"), "opted_out": bulk.Dumped("[]")}
Progress = Callable[[int, int], None]
"""Called with (rows done, rows in all) after every batch."""


@dataclass(frozen=True)
class RowError:
    row: int
    message: str


@dataclass
class ImportResult:
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    enrolled: int = 0
    errors: list[RowError] = field(default_factory=list)
    warnings: list[RowError] = field(default_factory=list)
    """Rows that landed with a key left out: another lead holds it (identity, never merged)."""

    def to_dict(self) -> dict[str, Any]:
        counts = {k: v for k, v in vars(self).items() if k not in ("errors", "warnings")}
        return counts | {
            "errors": [vars(error) for error in self.errors],
            "warnings": [vars(warning) for warning in self.warnings],
        }


class Importer:
    """One import run: caches of funnels, their sequences and the leads seen so far."""

    def __init__(
        self, session: Session, now: datetime, rules: LeadRules, at: datetime | None = None
    ) -> None:
        self.session, self.now, self.rules = session, now, rules
        self.at = at or now  # when the rows without a time of their own arrived
        self.funnels = {f.slug: f for f in session.exec(select(Funnel)).all()}
        self.matching = Matching(session, rules.default_zone)
        self.by_key: dict[Key, Lead | dict[str, Any]] = {}  # every key of a lead seen so far
        self.row_keys: dict[int, list[Key]] = {}  # a new lead's keys, by id() of its row
        self.more_keys: list[store_keys.KeyRow] = []  # new keys of stored leads, for the writer
        self.row_given: dict[int, dict[str, Any]] = {}  # a new lead's values, by id() of its row
        self.rows_by_key: dict[str, int] = {}  # the file's row that named each key first
        self.result = ImportResult()
        self.writer: ThreadPoolExecutor | None = None
        self.writing: Future[None] | None = None
        self.reader: Connection | None = None  # Postgres: looks keys up while the writer writes

    def run(self, rows: list[Row], funnel: str | None, progress: Progress | None) -> ImportResult:
        default = find_funnel(self.session, funnel) if funnel else None
        batches = [rows[start : start + BATCH] for start in range(0, len(rows), BATCH)]
        overlap = self.session.get_bind().dialect.name == "postgresql"
        bind = self.session.get_bind()
        with (
            _fewer_collections(),
            phones_ahead([phones(b) for b in batches], self.rules.phone_region) as ready,
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="import") as writer,
            ExitStack() as stack,
        ):
            self.writer = writer if overlap else None
            if overlap and isinstance(bind, Engine):
                self.reader = stack.enter_context(bind.connect())
            for number, batch in enumerate(batches):
                ready(number)
                self._batch(batch, default)
                if progress:
                    progress(min((number + 1) * BATCH, len(rows)), len(rows))
            self._settle()
        self.result.errors.sort(key=lambda error: error.row)
        return self.result

    def _settle(self) -> None:
        """Wait for the batch being written (its error, if any, is raised here)."""
        if self.writing is not None:
            writing, self.writing = self.writing, None
            writing.result()

    def _batch(self, rows: list[Row], default: Funnel | None) -> None:
        self.result.rows += len(rows)
        kinds = self.rules.identity
        parsed = [
            (*item, identity.keys_of(item[1], kinds))  # a row's keys, worked out once
            for row in rows
            if (item := self._parse(row, default)) and self._first(*item[:2])
        ]
        held = self._held([keys for *_, keys in parsed])  # while the previous batch is written
        self._settle()  # the session is free again: the previous batch is in
        self._load_existing(held)
        fresh: list[dict[str, Any]] = []
        for row, values, funnel, at, keys in parsed:
            lead, values = self._existing(row, values, keys)
            if isinstance(lead, Lead):
                self._update(lead, values | {"funnel_id": funnel.id}, at)
                self._more_keys(lead, values, at)
            elif lead is not None:  # a lead of this batch, not inserted yet
                lead.update(values | {"funnel_id": funnel.id})
                self.row_given[id(lead)] |= values
                self._remember(lead, identity.keys_of(values, kinds))
                self.result.updated += 1
            else:
                try:
                    new = lead_row(values, funnel.id, at, self.rules)
                except NurtureError as problem:
                    self._error(row, str(problem))
                    continue
                fresh.append(new)
                self._remember_new(new, keys)
                self.row_given[id(new)] = values  # clean's own dict: nothing else changes it
        if self.writer is None:
            self._insert(fresh)
        else:
            self.writing = self.writer.submit(self._insert, fresh)

    def _parse(self, row: Row, default: Funnel | None) -> tuple[Row, dict, Funnel, datetime] | None:
        try:
            given = lead_input(row.data)
            funnel = self._funnel(given.funnel) if given.funnel else default
            if funnel is None:
                raise NurtureError("no funnel: give --funnel or a funnel column")
            values = clean(given.data, self.rules.phone_region)
            return row, values, funnel, self._arrived(given.at, values)
        except NurtureError as problem:
            self._error(row, str(problem))
            return None

    def _arrived(self, at: tuple[str, str] | None, values: dict[str, Any]) -> datetime:
        """The row's arrival time (its column, read in its lead's zone), else the import's."""
        if at is None:
            return self.at
        zone = values.get("timezone") or self.rules.default_zone
        return happened_at(at[1], zone, self.now, at[0])

    def _first(self, row: Row, values: dict[str, Any]) -> bool:
        """Whether this row is the first of the file with its key (external id, else email): a
        second one would overwrite the first, and every re-run would again."""
        key = upsert_key(values)
        if key is None:
            return True
        first = self.rows_by_key.setdefault(key, row.number)
        if first != row.number:
            what, _, value = key.partition(":")
            message = (
                f"{what.replace('_', ' ')} {value} is on row {first} already: one row per lead"
            )
            self._error(row, message)
        return first == row.number

    def _error(self, row: Row, message: str) -> None:
        self.result.errors.append(RowError(row.number, message))

    def _funnel(self, name: str) -> Funnel:
        found = self.funnels.get(slugify(name))
        if found is None:
            self._settle()  # the writer may be using the session
            found = find_funnel(self.session, name)
        return found

    def _held(self, batch: list[list[Key]]) -> dict[Key, int]:
        """The stored leads' ids the batch's keys not seen so far name (one read). On Postgres
        it is read on a connection of its own while the writer thread writes the previous batch
        on the session's: the keys this import stored are not committed, so that connection
        does not see them, but they are all in `by_key`, which the lookup leaves out; a key a
        concurrent writer takes after the read is met by the claim, as it is when the read is
        the session's."""
        wanted = set(chain.from_iterable(batch)).difference(self.by_key)
        if self.reader is None:
            self._settle()
            return store_keys.owners(self.session.connection(), wanted)
        try:
            return store_keys.owners(self.reader, wanted)
        finally:
            self.reader.rollback()  # no transaction left open between batches

    def _load_existing(self, held: dict[Key, int]) -> None:
        """The stored leads the batch's keys name (one read of leads, when any)."""
        if not held:
            return
        connection = self.session.connection()
        found = select(Lead).where(bulk.among(connection, col(Lead.id), set(held.values())))
        leads = {lead.id: lead for lead in self.session.exec(found)}
        for key, lead_id in held.items():
            if lead_id in leads:
                self.by_key[key] = leads[lead_id]

    def _remember_new(self, row: dict[str, Any], keys: list[Key]) -> None:
        """A new row's keys: none was known (`_existing` found no lead), so all are its own."""
        by_key = self.by_key
        for key in keys:
            by_key.setdefault(key, row)
        self.row_keys[id(row)] = list(keys)

    def _remember(self, lead: Lead | dict[str, Any], keys: list[Key]) -> None:
        for key in keys:
            self.by_key.setdefault(key, lead)
        if isinstance(lead, dict):
            kept = self.row_keys.setdefault(id(lead), [])
            kept += [key for key in keys if key not in kept]

    def _existing(
        self, row: Row, values: dict[str, Any], keys: list[Key]
    ) -> tuple[Lead | dict[str, Any] | None, dict[str, Any]]:
        """The stored lead (or this file's new one) any of the row's keys names, and the values
        to store on it: a key another lead holds is left out, and a warning names the row."""
        if self.by_key.keys().isdisjoint(keys):
            return None, values  # a new lead: most rows of most imports
        named: list[tuple[Key, Lead | dict[str, Any]]] = []
        for key in keys:
            found = self.by_key.get(key)
            if isinstance(found, dict) and "id" in found:  # inserted by an earlier batch
                found = self.by_key[key] = self.session.get_one(Lead, found["id"])
            if found is not None:
                named.append((key, found))
        if not named:
            return None, values
        lead = named[0][1]
        others = [(key, other) for key, other in named if other is not lead]
        for (kind, value), other in others:
            self._warn(row, kind, value, lead, other)
        dropped = {kind for (kind, _), _ in others}
        kept = {key: value for key, value in values.items() if key not in dropped}
        if isinstance(lead, Lead):
            kept = identity.applicable(lead, kept, ())
        elif lead.get("external_id") and kept.get("external_id") != lead["external_id"]:
            kept.pop("external_id", None)  # a second external id: a key of the lead
            self._remember(lead, [("external_id", values["external_id"])])
        return lead, kept

    def _warn(
        self, row: Row, kind: str, value: str, lead: Lead | dict[str, Any], other: Lead | dict
    ) -> None:
        def who(found: Lead | dict[str, Any]) -> str:
            if isinstance(found, Lead):
                return f"lead {found.id} ({found.name})"
            return f"the lead of row {self.rows_by_key.get(str(upsert_key(found)), '?')}"

        message = (
            f"{kind.replace('_', ' ')} {value} is {who(other)}'s: left out, not merged into "
            f"{who(lead)} (nurture leads duplicates lists them, nurture leads merge merges)"
        )
        self.result.warnings.append(RowError(row.number, message))

    def _more_keys(self, lead: Lead, values: dict[str, Any], at: datetime) -> None:
        """The values' keys the stored lead does not hold yet, kept with the next write."""
        new = [
            key for key in identity.keys_of(values, self.rules.identity) if key not in self.by_key
        ]
        self.more_keys += [(kind, value, lead.id, at) for kind, value in new]
        self._remember(lead, new)

    def _update(self, lead: Lead, values: dict[str, Any], at: datetime) -> None:
        if set_values(self.session, lead, values, at, self.rules):
            self.result.updated += 1
        else:
            self.result.unchanged += 1

    def _insert(self, fresh: list[dict[str, Any]]) -> None:
        """Claim the new leads' keys, insert the leads whose keys were all free, their decisions
        and enrollments: a few statements for the batch. A row whose key a concurrent writer
        took meanwhile (Postgres) updates that writer's lead instead."""
        more, self.more_keys = self.more_keys, []
        if not fresh and not more:
            return
        connection = self.session.connection()
        ids = store_keys.lead_ids(connection, len(fresh))
        pop = self.row_keys.pop
        claims = [
            (kind, value, lead_id, row["created_at"])
            for row, lead_id in zip(fresh, ids, strict=True)
            for kind, value in pop(id(row), ())
        ]
        landed = store_keys.claim_looked(connection, claims + more)  # _held read them as free
        lost = set() if len(landed) == len(claims) + len(more) else self._lost(claims, landed)
        store_keys.forget(connection, sorted(lost))
        kept: list[dict[str, Any]] = []
        losers: list[dict[str, Any]] = []
        for row, lead_id in zip(fresh, ids, strict=True):
            row["id"] = lead_id  # a later batch naming this lead again updates the stored one
            (losers if lead_id in lost else kept).append(row)
        for row in kept:
            self.row_given.pop(id(row), None)
        self._insert_new(kept)
        for row in losers:
            self._taken_meanwhile(row)

    @staticmethod
    def _lost(claims: list[store_keys.KeyRow], landed: set[Key]) -> set[int]:
        """The new leads a key of which did not go in (a concurrent writer took it)."""
        return {lead_id for kind, value, lead_id, _ in claims if (kind, value) not in landed}

    def _insert_new(self, fresh: list[dict[str, Any]]) -> None:
        decisions, enrollments = [], []
        self._insert_leads(fresh)
        for row in fresh:
            decision = self.matching.decision(row)
            decisions.append(decision | {"lead_id": row["id"]})
            if decision["sequence_id"] is not None:
                enrollments.append(self.matching.enrollment(decision["sequence_id"], row))
        self._insert_rows(MatchDecision, decisions)
        self._insert_rows(Enrollment, enrollments)
        self.result.created += len(fresh)
        self.result.enrolled += len(enrollments)

    def _taken_meanwhile(self, row: dict[str, Any]) -> None:
        """A new row whose key another writer stored since this import looked: that writer's
        lead, which keeps the row's other keys (a key a third lead holds is left out, and a
        warning names the row, as when the import finds it stored)."""
        values = {key: row[key] for key in identity.KINDS if row.get(key)}
        kinds, at = self.rules.identity, row["created_at"]
        match = identity.identify(self.session, values, kinds)
        assert match.lead is not None, "a key that was not free names its lead"
        lead = match.lead
        given = self.row_given.pop(id(row), {}) | {"funnel_id": row["funnel_id"]}
        row["id"] = lead.id
        if match.clashes:
            number = self.rows_by_key.get(str(upsert_key(row)), 0)
            self.result.warnings.append(
                RowError(number, identity.clash_text(lead.id, match.clashes))
            )
        kept = identity.applicable(lead, given, match.clashes)
        self._update(lead, kept, at)
        if not match.known:
            keys = identity.unclashed(values, match.clashes)
            identity.remember(self.session.connection(), lead.id, keys, at, kinds, new=False)

    def _insert_leads(self, fresh: list[dict[str, Any]]) -> None:
        """Insert new leads, their ids drawn already."""
        for row in fresh:  # most new leads hold no tag, no field, no opt-out: encoded once
            for column, empty in _EMPTY.items():
                if not row[column]:
                    row[column] = empty
        bulk.insert(self.session.connection(), Lead.__table__, fresh)

    def _insert_rows(self, model: type[Stored], rows: list[dict[str, Any]]) -> None:
        bulk.insert(self.session.connection(), model.__table__, rows)


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """The cyclic garbage collector less often while rows are read: an import makes millions of
    small dicts and keeps most of them (the leads seen so far), which the default thresholds
    traverse again and again (a fifth of the import's CPU). What was there before is frozen
    (never traversed); the thresholds come back after."""
    before = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


def import_leads(
    session: Session,
    path: Path,
    now: datetime,
    rules: LeadRules,
    *,
    funnel: str | None = None,
    progress: Progress | None = None,
    at: datetime | None = None,
) -> ImportResult:
    """Import a CSV or JSON-lines file of leads; bad rows are reported, good rows land.

    `now` is the clock; `at`, when the leads arrived (default now): a row's own time (a
    `created_at` column) wins, and their first steps are scheduled from it."""
    return Importer(session, now, rules, at).run(read_rows(path), funnel, progress)
