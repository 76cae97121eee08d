"""An SMTP relay that is slow, late, drops or refuses (aiosmtpd with injected faults): what is
retried, what is uncertain, and a message is never stored twice by the relay."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from servers import Fault, Faults, Mailbox, free_port, smtp_server
from test_email import message, smtp, unsubscribe

from nurture.channels import PermanentFailure, TemporaryFailure, UncertainSend
from nurture.channels.smtp import SmtpChannel


def relay(*faults: Fault | None, **mailbox) -> Mailbox:
    box = Mailbox(faults=Faults(), **mailbox)
    box.faults.push(*faults)
    return box


def channel(port: int, timeout: float = 2.0) -> SmtpChannel:
    return SmtpChannel(smtp(port, timeout=timeout), unsubscribe())


def test_every_attempt_of_a_step_has_the_same_message_id():
    mailbox = Mailbox()
    with smtp_server(mailbox) as port:
        first = channel(port).send(message(key="7:welcome:1"))
        again = channel(port).send(message(key="7:welcome:2"))
        other = channel(port).send(message(key="7:follow-up:1"))
    assert first.provider_id == again.provider_id == "<nurture.7.welcome@example.com>"
    assert other.provider_id == "<nurture.7.follow-up@example.com>"
    assert [m["Message-ID"] for m in mailbox.messages] == [first.provider_id] * 2 + [
        other.provider_id
    ]  # a mail client shows the resent copy as a duplicate of the first


def test_a_refused_connection_is_retried():
    with pytest.raises(TemporaryFailure, match="Connection refused"):
        channel(free_port()).send(message())


def test_a_relay_that_hangs_up_at_once_is_retried_and_stores_nothing():
    mailbox = relay(Fault("reset"))
    with smtp_server(mailbox) as port:
        with pytest.raises(TemporaryFailure, match="SMTP: the relay closed the connection"):
            channel(port).send(message())
        channel(port).send(message())
    assert len(mailbox.messages) == 1


@pytest.mark.parametrize(
    ("replies", "failure", "said"),
    [({"mail_reply": "451 4.7.1 Greylisted, try again"}, TemporaryFailure, "SMTP 451"),
     ({"mail_reply": "553 5.7.1 Sender rejected"}, PermanentFailure, "SMTP 553"),
     ({"reply": "452 4.2.2 Mailbox full"}, TemporaryFailure, "SMTP 452"),
     ({"reply": "550 5.1.1 No such user"}, PermanentFailure, "SMTP 550")],
)  # fmt: skip
def test_a_refusal_before_the_message_is_retried_or_given_up_by_its_code(replies, failure, said):
    mailbox = relay(**replies)
    with smtp_server(mailbox) as port, pytest.raises(failure, match=said):
        channel(port).send(message())
    assert mailbox.messages == []


@pytest.mark.parametrize(
    ("fault", "said"),
    [(Fault("busy"), "SMTP 450 4.7.1 Too many messages"),
     (Fault("error"), "SMTP 451 4.3.0 Temporary failure")],
)  # fmt: skip
def test_a_4xx_reply_to_the_message_is_retried(fault, said):
    mailbox = relay(fault)
    with smtp_server(mailbox) as port, pytest.raises(TemporaryFailure, match=said):
        channel(port).send(message())
    assert mailbox.messages == []


def test_a_drop_before_data_is_retried():
    mailbox = Mailbox()

    async def hang_up(server, session, envelope, address, rcpt_options):
        server.transport.abort()
        return "250 OK"

    mailbox.handle_RCPT = hang_up
    with smtp_server(mailbox) as port, pytest.raises(TemporaryFailure, match="SMTP"):
        channel(port).send(message())
    assert mailbox.messages == []


def test_a_reply_to_the_message_that_comes_too_late_is_uncertain():
    mailbox = relay(Fault("late", 1.0))
    with smtp_server(mailbox) as port, pytest.raises(UncertainSend, match="no reply after the"):
        channel(port, timeout=0.3).send(message())
    assert len(mailbox.messages) == 1  # the relay has it


def test_a_connection_dropped_after_the_message_is_uncertain():
    mailbox = relay(Fault("drop"))
    with smtp_server(mailbox) as port:
        sender = channel(port)
        with pytest.raises(UncertainSend, match="the relay closed the connection"):
            sender.send(message(key="7:hi:1"))
        sender.send(message(recipient="kim@example.com", key="8:hi:1"))  # a new connection
    assert [m["To"] for m in mailbox.messages] == ["sam@example.com", "kim@example.com"]


def test_a_slow_relay_within_the_timeout_takes_the_message():
    mailbox = relay(Fault("slow", 0.3))
    with smtp_server(mailbox) as port:
        assert channel(port, timeout=2).send(message()).provider_id == "<nurture.7.hi@example.com>"


def test_300_emails_with_a_fifth_of_replies_late_are_uncertain_and_stored_once():
    mailbox = Mailbox(faults=Faults({Fault("late", 1.0): 0.2}, seed=3))
    outcomes: dict[str, int] = {"sent": 0, "uncertain": 0, "retried": 0}
    lock, reasons = threading.Lock(), []

    def send(n: int) -> None:
        """As the engine does: retry a temporary failure, hold an uncertain send (no retry)."""
        for attempt in range(1, 10):
            try:
                sender.send(message(recipient=f"lead{n}@example.com", key=f"{n}:hi:{attempt}"))
                outcome = "sent"
            except UncertainSend:
                outcome = "uncertain"
            except TemporaryFailure as failure:  # e.g. a connect slower than the timeout
                outcome = "retried"
                reasons.append(str(failure))
            with lock:
                outcomes[outcome] += 1
            if outcome != "retried":
                return

    with smtp_server(mailbox) as port:
        sender = channel(port, timeout=0.5)
        with ThreadPoolExecutor(8) as senders:
            list(senders.map(send, range(300)))
        sender.close()
    copies = mailbox.copies()
    print(outcomes, dict(mailbox.faults.injected), f"stored {sum(copies.values())} of 300")
    # Every late reply is uncertain (a slow machine can make an on-time one late too); a late
    # reply taken for a temporary failure would be retried, and stored twice.
    assert outcomes["uncertain"] >= mailbox.faults.injected["late"] > 30
    assert all("after the message" not in reason for reason in reasons), reasons
    assert max(copies.values()) == 1 and len(copies) == 300  # 0 doubled, 0 lost
