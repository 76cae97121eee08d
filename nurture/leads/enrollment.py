"""Enrollment: a lead offered to its funnel's sequences, the decision recorded, the first step scheduled."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from nurture.rules import experiments
from nurture.rules.matching import Candidate, Decision, LeadFacts, Verdict, choose
from nurture.rules.schedule import step_due
from nurture.rules.steps import LIVE, spec_of
from nurture.spec.models import SequenceSpec
from nurture.spec.steps import AnyStep
from nurture.store import decisions
from nurture.store.tables import (
    Enrollment,
    Funnel,
    FunnelAssignment,
    Lead,
    MatchDecision,
    Sequence,
    SequenceVersion,
)

OPEN = (*LIVE, "unknown")
"""Statuses that block re-entry under `after_exit`: the lead has not left the sequence."""


@dataclass(frozen=True)
class Canary:
    """A version getting a share of new enrollments (`apply --canary`)."""

    version: int
    share: float
    spec: SequenceSpec


@dataclass(frozen=True)
class Offer:
    """A sequence a funnel offers: its row, current version and parsed spec."""

    sequence_id: int
    version: int
    spec: SequenceSpec
    candidate: Candidate
    weight: int | None = None
    """Its weight in the funnel's split (None: not in a split)."""
    canary: Canary | None = None
    split: str | None = None
    """The funnel's split experiment (`split:FUNNEL`), when it has one."""

    @property
    def personal(self) -> bool:
        """Whether its enrollment depends on the lead (a canary, variants): not shared."""
        return self.canary is not None or experiments.has_variants(self.spec)


Specs = dict[tuple[int, int], SequenceSpec]
"""Parsed sequence versions by (sequence id, version), kept by a caller for one store: a
version never changes, so a webhook's batches parse each once (parsing costs milliseconds)."""


def funnel_offers(session: Session, funnel_id: int, specs: Specs | None = None) -> list[Offer]:
    """Every live sequence assigned to the funnel (inactive ones too: the decision shows them)."""
    rows = session.exec(
        select(Sequence, FunnelAssignment.weight, Funnel.slug)
        .join(FunnelAssignment, col(FunnelAssignment.sequence_id) == col(Sequence.id))
        .join(Funnel, col(Funnel.id) == col(FunnelAssignment.funnel_id))
        .where(FunnelAssignment.funnel_id == funnel_id, col(Sequence.deleted_at).is_(None))
        .order_by(Sequence.name)
    ).all()
    known = {} if specs is None else specs
    split = any(weight for _, weight, _ in rows)
    return [
        _offer(session, row, known, weight, experiments.funnel_experiment(slug) if split else None)
        for row, weight, slug in rows
    ]


def _spec(session: Session, sequence_id: int, version: int, specs: Specs) -> SequenceSpec:
    key = (sequence_id, version)
    if (spec := specs.get(key)) is None:
        query = select(SequenceVersion.definition).where(
            SequenceVersion.sequence_id == sequence_id, SequenceVersion.version == version
        )
        spec = specs[key] = spec_of(dict(session.exec(query).one()))
    return spec


def _offer(
    session: Session,
    row: Sequence,
    specs: Specs,
    weight: int | None = None,
    split: str | None = None,
) -> Offer:
    spec = _spec(session, row.id, row.current_version, specs)
    candidate = Candidate(row.name, row.priority, row.active, spec.trigger_conditions)
    canary = None
    if row.canary_version is not None and row.canary_share:
        canary_spec = _spec(session, row.id, row.canary_version, specs)
        canary = Canary(row.canary_version, row.canary_share, canary_spec)
    return Offer(row.id, row.current_version, spec, candidate, weight, canary, split)


def split_offers(offers: list[Offer], lead_id: int) -> tuple[list[Offer], str | None]:
    """The offers a lead sees when its funnel splits new leads: the split's sequence it drew
    (by weight, sticky) and the sequences outside the split; and the draw, said plainly."""
    arms = [(offer.candidate.name, offer.weight) for offer in offers if offer.weight]
    split = next((offer.split for offer in offers if offer.split), None)
    if not arms or split is None:
        return offers, None
    drawn = experiments.arm(lead_id, split, arms)
    total = sum(weight for _, weight in arms)
    weight = dict(arms)[drawn]
    kept = [offer for offer in offers if not offer.weight or offer.candidate.name == drawn]
    return kept, f"funnel split: {drawn} ({weight} of {total})"


def for_lead(
    row: dict[str, Any], lead_id: int, lead_zone: str | None, offer: Offer, default_zone: str
) -> dict[str, Any]:
    """A fresh enrollment's row shared by leads of one zone, made this lead's: its own draws
    when the offer has a canary or variants."""
    if not offer.personal:
        return row | {"lead_id": lead_id}
    return new_enrollment(lead_id, lead_zone, offer, row["enrolled_at"], default_zone)


def first_step(spec: SequenceSpec) -> AnyStep:
    """The first active step (the first step when none is active)."""
    return next((step for step in spec.steps if step.active), spec.steps[0])


def decide(
    offers: list[Offer], lead: LeadFacts, lead_id: int | None = None
) -> tuple[Decision, Offer | None]:
    """The matching decision and the winning offer (a funnel's split draws by `lead_id`)."""
    drawn = None
    if lead_id is not None:
        offers, drawn = split_offers(offers, lead_id)
    decision = choose([offer.candidate for offer in offers], lead)
    if drawn is not None:
        decision = Decision(decision.verdicts, decision.winner, f"{decision.reason}; {drawn}")
    winner = next((o for o in offers if o.candidate is decision.winner), None)
    return decision, winner


def candidates_json(decision: Decision, offers: list[Offer]) -> list[dict[str, Any]]:
    """Every candidate's verdict, as stored in MatchDecision.candidates."""
    by_candidate = {id(offer.candidate): offer for offer in offers}
    return [_verdict_json(v, by_candidate[id(v.candidate)]) for v in decision.verdicts]


def _verdict_json(verdict: Verdict, offer: Offer) -> dict[str, Any]:
    return {
        "sequence": verdict.candidate.name,
        "sequence_id": offer.sequence_id,
        "version": offer.version,
        "priority": verdict.candidate.priority,
        "active": verdict.candidate.active,
        "conditions": verdict.candidate.conditions.count(),
        "matches": verdict.matches,
        "checks": [vars(check) for check in verdict.checks],
    }


def blocked_by_re_entry(session: Session, lead_id: int, offer: Offer) -> str | None:
    """Why the sequence's re-entry policy keeps the lead out, or None."""
    policy = offer.spec.re_entry
    if policy == "always":
        return None
    query = select(Enrollment.status).where(
        Enrollment.lead_id == lead_id, Enrollment.sequence_id == offer.sequence_id
    )
    statuses = set(session.exec(query).all())
    if policy == "never" and statuses:
        return f"already enrolled in {offer.spec.name} before (re_entry: never)"
    if policy == "after_exit" and statuses & set(OPEN):
        return f"still enrolled in {offer.spec.name} (re_entry: after_exit)"
    return None


def new_enrollment(
    lead_id: int, lead_zone: str | None, offer: Offer, now: datetime, default_zone: str
) -> dict[str, Any]:
    """The row of a fresh enrollment: the first step, due after its delay and the send window;
    the version (a canary's share) and the variants the lead draws."""
    version, spec = offer.version, offer.spec
    canary = offer.canary
    if canary and experiments.in_canary(lead_id, spec.slug, canary.version, canary.share):
        version, spec = canary.version, canary.spec
    step = first_step(spec)
    slot = step_due(now, step, spec, lead_zone, default_zone)
    return {
        "lead_id": lead_id,
        "sequence_id": offer.sequence_id,
        "version": version,
        "variants": experiments.assign_variants(lead_id, spec, version),
        "status": "active",
        "step_id": step.id,
        "next_run_at": slot.at,
        "attempts": 0,
        "enrolled_at": now,
        "updated_at": now,
    }


def enroll(
    session: Session,
    lead: Lead,
    now: datetime,
    default_zone: str,
    offers: list[Offer] | None = None,
) -> Decision:
    """Match the lead in its funnel, record why, and enroll it in the winner (re-entry allowing)."""
    if lead.funnel_id is None:
        offers = []
    elif offers is None:
        offers = funnel_offers(session, lead.funnel_id)
    decision, winner = decide(offers, lead, lead.id)
    blocked = winner and blocked_by_re_entry(session, lead.id, winner)
    if blocked:
        decision, winner = Decision(decision.verdicts, None, blocked), None
    session.add(
        MatchDecision(
            lead_id=lead.id,
            funnel_id=lead.funnel_id,
            sequence_id=winner.sequence_id if winner else None,
            reason=decision.reason,
            candidates_id=decisions.candidates_id(
                session.connection(), candidates_json(decision, offers)
            ),
            decided_at=now,
        )
    )
    if winner:
        session.add(Enrollment(**new_enrollment(lead.id, lead.timezone, winner, now, default_zone)))
    session.flush()
    return decision


def latest_decision(session: Session, lead_id: int) -> MatchDecision | None:
    """The lead's latest match decision (what `enroll` recorded last), or None."""
    return session.exec(
        select(MatchDecision)
        .where(MatchDecision.lead_id == lead_id)
        .order_by(col(MatchDecision.id).desc())
    ).first()


def stop_enrollments_on_conversion(session: Session, lead: Lead, now: datetime) -> list[int]:
    """Stop every live enrollment of the lead whose version stops on conversion; their ids."""
    return _stop_where(
        session,
        lead,
        now,
        "stop_on_conversion",
        True,
        status="converted",
        exit_reason="the lead converted",
    )


def stop_enrollments_on_reply(session: Session, lead: Lead, now: datetime) -> list[int]:
    """Stop every live enrollment of the lead whose version stops on reply; their ids."""
    return _stop_where(
        session, lead, now, "stop_on_reply", False, status="stopped", exit_reason="the lead replied"
    )


def stopped_text(ids: list[int], setting: str) -> str:
    """`stopped 2 enrollments (stop_on_reply)`, for a command's or a dry run's output."""
    return f"stopped {len(ids)} enrollment{'s' if len(ids) != 1 else ''} ({setting})"


def _stop_where(
    session: Session, lead: Lead, now: datetime, setting: str, default: bool, **values: Any
) -> list[int]:
    """End the lead's live enrollments whose sequence version has `setting` on."""
    rows = session.exec(
        select(Enrollment.id, SequenceVersion.definition)
        .join(
            SequenceVersion,
            (col(SequenceVersion.sequence_id) == col(Enrollment.sequence_id))
            & (SequenceVersion.version == Enrollment.version),
        )
        .where(Enrollment.lead_id == lead.id, col(Enrollment.status).in_(LIVE))
    ).all()
    stopped = [row_id for row_id, definition in rows if definition.get(setting, default)]
    if stopped:
        _end(session, col(Enrollment.id).in_(stopped), now, **values)
    return stopped


def stop_enrollments_of(session: Session, sequence_id: int, now: datetime) -> int:
    """Stop the live enrollments of a deleted sequence; how many."""
    return _end(
        session,
        Enrollment.sequence_id == sequence_id,
        now,
        status="stopped",
        exit_reason="the sequence was deleted",
    )


def _end(session: Session, which: Any, now: datetime, **values: Any) -> int:
    """End the live enrollments `which` selects (a lease in flight loses: its completion is
    guarded by the `running` status); how many."""
    result = session.exec(
        update(Enrollment)
        .where(which, col(Enrollment.status).in_(LIVE))
        .values(
            finished_at=now,
            updated_at=now,
            next_run_at=None,
            lease_owner=None,
            lease_expires_at=None,
            **values,
        )
    )
    return result.rowcount
