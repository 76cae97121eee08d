"""`nurture explain LEAD`: the matching decision, each step's state, when and why the next runs."""

from datetime import datetime
from typing import Annotated, Any

import typer
from rich.markup import escape

from nurture.cli.context import state
from nurture.cli.output import out, plural, print_json

_STATES = {"next": "→", "pending": "·", "inactive": "·", "skipped": "↷", "unknown": "?"}
_DONE = {"sent", "done"}


def explain(
    lead: Annotated[str, typer.Argument(help="The lead's id, external id or email.")],
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Why a lead got its sequence (or none), each step's state, when and why the next runs.

    \b
    Examples:
      nurture explain ana@example.com
      nurture explain 3 --json
    """
    from nurture.insights.explain import explain as explain_lead

    with state.session() as session:
        data = explain_lead(session, lead, state.settings.timezone)
    if json:
        print_json(data)
        return
    _lead(data["lead"])
    _decision(data["decision"])
    for enrollment in data["enrollments"]:
        _enrollment(enrollment)


def _say(text: str) -> None:
    out.print(escape(text))


def _lead(lead: dict[str, Any]) -> None:
    facts = [f"funnel {lead['funnel']}", f"score {lead['score']}"]
    facts += [f"{key} {lead[key]}" for key in ("status", "temperature", "source") if lead[key]]
    facts += [f"tags {', '.join(lead['tags'])}"] if lead["tags"] else []
    _say(f"Lead {lead['id']} {lead['name']}: {', '.join(facts)}")


def _decision(decision: dict[str, Any] | None) -> None:
    if decision is None:
        _say("No matching decision recorded (the lead came through no funnel).")
        return
    winner, reason = decision["winner"], decision["reason"]
    if winner is None:  # the failed checks follow, one per line
        winner, reason = "no sequence", reason.partition(": ✗")[0]
    _say(f"Decision {_when(decision['decided_at'])}: {winner} — {reason}")
    for candidate in decision["candidates"]:
        mark = "✓" if candidate["matches"] else "✗"
        extra = "" if candidate["active"] else ", inactive"
        _say(
            f"  {mark} {candidate['sequence']} (priority {candidate['priority']}, "
            f"{plural(candidate['conditions'], 'condition')}{extra})"
        )
        for check in candidate["checks"]:
            tick = "✓" if check["passed"] else "✗"
            _say(
                f"      {tick} {check['condition']}: wants {check['expected']}, lead has {check['actual']}"
            )


def _enrollment(enrollment: dict[str, Any]) -> None:
    exit_reason = f" ({enrollment['exit_reason']})" if enrollment["exit_reason"] else ""
    if enrollment["status"] == "active":  # a deferral: said under `next`
        exit_reason = ""
    canary = " (canary)" if enrollment.get("canary") else ""
    version = f"v{enrollment['version']}{canary}"
    _say(f"{enrollment['sequence']} {version}: {enrollment['status']}{exit_reason}")
    for step in enrollment["steps"]:
        mark = "✓" if step["state"] in _DONE else _STATES.get(step["state"], "✗")
        at = f" {_when(step['at'])}" if step["at"] else ""
        detail = f": {step['detail']}" if step.get("detail") else ""
        if step.get("variant"):
            detail += f" [variant {step['variant']}, {step['variant_source']}]"
        _say(f"  {mark} {step['id']:<24} {step['state']}{at}{detail}")
    for call in enrollment.get("appointments", []):
        at = f" {_when(call['starts_at'])}" if call["starts_at"] else ""
        _say(f"  appointment {call['id']} {call['title']}: {call['status'].replace('_', ' ')}{at}")
    waiting = enrollment["settle"]
    if waiting:
        _say(
            f"  waiting to be settled: the send of step {waiting['step']} (attempt "
            f"{waiting['attempt']}), of unclear fate since {_when(waiting['since'])}"
        )
        _say(f"      did it go out? {waiting['command']}")
    upcoming = enrollment["next"]
    if upcoming:
        at = _when(upcoming["at"]) or "(no time yet)"
        _say(f"  next: {upcoming['step']} {at}, because")
        for reason in upcoming["why"]:
            _say(f"      {reason}")


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else ""
