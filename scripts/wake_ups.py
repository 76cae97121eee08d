"""The daemon's wake-ups on a simulated clock, for `make demo`: `nurture run --once --now T` at
each moment a step is due, until a time, in one process (nurture.invoke runs the command line).

    python scripts/wake_ups.py 2026-12-16T09:00:00+00:00   # from the project directory

A real daemon sleeps until the next step is due and runs it then; so does this, so the history
it leaves (lag, completion times) reads as a real one, not as that of a few coarse ticks.
"""

import json
import sys
from collections.abc import Callable
from datetime import datetime, timedelta

import nurture

MOST = 500
"""Wake-ups at most: a step kept due forever (a bug) stops the demo here, not never."""


def next_due(after: datetime | None) -> datetime | None:
    """The earliest time an active enrollment is due (a second after `after` at the earliest)."""
    listed = nurture.invoke(["enrollments", "list", "--status", "active", "--json"])
    active = json.loads(listed.stdout)
    due = [datetime.fromisoformat(e["next_run_at"]) for e in active if e["next_run_at"]]
    if not due:
        return None
    return min(due) if after is None else max(min(due), after + timedelta(seconds=1))


def play(until: datetime, show: Callable[[str], None] = print) -> int:
    """Run what is due at each moment something is, up to `until`; how many wake-ups."""
    last = None
    for wake_ups in range(MOST):
        at = next_due(last)
        if at is None or at >= until:
            return wake_ups
        ran = nurture.invoke(["run", "--once", "--channel", "console", "--now", at.isoformat()])
        show(ran.output)
        if ran.exit_code:
            raise SystemExit(ran.exit_code)
        last = at
    return MOST


if __name__ == "__main__":
    play(datetime.fromisoformat(sys.argv[1]), lambda text: print(text, end="", flush=True))
