"""Settings: CLI flag > NURTURE_* environment (nested with __) > .env > nurture.toml > defaults."""

import re
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict, TomlConfigSettingsSource

from nurture.channels.config import (
    ImapConfig,
    NotificationsConfig,
    Providers,
    RateLimits,
    SmtpConfig,
    TwilioConfig,
    UnsubscribeConfig,
)
from nurture.errors import ConfigError, ProjectNotFound
from nurture.rules.availability import Availability
from nurture.rules.caps import Caps, parse_caps
from nurture.rules.engagement import WEIGHTS, Scoring
from nurture.spec.actions import Duration
from nurture.spec.diagnostics import did_you_mean, error_message
from nurture.spec.durations import parse_duration
from nurture.spec.lint_rules import LintRule
from nurture.spec.window import SendWindow, TimeZoneName

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


class CoachSettings(BaseModel):
    """Who the leads hear from; templates read these as `{{ coach.name }}` and so on."""

    model_config = ConfigDict(extra="allow")

    name: str = "Your Coach"
    business: str = ""
    email: str = ""
    phone: str = ""
    website: str = ""
    booking_url: str = ""
    working_hours: SendWindow | None = Field(
        None,
        description="When the coach hears of replies and non-urgent send_notification steps "
        "(days, start, end, timezone: the project's when not given, holidays); outside them "
        "notifications wait in the store for the next working moment. Unset: at once.",
    )


IdentityKind = Literal["external_id", "email", "phone"]


def _distinct(kinds: list[IdentityKind]) -> list[IdentityKind]:
    if len(set(kinds)) != len(kinds):
        raise ValueError("name each of external_id, email, phone at most once")
    return kinds


class LeadsSettings(BaseModel):
    """How leads are told apart: `[leads]` in nurture.toml."""

    model_config = ConfigDict(extra="forbid")

    identity: Annotated[list[IdentityKind], AfterValidator(_distinct)] = Field(
        default_factory=lambda: list(get_args(IdentityKind)),
        min_length=1,
        description="The keys that make a lead arriving one already stored (any of them "
        "matches), in order: when two name different leads, the first wins and the other "
        "is reported, never merged.",
    )


class ApiSettings(BaseModel):
    """`nurture serve`: the HTTP API."""

    model_config = ConfigDict(extra="forbid")

    sequences: Literal["read-only", "read-write"] = Field(
        "read-only",
        description="read-only: sequence writes answer 409 (git is the source of truth).",
    )
    max_body_bytes: int = Field(
        1_000_000, ge=1024, description="Larger request bodies are refused with 413."
    )
    public_url: str | None = Field(
        None,
        pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$",
        description="Where the world reaches `nurture serve` (https://nurture.example.com): "
        "emails then link to its /u/{token} page to unsubscribe.",
    )

    def unsubscribe_url(self) -> str | None:
        """The unsubscribe page `nurture serve` answers at, when its public URL is known."""
        return f"{self.public_url.rstrip('/')}/u/{{token}}" if self.public_url else None


class EngagementSettings(BaseModel):
    """Tracked links, the open pixel and the engagement score (docs/guides/engagement.md)."""

    model_config = ConfigDict(extra="forbid")

    open_pixel: bool = Field(
        False,
        description="Add a 1x1 image to HTML emails that counts opens. Off by default: mail "
        "clients that fetch images ahead (Apple Mail Privacy Protection) make opens overcount.",
    )
    secret: SecretStr | None = Field(
        None, description="Signs link tokens (default: NURTURE_UNSUBSCRIBE__SECRET)."
    )
    half_life: Duration = Field(
        timedelta(days=14), description="An event counts half as much after this long."
    )
    weights: dict[str, float] = Field(
        default_factory=lambda: dict(WEIGHTS),
        description="What each kind of event adds to the engagement score.",
    )
    scanner_seconds: float = Field(
        2.0,
        ge=0,
        description="A click this soon after the message went out is a link scanner's, not the lead's.",
    )

    @field_validator("weights")
    @classmethod
    def _known_kinds(cls, weights: dict[str, float]) -> dict[str, float]:
        for kind in weights:
            if kind not in WEIGHTS:
                raise ValueError(f"unknown event kind {kind!r}{did_you_mean(kind, WEIGHTS)}")
        return dict(WEIGHTS) | weights

    def scoring(self) -> Scoring:
        return Scoring(self.weights, self.half_life)


def _caps(text: str | None) -> str | None:
    if text is not None:
        parse_caps(text)
    return text


def _gap(text: str | None) -> str | None:
    if text is not None:
        parse_duration(text)
    return text


CapText = Annotated[str | None, AfterValidator(_caps)]


class InboundEmailSettings(BaseModel):
    """Leads' answers by email: `[inbound_email]` (docs/guides/notifications.md)."""

    model_config = ConfigDict(extra="forbid")

    secret: SecretStr | None = Field(
        None,
        description="The token POST /webhooks/email wants (X-Nurture-Token, the password of "
        "HTTP basic auth, or ?token=): NURTURE_INBOUND_EMAIL__SECRET, 16 characters or more. "
        "Unset: the webhook answers 503.",
    )

    imap: ImapConfig | None = Field(
        None,
        description="A mailbox `nurture run` reads answers from (its password: "
        "NURTURE_INBOUND_EMAIL__IMAP__PASSWORD).",
    )

    @field_validator("secret")
    @classmethod
    def _long_enough(cls, secret: SecretStr | None) -> SecretStr | None:
        if secret is not None and len(secret.get_secret_value()) < 16:  # never shown back
            raise ValueError("too short to guess hard: give 16 characters or more")
        return secret


class CapsSettings(BaseModel):
    """[caps]: how many messages a lead gets, across all sequences (rolling windows)."""

    model_config = ConfigDict(extra="forbid")

    messages: CapText = Field(
        None, description="Every message (SMS, WhatsApp, email), e.g. '2/day, 5/week'."
    )
    sms: CapText = Field(None, description="SMS messages, e.g. '1/day'.")
    whatsapp: CapText = Field(None, description="WhatsApp messages, e.g. '1/day'.")
    email: CapText = Field(None, description="Emails, e.g. '3/week'.")
    min_gap: Annotated[str | None, AfterValidator(_gap)] = Field(
        None, description="The quiet time after any message before the next, e.g. '4h'."
    )

    def rules(self) -> Caps:
        """The caps the engine keeps (empty: none, and the cap check costs nothing)."""
        return Caps.of(
            self.messages, self.min_gap, sms=self.sms, whatsapp=self.whatsapp, email=self.email
        )


class ExperimentSettings(BaseModel):
    """`[experiments]`: how `nurture stats --by variant` judges an A/B test."""

    model_config = ConfigDict(extra="forbid")

    min_sample: int = Field(
        100, ge=1, description="Leads each variant needs before a winner may be named."
    )


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
