"""Settings: CLI flag > NURTURE_* environment (nested with __) > .env > nurture.toml > defaults."""

import re
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
)
from pydantic_settings import BaseSettings, SettingsConfigDict, TomlConfigSettingsSource

from nurture.channels.config import (
    NotificationsConfig,
    Providers,
    RateLimits,
    SmtpConfig,
    TwilioConfig,
    UnsubscribeConfig,
)
from nurture.errors import ConfigError, ProjectNotFound
from nurture.rules.availability import Availability
from nurture.settings.sections import (
    ApiSettings,
    CapsSettings,
    CoachSettings,
    EngagementSettings,
    ExperimentSettings,
    InboundEmailSettings,
    LeadsSettings,
)
from nurture.spec.diagnostics import did_you_mean, error_message
from nurture.spec.lint_rules import LintRule
from nurture.spec.window import TimeZoneName

if TYPE_CHECKING:
    from nurture.rules.booking import Booking

PROJECT_FILE = "nurture.toml"


def _phone_region(code: str) -> str:
    """A country phonenumbers knows (`us` -> `US`), else ValueError."""
    import phonenumbers

    upper = code.strip().upper()
    if upper not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"{code!r} is not a country code phone numbers know (e.g. 'US', 'GB')")
    return upper


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="NURTURE_", env_nested_delimiter="__", extra="ignore", hide_input_in_errors=True
    )
    toml_path: ClassVar[Path | None] = None

    project_dir: Path = Field(Path("."), exclude=True)
    database_url: str | None = Field(
        None, description="Default: sqlite:///nurture.db beside nurture.toml."
    )
    auto_migrate: bool | None = Field(
        None,
        description="Whether a command that writes first migrates a store behind the code: "
        "default on for SQLite, off for Postgres (run `nurture db upgrade`).",
    )
    sequences_dir: Path = Path("sequences")
    timezone: TimeZoneName = "UTC"
    conversion_statuses: list[str] = Field(default_factory=lambda: ["Converted", "Won", "Client"])
    phone_region: Annotated[str, AfterValidator(_phone_region)] | None = Field(
        None, description="Country code (e.g. 'US') for phone numbers written without +."
    )
    channel: Literal["outbox", "console", "live", "memory"] = Field(
        "outbox",
        description="Where `nurture run` sends messages: outbox, console, or live (the providers).",
    )
    batch: int = Field(500, ge=1, description="Due steps claimed per batch by `nurture run`.")
    in_flight: int = Field(
        500,
        ge=1,
        description="Messages `nurture run` sends at once, across batches (a provider answering "
        "in 200 ms gets up to 2,500 a second; a channel's `concurrency` and rate limit bound it).",
    )
    event_loop: Literal["auto", "uvloop", "asyncio"] = Field(
        "auto",
        description="The event loop `nurture run` sends on: uvloop (libuv's, cheaper a message) "
        "where it is installed with `auto`, else asyncio's own.",
    )
    lint_ignore: list[LintRule] = Field(
        default_factory=list, description="Lint rules `nurture validate` does not report."
    )
    coach: CoachSettings = Field(default_factory=CoachSettings)
    leads: LeadsSettings = Field(default_factory=LeadsSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    experiments: ExperimentSettings = Field(default_factory=ExperimentSettings)
    email: SmtpConfig | None = None
    twilio: TwilioConfig | None = None
    notifications: NotificationsConfig | None = None
    unsubscribe: UnsubscribeConfig = Field(default_factory=UnsubscribeConfig)
    engagement: EngagementSettings = Field(default_factory=EngagementSettings)
    rate_limits: RateLimits = Field(default_factory=dict)
    availability: Availability | None = Field(
        None, description="The coach's bookable hours, for schedule_appointment's auto and offer."
    )
    caps: CapsSettings = Field(default_factory=CapsSettings)
    inbound_email: InboundEmailSettings = Field(default_factory=InboundEmailSettings)

    @classmethod
    def settings_customise_sources(
        cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
    ):  # noqa: E501
        sources = [init_settings, env_settings, dotenv_settings]
        if cls.toml_path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=cls.toml_path))
        return tuple(sources)

    @property
    def database(self) -> str:
        """The store URL, a relative SQLite path taken from the project directory."""
        url = self.database_url or "sqlite:///nurture.db"
        prefix = "sqlite:///"
        if (
            url.startswith(prefix)
            and url != "sqlite:///:memory:"
            and not url.startswith(prefix + "/")
        ):
            return prefix + str((self.project_dir / url[len(prefix) :]).resolve())
        return url

    @property
    def sqlite_file(self) -> Path | None:
        """The SQLite store's file; None for Postgres and in-memory SQLite (read without
        SQLAlchemy, so a read can tell a store not made yet before importing it)."""
        found = re.match(r"sqlite(\+\w+)?:///([^?]+)", self.database)
        return None if found is None or found[2] == ":memory:" else Path(found[2])

    @property
    def migrates(self) -> bool:
        """Whether commands that write migrate the store first (auto_migrate, else SQLite's)."""
        if self.auto_migrate is not None:
            return self.auto_migrate
        return self.database.startswith("sqlite")

    def link_secret(self) -> str | None:
        """The secret link tokens are signed with: [engagement]'s, else the unsubscribe one."""
        secret = self.engagement.secret or self.unsubscribe.secret
        return secret.get_secret_value() if secret else None

    @property
    def sequences_path(self) -> Path:
        return self.project_dir / self.sequences_dir

    @property
    def lead_page(self) -> str | None:
        """The dashboard's page of a lead, `{id}` to fill: under `[notifications] dashboard_url`,
        else `[api] public_url` (None: notifications carry no link)."""
        base = (self.notifications and self.notifications.dashboard_url) or self.api.public_url
        return f"{base.rstrip('/')}/leads/{{id}}" if base else None

    @property
    def providers(self) -> Providers:
        """The live channels' configuration."""
        names = ("email", "twilio", "notifications", "rate_limits")
        unsubscribe = self.unsubscribe
        if unsubscribe.url is None and self.api.public_url:
            unsubscribe = unsubscribe.model_copy(update={"url": self.api.unsubscribe_url()})
        return Providers(**{name: getattr(self, name) for name in names}, unsubscribe=unsubscribe)

    @property
    def booking_secret(self) -> SecretStr | None:
        """What signs booking links: `[availability] secret`, else the unsubscribe secret."""
        if self.availability is None:
            return None
        return self.availability.secret or self.unsubscribe.secret

    @property
    def booking(self) -> "Booking | None":
        """The coach's availability and booking links, when `[availability]` is set."""
        from nurture.rules.booking import Booking

        if self.availability is None:
            return None
        secret = self.booking_secret
        url = self.api.public_url
        return Booking(
            self.availability,
            self.timezone,
            secret.get_secret_value() if secret else None,
            f"{url.rstrip('/')}/book/{{token}}" if url else None,
        )


def find_project(start: Path) -> Path:
    """The nearest directory at or above `start` that holds nurture.toml."""
    start = start.resolve()
    for directory in (start, *start.parents):
        if (directory / PROJECT_FILE).is_file():
            return directory
    raise ProjectNotFound(
        f"no {PROJECT_FILE} in {start} or any parent directory (run `nurture init`)"
    )


def load_settings(start: Path | None = None, **overrides: Any) -> Settings:
    """The settings of the project found from `start` (default: the working directory)."""
    root = find_project(start or Path.cwd())
    toml_file = root / PROJECT_FILE
    _check_toml(toml_file)

    class ProjectSettings(Settings):
        model_config = SettingsConfigDict(env_file=root / ".env")
        toml_path: ClassVar[Path | None] = toml_file

    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        settings = ProjectSettings(**given)
    except ValidationError as error:
        raise ConfigError(_describe(error, toml_file)) from None
    settings.project_dir = root
    return settings


def _check_toml(path: Path) -> None:
    """A readable file whose keys are all settings: a typo must not fall back to a default."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: {error}") from None
    known = [name for name in Settings.model_fields if name != "project_dir"]
    for key in data:
        if key not in known:
            raise ConfigError(f"{path}: unknown setting {key!r}" + did_you_mean(key, known))
    for *sections, key in _secret_fields():
        table: Any = data
        for section in sections:
            table = table.get(section) if isinstance(table, dict) else None
        if isinstance(table, dict) and key in table:
            variable = "NURTURE_" + "__".join(part.upper() for part in (*sections, key))
            section = ".".join(sections)
            raise ConfigError(
                f"{path}: {section}.{key} is a secret: set {variable} in the environment "
                "or .env, never in nurture.toml"
            )


def _secret_fields() -> list[tuple[str, ...]]:
    """(table, key) of every secret setting, e.g. ('email', 'password')."""
    found: list[tuple[str, ...]] = [("availability", "caldav", "password")]
    found += [
        ("availability", "caldav", "oauth", key) for key in ("client_secret", "refresh_token")
    ]
    found.append(("inbound_email", "imap", "password"))
    for name, field in Settings.model_fields.items():
        model = next((a for a in get_args(field.annotation) if isinstance(a, type)), None)
        model = field.annotation if isinstance(field.annotation, type) else model
        if model is not None and issubclass(model, BaseModel):
            found += [
                (name, key)
                for key, inner in model.model_fields.items()
                if SecretStr in (inner.annotation, *get_args(inner.annotation))
            ]
    return found


def _describe(error: ValidationError, path: Path) -> str:
    problems = [f"{'.'.join(map(str, e['loc']))}: {error_message(e)}" for e in error.errors()]
    return f"{path} (or NURTURE_* environment): " + "; ".join(problems)
