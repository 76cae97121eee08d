"""Errors a user sees: the CLI prints `error: <message>` and exits 1; a traceback only with --debug."""


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


class Conflict(NurtureError):
    """The change clashes with what exists (a name taken, a rename); `field` names the value."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class InvalidToken(NurtureError):
    """An unsubscribe token that was not signed with this project's secret, or is malformed."""
