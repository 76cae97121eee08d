"""The coach's calendar over CalDAV (the `caldav` library, 1.x): its busy times, and the
appointments written to it.

Google, iCloud, Fastmail and Nextcloud all speak CalDAV. An event is PUT at a URL made of its
UID, so writing one again (a retry, a second daemon) replaces it: never a second copy. Events
nurture wrote itself (their UID ends `@nurture`) are not busy times: the store knows them.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import quote

from nurture.channels.calendar import CalendarEvent, calendar
from nurture.channels.protocol import TemporaryFailure
from nurture.errors import ConfigError

OURS = "@nurture"
CALENDAR_SCOPE = "https://www.googleapis.com/auth/calendar"
CONTENT_TYPE = 'text/calendar; charset="utf-8"'
Busy = tuple[datetime, datetime]


class CalDavCalendar:
    """One calendar of a CalDAV account (`[availability.caldav]`)."""

    def __init__(self, url: str, username: str | None, password: str | None, **options: Any):
        self.url, self.username, self.password = url, username, password
        self.name: str | None = options.get("calendar")
        self.timeout = float(options.get("timeout", 10.0))
        self.auth: Any = options.get("auth")  # a requests AuthBase (OAuth) instead of a password
        self._calendar: Any = None

    @classmethod
    def of(cls, settings: Any) -> "CalDavCalendar":
        """From `[availability.caldav]` (its password, or its OAuth client's secret and refresh
        token, from the environment or .env)."""
        password = settings.password.get_secret_value() if settings.password else None
        auth = None
        if settings.oauth is not None:
            from nurture.channels.oauth import RefreshTokenAuth

            auth = RefreshTokenAuth.of(settings.oauth, settings.timeout)
        return cls(
            settings.url,
            settings.username,
            password,
            calendar=settings.calendar,
            timeout=settings.timeout,
            auth=auth,
        )

    def busy(self, start: datetime, end: datetime) -> list[Busy]:
        """The coach's busy periods between start and end (UTC), but nurture's own events."""
        with self._failing("read"):
            found = self._open().search(start=start, end=end, event=True, expand=True)
            return sorted(period for item in found for period in _periods(item.icalendar_instance))

    def put(self, event: CalendarEvent) -> None:
        """Write the appointment (a cancelled one as STATUS:CANCELLED), replacing its copy."""
        from caldav.lib.error import PutError

        with self._failing("write to"):
            found = self._open()
            url = found.url.join(quote(event.uid, safe="@") + ".ics")
            body, headers = calendar([event]).decode(), {"Content-Type": CONTENT_TYPE}
            answer = found.client.put(str(url), body, headers)  # the event's own URL: idempotent
            if answer.status not in (200, 201, 204):
                raise PutError(f"HTTP {answer.status}")

    def check(self) -> str:
        """Reach the calendar: its name, or TemporaryFailure / ConfigError saying why not."""
        with self._failing("reach"):
            return str(self._open().get_display_name() or self.url)

    def _open(self) -> Any:
        if self._calendar is None:
            import caldav

            client = caldav.DAVClient(
                self.url,
                username=self.username,
                password=self.password,
                auth=self.auth,
                timeout=int(self.timeout),
            )
            self._calendar = self._pick(client)
        return self._calendar

    def _pick(self, client: Any) -> Any:
        if self.name is None:
            return client.calendar(url=self.url)
        calendars = client.principal().calendars()
        named = [c for c in calendars if (c.get_display_name() or "") == self.name]
        if not named:
            names = ", ".join(str(c.get_display_name()) for c in calendars) or "none"
            raise ConfigError(f"no calendar {self.name!r} at {self.url} (there are: {names})")
        return named[0]

    @contextmanager
    def _failing(self, doing: str) -> Iterator[None]:
        """CalDAV's and the network's errors as TemporaryFailure, naming the calendar only."""
        from caldav.lib.error import AuthorizationError, DAVError
        from requests import RequestException

        try:
            yield
        except AuthorizationError:
            self._calendar = None
            raise ConfigError(
                f"the coach's calendar at {self.url} refused {self._login()}"
            ) from None
        except (DAVError, RequestException, OSError) as error:
            self._calendar = None
            reason = type(error).__name__
            raise TemporaryFailure(
                f"could not {doing} the coach's calendar at {self.url} ({reason})"
            ) from None

    def _login(self) -> str:
        if self.auth is None:
            return "the username or password (NURTURE_AVAILABILITY__CALDAV__PASSWORD)"
        return (
            "the OAuth access token: is the CalDAV API enabled in the client's project, and was "
            f"the refresh token granted the scope {CALENDAR_SCOPE}? ([availability.caldav.oauth])"
        )


def _periods(instance: Any) -> Iterator[Busy]:
    for component in instance.walk("VEVENT"):
        uid = str(component.get("uid", ""))
        status = str(component.get("status", "")).upper()
        transparent = str(component.get("transp", "")).upper() == "TRANSPARENT"
        if uid.endswith(OURS) or status == "CANCELLED" or transparent:
            continue
        start = _instant(component.decoded("dtstart"))
        end = _instant(component.decoded("dtend")) if "dtend" in component else None
        if end is None and "duration" in component:
            end = start + component.decoded("duration")
        yield start, end or start + timedelta(days=1 if _all_day(component) else 0)


def _all_day(component: Any) -> bool:
    return not isinstance(component.decoded("dtstart"), datetime)


def _instant(value: date | datetime) -> datetime:
    """A DTSTART/DTEND as UTC: a date is midnight UTC; a floating time is taken as UTC."""
    if not isinstance(value, datetime):
        return datetime.combine(value, time(0), UTC)
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
