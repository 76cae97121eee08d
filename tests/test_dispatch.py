"""The engine runs each enrolled lead's steps in order, on time (injected clock), on both stores."""

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from builders import sequence, step
from enrolling import T0, apply, drain, enroll, enrollment, executions, lead_of, log
from sqlalchemy import text

from nurture.channels.memory import MemoryChannel
from nurture.engine.dispatch import next_due, release, rescue_leases
from nurture.store import queries
from nurture.store.db import open_store
from nurture.testing import enroll_many


def three_steps():
    return sequence(
        "Welcome",
        step("Hello"),
        step("Tip", "send_email", delay_hours=2),
        step("Nudge", delay_days=1),
    )


def test_three_steps_run_in_order_with_their_delays(store, project):
    apply(store, project, three_steps())
    enrollment_id = enroll(store, "Welcome", name="Sam Carter")
    channel = MemoryChannel()
    assert drain(store, T0, channel) == 1
    assert channel.bodies() == ["Hi Sam, Hello"]
    assert next_due(store) == T0 + timedelta(hours=2)
    assert drain(store, T0 + timedelta(hours=1, minutes=59), channel) == 0
    assert drain(store, T0 + timedelta(hours=2), channel) == 1
    assert channel.sent[-1].subject == "Tip" and channel.sent[-1].recipient == "sam@example.com"
    assert drain(store, T0 + timedelta(days=1, hours=2), channel) == 1
    assert [row[0] for row in log(store, enrollment_id)] == ["hello", "tip", "nudge"]
    assert {row[2] for row in log(store, enrollment_id)} == {"sent"}
    done = enrollment(store, enrollment_id)
    assert done.status == "completed" and done.finished_at == T0 + timedelta(days=1, hours=2)
    assert next_due(store) is None


def test_each_execution_records_its_due_time_provider_id_and_next_step(store, project):
    apply(store, project, three_steps())
    enrollment_id = enroll(store, "Welcome")
    drain(store, T0 + timedelta(minutes=5))
    first = executions(store, enrollment_id)[0]
    assert first.due_at == T0 and first.started_at == T0 + timedelta(minutes=5)
    assert first.provider_id == "memory-1" and first.attempt == 1
    assert first.detail["next"]["step"] == "tip"


def test_store_effects_change_the_lead(store, project):
    steps = [step("Score", "update_lead_score"), step("Tag", "add_lead_tag"), step("Pause", "wait")]
    apply(store, project, sequence("Effects", *steps))
    enrollment_id = enroll(store, "Effects", score=98, tags=["Nurtured"])
    drain(store, T0)
    drain(store, T0)
    lead = lead_of(store, enrollment_id)
    assert lead.score == 100  # 98 + 5, clamped
    assert lead.tags == ["Nurtured"]  # already had it, ignoring case
    assert [row[2] for row in log(store, enrollment_id)] == ["done", "done", "done"]


def test_sends_run_concurrently(store, project):
    apply(store, project, sequence("Many", step("Hello")))
    for number in range(200):
        enroll(store, "Many", name=f"Lead {number}")
    channel = MemoryChannel(delay=0.05)
    assert drain(store, T0, channel, in_flight=8, batch=100) == 200
    assert len(channel.sent) == 200
    assert channel.peak > 1


def claim_plan(store, *, small: bool = True) -> str:
    """The database's plan for the claim query, as text (EXPLAIN runs nothing)."""
    dialect = store.engine.dialect.name
    parameters = {"now": "2025-03-03 09:00:00", "until": "2025-03-03 09:05:00"}
    parameters |= {"worker": "w", "batch": 10}
    with store.begin() as connection:
        if dialect == "sqlite":
            explain = text("EXPLAIN QUERY PLAN " + queries.claim_sql(dialect))
            return "\n".join(str(row[-1]) for row in connection.execute(explain, parameters))
        queries.claim_hints(connection)
        if small:
            connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        explain = text("EXPLAIN " + queries.claim_sql(dialect))
        return "\n".join(row[0] for row in connection.execute(explain, parameters))


def test_the_claim_uses_the_due_index(store, project):
    apply(store, project, three_steps())
    for number in range(20):
        enroll(store, "Welcome", name=f"Lead {number}")
    plan = claim_plan(store)
    assert "USING INDEX ix_enrollment_due" in plan or "Index Scan using ix_enrollment_due" in plan


@pytest.mark.postgres
def test_a_backlog_behind_old_statistics_is_claimed_in_index_order_without_a_sort(
    postgres_url, project
):
    """The daemon's claim is a prepared statement: its generic plan must not read every due row."""
    with open_store(postgres_url) as store:
        apply(store, project, three_steps())
        enroll_many(store, 5000, T0 + timedelta(days=30), sequence="welcome")
        with store.begin() as connection:
            connection.exec_driver_sql("ANALYZE enrollment")  # statistics: nothing due soon
            connection.exec_driver_sql(
                "UPDATE enrollment SET next_run_at = next_run_at - interval '31 days'"
            )
        with store.begin() as connection:
            queries.claim_hints(connection)
            connection.exec_driver_sql("SET LOCAL plan_cache_mode = force_generic_plan")
            sql = queries.claim_sql("postgresql").replace(":now", "$1").replace(":until", "$2")
            sql = sql.replace(":worker", "$3").replace(":batch", "$4")
            connection.exec_driver_sql(
                f"PREPARE claim(timestamptz, timestamptz, text, int) AS {sql}"
            )
            explain = "EXPLAIN EXECUTE claim('2025-03-03 09:00Z', '2025-03-03 09:05Z', 'w', 500)"
            plan = "\n".join(row[0] for row in connection.exec_driver_sql(explain))
    assert "Index Scan using ix_enrollment_due" in plan and "Sort" not in plan, plan


def test_an_expired_lease_is_rescued_and_a_released_one_given_back(store, project):
    apply(store, project, three_steps())
    first, second = enroll(store, "Welcome"), enroll(store, "Welcome")
    with store.begin(immediate=True) as connection:
        queries.claim(connection, T0, T0 + timedelta(minutes=5), "dead", 1)
        queries.claim(connection, T0, T0 + timedelta(minutes=5), "leaving", 1)
    assert rescue_leases(store, T0 + timedelta(minutes=4)) == 0
    assert release(store, "leaving") == 1
    assert enrollment(store, second).status == "active"
    assert enrollment(store, first).lease_owner == "dead"
    assert rescue_leases(store, T0 + timedelta(minutes=6)) == 1
    assert enrollment(store, first).status == "active"
    assert drain(store, T0 + timedelta(minutes=6)) == 2


def test_workers_draining_together_run_each_step_once(store, project):
    apply(store, project, sequence("Many", step("Hello"), step("Bye")))
    ids = [enroll(store, "Many", name=f"Lead {n}") for n in range(60)]
    channel = MemoryChannel()
    with ThreadPoolExecutor(max_workers=3) as pool:
        work = [pool.submit(drain, store, T0, channel, worker=f"w{n}", batch=7) for n in range(3)]
        assert sum(job.result() for job in work) == 120
    assert len(channel.sent) == 120
    assert all(len(log(store, enrollment_id)) == 2 for enrollment_id in ids)


@pytest.mark.postgres
def test_the_claim_reads_each_rows_lead_and_recorded_attempt_by_its_key_on_postgres(
    postgres_url, project
):
    """The claim's leads and recorded attempts (one statement): a key probe a row, even in the
    generic plan a prepared statement keeps, never a scan of the log."""
    with open_store(postgres_url) as store:
        apply(store, project, three_steps())
        enroll_many(store, 2000, T0, sequence="welcome")
        with store.begin() as connection:
            connection.exec_driver_sql(
                "INSERT INTO execution (enrollment_id, lead_id, sequence_id, version, step_id, "
                "action_type, attempt, status, due_at) SELECT id, lead_id, sequence_id, 1, s, "
                "'send_sms', 1, 'sent', next_run_at FROM enrollment, (VALUES ('a'), ('b')) v(s)"
            )
            connection.exec_driver_sql("ANALYZE")
        with store.begin() as connection:
            queries.claim_hints(connection)
            connection.exec_driver_sql("SET LOCAL plan_cache_mode = force_generic_plan")
            sql = queries.claim_batch_sql()
            for n, name in enumerate(("now", "until", "worker", "batch"), 1):
                sql = sql.replace(f"%({name})s", f"${n}")
            connection.exec_driver_sql(
                f"PREPARE claim(timestamptz, timestamptz, text, int) AS {sql}"
            )
            explain = "EXPLAIN EXECUTE claim('2025-03-03 09:00Z', '2025-03-03 09:05Z', 'w', 500)"
            plan = "\n".join(row[0] for row in connection.exec_driver_sql(explain))
    assert "Index Scan using uq_execution_enrollment_id_step_id_attempt" in plan, plan
    assert "Index Scan using pk_lead" in plan and "Seq Scan on execution" not in plan, plan
