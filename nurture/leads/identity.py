"""Identity: a lead is one person, known by every external id, email and phone it came with.

A lead arriving with any key an existing lead holds (`[leads] identity`, in order) is that
lead; a new external id of it is kept as one more key. When its keys name two leads (the
email of one, the phone of another), the first key's lead wins and the other key is left
out and reported, never merged silently: `nurture leads merge` does that, when asked.
"""

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection
from sqlmodel import Session, col, select

from nurture.store import keys as store_keys
from nurture.store.keys import Key
from nurture.store.tables import Lead

KINDS = ("external_id", "email", "phone")


def keys_of(values: dict[str, Any], kinds: Iterable[str] = KINDS) -> list[Key]:
    """The keys the values carry, among `kinds`, in their order."""
    return [(kind, values[kind]) for kind in kinds if values.get(kind)]


def lock_names(values: dict[str, Any]) -> list[str]:
    """The advisory lock names of every key the values carry (writers of a key take turns)."""
    return [f"lead {kind}:{value}" for kind, value in keys_of(values)]


def _what(kind: str) -> str:
    return kind.replace("_", " ")


@dataclass(frozen=True)
class Clash:
    """A key of an arriving lead that another lead holds: reported, and left out."""

    kind: str
    value: str
    lead_id: int
    name: str

    def __str__(self) -> str:
        return f"{_what(self.kind)} {self.value} is lead {self.lead_id}'s ({self.name})"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def clash_text(kept: int, clashes: Sequence[Clash]) -> str:
    """`phone +1555 is lead 4's (Bo): not merged into lead 3 (nurture leads merge 3 4 ...)`."""
    said = "; ".join(map(str, clashes))
    others = " ".join(str(clash.lead_id) for clash in clashes)
    return (
        f"{said}: left out, not merged into lead {kept} (if they are one person: "
        f"nurture leads merge {kept} {others})"
    )


@dataclass(frozen=True)
class Match:
    """The stored lead an arrival is (None: a new one), and its keys other leads hold."""

    lead: Lead | None
    clashes: tuple[Clash, ...] = ()
    known: bool = False
    """Every key the values carry is the lead's already (nothing new to remember)."""


def identify(session: Session, values: dict[str, Any], kinds: Sequence[str]) -> Match:
    """The lead the values name by any of `kinds` (the first kind's lead when they disagree)."""
    wanted = keys_of(values, kinds)
    if not wanted:
        return Match(None)
    held = store_keys.owners(session.connection(), wanted)
    ids = list(dict.fromkeys(held[key] for key in wanted if key in held))
    if not ids:
        return Match(None)
    found = {lead.id: lead for lead in session.exec(select(Lead).where(col(Lead.id).in_(ids)))}
    ids = [lead_id for lead_id in ids if lead_id in found]
    if not ids:
        return Match(None)
    lead = found[ids[0]]
    clashes = tuple(
        Clash(kind, value, held[(kind, value)], found[held[(kind, value)]].name)
        for kind, value in wanted
        if held.get((kind, value), lead.id) != lead.id and held[(kind, value)] in found
    )
    known = all(held.get(key) == lead.id for key in wanted)
    return Match(lead, clashes, known)


def applicable(lead: Lead | None, values: dict[str, Any], clashes: Sequence[Clash]) -> dict:
    """The values to store on the lead: a clashing key's value is left out, and a second
    external id is kept as a key only (the lead's own stays the one it came with)."""
    kept = unclashed(values, clashes)
    if lead is not None and lead.external_id and kept.get("external_id") != lead.external_id:
        kept.pop("external_id", None)
    return kept


def unclashed(values: dict[str, Any], clashes: Sequence[Clash]) -> dict[str, Any]:
    """The values without the keys other leads hold."""
    dropped = {clash.kind for clash in clashes}
    return {key: value for key, value in values.items() if key not in dropped}


def remember(
    connection: Connection,
    lead_id: int,
    values: dict[str, Any],
    now: datetime,
    kinds: Sequence[str],
    *,
    new: bool,
) -> None:
    """Keep the values' keys as the lead's. A new lead's keys go in as they are (IntegrityError
    when a concurrent writer took one: retried, that writer's lead is found); a known lead's
    keys that another lead took meanwhile are left to it."""
    rows = store_keys.rows_for(lead_id, keys_of(values, kinds), now)
    if new:
        store_keys.insert(connection, rows)
    else:
        store_keys.claim(connection, rows)


def holders(session: Session, wanted: Sequence[Key]) -> list[Lead]:
    """Every lead holding one of the keys, or whose columns hold it (duplicates stored before
    identity, or before a merge): by id."""
    held = store_keys.owners(session.connection(), wanted)
    ids = set(held.values())
    for kind, value in wanted:
        column = getattr(Lead, kind)
        ids |= set(session.exec(select(Lead.id).where(column == value)))
    if not ids:
        return []
    return list(session.exec(select(Lead).where(col(Lead.id).in_(ids)).order_by(col(Lead.id))))
