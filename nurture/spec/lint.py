"""Lint for sequences: valid files that will not do what their author expects (warnings).

Across the sequences of a funnel: two that take the same lead at the same priority (the name
decides), and scores, statuses or temperatures no sequence takes. Within a sequence: a delay
that always lands outside the send window, a window open less than an hour a day, and a step
condition that can never hold.
"""

from collections.abc import Collection, Iterator, Mapping
from datetime import datetime, timedelta
from pathlib import Path

from nurture.spec.actions import MESSAGE_ACTIONS
from nurture.spec.appointments import Bookable, appointment_problems
from nurture.spec.conditions import StepConditions, TriggerConditions
from nurture.spec.diagnostics import Diagnostic
from nurture.spec.durations import format_duration
from nurture.spec.files import CheckResult, SequenceFile, check_files, shown
from nurture.spec.names import slugify
from nurture.spec.positions import Loc
from nurture.spec.window import WEEKDAYS, SendWindow

LISTS = ("lead_source", "lead_status", "lead_temperature")


def lint(
    files: list[SequenceFile],
    ignore: Collection[str] = (),
    conversion_statuses: Collection[str] = ("Converted", "Won", "Client"),
    complete: bool = True,
) -> list[Diagnostic]:
    """Every warning for these (valid) sequence files, but those of the rules in `ignore`.

    `complete`: these are all the project's sequences. When a file is invalid it is missing,
    and the funnel-wide rules (overlaps, coverage) would report its part as a gap: skipped."""
    converting = {status.casefold() for status in conversion_statuses}
    found = [d for file in files for d in _sequence_warnings(file, converting)]
    found += list(_funnel_warnings(files)) if complete else []
    found += list(_exclusive_ties(files))
    return silenced(found, ignore)


def checked(
    paths: list[Path],
    *,
    coach_keys: Collection[str] | None,
    ignore: Collection[str] = (),
    conversion_statuses: Collection[str] = ("Converted", "Won", "Client"),
    drafts: Mapping[Path, str] | None = None,
    bookable: Bookable | None = None,
    warnings: bool = True,
) -> CheckResult:
    """What `nurture validate` reports for these files and folders: every file's problems, what
    the project's settings cannot do of them (`bookable`: its appointments; None, outside a
    project), then the lint warnings, but those of the rules in `ignore` (`drafts`: see
    `check_files`). `warnings=False`: no lint (plan and apply stop on errors only, and
    linting a project costs about as much again as checking its files)."""
    result = check_files(paths, coach_keys=coach_keys, drafts=drafts)
    result.diagnostics = silenced(result.diagnostics, ignore)
    if bookable is not None:
        result.diagnostics += appointment_problems(result.sequences, bookable)
    if warnings:
        valid = result.valid
        result.diagnostics += lint(result.sequences, ignore, conversion_statuses, complete=valid)
    return result


def silenced(diagnostics: list[Diagnostic], ignore: Collection[str]) -> list[Diagnostic]:
    """The diagnostics but the warnings of the rules in `ignore`."""
    return [d for d in diagnostics if not any(d.message.endswith(f"[{rule}]") for rule in ignore)]


def _warn(file: SequenceFile, loc: Loc, message: str, rule: str) -> Diagnostic:
    where, path = file.position(loc), file.document.resolve(loc)
    return Diagnostic(shown(file.path), *where, f"{message} [{rule}]", "warning", path)


# Within one sequence.


def _sequence_warnings(file: SequenceFile, converting: set[str]) -> Iterator[Diagnostic]:
    window = file.spec.send_window
    if window is not None:
        minutes = _open_minutes(window)
        if minutes < 60:
            message = f"the send window is open only {minutes} minutes a day"
            yield _warn(file, ("send_window",), message, "send-window")
        yield from _delays(file, window)
    for index, step in enumerate(file.spec.steps):
        if step.conditions is not None:
            yield from _never(file, index, step.conditions, converting)
    yield from _unreachable(file)


def _unreachable(file: SequenceFile) -> Iterator[Diagnostic]:
    """Steps after a step that always ends the sequence (`stop: true`, active, no condition)."""
    steps = file.spec.steps
    for index, step in enumerate(steps[:-1]):
        unconditional = step.conditions is None or not step.conditions.model_dump(exclude_none=True)
        if step.stop and step.active and unconditional:
            after = ", ".join(later.key for later in steps[index + 1 :])
            message = (
                f"step {step.id} always ends the sequence (stop: true without conditions), so "
                f"{after} never run{'s' if index + 2 == len(steps) else ''}"
            )
            yield _warn(file, ("steps", index, "stop"), message, "unreachable")
            return


def _delays(file: SequenceFile, window: SendWindow) -> Iterator[Diagnostic]:
    """A message whose time since the previous message always falls outside the window."""
    since: timedelta | None = None  # since the last message; None before the first one
    for index, step in enumerate(file.spec.steps):
        is_message = step.action_type in MESSAGE_ACTIONS
        since = None if since is None and not is_message else (since or timedelta()) + step.delay
        if is_message and index and since is not None and not _can_land(window, since):
            yield _warn(
                file,
                ("steps", index),
                f"step {step.id}: {format_duration(since)} after the previous message (sent "
                f"{', '.join(window.days)} {window.start:%H:%M}-{window.end:%H:%M}) always falls "
                "outside the send window, so it always waits for the next opening",
                "send-window",
            )
        if is_message:
            since = timedelta()


def _never(
    file: SequenceFile, index: int, conditions: StepConditions, converting: set[str]
) -> Iterator[Diagnostic]:
    """A step condition that no lead of this sequence can meet."""
    step_id, trigger = file.spec.steps[index].id, file.spec.trigger_conditions
    both = _values(conditions.tags) & _values(conditions.not_tags)
    if both:
        named = ", ".join(sorted(both))
        message = f"step {step_id}: condition can never hold: tags and not_tags both name {named}"
        yield _warn(file, ("steps", index, "conditions"), message, "never-holds")
    sources, allowed = _values(conditions.lead_source), _values(trigger.lead_source)
    if conditions.lead_source and trigger.lead_source and not sources & allowed:
        message = (
            f"step {step_id}: condition can never hold: lead_source "
            f"{', '.join(conditions.lead_source)} is not one the trigger takes "
            f"({', '.join(trigger.lead_source)}), and a lead's source does not change"
        )
        yield _warn(file, ("steps", index, "conditions", "lead_source"), message, "never-holds")
    statuses = _values(conditions.lead_status)
    if conditions.lead_status and statuses <= converting and file.spec.stop_on_conversion:
        message = (
            f"step {step_id}: condition can never hold: lead_status "
            f"{', '.join(conditions.lead_status)} converts the lead, and this sequence stops on "
            "conversion"
        )
        yield _warn(file, ("steps", index, "conditions", "lead_status"), message, "never-holds")


def _open_minutes(window: SendWindow) -> int:
    return (window.end.hour - window.start.hour) * 60 + window.end.minute - window.start.minute


def _can_land(window: SendWindow, delay: timedelta) -> bool:
    """Whether a message sent at some open time, plus `delay`, falls in an open time too.

    Checked over one week in 15-minute steps (holidays and DST aside)."""
    monday = datetime(2024, 1, 1)  # a Monday
    for day in range(7):
        if WEEKDAYS[day] not in window.days:
            continue
        sent = datetime.combine(monday + timedelta(days=day), window.start)
        while sent.time() < window.end and sent.weekday() == day:
            landed = sent + delay
            if (
                WEEKDAYS[landed.weekday()] in window.days
                and window.start <= landed.time() < window.end
            ):
                return True
            sent += timedelta(minutes=15)
    return False


def _values(wanted: list[str] | None) -> set[str]:
    return {value.casefold() for value in wanted or []}


# Exclusive sequences (whatever their funnels: a lead can come through several).


def _exclusive_ties(files: list[SequenceFile]) -> Iterator[Diagnostic]:
    """Exclusive sequences of one priority: for a lead in both, only its enrollment order decides."""
    seen: dict[int, SequenceFile] = {}
    for file in files:
        spec = file.spec
        if not (spec.active and spec.exclusive):
            continue
        other = seen.setdefault(spec.priority, file)
        if other is not file:
            message = (
                f"{other.spec.name} and {spec.name} are both exclusive at priority {spec.priority}: "
                "a lead in both runs the one it entered first while the other waits. Give one a "
                "higher priority"
            )
            yield _warn(file, ("exclusive",), message, "exclusive-priority")


# Across the sequences of each funnel.


def _funnel_warnings(files: list[SequenceFile]) -> Iterator[Diagnostic]:
    funnels: dict[str, list[SequenceFile]] = {}
    for file in files:
        if file.spec.active:
            for funnel in file.spec.funnels:
                funnels.setdefault(slugify(funnel), []).append(file)
    vocabulary = {name: _vocabulary(files, name) for name in ("lead_status", "lead_temperature")}
    for funnel, members in sorted(funnels.items()):
        yield from _overlaps(funnel, members)
        yield from _gaps(funnel, members, vocabulary)


def _overlaps(funnel: str, members: list[SequenceFile]) -> Iterator[Diagnostic]:
    for index, first in enumerate(members):
        for second in members[index + 1 :]:
            a, b = first.spec, second.spec
            if a.priority != b.priority or _count(a) != _count(b):
                continue
            example = _common_lead(a.trigger_conditions, b.trigger_conditions)
            if example is not None:
                winner, loser = sorted((a.name, b.name), key=str.casefold)
                message = (
                    f"in funnel {funnel}, {a.name} and {b.name} can take the same lead at priority "
                    f"{a.priority} with as many conditions: only the name decides ({winner} wins); "
                    f"e.g. a lead with {example}. Give one a higher priority"
                )
                loc = ("priority",) if "priority" in second.document.data else ("name",)
                yield _warn(second, loc, message, "same-priority")


def _count(spec) -> int:
    return spec.trigger_conditions.count()


def _common_lead(a: TriggerConditions, b: TriggerConditions) -> str | None:
    """A lead both conditions take, described; None when none exists."""
    low_a, high_a = (a.lead_score.min, a.lead_score.max) if a.lead_score else (0, 100)
    low_b, high_b = (b.lead_score.min, b.lead_score.max) if b.lead_score else (0, 100)
    low, high = max(low_a, low_b), min(high_a, high_b)
    if low > high:
        return None
    parts = [f"score {low}"]
    for name in LISTS:
        first, second = getattr(a, name), getattr(b, name)
        if first is None and second is None:
            continue
        common = [
            v
            for v in first or second
            if second is None or first is None or v.casefold() in _values(second)
        ]
        if not common:
            return None
        parts.append(f"{name.removeprefix('lead_')} {common[0]!r}")
    return ", ".join(parts)


def _vocabulary(files: list[SequenceFile], name: str) -> dict[str, str]:
    """Every value of a condition the project's sequences name (folded -> as written)."""
    seen: dict[str, str] = {}
    for file in files:
        for value in getattr(file.spec.trigger_conditions, name) or []:
            seen.setdefault(value.casefold(), value)
    return seen


def _gaps(
    funnel: str, members: list[SequenceFile], vocabulary: dict[str, dict[str, str]]
) -> Iterator[Diagnostic]:
    where = members[0], ("funnels", _funnel_index(members[0], funnel))
    for low, high in _score_gaps([m.spec.trigger_conditions for m in members]):
        message = f"funnel {funnel}: no sequence takes leads with a score of {low}-{high}"
        yield _warn(*where, message, "coverage")
    for name, known in vocabulary.items():
        taken: set[str] = set()
        for member in members:
            values = getattr(member.spec.trigger_conditions, name)
            if values is None:
                taken = set(known)
                break
            taken |= _values(values)
        missing = [written for folded, written in known.items() if folded not in taken]
        if missing:
            what = name.removeprefix("lead_")
            message = f"funnel {funnel}: no sequence takes leads with {what} {', '.join(missing)}"
            yield _warn(*where, message, "coverage")


def _funnel_index(file: SequenceFile, funnel: str) -> int:
    return next(i for i, name in enumerate(file.spec.funnels) if slugify(name) == funnel)


def _score_gaps(conditions: list[TriggerConditions]) -> list[tuple[int, int]]:
    covered = [False] * 101
    for condition in conditions:
        low, high = (
            (condition.lead_score.min, condition.lead_score.max)
            if condition.lead_score
            else (0, 100)
        )
        covered[low : high + 1] = [True] * (high - low + 1)
    gaps, start = [], None
    for score, taken in enumerate([*covered, True]):
        if not taken and start is None:
            start = score
        elif taken and start is not None:
            gaps.append((start, score - 1))
            start = None
    return gaps
