"""Errors a user sees: the CLI prints `error: <message>` and exits 1; a traceback only with --debug.

The API answers each with a status (nurture.api.errors); `field`, where an error has one, names
the value at fault. Every one is a NurtureError, so a boundary catches them all at once.
"""


class NurtureError(Exception):
    """Base of every error the user can act on."""


class ConfigError(NurtureError):
    """The project's settings are missing or wrong."""


class ProjectNotFound(ConfigError):
    """No nurture.toml in the working directory or above it."""


class SpecError(NurtureError):
    """One or more sequence files are invalid; `diagnostics` holds every problem."""

    def __init__(self, diagnostics: list) -> None:
        self.diagnostics = diagnostics
        first = diagnostics[0] if diagnostics else "invalid sequence files"
        more = f" (and {len(diagnostics) - 1} more)" if len(diagnostics) > 1 else ""
        super().__init__(f"{first}{more}")


class NotFound(NurtureError):
    """A sequence, funnel or other named thing does not exist."""


class StoreError(NurtureError):
    """The store cannot be reached or is not at the expected schema."""


class Aborted(NurtureError):
    """The user declined a confirmation, or one was needed without a terminal."""


class InvalidState(NurtureError):
    """The thing exists but its state does not allow what was asked (pausing a finished enrollment)."""


class FieldError(NurtureError):
    """An error about one value: `field` names it (the API's `field`), where there is one."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class Conflict(FieldError):
    """The change clashes with what exists (a name taken, a rename); `field` names the value."""


class AmbiguousLead(Conflict):
    """A lead reference (an email, a phone) names several leads: duplicates not merged yet."""


class InvalidToken(NurtureError):
    """An unsubscribe token that was not signed with this project's secret, or is malformed."""


class BadWindow(NurtureError):
    """--since or --until is neither a duration nor a date, or since is after until."""


class BadFilter(FieldError):
    """A filter (of `logs`, or a decision or filter of `settle`) names nothing there is;
    `field`, where given, says which."""


class InvalidLead(FieldError):
    """A lead's data cannot be stored; the message names the field and the reason."""


class ContactError(NurtureError):
    """An email or phone number that cannot be used (its callers say whose: InvalidLead, --to)."""


class KeyReused(NurtureError):
    """An Idempotency-Key sent again with another body: replaying the first answer would hide it."""

    def __init__(self, key: str) -> None:
        super().__init__(
            f"Idempotency-Key {key!r} was used with a different body: "
            "send the first body again, or a new key for another lead"
        )


class InvalidEvent(NurtureError):
    """An event is not one, or cannot apply to this dry run (a step the sequence does not have).

    The message starts with the event's text; the caller says where it came from (`--event`).
    """


class InvalidSequence(NurtureError):
    """A sequence given as data is invalid: the first problem, the others listed after it.

    `field` is the path of the first problem; `problems` holds (path, message) of each.
    """

    def __init__(self, problems: list[tuple[tuple[str | int, ...], str]]) -> None:
        (loc, message), *others = problems
        listed = "; ".join(f"{_dotted(at) or 'body'}: {text}" for at, text in others)
        super().__init__(f"{message} (and {len(others)} more: {listed})" if others else message)
        self.field = _dotted(loc) or None
        self.problems = problems


def _dotted(path: tuple[str | int, ...]) -> str:
    """A path in the data as it was sent: `steps.0.actionType`."""
    return ".".join(str(part) for part in path)


class ChannelError(NurtureError):
    """A channel's send (or check) did not go as asked: the engine records it on the execution
    and retries, fails or settles it (nurture.channels: TemporaryFailure, PermanentFailure,
    UncertainSend); a command that sends one message (`channels test`) says it in its words."""


class ExpiredLink(InvalidToken):
    """A booking link signed by this project, but older than `[availability] link_valid`."""


class SlotTaken(Conflict):
    """The slot asked for is booked already, or is no longer free."""
