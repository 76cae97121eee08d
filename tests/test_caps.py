"""Frequency caps (issue 17): [caps] in nurture.toml limits the messages a lead gets across all
sequences; a capped step waits for the next allowed moment (never dropped, never sent twice),
counted in the store so every daemon on it keeps to the caps together; `exclusive: true`
sequences run one at a time per lead."""

import json
import threading
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from builders import sequence, step, write
from enrolling import T0, apply, enroll, enrollment, log
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, insert, make_url, select, text
from test_daemon import sent_counts, start, stop, wait_until

from nurture.channels import OutgoingMessage, TemporaryFailure
from nurture.channels.memory import MemoryChannel
from nurture.engine import caps as engine_caps
from nurture.engine import dispatch
from nurture.engine.complete import Job
from nurture.engine.dispatch import EngineConfig
from nurture.rules.caps import Caps, Sent, parse_caps
from nurture.rules.steps import spec_of
from nurture.store import queries
from nurture.store.db import open_store
from nurture.store.tables import Enrollment, Execution, Sequence
from nurture.testing import enroll_many

CHANNELS = ("whatsapp", "sms", "email", "notification")


def drain(store, now, caps: Caps, channel: MemoryChannel | None = None, **options) -> int:
    channels = dict.fromkeys(CHANNELS, channel or MemoryChannel())
    config = EngineConfig(**({"worker": "test", "caps": caps} | options))
    return dispatch.drain(store, now, config, channels)


def also_enroll(store, enrollment_id: int, sequence: str, at=T0) -> int:
    """The lead of `enrollment_id` enrolled in another sequence too (re-posted through a funnel)."""
    with store.begin(immediate=True) as connection:
        lead_id = connection.execute(
            select(Enrollment.lead_id).where(Enrollment.id == enrollment_id)
        ).scalar_one()
        row = connection.execute(
            select(Sequence.id, Sequence.current_version).where(Sequence.slug == sequence)
        ).one()
        values = {"lead_id": lead_id, "sequence_id": row.id, "version": row.current_version,
                  "step_id": "hello", "next_run_at": at, "enrolled_at": at, "updated_at": at}  # fmt: skip
        return connection.execute(
            insert(Enrollment.__table__).values(**values)
        ).inserted_primary_key[0]


def two_sequences(store, project, **fields):
    apply(
        store,
        project,
        sequence("Welcome", step("Hello"), **fields.get("welcome", {})),
        sequence("Promo", step("Hello"), **fields.get("promo", {})),
    )


# The rules


def test_a_cap_text_reads_counts_per_period():
    caps = Caps.of("2/day, 5/week", "4h", sms="1/day", email="3/36h")
    assert [(c.count, c.window) for c in caps.messages] == [
        (2, timedelta(days=1)),
        (5, timedelta(weeks=1)),
    ]
    assert caps.channels["email"][0].window == timedelta(hours=36)
    assert caps.min_gap == timedelta(hours=4) and caps.horizon == timedelta(weeks=1)
    assert not Caps() and not Caps.of()


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("2/dya", "'dya' is not a period"),
        ("two a day", "is not a cap"),
        ("0/day", "at least one message"),
        ("", "has no cap"),
    ],
)
def test_a_bad_cap_says_what_is_wrong(text, says):
    with pytest.raises(ValueError, match=says):
        parse_caps(text)


def test_the_window_rolls_the_next_message_may_go_when_the_oldest_leaves_it():
    caps = Caps.of("2/day")
    sent = [
        Sent(T0, "sms", 1, "hello", "Welcome"),
        Sent(T0 + timedelta(hours=3), "email", 2, "tip", "Promo"),
    ]
    held = caps.hold(sent, "whatsapp", T0 + timedelta(hours=5))
    assert held is not None and held.until == T0 + timedelta(days=1)
    assert held.reason == "2/day messages cap reached by 'tip' of Promo at 2025-03-03 12:00 UTC"
    assert caps.hold(sent, "sms", T0 + timedelta(days=1)) is None


@settings(max_examples=300, deadline=None)
@given(
    ages=st.lists(
        st.tuples(st.integers(0, 10 * 24 * 3600), st.sampled_from(["sms", "email", "whatsapp"])),
        max_size=8,
    ),
    channel=st.sampled_from(["sms", "email", "whatsapp"]),
    texts=st.sampled_from(
        [
            {"messages": "2/day, 5/week", "sms": "1/day", "min_gap": "4h"},
            {"email": "3/36h"},
            {"messages": "1/hour"},
            {"min_gap": "2d"},
            {"sms": "2/week", "whatsapp": "1/day"},
        ]
    ),  # fmt: skip
)
def test_the_quick_check_agrees_with_the_full_decision(ages, channel, texts):
    """What `allows` decides on the ledger's raw entries is what `hold` decides on Sent ones."""
    caps = Caps.of(**texts)
    now = T0.timestamp()
    raw = sorted([now - age, kind, n, "s", "Seq"] for n, (age, kind) in enumerate(ages))
    sent = [Sent(datetime.fromtimestamp(at, UTC), kind, n, s, q) for at, kind, n, s, q in raw]
    assert caps.allows(raw, channel, now) == (caps.hold(sent, channel, T0) is None)


def test_a_bad_cap_in_nurture_toml_names_its_key(project, run):
    (project / "nurture.toml").write_text('[caps]\nmessages = "2/day"\nsms = "1/dya"\n')
    result = run("validate")
    assert result.exit_code == 1
    assert "caps.sms:" in result.stderr and "'dya' is not a period" in result.stderr
    (project / "nurture.toml").write_text('[caps]\nmin_gap = "soon"\n')
    assert "caps.min_gap:" in run("validate").stderr
    (project / "nurture.toml").write_text('[caps]\nsmss = "1/day"\n')
    assert "caps.smss:" in run("validate").stderr


# The engine, on SQLite and Postgres


def test_two_sequences_on_one_lead_keep_a_1_per_day_cap_the_later_message_deferred(store, project):
    two_sequences(store, project)
    first = enroll(store, "Welcome")
    second = also_enroll(store, first, "promo")
    caps, channel = Caps.of(sms="1/day"), MemoryChannel()
    assert drain(store, T0, caps, channel) == 2
    assert channel.bodies() == ["Hi Sam, Hello"]
    assert [row[2] for row in log(store, first)] == ["sent"] and log(store, second) == []
    waiting = enrollment(store, second)
    assert waiting.status == "active" and waiting.next_run_at == T0 + timedelta(days=1)
    assert waiting.attempts == 0 and waiting.step_id == "hello"
    assert waiting.exit_reason == (
        "deferred: 1/day sms cap reached by 'hello' of Welcome at 2025-03-03 09:00 UTC; "
        "next allowed 2025-03-04 09:00 UTC"
    )
    assert drain(store, T0 + timedelta(hours=23), caps, channel) == 0  # not before
    assert drain(store, T0 + timedelta(days=1), caps, channel) == 1
    assert len(channel.sent) == 2  # each message once: deferred, never dropped nor repeated
    done = enrollment(store, second)
    assert done.status == "completed" and done.exit_reason == "completed"
    assert [(row[0], row[2]) for row in log(store, second)] == [("hello", "sent")]


def test_a_deferred_message_waits_for_its_send_window_too(store, project):
    window = {
        "send_window": {
            "days": ["mon", "tue", "wed", "thu", "fri"],
            "start": "10:00",
            "end": "17:00",
        }
    }
    two_sequences(store, project, promo=window)
    first = enroll(store, "Welcome", now=T0 + timedelta(days=4, hours=2))  # Fri 11:00
    second = also_enroll(store, first, "promo", at=T0 + timedelta(days=4, hours=2))
    drain(store, T0 + timedelta(days=4, hours=2), Caps.of("1/day"))
    # Sat 11:00 is allowed by the cap but outside the window: Monday 10:00
    assert enrollment(store, second).next_run_at == T0 + timedelta(days=7, hours=1)
    assert "next allowed 2025-03-10 10:00 UTC" in enrollment(store, second).exit_reason


def test_min_gap_keeps_a_quiet_time_after_any_message(store, project):
    apply(
        store, project, sequence("Welcome", step("Hello"), step("Tip", "send_email", delay_hours=1))
    )
    enrollment_id = enroll(store, "Welcome")
    caps, channel = Caps.of(min_gap="4h"), MemoryChannel()
    drain(store, T0, caps, channel)
    assert drain(store, T0 + timedelta(hours=1), caps, channel) == 1  # the tip, deferred
    row = enrollment(store, enrollment_id)
    assert row.next_run_at == T0 + timedelta(hours=4)
    assert row.exit_reason.startswith(
        "deferred: min_gap 4h after 'hello' of Welcome at 2025-03-03 09:00"
    )
    drain(store, T0 + timedelta(hours=4), caps, channel)
    assert [m.subject for m in channel.sent] == [None, "Tip"]
    assert [row[2] for row in log(store, enrollment_id)] == ["sent", "sent"]


def test_steps_that_send_nothing_and_uncapped_channels_are_never_held(store, project):
    apply(
        store,
        project,
        sequence("Welcome", step("Hello"), step("Tag", "add_lead_tag"), step("Tip", "send_email")),
    )
    enrollment_id = enroll(store, "Welcome")
    caps = Caps.of(sms="1/day")
    for _ in range(3):
        drain(store, T0, caps)
    assert [row[2] for row in log(store, enrollment_id)] == ["sent", "done", "sent"]


def test_a_retried_step_is_not_counted_twice(store, project):
    apply(store, project, sequence("Welcome", step("Hello"), retry_delay="1m"))
    enrollment_id = enroll(store, "Welcome")
    tries = []

    def once_busy(message) -> None:
        tries.append(message)
        if len(tries) == 1:
            raise TemporaryFailure("busy")

    failing = MemoryChannel(behaviour=once_busy)
    caps = Caps.of("1/day")
    drain(store, T0, caps, failing)
    assert enrollment(store, enrollment_id).attempts == 1  # a retry, due in a minute
    drain(store, T0 + timedelta(minutes=1), caps, failing)
    assert [row[2] for row in log(store, enrollment_id)] == ["retry", "sent"]


def test_no_caps_no_ledger(store, project):
    two_sequences(store, project)
    also_enroll(store, enroll(store, "Welcome"), "promo")
    assert drain(store, T0, Caps()) == 2
    with store.begin() as connection:
        assert connection.execute(text("SELECT count(*) FROM lead_cap")).scalar_one() == 0
        assert connection.execute(select(func.count()).select_from(Execution)).scalar_one() == 2


# Exclusive sequences


def test_an_exclusive_sequence_of_higher_priority_runs_first_the_other_waits(store, project):
    apply(
        store,
        project,
        sequence(
            "Welcome",
            step("Hello"),
            step("Bye", delay_days=1),
            exclusive=True,
            priority=1,
            re_entry="after_exit",
        ),
        sequence("Promo", step("Hello"), exclusive=True, priority=5),
    )
    low = enroll(store, "Welcome")
    high = also_enroll(store, low, "promo")
    channel = MemoryChannel()
    drain(store, T0, Caps(), channel)
    assert len(channel.sent) == 1 and enrollment(store, high).status == "completed"
    waiting = enrollment(store, low)
    assert waiting.status == "active" and log(store, low) == []
    assert waiting.exit_reason.startswith(
        "waiting: the lead is in exclusive sequence 'Promo' (priority 5)"
    )
    drain(store, waiting.next_run_at, Caps(), channel)
    assert [row[2] for row in log(store, low)] == ["sent"]


def test_an_exclusive_sequence_that_loses_with_re_entry_never_is_skipped(store, project):
    apply(
        store,
        project,
        sequence("Welcome", step("Hello"), exclusive=True, priority=1),
        sequence("Promo", step("Hello"), step("Bye", delay_days=1), exclusive=True, priority=5),
    )
    low = enroll(store, "Welcome")
    high = also_enroll(store, low, "promo")
    drain(store, T0, Caps())
    ended = enrollment(store, low)
    assert ended.status == "stopped" and log(store, low) == []
    assert ended.exit_reason == (
        "skipped: the lead is in exclusive sequence 'Promo' (priority 5); re_entry never"
    )
    assert enrollment(store, high).status == "active"


# Two daemons on one store


def test_two_daemons_and_two_sequences_never_both_send_a_leads_last_message_of_the_day(
    project, run_store, store
):
    """Each lead got a welcome (its ledger row exists), then two sequences' messages fall due
    together: with 2/day, one goes and the other waits, whichever daemon claims which."""
    for name in ("Welcome", "Promo", "Offer"):
        write(project, f"{name.lower()}.yaml", sequence(name, step("Hello")))
    assert run_store("apply", "--yes").exit_code == 0
    (project / "nurture.toml").write_text('timezone = "UTC"\n[caps]\nmessages = "2/day"\n')
    leads = 60
    pair = [start(project, store.url, "--batch", "1", "--senders", "4") for _ in range(2)]
    try:
        wait_until(lambda: len(json.loads(run_store("status", "--json").stdout)["workers"]) == 2)
        enroll_many(store, leads, datetime.now(UTC), "welcome")
        wait_until(lambda: sum(sent_counts(store).values()) == leads)
        # the leads a millisecond apart, each lead's two steps due together: claimed side by side
        due = datetime.now(UTC) + timedelta(seconds=1)
        with store.begin(immediate=True) as connection:
            for slug in ("promo", "offer"):
                also_enroll_all(connection, slug, due)
        wait_until(lambda: deferred(store) + sum(sent_counts(store).values()) == 3 * leads)
    finally:
        logs = [stop(daemon) for daemon in pair]
    assert set(sent_counts(store).values()) == {1}  # no step sent twice
    with store.begin() as connection:
        per_lead = connection.execute(
            select(Execution.lead_id, func.count()).group_by(Execution.lead_id)
        ).all()
    assert len(per_lead) == leads and {count for _, count in per_lead} == {2}
    assert deferred(store) == leads
    events = [
        json.loads(line)
        for out, err in logs
        for line in (out + err).splitlines()
        if line.startswith("{")
    ]
    assert sum(e["steps"] for e in events if e["event"] == "deferred") == leads
    executed = [e["executed"] for e in events if e["event"] == "stopped"]
    assert len(executed) == 2 and all(executed), executed  # both daemons took part


def also_enroll_all(connection, slug: str, due: datetime) -> None:
    """Every lead of the welcome sequence in `slug` too, the n-th lead due n ms after `due`."""
    sequence_id = connection.execute(select(Sequence.id).where(Sequence.slug == slug)).scalar_one()
    leads = connection.execute(select(Enrollment.lead_id).distinct().order_by(Enrollment.lead_id))
    rows = [
        {"lead_id": lead, "sequence_id": sequence_id, "version": 1, "step_id": "hello",
         "next_run_at": due + timedelta(milliseconds=n), "enrolled_at": due, "updated_at": due}
        for n, lead in enumerate(leads.scalars())
    ]  # fmt: skip
    connection.execute(insert(Enrollment.__table__), rows)


def deferred(store) -> int:
    with store.begin() as connection:
        return connection.execute(
            select(func.count())
            .select_from(Enrollment)
            .where(Enrollment.status == "active", Enrollment.exit_reason.like("deferred: %"))
        ).scalar_one()


# What a user sees: the dry run, explain, run --once

DRIP = sequence(
    "Drip",
    step("Hello"),
    step("Tip", "send_email", delay_hours=1),
    step("Nudge", delay_hours=2),
)


def test_the_dry_run_keeps_to_the_caps_and_shows_each_deferral(project, run):
    (project / "nurture.toml").write_text(
        'timezone = "UTC"\n[caps]\nsms = "1/day"\nmin_gap = "4h"\n'
    )
    write(project, "drip.yaml", DRIP)
    result = run(
        "test", "drip", "--lead-field", "name=Ana", "--start", "2026-12-02T09:00Z", "--json"
    )
    timeline = json.loads(result.stdout)["timeline"]
    steps = [
        (row["step"], row["outcome"], row["at"][:16]) for row in timeline if row["kind"] == "step"
    ]
    assert steps == [
        ("hello", "sent", "2026-12-02T09:00"),
        ("tip", "deferred", "2026-12-02T10:00"),  # min_gap after hello
        ("tip", "sent", "2026-12-02T13:00"),
        ("nudge", "deferred", "2026-12-02T15:00"),  # 1/day sms
        ("nudge", "sent", "2026-12-03T09:00"),
    ]
    [why] = timeline[3]["notes"]
    assert why == (
        "1/day sms cap reached by 'hello' of Drip at 2026-12-02 09:00 UTC; "
        "next allowed 2026-12-03 09:00 UTC"
    )
    shown = run("test", "drip", "--lead-field", "name=Ana", "--start", "2026-12-02T09:00Z")
    assert "deferred" in shown.stdout and "completed: 3 sent, 2 deferred" in shown.stderr


def test_explain_and_run_once_say_why_a_message_waits(project, run_store):
    (project / "nurture.toml").write_text(
        'timezone = "UTC"\n[caps]\nmessages = "2/day, 5/week"\nsms = "1/day"\n'
    )
    write(project, "welcome.yaml", sequence("Welcome", step("Welcome"), funnels=["website"]))
    write(project, "promo.yaml", sequence("Spring Promo", step("Offer"), funnels=["ads"]))
    assert run_store("apply", "--yes").exit_code == 0
    for funnel, at in (("website", "2026-12-02T09:00Z"), ("ads", "2026-12-02T10:00Z")):
        added = run_store("leads", "add", "-f", funnel, "--name", "Ana Ruiz", "--email",
                          "ana@example.com", "--phone", "+12025550111", "--at", at)  # fmt: skip
        assert added.exit_code == 0, added.stderr
    ran = run_store("run", "--once", "--now", "2026-12-02T10:00Z")
    assert "1 step deferred by a frequency cap" in ran.stderr
    said = run_store("explain", "ana@example.com").stdout
    assert "Spring Promo v1: active\n" in said
    assert (
        "deferred: 1/day sms cap reached by 'welcome' of Welcome at 2026-12-02 10:00 UTC; "
        "next allowed 2026-12-03 10:00 UTC"
    ) in " ".join(said.split())
    assert (
        json.loads(run_store("run", "--once", "--now", "2026-12-03T10:00Z", "--json").stdout)[
            "steps"
        ]
        == 1
    )
    assert "✓ offer" in run_store("explain", "ana@example.com").stdout


def sms_job(enrollment_id: int, lead_id: int, sequence: str) -> Job:
    """A decided SMS step of an enrollment, as the claim leaves it."""
    spec = spec_of(sequence_doc(sequence))
    known = {"id": enrollment_id, "lead_id": lead_id, "sequence_id": 1, "version": 1,
             "step_id": "hello", "next_run_at": T0, "attempts": 0, "attempt": 1}  # fmt: skip
    claim = queries.Claimed(**(dict.fromkeys(queries.Claimed._fields) | known))
    lead = SimpleNamespace(id=lead_id, timezone=None)
    job = Job(claim, lead, spec, 1, spec.steps[0], None)
    job.message = OutgoingMessage("sms", "+15555550100", "Hi", job.key)
    return job


def sequence_doc(name: str) -> dict:
    return sequence(name, step("Hello"))


@pytest.mark.postgres
def test_two_daemons_counting_a_leads_first_message_at_once_see_each_other(postgres_url):
    """The lead has no ledger row yet: the second insert waits for the first daemon's commit,
    finds the row made, and decides again on what it holds."""
    caps = Caps.of(sms="1/day")
    name = f"caps-{uuid.uuid4().hex[:8]}"  # the other daemon's sessions, among the server's
    other_url = make_url(postgres_url).update_query_dict({"application_name": name})
    with open_store(postgres_url) as first, open_store(other_url.render_as_string(False)) as second:
        one, other = sms_job(1, 7, "Welcome"), sms_job(2, 7, "Promo")
        outcome: list[int] = []
        with first.begin() as connection:
            assert engine_caps.hold(connection, [one], caps, T0, "UTC") == 0
            waiter = threading.Thread(target=lambda: outcome.append(decide(second, other, caps)))
            waiter.start()
            wait_until(lambda: blocked_on_a_lock(first, name))  # the other daemon's insert waits
        waiter.join()
    assert outcome == [1] and one.status == "done" and other.status == "deferred"
    assert other.error.startswith("deferred: 1/day sms cap reached by 'hello' of Welcome")


@pytest.mark.postgres
def test_two_daemons_counting_a_leads_last_message_of_the_day_read_what_the_other_wrote(
    postgres_url,
):
    """The lead has a ledger row (a message this morning) and 2/day: the second daemon's take
    waits for the first one's lock, then reads the entry it committed, not the row as it was."""
    caps = Caps.of(messages="2/day")
    name = f"caps-{uuid.uuid4().hex[:8]}"
    other_url = make_url(postgres_url).update_query_dict({"application_name": name})
    with open_store(postgres_url) as first, open_store(other_url.render_as_string(False)) as second:
        assert decide(first, sms_job(11, 8, "Welcome"), caps) == 0  # the row, one entry
        one, other = sms_job(12, 8, "Promo"), sms_job(13, 8, "Offer")
        outcome: list[int] = []
        with first.begin() as connection:
            assert engine_caps.hold(connection, [one], caps, T0, "UTC") == 0
            waiter = threading.Thread(target=lambda: outcome.append(decide(second, other, caps)))
            waiter.start()
            wait_until(lambda: blocked_on_a_lock(first, name))
        waiter.join()
        with first.begin() as connection:
            sent = connection.exec_driver_sql("SELECT sent FROM lead_cap WHERE id = 8").scalar()
    assert outcome == [1] and one.status == "done" and other.status == "deferred"
    assert other.error.startswith("deferred: 2/day messages cap reached by 'hello' of Promo")
    assert [entry[2] for entry in json.loads(sent)] == [11, 12]  # the third never counted


def decide(store, job: Job, caps: Caps) -> int:
    with store.begin() as connection:
        return engine_caps.hold(connection, [job], caps, T0, "UTC")


def blocked_on_a_lock(store, name: str) -> bool:
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = :name "
        "AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO lead_cap%'"
    )
    with store.engine.connect() as connection:
        return connection.execute(query, {"name": name}).scalar_one() > 0


def test_validate_checks_exclusive_with_file_and_line(project, run):
    hello = {"name": "Hi", "action_type": "send_sms", "action_config": {"message": "Hi"}}
    write(project, "alpha.yaml", sequence("Alpha", hello, exclusive=True, priority=3))
    write(project, "beta.yaml", sequence("Beta", hello, priority=3, exclusive=True))
    shown = run("validate")
    said = shown.stdout + shown.stderr
    assert (
        "sequences/beta.yaml:4:1: warning: Alpha and Beta are both exclusive at priority 3"
    ) in said and "[exclusive-priority]" in said
    (project / "sequences" / "beta.yaml").write_text(
        (project / "sequences" / "beta.yaml")
        .read_text()
        .replace("exclusive: true", "exclusive: maybe")
    )
    result = run("validate")
    assert result.exit_code == 1
    said = result.stdout + result.stderr
    assert "sequences/beta.yaml:4:1: exclusive: Input should be a valid boolean" in said


def test_setting_exclusive_is_a_new_version(project, run):
    """It changes what runs; left unset it is not in the definition, so the sequences applied
    before it existed keep their fingerprints (test_plan_apply)."""
    write(project, "welcome.yaml", sequence("Welcome", step("Hello")))
    assert run("apply", "--yes").exit_code == 0
    assert run("plan", "--detailed-exitcode").exit_code == 0
    write(project, "welcome.yaml", sequence("Welcome", step("Hello"), exclusive=True))
    assert run("plan", "--detailed-exitcode").exit_code == 2  # a new version: it changes what runs
