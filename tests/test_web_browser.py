"""The dashboard in Debian's Chromium (Playwright), served by a real `nurture serve` process."""

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from builders import sequence, step, write
from test_serve import free_port, wait_healthy

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
    port = free_port()
    command = [sys.executable, "-m", "nurture", "--database-url", store_url, "serve"]
    server = subprocess.Popen(
        [*command, "--port", str(port), "--no-access-log"],
        cwd=project,
        env=os.environ | {"PYTHONPATH": str(Path(__file__).parents[1])},
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, server)
        yield url
    finally:
        server.send_signal(signal.SIGTERM)
        log = server.communicate(timeout=30)[1].decode()
    assert "dashboard at" in log and "sign in as 'coach' (editor)" in log


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
        page = browser.new_page()
        page.goto(f"{served}/funnels")
        assert page.url.startswith(f"{served}/signin?next=")
        assert page.get_by_role("heading", name="Sign in to the dashboard").is_visible()
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


def test_analytics_update_without_a_reload(page, served, run_store):
    page.goto(f"{served}/analytics")
    assigned = page.locator('tr[data-sequence="Alpha"] td[data-figure="assigned"]')
    assert assigned.inner_text() == "0"
    page.evaluate("window.notReloaded = true")
    added = run_store("leads", "add", "--funnel", "website", "--name", "Ana", "--score", "10")
    assert added.exit_code == 0, added.output
    page.locator('tr[data-sequence="Alpha"] td[data-figure="assigned"]', has_text="1").wait_for()
    assert page.evaluate("window.notReloaded") is True


@pytest.mark.parametrize("width", [1280, 390])
def test_every_page_fits_a_desktop_and_a_phone(page, served, run_store, tmp_path, width):
    """Each page without a script error, no wider than the screen; screenshots for the docs
    where DASHBOARD_SCREENSHOTS names a folder (docs/images: `make screenshots`)."""
    added = run_store("leads", "add", "--funnel", "website", "--name", "Ana Silva", "--score", "10")
    assert added.exit_code == 0
    assert run_store("run", "--once").exit_code == 0
    page.set_viewport_size({"width": width, "height": 900})
    folder = Path(SCREENSHOTS or tmp_path)
    for name in ("sequences", "funnels", "analytics", "leads", "leads/1", "inbox", "activity"):
        page.goto(f"{served}/{name}")
        page.wait_for_load_state("networkidle") if name != "analytics" else None
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"/{name} is {overflow}px wider than {width}px"
        if width > 400:
            page.screenshot(path=str(folder / f"dashboard-{name.replace('/1', '-lead')}.png"))
