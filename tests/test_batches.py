"""The batched hot path: one claim for a batch, bulk writes, the transactional outbox."""

from datetime import timedelta

import pytest
from builders import sequence, step
from enrolling import T0, apply, drain, enroll, enrollment, executions, log, set_enrollment
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from nurture.channels import channels_for
from nurture.channels.memory import MemoryChannel
from nurture.channels.outbox import OutboxChannel
from nurture.engine.dispatch import EngineConfig, run_due
from nurture.store import bulk, queries
from nurture.store import keys as store_keys
from nurture.store.tables import Enrollment, Execution, OutboxMessage


def test_a_batch_claim_takes_only_due_rows_oldest_first_up_to_the_batch(store, project):
    apply(store, project, sequence("Later", step("Hello", delay_hours=2)))
    due = [enroll(store, "Later", now=T0 - timedelta(hours=2, minutes=m)) for m in (5, 30, 10)]
    not_due = [enroll(store, "Later", now=T0 + timedelta(minutes=m)) for m in (-110, 1)]
    with store.begin(immediate=True) as connection:
        claimed = queries.claim(connection, T0, T0 + timedelta(minutes=5), "w1", batch=2)
    assert [row.id for row in claimed] == [due[1], due[2]]  # due longest ago first
    with store.begin(immediate=True) as connection:
        rest = queries.claim(connection, T0, T0 + timedelta(minutes=5), "w2", batch=10)
    assert [row.id for row in rest] == [due[0]]
    assert {enrollment(store, i).lease_owner for i in due} == {"w1", "w2"}
    for enrollment_id in not_due:
        row = enrollment(store, enrollment_id)
        assert (row.status, row.lease_owner, row.lease_expires_at) == ("active", None, None)


def test_a_batch_of_many_leads_runs_each_step_once_with_its_own_text(store, project):
    apply(store, project, sequence("Welcome", step("Hello"), step("Later", delay_days=1)))
    ids = [enroll(store, "Welcome", name=f"Lead{n} Smith") for n in range(1200)]
    channel = MemoryChannel()
    assert drain(store, T0, channel, batch=500) == 1200
    assert sorted(channel.bodies()) == sorted(f"Hi Lead{n}, Hello" for n in range(1200))
    rows = [enrollment(store, i) for i in (ids[0], ids[700], ids[-1])]
    assert {(row.status, row.step_id, row.next_run_at) for row in rows} == {
        ("active", "later", T0 + timedelta(days=1))
    }
    assert {row.lease_owner for row in rows} == {None}


def test_the_outbox_writes_its_row_with_the_execution_and_records_no_sending(store, project):
    apply(store, project, sequence("Welcome", step("Hello")))
    enrollment_id = enroll(store, "Welcome")
    seen: list[list[str]] = []

    class Watching(OutboxChannel):
        def send(self, message):
            with store.begin() as connection:  # what another reader sees during the send
                seen.append(list(connection.execute(select(Execution.status)).scalars()))
            return super().send(message)

    run_due(store, T0, EngineConfig(worker="w"), dict.fromkeys(("sms",), Watching()))
    assert seen == [[]]  # nothing to mark unknown after a crash: the row is the send
    assert log(store, enrollment_id) == [("hello", 1, "sent")]
    with store.begin() as connection:
        (outbox,) = connection.execute(select(OutboxMessage.__table__)).all()
    assert outbox.execution_id == executions(store, enrollment_id)[0].id


def test_a_real_channel_sees_its_send_recorded_as_sending_first(store, project):
    apply(store, project, sequence("Welcome", step("Hello")))
    enroll(store, "Welcome")
    seen: list[list[str]] = []

    def look(message):
        with store.begin() as connection:
            seen.append(list(connection.execute(select(Execution.status)).scalars()))

    drain(store, T0, MemoryChannel(behaviour=look))
    assert seen == [["sending"]]


def test_an_outbox_send_dropped_by_a_stop_during_the_batch_leaves_no_message(store, project):
    apply(store, project, sequence("Welcome", step("Hello"), step("Later", delay_days=1)))
    enrollment_id = enroll(store, "Welcome")

    class Stopping(OutboxChannel):
        def send(self, message):
            set_enrollment(store, enrollment_id, status="stopped", lease_owner=None)
            return super().send(message)

    run_due(store, T0, EngineConfig(worker="w"), dict.fromkeys(("sms",), Stopping()))
    assert enrollment(store, enrollment_id).status == "stopped"
    assert log(store, enrollment_id) == []
    with store.begin() as connection:
        assert connection.execute(select(OutboxMessage.id)).all() == []


def test_bulk_rows_read_back_as_core_wrote_them(store, project):
    apply(store, project, sequence("Welcome", step("Hello")))
    first = enroll(store, "Welcome")
    table = Enrollment.__table__
    with store.begin(immediate=True) as connection:
        template = dict(connection.execute(select(table).where(table.c.id == first)).one()._mapping)
        rows = [
            {k: v for k, v in template.items() if k != "id"}
            | {"next_run_at": T0 + timedelta(seconds=n), "step_id": f"s{n}"}
            for n in range(3)
        ]
        ids = bulk.insert_ids(connection, table, rows)
        changed = bulk.update(
            connection,
            table,
            [{"_id": i, "exit_reason": "bulk", "finished_at": T0} for i in [first, *ids]],
            match={"step_id": "s1"},
        )
    assert ids == [first + 1, first + 2, first + 3] and changed == 1
    stored = [enrollment(store, i) for i in ids]
    assert [row.next_run_at for row in stored] == [T0 + timedelta(seconds=n) for n in range(3)]
    assert [row.exit_reason for row in stored] == [None, "bulk", None]
    assert stored[1].finished_at == T0
    with store.begin() as connection:  # Core parameters compare with bulk-written times
        due = select(table.c.id).where(table.c.next_run_at <= T0 + timedelta(seconds=1))
        assert set(connection.execute(due).scalars()) == {first, ids[0], ids[1]}
        among = select(table.c.id).where(bulk.among(connection, table.c.id, [ids[2], 10**9]))
        assert list(connection.execute(among).scalars()) == [ids[2]]


def test_rows_of_several_tables_go_in_together_and_a_held_key_stops_them_all(store, project):
    apply(store, project, sequence("Welcome", step("Hello")))
    first = enroll(store, "Welcome")
    table = Enrollment.__table__
    with store.begin() as connection:
        template = dict(connection.execute(select(table).where(table.c.id == first)).one()._mapping)
    lead_id = template["lead_id"]
    shared = {k: v for k, v in template.items() if k != "id"}
    rows = [shared | {"step_id": f"s{n}", "next_run_at": T0 + timedelta(hours=n)} for n in (1, 2)]
    keys = [{"kind": "phone", "value": "+14155550100", "lead_id": lead_id, "created_at": T0}]
    keys += [{"kind": "email", "value": "sam@example.com", "lead_id": lead_id, "created_at": T0}]
    with store.begin(immediate=True) as connection:
        bulk.insert_all(connection, [store_keys.part(keys), (table, rows), (table, [])])
    with store.begin() as connection:
        assert store_keys.of_lead(connection, lead_id)[-2:] == [
            ("email", "sam@example.com"),
            ("phone", "+14155550100"),
        ]
        steps = select(table.c.id, table.c.step_id, table.c.next_run_at).where(table.c.id > first)
        assert [tuple(row) for row in connection.execute(steps)] == [
            (first + 1, "s1", T0 + timedelta(hours=1)),  # ids in the rows' order
            (first + 2, "s2", T0 + timedelta(hours=2)),
        ]
    again = [shared | {"step_id": "s3"}]
    with pytest.raises(IntegrityError), store.begin(immediate=True) as connection:
        bulk.insert_all(connection, [(table, again), store_keys.part(keys[:1])])
    with store.begin() as connection:  # the enrollment of the failed statement is not there
        assert connection.execute(select(table.c.id).where(table.c.step_id == "s3")).all() == []


def test_channels_for_outbox_is_transactional_and_others_are_not():
    from nurture.channels import is_transactional

    assert is_transactional(channels_for("outbox")["sms"])
    assert not is_transactional(channels_for("memory")["sms"])
    assert not is_transactional(channels_for("console")["sms"])
