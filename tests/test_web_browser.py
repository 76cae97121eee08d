"""The dashboard in Debian's Chromium (Playwright), served by a real `nurture serve` process."""

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from builders import sequence, step, write
from serving import nurture_env, serve_process

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = os.environ.get("DASHBOARD_SCREENSHOTS")
SCREENSHOTS = str(Path(SCREENSHOTS).resolve()) if SCREENSHOTS else None  # before a test's chdir
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is not installed (apt-get install chromium)"
)
ALPHA = """\
name: Alpha   # shown to the coach
category: warm_lead
priority: 1
funnels: [website]   # the main form
steps:
  - name: Hello
    action_type: send_sms
    action_config:
      message: "Hi {{ lead.first_name }}!"
"""
PAGES = {
    "sequences": "sequences",
    "builder?sequence=alpha": None,  # the coach flow's test takes the builder's
    "funnels": "funnels",
    "analytics": "analytics",
    "leads": "leads",
    "leads/1": "leads-lead",
    "inbox": "inbox",
    "activity": "activity",
}
"""Each page the phone and desktop test visits, and the name of its screenshot in the docs."""


def screenshot(target: Any, name: str) -> None:
    """A page's or an element's picture in docs/images, where DASHBOARD_SCREENSHOTS asks."""
    if SCREENSHOTS:
        target.screenshot(path=str(Path(SCREENSHOTS) / f"dashboard-{name}.png"))


FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def served(run_store, project, store_url) -> Iterator[str]:
    """`nurture serve` on a free port, on a project with Alpha and Beta on the website funnel."""
    write(project, "alpha.yaml", ALPHA)
    write(project, "beta.yaml", sequence("Beta", step("Welcome"), funnels=["website"]))
    assert run_store("apply", "--yes").exit_code == 0
    assert run_store("tokens", "create", "coach", "--scope", "dashboard:edit").exit_code == 0
    with serve_process(project, store_url, "--no-access-log") as served:
        yield served.url
    assert "dashboard at" in served.log and "sign in as 'coach' (editor)" in served.log


@pytest.fixture
def page(served, run_store):
    """A Chromium page signed in through the link `nurture dashboard link` prints."""
    from playwright.sync_api import sync_playwright

    link = run_store("dashboard", "link", "--url", served).stdout.strip()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        page = browser.new_page()
        page.set_default_timeout(15_000)
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.goto(link)
        page.wait_for_url(f"{served}/sequences")
        yield page
        browser.close()
    assert not problems, problems  # no script error, nothing the page's CSP refused


def test_signing_in_takes_the_code_out_of_the_address(page, served):
    assert "#" not in page.url
    assert page.get_by_role("rowheader", name=re.compile("Alpha")).is_visible()
    assert page.get_by_text("coach (editor)").is_visible()


def test_a_visitor_without_a_session_sees_the_sign_in_page(served):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 600})
        page.goto(f"{served}/funnels")
        assert page.url.startswith(f"{served}/signin?next=")
        assert page.get_by_role("heading", name="Sign in to the dashboard").is_visible()
        screenshot(page, "signin")
        browser.close()


def test_toggling_a_sequence_writes_its_file(page, project):
    page.get_by_role("button", name="Deactivate Alpha").click()
    page.get_by_role("button", name="Activate Alpha").wait_for()
    page.locator("#flash", has_text="applied: update Alpha").wait_for()
    text = (project / "sequences" / "alpha.yaml").read_text()
    assert "active: false" in text and "# the main form" in text


def test_dragging_a_sequence_reorders_the_funnel(page, served, project):
    page.goto(f"{served}/funnels")
    items = page.locator("#funnel-website ol li")
    assert items.nth(0).inner_text().startswith("⠿\nAlpha") or "Alpha" in items.nth(0).inner_text()
    items.nth(1).locator(".handle").drag_to(items.nth(0).locator(".handle"))
    page.locator("#flash", has_text="applied").wait_for()
    assert "Beta" in page.locator("#funnel-website ol li").nth(0).inner_text()
    beta = yaml.safe_load((project / "sequences" / "beta.yaml").read_text())
    assert beta["priority"] == 2


def test_the_keyboard_reorders_too(page, served, project):
    page.goto(f"{served}/funnels")
    page.get_by_role("button", name="Move Beta up").focus()
    page.keyboard.press("Enter")
    page.locator("#flash", has_text="applied").wait_for()
    assert "Beta" in page.locator("#funnel-website ol li").nth(0).inner_text()


def test_analytics_update_without_a_reload(page, served, run_store, store_url, project):
    """A lead added, then the steps a real `nurture run` daemon executes: the page follows both."""
    page.goto(f"{served}/analytics")
    row = 'tr[data-sequence="Alpha"] td[data-figure="{}"]'
    assert page.locator(row.format("assigned")).inner_text() == "0"
    page.evaluate("window.notReloaded = true")
    added = run_store("leads", "add", "--funnel", "website", "--name", "Ana", "--score", "10")
    assert added.exit_code == 0, added.output
    page.locator(row.format("assigned"), has_text="1").wait_for()
    assert page.locator(row.format("completed")).inner_text() == "0"
    command = [sys.executable, "-m", "nurture", "--database-url", store_url, "run", "--poll", "0.2"]
    daemon = subprocess.Popen(command, cwd=project, env=nurture_env(), stderr=subprocess.PIPE)
    try:
        page.locator(row.format("completed"), has_text="1").wait_for(timeout=60_000)
        assert page.locator(row.format("active")).inner_text() == "0"
    finally:
        daemon.send_signal(signal.SIGTERM)
        log = daemon.communicate(timeout=30)[1].decode()
    assert daemon.returncode == 0, log
    assert page.evaluate("window.notReloaded") is True


def test_a_reply_and_its_note_appear_in_the_inbox_without_a_reload(page, served, run_store):
    added = run_store("leads", "add", "--funnel", "website", "--name", "Ana Silva", "--phone",
                      "+14155552671")  # fmt: skip
    assert added.exit_code == 0, added.output
    page.goto(f"{served}/inbox")
    assert page.get_by_text("No reply yet.").is_visible()
    page.evaluate("window.notReloaded = true")
    wrote = run_store("leads", "inbound", "+14155552671", "-c", "sms", "--text", "Call me <3")
    assert wrote.exit_code == 0, wrote.output
    reply = page.locator("#replies article.reply").first
    reply.filter(has_text="Call me <3").wait_for()
    assert "Ana Silva" in reply.inner_text() and "sms" in reply.inner_text()
    assert page.get_by_text("No reply yet.").is_hidden()
    note = page.locator("#notifications .notification", has_text="replied by sms: “Call me <3”")
    note.wait_for()  # the coach's note of it, live too
    assert page.get_by_text("No notification.").is_hidden()
    run_store("leads", "inbound", "+14155552671", "-c", "sms", "--text", "Or email")
    page.locator("#replies article.reply").first.filter(has_text="Or email").wait_for()
    assert page.locator("#replies article.reply").count() == 2  # newest first, each once
    assert page.evaluate("window.notReloaded") is True


def test_a_task_is_marked_done_from_the_inbox(page, served, run_store, project):
    write(project, "calls.yaml", sequence("Calls", step("Call", "create_task"), funnels=["calls"]))
    assert run_store("apply", "--yes").exit_code == 0
    assert run_store("leads", "add", "--funnel", "calls", "--name", "Ana Silva").exit_code == 0
    assert run_store("run", "--once").exit_code == 0
    page.goto(f"{served}/inbox")
    page.get_by_role("button", name="Mark Call Ana Silva done").click()
    page.locator("#flash", has_text="done: Call Ana Silva").wait_for()
    page.locator("#tasks", has_text="Nothing to do.").wait_for()
    assert json.loads(run_store("tasks", "list", "--json").stdout) == []


def test_a_post_without_the_csrf_token_is_refused(page, served, project):
    """The signed-in browser's own cookie, but not the page's token: 403, nothing changed."""
    answer = page.request.post(f"{served}/sequences/alpha/toggle")  # the context's cookies
    assert answer.status == 403 and "CSRF token is missing or wrong" in answer.text()
    assert "active: false" not in (project / "sequences" / "alpha.yaml").read_text()


@pytest.mark.parametrize("width", [1280, 390])
def test_every_page_fits_a_desktop_and_a_phone(page, served, run_store, tmp_path, width):
    """Each page without a script error, no wider than the screen; screenshots for the docs
    where DASHBOARD_SCREENSHOTS names a folder (docs/images: `make screenshots`)."""
    added = run_store("leads", "add", "--funnel", "website", "--name", "Ana Silva", "--score", "10",
                      "--phone", "+14155552671")  # fmt: skip
    assert added.exit_code == 0
    assert run_store("run", "--once").exit_code == 0
    page.set_viewport_size({"width": width, "height": 900})
    folder = Path(SCREENSHOTS or tmp_path)
    run_store("leads", "inbound", "1", "-c", "sms", "--text", "Yes, Tuesday works for me!")
    for name in PAGES:
        page.goto(f"{served}/{name}")
        page.wait_for_load_state("networkidle") if name != "analytics" else None
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"/{name} is {overflow}px wider than {width}px"
        if width > 400 and PAGES[name]:
            page.screenshot(path=str(folder / f"dashboard-{PAGES[name]}.png"))


def test_the_coach_flow_from_a_template_to_the_applied_file(page, served, project):
    """Create from a template, drag a step, fix the mistake validate shows beside its field,
    preview, save: the plan, then apply; the new file has the change and the template's
    comments. Screenshots of the builder with its preview for the docs."""
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{served}/builder")
    page.get_by_label("Name", exact=True).fill("Spring Webinar")
    page.get_by_label("Start from").select_option("webinar-follow-up")
    page.get_by_role("button", name="Start building").click()
    page.get_by_text("A new sequence: saving writes").wait_for()
    assert page.locator("#diagnostics").inner_text() == "✓ valid"
    steps = page.locator("ol.steps li")
    assert "Thanks for coming" in steps.nth(0).inner_text()
    assert "The replay" in steps.nth(1).inner_text()
    steps.nth(1).locator(".handle").drag_to(steps.nth(0).locator(".handle"))
    page.locator("ol.steps li").nth(0).filter(has_text="The replay").wait_for()
    page.locator("#step-0 > summary", has_text="The replay").wait_for()  # the server's answer
    assert "Thanks for coming" in page.locator("ol.steps li").nth(1).inner_text()
    screenshot(page, "builder")

    last_day = page.locator('details[id^="step-"]', has_text="Last day")
    last_day.locator("> summary").click()
    message = last_day.locator('textarea[name="action_config.message"]')
    message.fill("Hi {{ lead.frist_name }}, the offer ends tonight.")
    message.press("Tab")  # the change posts the draft; the builder comes back checked
    problem = page.locator(".field.invalid .problem")
    problem.wait_for()
    words = "message: unknown template variable 'lead.frist_name' (did you mean 'lead.first_name'?)"
    assert problem.inner_text() == words
    assert words in page.locator("#diagnostics").inner_text()
    last_day = page.locator('details[id^="step-"]', has_text="Last day")
    message = last_day.locator('textarea[name="action_config.message"]')
    assert message.get_attribute("aria-invalid") == "true"
    screenshot(last_day.locator("fieldset").first, "builder-problem")
    message.fill("Hi {{ lead.first_name }}, the offer ends tonight.")
    message.press("Tab")
    page.locator("#diagnostics", has_text="✓ valid").wait_for()
    assert page.locator(".problem").count() == 0

    page.locator("#p-name").fill("Ana Silva")  # the preview's sample lead
    page.locator("#p-status").fill("Registered")
    page.locator("#p-funnel").fill("webinar")
    page.get_by_role("button", name="Preview").click()
    timeline = page.locator("#timeline")
    timeline.wait_for()
    rows = timeline.locator("tbody tr")
    assert rows.nth(0).locator("td").nth(2).inner_text() == "replay"  # the step dragged first
    assert "You missed it, Ana" in rows.nth(0).inner_text()
    last = timeline.locator("tbody tr", has_text="last-day")
    assert "Hi Ana, the offer ends tonight." in last.inner_text()
    assert "{{" not in timeline.inner_text()
    screenshot(page.locator("section", has=page.locator("#preview-title")), "builder-preview")

    page.get_by_role("button", name="Save…").click()
    page.locator("#plan-changes", has_text="create Spring Webinar").wait_for()
    assert not (project / "sequences" / "spring-webinar.yaml").exists()  # planned, not written
    page.get_by_role("button", name="Apply").click()
    page.locator("#flash", has_text="applied: create Spring Webinar").wait_for()
    text = (project / "sequences" / "spring-webinar.yaml").read_text()
    data = yaml.safe_load(text)
    assert data["name"] == "Spring Webinar"
    assert [s["name"] for s in data["steps"]][:2] == ["The replay", "Thanks for coming"]
    sms = next(s for s in data["steps"] if s["name"] == "Last day")
    assert sms["action_config"]["message"] == "Hi {{ lead.first_name }}, the offer ends tonight."
    assert "# Webinar Follow-Up: everyone who registered" in text
    assert "# every webinar is a new invitation" in text
