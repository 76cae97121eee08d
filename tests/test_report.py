"""`nurture report --html`: one self-contained file whose charts draw in a real browser."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import histories
import pytest

from nurture.store.db import open_store

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def write_report(run, store_url: str, project: Path) -> Path:
    with open_store(store_url) as store:
        histories.build(store, project)
    path = project / "report.html"
    result = run("--database-url", store_url, "report", "--html", str(path))
    assert result.exit_code == 0, result.output
    return path


def embedded_data(html: str) -> dict:
    found = re.search(
        r'<script id="report-data" type="application/json">(.*?)</script>', html, re.S
    )
    return json.loads(found.group(1))


def test_the_report_is_one_file_with_nothing_to_fetch(run, store_url, project):
    html = write_report(run, store_url, project).read_text()
    assert not re.search(r"<(link|img|iframe)\b|<script[^>]*\bsrc=|url\(|@import", html)
    assert set(re.findall(r"https?://[^\s\"'<>]+", html)) == {"http://www.w3.org/2000/svg"}
    data = embedded_data(html)
    assert data["conversions"] == [{"sequence": "Welcome", "day": "2025-03-03", "converted": 1}]
    assert [s["reached"] for s in data["dropoff"]["Welcome"]] == [6, 5, 5]
    assert data["failures"] == [{"channel": "email", "reason": "no email address", "failed": 1}]
    assert "<td>Welcome</td><td>6</td>" in html


def rendered_dom(path: Path) -> str:
    """The page after its scripts ran, as headless Chromium leaves it."""
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", path.as_uri()]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_the_charts_draw_in_headless_chromium(run, tmp_path, project):
    dom = rendered_dom(write_report(run, f"sqlite:///{tmp_path / 'nurture.db'}", project))
    # conversions, the drop-off box and its two sequences, failures
    assert 'data-charts-drawn="5"' in dom
    assert re.findall(r'<polyline[^>]*data-series="([^"]+)"', dom) == ["Welcome"]
    bars = re.findall(r'<rect[^>]*class="bar"[^>]*data-value="(\d+)"', dom)
    assert bars == ["4", "6", "5", "5", "1"]  # Short's step, Welcome's three, one failure
    widths = [float(w) for w in re.findall(r'<rect[^>]*width="([\d.]+)"[^>]*class="bar"', dom)]
    assert widths[1] > widths[2] > 0  # 5 of 6 is drawn shorter than 6
    assert "email: no email address" in dom
