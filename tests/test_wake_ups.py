"""`make demo`'s simulated daemon (scripts/wake_ups.py): every step runs when it is due, so the
stats of its history read as a real one (no lag, completion times as the delays say)."""

import importlib.util
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from builders import sequence, step, write

SCRIPT = Path(__file__).parent.parent / "scripts" / "wake_ups.py"


@pytest.fixture
def wake_ups():
    spec = importlib.util.spec_from_file_location("wake_ups", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_demo_clock_runs_each_step_when_it_is_due(run, project, wake_ups):
    steps = [step("Hello"), step("Tip", delay_hours=1), step("Offer", delay_days=1)]
    write(project, "welcome.yaml", sequence("Welcome", *steps, funnels=["website"]))
    assert run("apply", "--yes").exit_code == 0
    for name, phone in (("Ana Ruiz", "+447400555101"), ("Ben Okafor", "+447400555102")):
        lead = ["--name", name, "--phone", phone]
        assert run("leads", "add", "--funnel", "website", *lead).exit_code == 0
    shown: list[str] = []
    wake_ups.play(datetime.now(UTC) + timedelta(days=3), shown.append)
    assert "".join(shown).count("[sms] to +44740055510") == 6  # the console printed each one
    stats = json.loads(run("stats", "welcome", "--json").output)
    [summary] = stats["summary"]
    assert summary["assigned"] == 2 and summary["active"] == 0
    assert summary["median_completion_seconds"] == pytest.approx(25 * 3600, abs=1)
    # a step runs when due (a lead due a moment after another waits for the next second)
    assert all(s["avg_lag_seconds"] < 1 for s in stats["steps"]), stats["steps"]
