"""The dashboard's views of the store: every sequence with its figures, the funnel map.

The figures are `nurture stats`' own (stats.sequence_figures, over all time); the rest is one
query per table, whatever the number of sequences.
"""

from collections.abc import Collection
from typing import Any

from sqlmodel import Session, col, select

from nurture.insights import stats
from nurture.leads.enrollment import Offer, funnel_offers
from nurture.rules.periods import Window
from nurture.spec.categories import category_named
from nurture.spec.files import SequenceFile
from nurture.spec.lint import lint
from nurture.store.tables import Funnel, FunnelAssignment, Sequence

FIGURES = {"assigned": "assigned", "active": "active_enrollments", "completed": "completed"}
FIGURES |= {"converted": "converted"}
"""`nurture stats`' figures by the names the page gives them (`active` is the sequence's flag)."""


def sequence_rows(session: Session) -> list[dict[str, Any]]:
    """Each live sequence, by name: category, active, priority, funnels, figures, last change."""
    query = select(Sequence).where(col(Sequence.deleted_at).is_(None)).order_by(Sequence.name)
    funnels = funnels_by_sequence(session)
    figures = {f["sequence"]: f for f in stats.sequence_figures(session, Window())}
    return [
        _row(row, funnels.get(row.id, []), figures.get(row.name, {})) for row in session.exec(query)
    ]


def filtered(
    rows: list[dict[str, Any]], category: str | None = None, search: str | None = None
) -> list[dict[str, Any]]:
    """The rows of one category (any of its spellings) whose name or slug holds `search`."""
    wanted = category_named(category, "category") if category else None
    text = (search or "").strip().casefold()
    return [
        row
        for row in rows
        if (wanted is None or row["category"] == wanted)
        and (not text or text in f"{row['name']} {row['slug']} {row['description']}".casefold())
    ]


def _row(row: Sequence, funnels: list[str], figures: dict[str, Any]) -> dict[str, Any]:
    keep = (
        "id",
        "name",
        "slug",
        "description",
        "category",
        "active",
        "priority",
        "current_version",
    )
    data = {key: getattr(row, key) for key in keep}
    data |= {shown: figures.get(key, 0) for key, shown in FIGURES.items()}
    return data | {
        "conversion_rate": figures.get("conversion_rate"),
        "funnels": funnels,
        "managed_by": "file" if row.source_path else "store",
        "path": row.source_path,
        "updated_at": row.updated_at,
    }


def funnels_by_sequence(session: Session) -> dict[int, list[str]]:
    """The names of the funnels offering each sequence, by sequence id."""
    pairs = session.exec(
        select(FunnelAssignment.sequence_id, Funnel.name)
        .join(Funnel, col(Funnel.id) == col(FunnelAssignment.funnel_id))
        .order_by(Funnel.name)
    ).all()
    found: dict[int, list[str]] = {}
    for sequence_id, name in pairs:
        found.setdefault(sequence_id, []).append(name)
    return found


def funnel_map(session: Session) -> list[dict[str, Any]]:
    """Each funnel with the live sequences it offers in the order matching tries them (priority,
    then the most conditions, then name), and where its leads went (match decisions)."""
    figures = {row["funnel"]: row for row in stats.funnel_figures(session, Window())}
    out = []
    for funnel in session.exec(select(Funnel).order_by(Funnel.name)):
        offers = sorted(funnel_offers(session, funnel.id), key=_matching_order)
        shown = figures.get(funnel.name, {})
        out.append(
            {
                "id": funnel.id,
                "name": funnel.name,
                "slug": funnel.slug,
                "sequences": [_offer(offer) for offer in offers],
                "leads_in": shown.get("leads_in", 0),
                "by_sequence": shown.get("by_sequence", []),
                "unmatched": shown.get("unmatched", 0),
                "typical": _typical(shown, offers),
            }
        )
    return out


def _matching_order(offer: Offer) -> tuple[int, int, str]:
    spec = offer.spec
    return (-spec.priority, -spec.trigger_conditions.count(), spec.name.casefold())


def _offer(offer: Offer) -> dict[str, Any]:
    spec = offer.spec
    return {
        "name": spec.name,
        "slug": spec.slug,
        "priority": spec.priority,
        "active": offer.candidate.active,
        "conditions": spec.trigger_conditions.count(),
    }


def _typical(figures: dict[str, Any], offers: list[Offer]) -> str | None:
    """The sequence most of the funnel's leads got; before any lead, the first active one
    that takes every lead (no trigger condition)."""
    if figures.get("by_sequence"):
        return figures["by_sequence"][0]["sequence"]
    open_to_all = [
        o for o in offers if o.candidate.active and not o.spec.trigger_conditions.count()
    ]
    return open_to_all[0].spec.name if open_to_all else None


def coverage_gaps(files: list[SequenceFile], ignore: Collection[str] = ()) -> dict[str, list[str]]:
    """The coverage warnings `nurture validate` gives, by funnel slug, as it words them."""
    found: dict[str, list[str]] = {}
    for diagnostic in lint(files, ignore):
        if diagnostic.message.endswith("[coverage]"):
            slug = diagnostic.message.removeprefix("funnel ").partition(":")[0]
            found.setdefault(slug, []).append(str(diagnostic))
    return found
