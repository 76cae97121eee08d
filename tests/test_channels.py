"""Channels: console prints, outbox stores with the execution, memory keeps a list."""

import io

import pytest
from builders import sequence, step
from enrolling import T0, apply, enroll, executions
from sqlalchemy import select

from nurture.channels import OutgoingMessage, channels_for
from nurture.channels.console import ConsoleChannel
from nurture.channels.memory import MemoryChannel
from nurture.channels.outbox import OutboxChannel
from nurture.engine.dispatch import EngineConfig, run_due
from nurture.errors import ConfigError
from nurture.store.tables import OutboxMessage

MESSAGE = OutgoingMessage(
    channel="email",
    recipient="sam@example.com",
    body="Hello Sam\nSee you",
    key="1:hi:1",
    subject="Hi",
)


def test_console_prints_one_line_then_the_body():
    stream = io.StringIO()
    result = ConsoleChannel(stream).send(MESSAGE)
    assert stream.getvalue() == "[email] to sam@example.com: Hi\n    Hello Sam\n    See you\n"
    assert result.provider_id == "console-1"


def test_memory_keeps_what_it_sent():
    channel = MemoryChannel()
    channel.send(MESSAGE)
    assert channel.sent == [MESSAGE] and channel.bodies() == ["Hello Sam\nSee you"]


def test_channels_for_maps_every_kind_and_rejects_unknown_names():
    channels = channels_for("memory")
    assert set(channels) == {"whatsapp", "sms", "email", "notification"}
    with pytest.raises(ConfigError, match="unknown channel 'carrier-pigeon'"):
        channels_for("carrier-pigeon")


def test_the_outbox_stores_each_message_with_its_execution(store, project):
    apply(store, project, sequence("Mail", step("Welcome", "send_email")))
    enrollment_id = enroll(store, "Mail")
    assert run_due(store, T0, EngineConfig(worker="w"), channels_for("outbox", store)) == 1
    with store.begin() as connection:
        stored = connection.execute(select(OutboxMessage.__table__)).one()
    execution = executions(store, enrollment_id)[0]
    assert stored.execution_id == execution.id and execution.status == "sent"
    assert execution.provider_id.startswith("outbox-")
    assert (stored.channel, stored.recipient, stored.subject) == (
        "email",
        "sam@example.com",
        "Welcome",
    )
    assert stored.body == "Hello Sam Carter"


def test_the_console_shows_a_whatsapp_template_and_its_filled_variables():
    stream = io.StringIO()
    template = {"content_sid": "HX" + "0" * 32, "variables": {"1": "Sam", "2": "Tuesday"}}
    message = OutgoingMessage(  # outside the 24-hour window: no free text, the template goes
        channel="whatsapp", recipient="+15555550100", body="", key="1:hi:1", template=template
    )
    ConsoleChannel(stream).send(message)
    assert stream.getvalue() == (
        f"[whatsapp] to +15555550100\n    template HX{'0' * 32} {{{{1}}}}=Sam, {{{{2}}}}=Tuesday\n"
    )


def test_the_outbox_keeps_a_whatsapp_templates_sid_and_variables_as_its_text():
    template = {"content_sid": "HX" + "1" * 32, "variables": {"1": "Sam"}}
    message = OutgoingMessage(
        channel="whatsapp", recipient="+15555550100", body="", key="1:hi:1", template=template
    )
    row = OutboxChannel().send(message).outbox
    assert row is not None and row["body"] == f"template HX{'1' * 32} {{{{1}}}}=Sam"
