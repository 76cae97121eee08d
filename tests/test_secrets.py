"""No secret in any error: a provider's URL or token never reaches the execution log, `nurture
logs`, `stats`, the API, the HTML report or `channels check`, and a malformed one is refused
when the settings load (or, if it gets to a channel, fails its step once, never retried)."""

import json

import pytest
from builders import sequence, write
from enrolling import T0, apply, enroll, executions
from pydantic import SecretStr
from servers import Recorder, Reply, free_port
from serving import serving, token

from nurture.channels import OutgoingMessage, TemporaryFailure
from nurture.channels.config import NotificationsConfig, Providers
from nurture.channels.live import build
from nurture.channels.redact import redact, shown, url_secrets
from nurture.engine.dispatch import EngineConfig, run_due

HOOK = "/services/T0001/B0001/hook-secret-path"
SECRET = "hook-secret-path"
NOT_FOUND = f"<h1>Not Found</h1><p>The requested URL {HOOK} was not found on this server.</p>"
ALERT = {
    "name": "Alert",
    "action_type": "send_notification",
    "action_config": {"message": "{{ lead.name }} arrived"},
}


@pytest.fixture
def receiver():
    recorder = Recorder()
    with recorder.serving() as url:
        recorder.url = url
        yield recorder


def live_project(project, monkeypatch, slack_url: str) -> None:
    """A project that sends its notifications to Slack, the webhook URL in the environment."""
    with (project / "nurture.toml").open("a") as toml:
        toml.write('channel = "live"\n[notifications]\nalert_on_failure = false\n')
    monkeypatch.setenv("NURTURE_NOTIFICATIONS__SLACK_WEBHOOK_URL", slack_url)


@pytest.mark.parametrize(
    ("url", "said"),
    [
        (
            "hooks.slack.com" + HOOK,
            "the value is not a URL: it must start with https:// and a host",
        ),
        ("http://hooks.slack.com" + HOOK, "http://hooks.slack.com/… must use https://"),
        ("https://hooks.slack.com" + HOOK + "\n", "has a space or a control character"),
        (
            "https://hooks.slack.com/" + SECRET,
            "https://hooks.slack.com/… is not an incoming webhook",
        ),
        ("https://hooks.slack.com:44x" + HOOK, "is not a URL: its host or port cannot be read"),
        ("https://me:" + SECRET + "@hooks.slack.com/services/T1/B1/x", "carries a user name"),
    ],
)
def test_a_malformed_slack_url_is_refused_when_settings_load_and_never_shown(
    run, project, monkeypatch, url, said
):
    monkeypatch.setenv("NURTURE_NOTIFICATIONS__SLACK_WEBHOOK_URL", url)
    for command in (("config", "show"), ("run", "--once"), ("channels", "check")):
        result = run(*command)
        assert result.exit_code == 1, result.output
        assert "notifications.slack_webhook_url: " in result.stderr and said in result.stderr
        assert SECRET not in result.output and "T0001" not in result.output


@pytest.mark.parametrize(
    ("toml", "said"),
    [
        (
            '[notifications]\nwebhook_url = "http://crm.example.com/hooks?token=' + SECRET + '"\n',
            "notifications.webhook_url: http://crm.example.com/… must use https://",
        ),
        (
            '[twilio]\naccount_sid = "AC' + "0" * 32 + '"\nsms_from = "+15017122661"\n'
            'api_url = "https://user:' + SECRET + '@proxy.example.com"\n',
            "twilio.api_url: https://proxy.example.com carries a user name or password",
        ),
    ],
)
def test_a_url_setting_with_a_secret_in_it_is_refused_without_showing_it(run, project, toml, said):
    with (project / "nurture.toml").open("a") as file:
        file.write(toml)
    result = run("config", "show")
    assert result.exit_code == 1 and said in result.stderr
    assert SECRET not in result.output


def test_a_slack_error_that_echoes_the_url_leaves_no_secret_anywhere_a_user_looks(
    run, run_store, project, monkeypatch, receiver, store_url
):
    live_project(project, monkeypatch, receiver.url + HOOK)
    write(project, "alerts.yaml", sequence("Alerts", ALERT, funnels=["website"]))
    assert run_store("apply", "--yes").exit_code == 0
    added = run_store("leads", "add", "-f", "website", "--name", "Ana Ruiz", "--email", "a@x.co")
    assert added.exit_code == 0, added.output
    receiver.script.append(Reply(404, NOT_FOUND))  # a proxy's page, as Apache writes it

    ran = run_store("run", "--once")
    assert ran.exit_code == 0, ran.output
    assert [r.path for r in receiver.requests] == [HOOK]  # sent once: a 404 is not retried
    seen = {"run": ran.output}
    for command in (
        ("logs",),
        ("logs", "--json"),
        ("stats",),
        ("stats", "--json"),
        ("stats", "Alerts"),
        ("stats", "Alerts", "--json"),
        ("report", "--html", str(project / "report.html")),
    ):
        result = run_store(*command)
        assert result.exit_code == 0, result.output
        seen[" ".join(command)] = result.output
    seen["report.html"] = (project / "report.html").read_text()
    with serving(project, store_url) as api:
        headers = token(run_store, "dashboard", "read")
        seen["api stats"] = api.get("/api/nurturing-sequences/alerts/stats", headers=headers).text
    receiver.script.append(Reply(404, NOT_FOUND))
    seen["channels check"] = run_store("channels", "check", "notification", "--json").output
    receiver.script.append(Reply(404, NOT_FOUND))
    seen["send-test"] = run_store("channels", "send-test", "notification").stderr

    logged = json.loads(seen["logs --json"])
    assert logged[0]["status"] == "failed"
    assert logged[0]["error"].startswith("Slack HTTP 404: <h1>Not Found</h1><p>The requested URL")
    told = {where for where, text in seen.items() if "Slack HTTP 404" in text}
    assert {
        "logs",
        "stats Alerts",
        "report.html",
        "api stats",
        "channels check",
        "send-test",
    } <= told
    for where, text in seen.items():
        assert SECRET not in text and "T0001" not in text, where


def test_a_malformed_url_that_reaches_slack_fails_its_step_once_and_shows_no_secret(store, project):
    apply(store, project, sequence("Alerts", ALERT))
    enrollment_id = enroll(store, "Alerts")
    # A URL no check refused (settings built by code): the channel is the last line of defence.
    url = SecretStr("https://hooks.slack.com" + HOOK.replace("hook-", "hook "))
    config = NotificationsConfig.model_construct(slack_webhook_url=url, timeout=1.0)
    channels = build(Providers.model_construct(notifications=config, rate_limits={}))
    assert run_due(store, T0, EngineConfig(worker="w"), channels) == 1
    [execution] = executions(store, enrollment_id)
    assert execution.status == "failed" and execution.attempt == 1  # not retried
    assert execution.error.startswith("Slack: the URL https://hooks.slack.com/… is malformed")
    assert "secret" not in execution.error and "T0001" not in execution.error


def test_a_webhook_that_cannot_be_reached_is_retried_and_its_error_shows_no_path():
    url = f"http://127.0.0.1:{free_port()}/hooks/{SECRET}?token=t0k3n"  # nothing listens there
    channel = build(Providers(notifications=NotificationsConfig(webhook_url=url)))["notification"]
    note = OutgoingMessage(channel="notification", recipient="coach", body="Ana", key="1:a:1")
    with pytest.raises(TemporaryFailure) as raised:
        channel.send(note)
    assert str(raised.value) == "webhook: URLError: <urlopen error [Errno 111] Connection refused>"


@pytest.mark.parametrize(
    ("text", "secrets", "left"),
    [
        (
            "unknown url type: 'hooks.slack.com/services/T1/B1/abcd'",
            ["hooks.slack.com/services/T1/B1/abcd"],
            "unknown url type: '…'",
        ),
        (
            "POST https://me:pw@hooks.example.com/x/y?token=abc failed",
            [],
            "POST https://hooks.example.com/… failed",
        ),
        (
            "Max retries exceeded with url: /2010-04-01/Accounts/AC1/Messages.json",
            [],
            "Max retries exceeded with url: …",
        ),
        (
            "Authorization: Bearer nrt_abc.def refused; password=hunter2&user=x",
            [],
            "Authorization: Bearer … refused; password=…&user=x",
        ),
        ("token xoxb-1234-abcd was revoked", [], "token xox… was revoked"),
    ],
)
def test_redact_keeps_the_host_and_drops_every_secret(text, secrets, left):
    assert redact(text, secrets) == left


def test_a_url_is_shown_as_its_scheme_and_host():
    assert shown("https://hooks.slack.com" + HOOK) == "https://hooks.slack.com/…"
    assert shown("http://127.0.0.1:8080") == "http://127.0.0.1:8080"
    assert shown("hooks.slack.com" + HOOK) == "(not shown)"
    assert HOOK in url_secrets("https://hooks.slack.com" + HOOK)
