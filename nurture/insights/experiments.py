"""`nurture stats SEQUENCE --by variant`: each experiment step's variants side by side.

A lead counts for the variant its step ran for it (the first attempt's execution records it),
so only leads the step reached are compared; a conversion is the enrollment ending converted.
One grouped query per sequence; the statistics are nurture.insights.significance's.
"""

from typing import Any

from sqlalchemy import Connection, case, func, select
from sqlmodel import Session

from nurture.insights import significance as sig
from nurture.rules.periods import Window
from nurture.rules.steps import spec_of
from nurture.store.tables import Enrollment, Execution, Lead, Sequence, SequenceVersion

enrollment, execution = Enrollment.__table__, Execution.__table__
DELIVERED = ("delivered", "read")


def variant_figures(
    session: Session,
    sequence_id: int,
    window: Window,
    min_sample: int,
    funnel_id: int | None = None,
) -> list[dict[str, Any]]:
    """Per experiment step (in the current version's order): its variants' figures and verdict
    (of the leads of `funnel_id` only, when given)."""
    connection = session.connection()
    counted = _counts(connection, sequence_id, window, funnel_id)
    order = _variant_order(session, sequence_id)
    steps = sorted(counted, key=lambda step_id: (order.get(step_id, ([], len(order)))[1], step_id))
    return [
        _experiment(step_id, counted[step_id], order.get(step_id, ([], 0))[0], min_sample)
        for step_id in steps
    ]


def _counts(
    connection: Connection, sequence_id: int, window: Window, funnel_id: int | None
) -> dict[str, dict[str, dict[str, int]]]:
    """{step: {variant: {leads, conversions, recorded, delivered, read}}} of first attempts."""
    x, e = execution.c, enrollment.c
    converted = case((e.status == "converted", x.enrollment_id))
    recorded = case((x.delivery_status.is_not(None), x.enrollment_id))
    delivered = case((x.delivery_status.in_(DELIVERED), x.enrollment_id))
    read = case((x.delivery_status == "read", x.enrollment_id))
    query = (
        select(
            x.step_id,
            x.variant,
            func.count(x.enrollment_id.distinct()),
            *(func.count(column.distinct()) for column in (converted, recorded, delivered, read)),
        )
        .join(enrollment, e.id == x.enrollment_id)
        .where(x.sequence_id == sequence_id, x.variant.is_not(None), x.attempt == 1)
        .where(window.of(e.enrolled_at))
        .group_by(x.step_id, x.variant)
    )
    if funnel_id is not None:
        lead = Lead.__table__.c
        query = query.where(x.lead_id.in_(select(lead.id).where(lead.funnel_id == funnel_id)))
    found: dict[str, dict[str, dict[str, int]]] = {}
    names = ("leads", "conversions", "recorded", "delivered", "read")
    for step_id, variant, *numbers in connection.execute(query):
        found.setdefault(step_id, {})[variant] = dict(zip(names, numbers, strict=True))
    return found


def _variant_order(session: Session, sequence_id: int) -> dict[str, tuple[list[str], int]]:
    """Each step's variant ids as the current version lists them (the control first), and the
    step's position."""
    version, row = SequenceVersion.__table__.c, Sequence.__table__.c
    definition = (
        session.connection()
        .execute(
            select(version.definition)
            .join(Sequence.__table__, row.id == version.sequence_id)
            .where(row.id == sequence_id, version.version == row.current_version)
        )
        .scalar_one()
    )
    spec = spec_of(dict(definition))
    return {
        step.key: ([variant.id for variant in getattr(step, "variants", None) or []], index)
        for index, step in enumerate(spec.steps)
    }


def canary_figures(
    row: Sequence, versions: list[dict[str, Any]], window: Window, min_sample: int
) -> dict[str, Any]:
    """The canary against the current version, as an experiment whose control is the current
    one, over the window (by default since the canary started: the same weeks for both)."""
    counted = {
        f"v{figures['version']}": {
            "leads": figures["assigned"],
            "conversions": figures["converted"],
            "recorded": 0,
            "delivered": 0,
            "read": 0,
        }
        for figures in versions
        if figures["version"] in (row.current_version, row.canary_version)
    }
    listed = [f"v{row.current_version}", f"v{row.canary_version}"]
    for label in listed:  # a version no lead reached in the window yet
        counted.setdefault(label, dict.fromkeys(("leads", "conversions", "recorded"), 0))
    compared = _experiment("version", counted, listed, min_sample)
    return compared | {
        "version": row.canary_version,
        "share": row.canary_share,
        "since": window.since,
    }


def _experiment(
    step_id: str, counted: dict[str, dict[str, int]], listed: list[str], min_sample: int
) -> dict[str, Any]:
    ids = [v for v in listed if v in counted] + sorted(v for v in counted if v not in listed)
    arms = [sig.Arm(v, counted[v]["leads"], counted[v]["conversions"]) for v in ids]
    control = arms[0]
    tests = {arm.id: sig.compare(control.counts, arm.counts) for arm in arms[1:]}
    rows = [_variant_row(arm, control, tests.get(arm.id), counted[arm.id]) for arm in arms]
    return {
        "step": step_id,
        "control": control.id,
        "ended": not listed,
        "variants": rows,
        "min_sample": min_sample,
        "alpha": sig.ALPHA / max(len(arms) - 1, 1),
        "verdict": sig.verdict(arms, tests, min_sample) if len(arms) > 1 else "one variant ran",
    }


def _variant_row(
    arm: sig.Arm, control: sig.Arm, test: sig.Test | None, counts: dict[str, int]
) -> dict[str, Any]:
    interval = sig.wilson(arm.conversions, arm.leads)
    row: dict[str, Any] = {
        "variant": arm.id,
        "leads": arm.leads,
        "conversions": arm.conversions,
        "conversion_rate": _round(arm.rate),
        "conversion_interval": _pair(interval),
    }
    if arm is not control:
        difference = None if arm.rate is None or control.rate is None else arm.rate - control.rate
        row |= {
            "difference": _round(difference),
            "difference_interval": _pair(sig.newcombe(control.counts, arm.counts)),
            "p_value": _round(test.p_value if test else None, 6),
            "test": test.name if test else None,
        }
    recorded = counts["recorded"]
    if not recorded:
        return row | {"delivery_recorded": 0, "delivered_rate": None, "read_rate": None}
    return row | {
        "delivery_recorded": recorded,
        "delivered_rate": _round(counts["delivered"] / recorded),
        "read_rate": _round(counts["read"] / recorded),
    }


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def _pair(interval: tuple[float, float] | None) -> list[float] | None:
    return None if interval is None else [round(interval[0], 4), round(interval[1], 4)]
