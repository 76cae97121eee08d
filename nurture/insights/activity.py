"""What changed, newest first: each sequence version applied, each sequence deleted, and each
change made on the dashboard with who made it."""

from typing import Any

from sqlmodel import Session, col, select

from nurture.store import activity
from nurture.store.tables import Sequence, SequenceVersion


def changes(session: Session, limit: int = 50) -> list[dict[str, Any]]:
    """The newest `limit` versions applied and deletions, with the file each came from."""
    versions = session.exec(
        select(SequenceVersion, Sequence.name)
        .join(Sequence, col(Sequence.id) == col(SequenceVersion.sequence_id))
        .order_by(col(SequenceVersion.applied_at).desc(), col(SequenceVersion.id).desc())
        .limit(limit)
    ).all()
    deleted = session.exec(
        select(Sequence)
        .where(col(Sequence.deleted_at).is_not(None))
        .order_by(col(Sequence.deleted_at).desc())
        .limit(limit)
    ).all()
    rows = [_version(version, name) for version, name in versions]
    rows += [_deletion(row) for row in deleted]
    rows += [_dashboard(row) for row in activity.recent(session, limit)]
    return sorted(rows, key=lambda row: row["at"], reverse=True)[:limit]


def _dashboard(row: Any) -> dict[str, Any]:
    what = row.action + (f": {row.detail}" if row.detail else "")
    return {
        "at": row.at,
        "sequence": row.subject,
        "what": what,
        "source": "the dashboard",
        "who": row.actor,
    }


def _version(version: SequenceVersion, name: str) -> dict[str, Any]:
    what = "created" if version.version == 1 else f"version {version.version} applied"
    return {
        "at": version.applied_at,
        "sequence": name,
        "what": what,
        "source": version.source_path or "the store (HTTP API or dashboard)",
        "who": None,
    }


def _deletion(row: Sequence) -> dict[str, Any]:
    return {
        "at": row.deleted_at,
        "sequence": row.name,
        "what": "deleted",
        "source": row.source_path or "",
    }
