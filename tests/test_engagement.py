"""Engagement as a lead makes it: tracked links clicked on a real `nurture serve`, the open
pixel, conditions that test it, and waits that a click or a reply ends early."""

import http.client
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from builders import sequence, step
from enrolling import apply, drain, enroll, enrollment, executions, lead_of
from serving import live
from sqlalchemy import select

from nurture.channels.memory import MemoryChannel
from nurture.engine.config import Tracking
from nurture.leads import consent
from nurture.rules import links
from nurture.store.tables import EngagementEvent, Lead

SECRET = "link-secret"
BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 Safari/605.1.15"
OFFER = "https://example.com/offer?utm=drip"


def configure(project, *, pixel: bool = False) -> None:
    engagement = "[engagement]\nopen_pixel = true\n" if pixel else ""
    toml = f'timezone = "UTC"\n[api]\npublic_url = "https://go.example.com"\n{engagement}'
    (project / "nurture.toml").write_text(toml)
    (project / ".env").write_text(f"NURTURE_UNSUBSCRIBE__SECRET={SECRET}\n")


def email(name: str, body: str, **fields) -> dict:
    config = {"subject": name, "body": body}
    return step(name, "send_email") | {"action_config": config} | fields


def visit(base: str, address: str, method: str = "GET", agent: str = BROWSER):
    """A request for a link as a mail client makes it, no redirect followed: (status, headers, body)."""
    path = urlsplit(address).path
    host = urlsplit(base)
    connection = http.client.HTTPConnection(host.hostname, host.port, timeout=10)
    try:
        connection.request(method, path, headers={"User-Agent": agent})
        answer = connection.getresponse()
        return answer.status, dict(answer.getheaders()), answer.read().decode("latin-1")
    finally:
        connection.close()


def events(store, kind: str | None = None) -> list:
    table = EngagementEvent.__table__
    query = select(table).order_by(table.c.id)
    if kind:
        query = query.where(table.c.kind == kind)
    with store.begin() as connection:
        return list(connection.execute(query))


TRACKING = Tracking(SECRET, "https://go.example.com")
NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def tracked_link(message) -> str:
    return re.search(r"https://go\.example\.com/c/\S+", message.body).group(0)


@pytest.fixture
def clicked_sequence(project, store):
    """A welcome email with a tracked link, a wait of up to 2 days for a click, then two steps."""
    configure(project)
    steps = [
        email("Welcome", "Hi {{ lead.first_name }}, see {{ link('" + OFFER + "') }}."),
        step("Wait", "wait", wait_for={"event": "click", "timeout": "2d"}),
        step("Thanks", conditions={"clicked": ["welcome"]}),
        step("Nudge", conditions={"not_clicked": "welcome"}),
    ]
    apply(store, project, sequence("Offer", *steps))
    return enroll(store, "Offer", now=NOW, name="Sam Carter")


def test_a_click_redirects_counts_once_and_ends_the_wait(
    project, store, store_url, clicked_sequence
):
    channel = MemoryChannel()
    drain(store, NOW, channel, tracking=TRACKING)
    [welcome] = channel.sent
    address = tracked_link(welcome)
    assert OFFER not in welcome.body and address.endswith(".")  # the full stop stays text
    address = address[:-1]
    assert enrollment(store, clicked_sequence).next_run_at == NOW + timedelta(days=2)
    with live(project, store_url) as base:
        assert visit(base, address, "HEAD")[0] == 302  # a link checker: redirected, not counted
        assert visit(base, address, agent="Mozilla/5.0 (compatible; Barracuda Sentinel)")[0] == 302
        assert events(store, "clicked") == []
        status, headers, _ = visit(base, address)
        assert status == 302 and headers["location"] == OFFER
        assert visit(base, address)[0] == 302  # clicked again: still redirected
        forged = address[:-3] + ("AAA" if not address.endswith("AAA") else "BBB")
        status, _, page = visit(base, forged)
        assert status == 404 and "This link did not work" in page
        assert visit(base, base + "/c/not-a-token")[0] == 404
    [click] = events(store, "clicked")
    assert click.link == OFFER and click.step_id == "welcome"
    assert click.lead_id == lead_of(store, clicked_sequence).id
    woken = enrollment(store, clicked_sequence)
    assert woken.step_id == "wait" and woken.next_run_at <= datetime.now(UTC)
    later = datetime.now(UTC) + timedelta(seconds=1)
    drain(store, later, channel, tracking=TRACKING)
    drain(store, later, channel, tracking=TRACKING)
    log = {row.step_id: row for row in executions(store, clicked_sequence)}
    assert log["wait"].detail["came"] is True and log["wait"].finished_at < NOW + timedelta(days=1)
    assert log["thanks"].status == "sent" and log["nudge"].status == "skipped"
    assert "not_clicked" in log["nudge"].error


def test_without_a_click_the_wait_runs_to_its_timeout(project, store, clicked_sequence):
    channel = MemoryChannel()
    drain(store, NOW, channel, tracking=TRACKING)
    drain(store, NOW + timedelta(days=1), channel, tracking=TRACKING)
    assert enrollment(store, clicked_sequence).step_id == "wait"
    for _ in range(3):
        drain(store, NOW + timedelta(days=2), channel, tracking=TRACKING)
    log = {row.step_id: row for row in executions(store, clicked_sequence)}
    assert log["wait"].detail["came"] is False
    assert log["thanks"].status == "skipped" and log["nudge"].status == "sent"


def test_a_reply_wakes_a_wait_for_reply(project, store):
    configure(project)
    steps = [
        step("Ask"),
        step("Wait", "wait", wait_for={"event": "reply", "timeout": "3d"}),
        step("Follow up", conditions={"replied": False}),
        step("Great", conditions={"replied": True}),
    ]
    apply(store, project, sequence("Ask", *steps))
    enrolled = enroll(store, "Ask", now=NOW, phone="+12025550100")
    drain(store, NOW, MemoryChannel())
    replied_at = NOW + timedelta(hours=5)
    with store.session(immediate=True) as session:
        lead = session.get_one(Lead, lead_of(store, enrolled).id)
        consent.inbound(session, lead, replied_at, "Yes please", "sms")
    assert enrollment(store, enrolled).next_run_at == replied_at
    channel = MemoryChannel()
    drain(store, replied_at, channel)
    drain(store, replied_at, channel)
    log = {row.step_id: row for row in executions(store, enrolled)}
    assert log["wait"].detail["came"] is True
    assert log["follow-up"].status == "skipped" and log["great"].status == "sent"
    [reply] = events(store, "replied")
    assert reply.step_id == "ask" and reply.detail["text"] == "Yes please"


def test_track_links_rewrites_every_address_and_the_pixel_counts_an_open(project, store, store_url):
    configure(project, pixel=True)
    html = '<p>Read <a href="https://example.com/a?x=1&amp;y=2">this</a></p></body>'
    welcome = email("Welcome", "Go to https://example.com/a?x=1&y=2, or https://example.com/b")
    welcome["action_config"]["html"] = html
    apply(store, project, sequence("Newsletter", welcome, track_links=True))
    enrolled = enroll(store, "Newsletter", now=NOW)
    channel = MemoryChannel()
    drain(store, NOW, channel, tracking=Tracking(SECRET, "https://go.example.com", open_pixel=True))
    [message] = channel.sent
    assert "https://example.com" not in message.body and "https://example.com" not in message.html
    assert message.body.count("https://go.example.com/c/") == 2
    [sent] = executions(store, enrolled)
    assert sent.detail["links"] == ["https://example.com/a?x=1&y=2", "https://example.com/b"]
    pixel = re.search(r'src="(https://go\.example\.com/o/[^"]+)"', message.html).group(1)
    in_html = re.search(r'href="(https://go\.example\.com/c/[^"]+)"', message.html).group(1)
    with live(project, store_url) as base:
        status, headers, _ = visit(base, in_html)
        assert status == 302 and headers["location"] == "https://example.com/a?x=1&y=2"
        status, headers, body = visit(base, pixel)
        assert status == 200 and headers["content-type"] == "image/gif"
        visit(base, pixel)
    assert [(e.kind, e.execution_id) for e in events(store)] == [
        ("clicked", sent.id),
        ("opened", sent.id),
    ]


def test_a_token_names_one_link_of_one_message_and_cannot_be_forged():
    token = links.make_token(SECRET, "12:welcome:1", 0)
    assert links.read_token(SECRET, token) == links.Target(12, "welcome", 1, "0")
    with pytest.raises(Exception, match="signature"):
        links.read_token("another-secret", token)
    with pytest.raises(Exception, match="not a link token"):
        links.read_token(SECRET, token[:5])


def test_the_engagement_score_weighs_events_by_kind_and_halves_them_every_half_life():
    from nurture.rules.engagement import Event, Scoring, score

    now = datetime(2025, 3, 17, tzinfo=UTC)
    click, reply = Event("clicked", now), Event("replied", now - timedelta(days=14))
    assert score([click], now) == 3.0 and score([reply], now) == 2.5
    assert score([click, reply, Event("delivered", now)], now) == 5.5
    assert score([Event("clicked", now + timedelta(days=1))], now) == 0.0  # not yet
    faster = Scoring(half_life=timedelta(days=7))
    assert score([reply], now, faster) == 1.2  # 5 x 0.25


def test_explain_says_why_an_engagement_condition_held_or_not(project, store, run_store):
    configure(project)
    steps = [
        email("Welcome", "Hi, see {{ link('" + OFFER + "') }}"),
        step("Thanks", conditions={"clicked": "welcome"}, delay_hours=1),
        step("Nudge", conditions={"not_clicked": "welcome"}, delay_hours=1),
    ]
    apply(store, project, sequence("Offer", *steps))
    enrolled = enroll(store, "Offer", now=NOW)
    channel = MemoryChannel()
    drain(store, NOW, channel, tracking=TRACKING)
    shown = run_store("explain", str(lead_of(store, enrolled).id)).stdout
    assert "Engagement: no events yet" in shown
    assert "next step's engagement: ✗ clicked: wants a click in welcome, lead has no click" in shown
    [sent] = executions(store, enrolled)
    with store.begin(immediate=True) as connection:
        from nurture.leads.engagement import Happened, record

        record(
            connection, Happened(sent.lead_id, "clicked", NOW, f"clicked:{sent.id}:0", sent, OFFER)
        )
    drain(store, NOW + timedelta(hours=1), channel, tracking=TRACKING)
    drain(store, NOW + timedelta(hours=2), channel, tracking=TRACKING)
    shown = run_store("explain", str(lead_of(store, enrolled).id)).stdout
    assert "clicked on welcome (https://example.com/offer?utm=drip)" in shown
    assert (
        "conditions held: ✓ clicked: wants a click in welcome, lead has a click in welcome" in shown
    )
    assert "✗ not_clicked: wants no click in welcome" in shown


def test_a_conversion_ends_a_wait_for_convert_where_the_sequence_goes_on(project, store, run_store):
    configure(project)
    steps = [
        step("Offer"),
        step("Wait", "wait", wait_for={"event": "convert", "timeout": "2d"}),
        step("Welcome aboard", conditions={"lead_status": "Converted"}),
    ]
    apply(store, project, sequence("Trial", *steps, stop_on_conversion=False))
    enrolled = enroll(store, "Trial", now=NOW)
    drain(store, NOW, MemoryChannel())
    assert run_store("leads", "convert", str(lead_of(store, enrolled).id)).exit_code == 0
    assert enrollment(store, enrolled).next_run_at <= datetime.now(UTC)
    later = datetime.now(UTC) + timedelta(seconds=1)
    drain(store, later, MemoryChannel())
    drain(store, later, MemoryChannel())
    log = {row.step_id: row for row in executions(store, enrolled)}
    assert log["wait"].detail["came"] is True and log["welcome-aboard"].status == "sent"
    assert [e.kind for e in events(store)] == ["converted"]
