"""`nurture run`: execute due steps (`--once`: what is due now, then exit)."""

import os
import sys
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from nurture.channels.config import Providers
from nurture.cli.context import state
from nurture.cli.output import note, plural, print_json
from nurture.engine.config import EngineConfig, NoteOptions, Tracking
from nurture.errors import ConfigError
from nurture.spec.times import check_time

if TYPE_CHECKING:  # the engine loads SQLAlchemy and APScheduler: imported where it runs
    from nurture.channels.config import ImapConfig
    from nurture.engine import dispatch
    from nurture.settings import Settings
    from nurture.store.db import Store

ChannelName = Literal["console", "outbox", "live"]
LogFormat = Literal["text", "json"]
ONCE_LEASE = timedelta(minutes=5)


@dataclass(frozen=True)
class RunOptions:
    """How `nurture run` works: the channel and its providers; its batches run as `engine` says."""

    channel: str = "outbox"
    engine: EngineConfig = field(default_factory=lambda: EngineConfig(worker=f"once-{os.getpid()}"))
    providers: Providers | None = None
    notes: NoteOptions = field(default_factory=NoteOptions)
    mailbox: "ImapConfig | None" = None
    """The IMAP mailbox of leads' answers by email (read with the live channel only)."""

    def engine_for(self, lease: timedelta) -> EngineConfig:
        """The engine's config with its lease, and a batch whose sends fit it at the providers'
        rate limits."""
        from nurture.channels.ratelimit import batch_within

        rates = self.providers.rates if self.providers else {}
        batch = batch_within(self.engine.batch, rates, lease.total_seconds())
        return replace(self.engine, batch=batch, lease=lease)


def run_once(
    store: "Store", now: datetime, options: RunOptions, report: "dispatch.Report | None" = None
) -> int:
    """Rescue expired leases, settle the unknown sends a provider can tell about, then run every
    step due at `now` until none is left; how many steps ran."""
    from nurture.channels import channels_for
    from nurture.engine import calendars, dispatch, notes
    from nurture.engine.delivery.sends import Loop

    channels = channels_for(options.channel, store, options.providers)
    engine = with_calendars(options.engine_for(ONCE_LEASE), channels)
    dispatch.rescue_leases(store, now)
    if options.mailbox is not None:  # before the steps: a reply stops what it should stop
        read_mail(store, options.mailbox, now)
    try:
        dispatch.settle_unknown(store, now, engine, channels, now, report, once=False)
        ran = dispatch.drain(store, now, engine, channels, report)
        if engine.calendars is not None:
            synced = calendars.sync(store, engine.calendars, now)
            for problem in synced.problems:
                note(f"warning: {problem}")
        notes.deliver_waiting(store, now, channels["notification"], options.notes)
        return ran
    finally:
        Loop.close(channels)
        dispatch.release(store, engine.worker)


def read_mail(store: "Store", mailbox: "ImapConfig", now: datetime) -> None:
    """The mailbox's unseen answers received; a mailbox out of reach is a warning, not a stop."""
    from nurture.engine import inbound
    from nurture.errors import ChannelError

    try:
        polled = inbound.read_mailbox(store, mailbox, now)
    except ChannelError as error:
        note(f"warning: {error}")
        return
    if polled.outcomes:
        said = ", ".join(f"{n} {kind}" for kind, n in sorted(polled.outcomes.items()))
        note(f"read {plural(polled.outcomes.total(), 'email')} from the mailbox: {said}")
    for problem in polled.unreadable:
        note(f"warning: skipped {problem}")


def with_calendars(engine: EngineConfig, channels: Any) -> EngineConfig:
    """The engine with the project's calendars (invitations through `channels`' email)."""
    from nurture.engine import calendars

    return replace(engine, calendars=calendars.Calendars.of(state.settings, channels))


def parse_now(text: str | None) -> datetime:
    """The simulated clock (`--now`, ISO 8601, UTC when no offset), or the wall clock."""
    if text is None:
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            f"--now {text!r} is not an ISO 8601 time (2025-03-04T09:00:00Z)"
        ) from None
    try:
        check_time(parsed)
    except ValueError as error:
        raise ConfigError(f"--now {error}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def tracking_of(settings: "Settings") -> Tracking | None:
    """Tracked links where `nurture serve` has a public address and a secret signs tokens."""
    secret, base = settings.link_secret(), settings.api.public_url
    if not secret or not base:
        return None
    return Tracking(secret, base, settings.engagement.open_pixel)


def options_from_settings(
    batch: int | None, in_flight: int | None, channel: str | None
) -> RunOptions:
    settings = state.settings
    engine = EngineConfig(
        worker=f"once-{os.getpid()}",
        batch=batch or settings.batch,
        in_flight=in_flight or settings.in_flight,
        event_loop=settings.event_loop,
        default_zone=settings.timezone,
        coach=settings.coach.model_dump(),
        tracking=tracking_of(settings),
        scoring=settings.engagement.scoring(),
        booking=settings.booking,
        caps=settings.caps.rules(),
    )
    notifying = NoteOptions.from_settings(settings)
    chosen = channel or settings.channel
    mailbox = settings.inbound_email.imap if chosen == "live" else None
    return RunOptions(chosen, engine, settings.providers, notifying, mailbox)


def run(
    once: Annotated[bool, typer.Option("--once", help="Run what is due now, then exit.")] = False,
    batch: Annotated[
        int | None, typer.Option("--batch", min=1, help="Steps claimed per batch.")
    ] = None,
    in_flight: Annotated[
        int | None,
        typer.Option(
            "--in-flight", "--senders", min=1, help="Messages sent at once (default 500)."
        ),
    ] = None,
    channel: Annotated[
        ChannelName | None,
        typer.Option("--channel", help="console prints; outbox stores (default); live sends."),
    ] = None,
    poll: Annotated[
        float, typer.Option("--poll", min=0.05, help="Longest sleep between checks, in seconds.")
    ] = 5.0,
    lease: Annotated[
        float,
        typer.Option(
            "--lease", min=1, help="Seconds a claim lasts before another daemon may rescue it."
        ),
    ] = 300.0,
    log_format: Annotated[
        LogFormat, typer.Option("--log-format", help="One line per event: text or JSON lines.")
    ] = "text",
    now: Annotated[
        str | None,
        typer.Option(
            "--now",
            help="With --once: run as if it were this time (ISO 8601, UTC without an offset), "
            "to see what a sequence does days ahead.",
        ),
    ] = None,
    json: Annotated[
        bool,
        typer.Option(
            "--json", help="With --once: print what ran as JSON; the daemon logs JSON lines."
        ),
    ] = False,
) -> None:
    """Execute due steps: the daemon (until SIGTERM/SIGINT), or with --once what is due now.

    \b
    Examples:
      nurture run                       # the daemon: runs steps as they fall due
      nurture run --once                # what is due now, then exit (cron, CI)
      nurture run --once --now 2026-12-08T09:00:00Z   # as if it were that time
      nurture run --channel live --log-format json
    """
    from nurture.channels import channels_for
    from nurture.engine import dispatch
    from nurture.engine.daemon import Daemon, DaemonOptions

    options = options_from_settings(batch, in_flight, channel)
    when = parse_now(now)
    with state.store(write=True) as store:
        if once:
            report = dispatch.Report()
            count = run_once(store, when, options, report)
            _ran(count, when, report, json)
            return
        engine = options.engine_for(timedelta(seconds=lease))
        log_format = "json" if json else log_format
        daemon_options = DaemonOptions(
            engine, poll=poll, log_format=log_format, notes=options.notes, mailbox=options.mailbox
        )
        channels = channels_for(options.channel, store, options.providers)
        daemon_options = replace(daemon_options, engine=with_calendars(engine, channels))
        Daemon(store, channels, daemon_options, _clock, _log).run()


def _ran(count: int, when: datetime, report: "dispatch.Report", json: bool) -> None:
    """What `run --once` did: the steps run, the sends settled and those left to settle."""
    if json:
        ran = {"steps": count, "at": when, "settled": report.settled, "held": report.held}
        ran["deferred"] = report.deferred
        print_json(ran)
        return
    note(f"{plural(count, 'step')} run at {when:%Y-%m-%d %H:%M} UTC")
    _note_uncertain(report)


def _note_uncertain(report: "dispatch.Report") -> None:
    if report.deferred:
        waiting = plural(report.deferred, "step")
        note(
            f"{waiting} deferred by a frequency cap or an exclusive sequence: `nurture explain LEAD` says why"
        )
    if report.settled:
        note(f"{plural(report.settled, 'uncertain send')} settled by asking the provider")
    if report.held:
        held = plural(report.held, "send")
        note(f"{held} may have reached the provider: decide with `nurture enrollments settle`")


def _clock() -> datetime:
    return datetime.now(UTC)


def _log(line: str) -> None:
    """One write per line: the daemon's jobs log from several threads, and print() writes the
    text and its newline apart, so two lines could run together."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
