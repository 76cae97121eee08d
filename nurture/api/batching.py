"""Group commit for the funnel webhook: the requests that wait together share one transaction.

One writer thread takes every lead queued since its last batch, stores them set-based
(nurture.leads.arrivals) and commits once, so a burst costs one fsync, not one per lead. If the
batch fails as a whole (a conflict with another process), each lead is retried alone.
"""

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError, OperationalError

from nurture.api.deps import Context
from nurture.errors import KeyReused, NurtureError
from nurture.leads import ingest
from nurture.leads.arrivals import Arrival, Kept, arrive_many
from nurture.leads.identity import Clash

log = logging.getLogger("nurture.api")
BATCH = 500
FAILED = "nurture.intake.failed"
"""The scope key under which the route finds the error the webhook's lean path got from its
batch (nurture.api.intake): raised there after the route's own checks, never stored twice."""


@dataclass(frozen=True)
class Pending:
    arrival: Arrival
    key: str | None


Answer = dict[str, Any] | Exception


def answer(outcome: ingest.Outcome) -> dict[str, Any]:
    """The webhook's JSON answer for an outcome (also what an idempotency key keeps)."""
    first = outcome.step_id and {"stepId": outcome.step_id, "dueAt": _iso(outcome.due_at)}
    return {
        "leadId": outcome.lead_id,
        "created": outcome.created,
        "replayed": outcome.replayed,
        "sequence": outcome.sequence,
        "reason": outcome.reason,
        "firstStep": first or None,
        "clashes": [_clash(clash) for clash in outcome.clashes],
    }


DEADLOCK = "40P01"
"""Postgres: this transaction and another (an import claiming the same new keys) waited for
each other; the server ended this one. Retried, it finds what the other stored."""


def _deadlock(error: OperationalError) -> bool:
    return getattr(error.orig, "sqlstate", None) == DEADLOCK


def _clash(clash: Clash) -> dict[str, Any]:
    return {"kind": clash.kind, "value": clash.value, "leadId": clash.lead_id, "name": clash.name}


def _iso(at: datetime | None) -> str | None:
    return at.isoformat().replace("+00:00", "Z") if at else None


class Batcher:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nurture-ingest")
        self.queue: asyncio.Queue[tuple[Pending, asyncio.Future[Answer]]] | None = None
        self.task: asyncio.Task[None] | None = None
        self.kept = Kept()

    async def start(self) -> None:
        self.queue = asyncio.Queue()
        self.task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
        self.writer.shutdown(wait=True)

    async def submit(self, pending: Pending) -> dict[str, Any]:
        """Queue the lead; its answer once its batch is committed (or its error, raised)."""
        assert self.queue is not None, "the batcher starts with the app (lifespan)"
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        await self.queue.put((pending, future))
        result = await future
        if isinstance(result, Exception):
            raise result
        return result

    async def _run(self) -> None:
        assert self.queue is not None
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self.queue.get()]
            while len(batch) < BATCH and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            items = [pending for pending, _ in batch]
            results = await loop.run_in_executor(self.writer, self.store_batch, items)
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)

    def store_batch(self, items: list[Pending]) -> list[Answer]:
        """Each lead's answer or error; on a clash with another process, each lead alone."""
        try:
            return self._store(items)
        except (IntegrityError, OperationalError) as clash:
            if isinstance(clash, OperationalError) and not _deadlock(clash):
                return self._failed(items, clash)
            if len(items) > 1:
                return [answer for item in items for answer in self.store_batch([item])]
            return self._guarded(items)  # the row that clashed is there now: this sees it
        except Exception as error:
            return self._failed(items, error)

    def _guarded(self, items: list[Pending]) -> list[Answer]:
        try:
            return self._store(items)
        except Exception as error:
            return self._failed(items, error)

    def _failed(self, items: list[Pending], error: Exception) -> list[Answer]:
        """Every waiting request gets the error (a 503 for the store, else a logged 500)."""
        if not isinstance(error, NurtureError):
            log.error("storing a batch of %d leads failed", len(items), exc_info=error)
        return [error] * len(items)

    def _store(self, items: list[Pending]) -> list[Answer]:
        now = datetime.now(UTC)
        digests = [item.arrival.digest() if item.key else "" for item in items]
        shared = self.kept.for_batch()
        with self.ctx.store.session(immediate=True) as session:
            kept = ingest.recall_many(session, {item.key for item in items if item.key})
            results: list[Answer | None] = [None] * len(items)
            first_of: dict[str, int] = {}
            todo, copies = [], []
            for index, key in enumerate(item.key for item in items):
                if key in kept:
                    results[index] = ingest.replay(kept[key], digests[index])
                elif key in first_of:  # the same key twice in one batch: the second replays
                    copies.append((index, first_of[key]))
                else:
                    first_of |= {key: index} if key else {}
                    todo.append(index)
            arrivals = [items[i].arrival for i in todo]
            outcomes = arrive_many(session, arrivals, now, self.ctx.rules, shared)
            remembered: list[tuple[str, str, int, dict[str, Any]]] = []
            for index, outcome in zip(todo, outcomes, strict=True):
                if isinstance(outcome, Exception):
                    results[index] = outcome
                    continue
                results[index] = answered = answer(outcome)
                if key := items[index].key:
                    remembered.append((key, digests[index], outcome.lead_id, answered))
            ingest.remember_many(session, remembered, now)
        self.kept = shared  # committed: its candidate lists are stored for good
        for index, source in copies:
            found, key = results[source], items[index].key
            if digests[index] != digests[source] and key:  # a copy always has its key
                found = KeyReused(key)
            results[index] = found | {"replayed": True} if isinstance(found, dict) else found
        return [result for result in results if result is not None]  # every slot is filled
