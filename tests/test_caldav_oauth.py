"""Google's CalDAV takes only OAuth 2.0 Bearer tokens: against Radicale behind a Bearer-only proxy
and a local token endpoint, access tokens are fetched with the refresh token, kept until they
expire, renewed when refused, and a refused refresh token or client says which setting to fix.

(Busy times, bookings and `check-calendar` over OAuth: test_caldav.py runs each of its tests
with a password and with OAuth.)"""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from calendars import CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN, Login, dentist, oauth_login, ours

from nurture.channels.caldav import CalDavCalendar
from nurture.channels.calendar import CalendarEvent, Person
from nurture.channels.oauth import RefreshTokenAuth
from nurture.errors import ConfigError
from nurture.settings import load_settings

SECRETS = (CLIENT_SECRET, REFRESH_TOKEN, "ya29.")
HOURS = '[availability]\nnotice = "0m"\n[availability.hours]\nmon = "09:00-17:00"\n'
VARIABLE = "NURTURE_AVAILABILITY__CALDAV__OAUTH__"


def _tomorrow_at(hour: int) -> datetime:
    day = datetime.now(UTC).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


@contextmanager
def google(radicale: str, calendar: Any, expires_in: int) -> Iterator[tuple[Login, CalDavCalendar]]:
    """Kim's calendar over OAuth, access tokens lasting `expires_in` s; the dentist's at 10:00
    tomorrow."""
    dentist(calendar, _tomorrow_at(10))
    with oauth_login(radicale, expires_in) as login:
        assert login.token_url is not None
        auth = RefreshTokenAuth(login.token_url, CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN)
        url = str(calendar.url).replace(radicale, login.url)
        yield login, CalDavCalendar(url, None, None, auth=auth)


@pytest.fixture
def project_on_google(project: Path, radicale: str, coach_calendar: Any) -> Iterator[Login]:
    """A project whose calendar is reached over OAuth."""
    with oauth_login(radicale) as login:
        with (project / "nurture.toml").open("a") as toml:
            toml.write(HOURS + login.settings(coach_calendar.url, radicale))
        (project / ".env").write_text(login.env)
        yield login


def _busy(calendar: CalDavCalendar) -> list[tuple[datetime, datetime]]:
    now = datetime.now(UTC)
    return calendar.busy(now, now + timedelta(days=2))


def test_an_access_token_is_kept_until_it_expires_then_renewed(radicale, coach_calendar):
    with google(radicale, coach_calendar, expires_in=1) as (login, calendar):
        assert _busy(calendar) == [(_tomorrow_at(10), _tomorrow_at(11))]
        assert _busy(calendar) == [(_tomorrow_at(10), _tomorrow_at(11))]
        assert login.tokens.grants == 1  # every request of both reads on one token
        time.sleep(1.0)  # it has expired
        assert len(_busy(calendar)) == 1
        assert login.tokens.grants == 2


def test_a_token_the_calendar_refuses_is_renewed_and_the_request_sent_again(
    radicale, coach_calendar
):
    with google(radicale, coach_calendar, expires_in=3600) as (login, calendar):
        assert len(_busy(calendar)) == 1
        login.tokens.tokens.clear()  # access tokens revoked early: the calendar answers 401
        start = _tomorrow_at(14)
        kim, ana = Person("Kim", "kim@example.com"), Person("Ana", "ana@example.com")
        event = CalendarEvent("appt-1@nurture", 0, "Call with Ana", start, 30, False, kim, ana)
        calendar.put(event)  # the PUT's body, sent again with the new token
        assert [e.decoded("dtstart") for e in ours(coach_calendar)] == [start]
        assert login.tokens.grants == 2


def test_a_revoked_refresh_token_says_which_setting_to_fix(run, project_on_google):
    project_on_google.tokens.revoke()
    checked = run("appointments", "check-calendar")
    assert checked.exit_code == 1
    message = " ".join(checked.output.split())
    assert "refused the refresh token (invalid_grant): Token has been expired or revoked" in message
    assert f"{VARIABLE}REFRESH_TOKEN" in message
    assert not any(secret in checked.output for secret in SECRETS)


def test_a_wrong_client_secret_says_so(run, project_on_google, project: Path):
    env = project / ".env"
    env.write_text(env.read_text().replace(CLIENT_SECRET, "GOCSPX-wrong-secret"))
    checked = run("appointments", "check-calendar")
    assert checked.exit_code == 1
    message = " ".join(checked.output.split())
    assert "refused the client (invalid_client)" in message
    assert f"{VARIABLE}CLIENT_SECRET" in message and "wrong-secret" not in message


def test_google_is_named_when_its_token_endpoint_refuses():
    auth = RefreshTokenAuth("https://oauth2.googleapis.com/token", CLIENT_ID, "s", "r")
    said = auth._refusal(400, {"error": "invalid_grant", "error_description": "Bad Request"})
    assert said.startswith("Google refused the refresh token (invalid_grant): Bad Request")


def test_the_oauth_secrets_come_from_the_environment_only(tmp_path: Path, monkeypatch):
    toml = tmp_path / "nurture.toml"
    calendar = (
        '[availability.caldav]\nurl = "https://apidata.googleusercontent.com/caldav/v2/k/events"\n'
    )
    oauth = f'[availability.caldav.oauth]\nclient_id = "{CLIENT_ID}"\n'
    toml.write_text(HOURS + calendar + oauth + f'refresh_token = "{REFRESH_TOKEN}"\n')
    with pytest.raises(ConfigError, match=f"{VARIABLE}REFRESH_TOKEN") as raised:
        load_settings(tmp_path)
    assert REFRESH_TOKEN not in str(raised.value)
    toml.write_text(HOURS + calendar + 'username = "kim"\n' + oauth)
    with pytest.raises(ConfigError, match="or a username/password, not both"):
        load_settings(tmp_path)


def test_without_its_secrets_validate_passes_and_the_calendar_says_what_is_missing(
    run, project: Path
):
    calendar = (
        '[availability.caldav]\nurl = "https://apidata.googleusercontent.com/caldav/v2/k/events"\n'
    )
    with (project / "nurture.toml").open("a") as toml:
        toml.write(HOURS + calendar + f'[availability.caldav.oauth]\nclient_id = "{CLIENT_ID}"\n')
    assert run("validate").exit_code == 0  # in CI, without the secrets
    checked = run("appointments", "check-calendar")
    assert checked.exit_code == 1
    assert f"needs {VARIABLE}CLIENT_SECRET: set it in the environment" in checked.output
