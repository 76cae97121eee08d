"""A month of a coach's funnels, played by the engine on a simulated clock, for `nurture stats`.

    python scripts/stats_example.py DIR    # then: cd DIR && nurture stats

DIR becomes a nurture project (`nurture init`, the repository's sequences, `apply`). 300 leads
arrive through four funnels over two weeks; the engine runs every hour for four weeks, as a
daemon would, with an in-memory channel where a few sends fail (temporarily or for good);
some leads convert along the way. Seeded: every run writes the same history.
"""

import random
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import select

from nurture.channels import OutgoingMessage, PermanentFailure, TemporaryFailure
from nurture.channels.memory import MemoryChannel
from nurture.engine.dispatch import run_due
from nurture.leads.records import LeadInput, LeadRules, add_lead, convert
from nurture.store.db import open_store
from nurture.store.tables import Enrollment, Lead

START = datetime(2026, 10, 5, 8, 0, tzinfo=UTC)  # a Monday
REPO = Path(__file__).resolve().parent.parent
FUNNELS = ["website-form", "lead-magnet", "instagram-ads", "referrals"]
SOURCES = {"website-form": "Web Form", "lead-magnet": "Lead Magnet"}
SOURCES |= {"instagram-ads": "Instagram Ads", "referrals": "Referral"}
STATUSES = ["New", "New", "Contacted", "Consultation Done", "Objection"]
TEMPERATURES = ["Cold", "Warm", "Warm", "Hot"]
GOALS = ["weight loss", "strength", "running"]


def make_project(folder: Path) -> str:
    """`nurture init`, the repository's sequences, `nurture apply`; the store URL."""
    nurture = [sys.executable, "-m", "nurture"]
    subprocess.run([*nurture, "init", str(folder)], check=True, capture_output=True)
    for path in (folder / "sequences").glob("*.yaml"):
        path.unlink()
    for path in (REPO / "sequences").glob("*.yaml"):
        shutil.copy(path, folder / "sequences")
    subprocess.run([*nurture, "apply", "--yes"], cwd=folder, check=True, capture_output=True)
    return f"sqlite:///{folder / 'nurture.db'}"


def a_lead(number: int, chance: random.Random) -> tuple[str, LeadInput]:
    funnel = chance.choice(FUNNELS)
    email = None if chance.random() < 0.06 else f"lead{number}@example.com"
    data = LeadInput(
        name=f"{chance.choice(['Ana', 'Ben', 'Chloe', 'Diego', 'Emma', 'Femi'])} Lead{number}",
        email=email, phone=f"+1212555{number:04d}", source=SOURCES[funnel],
        status=chance.choice(STATUSES), temperature=chance.choice(TEMPERATURES),
        score=chance.randint(5, 95), fields={"goal": chance.choice(GOALS)},
        tags=["price"] if chance.random() < 0.3 else [],
    )  # fmt: skip
    return funnel, data


def flaky(chance: random.Random):  # noqa: ANN201
    def behaviour(message: OutgoingMessage) -> None:
        roll = chance.random()
        if roll < 0.03:
            raise TemporaryFailure("provider timeout")
        if roll < 0.04:
            raise PermanentFailure("invalid number" if message.channel != "email" else "bounced")

    return behaviour


def main(folder: Path) -> None:
    url = make_project(folder)
    chance, rules = random.Random(7), LeadRules(default_zone="America/New_York")
    channel = MemoryChannel(behaviour=flaky(chance))
    channels = dict.fromkeys(("whatsapp", "sms", "email", "notification"), channel)
    arrivals = sorted(
        START + timedelta(minutes=chance.randint(0, 14 * 24 * 60)) for _ in range(300)
    )
    with open_store(url) as store:
        now, number = START, 0
        while now <= START + timedelta(days=28):
            with store.session(immediate=True) as session:
                while number < len(arrivals) and arrivals[number] <= now:
                    funnel, data = a_lead(number, chance)
                    add_lead(session, data, funnel, arrivals[number], rules)
                    number += 1
                live = select(Enrollment.lead_id).where(Enrollment.status == "active")
                for lead_id in session.exec(live).all():
                    if chance.random() < 0.0015:
                        convert(session, session.get(Lead, lead_id), now, rules)
            while run_due(store, now, worker="example", channels=channels, senders=1):
                pass
            now += timedelta(hours=1)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
