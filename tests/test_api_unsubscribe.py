"""`/u/{token}`: the unsubscribe link of a real email (aiosmtpd) opts the lead out, with a page."""

import re
from urllib.parse import urlsplit

import pytest
from builders import sequence, step
from enrolling import T0, apply, enroll, lead_of
from servers import Mailbox, smtp_server
from serving import serving

from nurture.channels import channels_for
from nurture.channels.config import SmtpConfig
from nurture.channels.unsubscribe import make_token
from nurture.engine.dispatch import EngineConfig, run_due
from nurture.settings import load_settings
from nurture.store.tables import Lead

SECRET = "unsubscribe-secret"
PUBLIC = "https://nurture.example.com/coach"


@pytest.fixture
def configured(project):
    """A project that knows where `nurture serve` is reached, with an unsubscribe secret."""
    (project / "nurture.toml").write_text(f'timezone = "UTC"\n[api]\npublic_url = "{PUBLIC}/"\n')
    (project / ".env").write_text(f"NURTURE_UNSUBSCRIBE__SECRET={SECRET}\n")
    return project


def mailed_link(store, project, store_url) -> tuple[str, int]:
    """Send the lead an email through a real SMTP server; the link in it and the lead's id."""
    body = {"subject": "Hi", "body": "Hello {{ lead.first_name }}"}
    apply(store, project, sequence("Mail", step("Hello", "send_email", action_config=body)))
    enrollment_id = enroll(store, "Mail", name="Sam Carter")
    mailbox = Mailbox()
    with smtp_server(mailbox) as port:
        settings = load_settings(project, database_url=store_url)
        relay = {"host": "127.0.0.1", "port": port, "security": "none"}
        settings.email = SmtpConfig(**relay, from_address="coach@example.com")
        channels = channels_for("live", store, settings.providers)
        assert run_due(store, T0, EngineConfig(worker="w"), channels) == 1
    [mail] = mailbox.messages
    text = mail.get_body(("plain",)).get_content()
    link = re.search(r"https://\S+", text).group(0)
    assert f'href="{link}"' in mail.get_body(("html",)).get_content()
    assert f"<{link}>" in mail["List-Unsubscribe"]
    return link, lead_of(store, enrollment_id).id


def opted_out(client, lead_id: int) -> list[str]:
    with client.app.state.context.store.session() as session:
        return session.get(Lead, lead_id).opted_out


def test_the_link_in_an_email_opens_a_page_that_unsubscribes_the_lead(configured, store, store_url):
    link, lead_id = mailed_link(store, configured, store_url)
    assert link.startswith(f"{PUBLIC}/u/")
    with serving(configured, store_url) as client:
        page = client.get(urlsplit(link).path.removeprefix("/coach"))
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "You are unsubscribed: you will get no more email from us." in page.text
        assert opted_out(client, lead_id) == ["email"]
        again = client.get(urlsplit(link).path.removeprefix("/coach"))
        assert again.status_code == 200 and "You were already unsubscribed" in again.text


def test_one_click_unsubscribe_is_a_post_without_a_bearer_token(configured, store, store_url):
    with serving(configured, store_url) as client:
        link, lead_id = mailed_link(store, configured, store_url)
        answer = client.post(
            urlsplit(link).path.removeprefix("/coach"), data={"List-Unsubscribe": "One-Click"}
        )
        assert answer.status_code == 200 and opted_out(client, lead_id) == ["email"]


@pytest.mark.parametrize(
    ("token", "status", "says"),
    [
        (make_token("another project's secret", 1), 400, "not complete or not valid"),
        ("garbage", 400, "not complete or not valid"),
        (make_token(SECRET, 999), 404, "no longer hold your details"),
    ],
)
def test_bad_tokens_get_a_page_not_a_traceback(configured, store, store_url, token, status, says):
    with serving(configured, store_url) as client:
        page = client.get(f"/u/{token}")
        assert page.status_code == status and says in page.text
        assert page.headers["content-type"].startswith("text/html")
        assert "Traceback" not in page.text


def test_without_a_secret_the_page_says_it_is_unavailable(project, store, store_url):
    with serving(project, store_url) as client:
        page = client.get(f"/u/{make_token(SECRET, 1)}")
        assert page.status_code == 503 and "not available right now" in page.text


def test_a_public_url_without_a_scheme_is_refused(project, run):
    (project / "nurture.toml").write_text('[api]\npublic_url = "nurture.example.com"\n')
    result = run("config", "show")
    assert result.exit_code == 1 and "api.public_url" in result.output


def test_an_unsubscribe_page_of_its_own_wins_over_the_public_url(project):
    (project / "nurture.toml").write_text(
        '[api]\npublic_url = "https://a.example.com"\n'
        '[unsubscribe]\nurl = "https://b.example.com/stop/{token}"\n'
    )
    assert load_settings(project).providers.unsubscribe.url == "https://b.example.com/stop/{token}"
