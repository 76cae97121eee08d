"""What `nurture validate` checks of appointments against the project's settings: a step that
books from the coach's availability needs `[availability]`; a booking link needs a page."""

from collections.abc import Iterator
from dataclasses import dataclass

from nurture.spec.actions import ActionType, AppointmentConfig
from nurture.spec.diagnostics import Diagnostic
from nurture.spec.files import SequenceFile, shown

LINK = "booking_link"


@dataclass(frozen=True)
class Bookable:
    """What the project's settings allow of appointments."""

    availability: bool
    """`[availability]` is set: auto and offer steps can book."""
    links: bool
    """Booking links can be made (`[api] public_url` and a secret)."""


def appointment_problems(files: list[SequenceFile], bookable: Bookable) -> list[Diagnostic]:
    """Errors for auto/offer steps without `[availability]`; warnings for booking links that
    cannot be made (no `[api] public_url` or no secret)."""
    return [d for file in files for d in _problems(file, bookable.availability, bookable.links)]


def _problems(file: SequenceFile, availability: bool, links: bool) -> Iterator[Diagnostic]:
    for index, step in enumerate(file.spec.steps):
        config = step.action_config
        if isinstance(config, AppointmentConfig) and config.mode != "fixed" and not availability:
            loc = ("steps", index, "action_config", "mode")
            yield Diagnostic(
                shown(file.path),
                *file.position(loc),
                f"mode {config.mode!r} books from the coach's hours: add [availability] to "
                "nurture.toml (see docs/guides/appointments.md)",
            )
        texts = [v for v in config.model_dump().values() if isinstance(v, str) and LINK in v]
        if texts and not (availability and links):
            yield Diagnostic(
                shown(file.path),
                *file.position(("steps", index, "action_config")),
                "{{ booking_link }} needs [availability], [api] public_url and a secret "
                "(NURTURE_AVAILABILITY__SECRET): the send would fail",
                "warning",
            )
        if step.action_type == ActionType.SCHEDULE_APPOINTMENT and step.relative_to:
            yield Diagnostic(
                shown(file.path),
                *file.position(("steps", index, "relative_to")),
                "a schedule_appointment step cannot be timed from the appointment it makes",
            )
