"""Twilio's callbacks through the real app: signed delivery statuses and inbound messages."""

import json
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

import pytest
from builders import sequence, step
from enrolling import T0, apply, enroll, enrollment, executions, lead_of
from servers import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio
from serving import serving
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from nurture.api import webhooks
from nurture.channels import channels_for
from nurture.engine.dispatch import EngineConfig, run_due
from nurture.leads import consent
from nurture.settings import load_settings
from nurture.store.tables import Execution, Lead, ProviderCallback

PHONE = "+12025550100"  # valid (libphonenumber), reserved for fiction
STATUS, INBOUND = "/webhooks/twilio/status", "/webhooks/twilio/inbound"
SIGNER = RequestValidator(AUTH_TOKEN)


def configure(project, api: str = "") -> None:
    twilio = f'[twilio]\naccount_sid = "{ACCOUNT_SID}"\nsms_from = "+15550001111"\n'
    (project / "nurture.toml").write_text(f'timezone = "UTC"\n{api}{twilio}')
    (project / ".env").write_text(f"NURTURE_TWILIO__AUTH_TOKEN={AUTH_TOKEN}\n")


@pytest.fixture
def sent(project, store, store_url):
    """Two SMS sent through a local Twilio; the API serving the project; their message SIDs."""
    configure(project)
    apply(store, project, sequence("Texts", step("Hello")))
    ids = [enroll(store, "Texts", name="Sam", phone=PHONE), enroll(store, "Texts", name="Kim")]
    fake = FakeTwilio()
    with fake.serving() as url:
        settings = load_settings(project, database_url=store_url)
        settings.twilio = settings.twilio.model_copy(update={"api_url": url})
        assert (
            run_due(
                store, T0, EngineConfig(worker="w"), channels_for("live", store, settings.providers)
            )
            == 2
        )
    with serving(project, store_url) as client:
        client.sids = [executions(store, i)[0].provider_id for i in ids]
        client.leads = [lead_of(store, i).id for i in ids]
        yield client


def signed(client, path: str, form: dict[str, str], url: str = "http://testserver"):
    signature = SIGNER.compute_signature(url + path, form)
    headers = {"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"}
    return client.post(path, content=urlencode(form), headers=headers)


def delivery(client, sid: str):
    table = Execution.__table__
    with client.app.state.context.store.begin() as connection:
        row = connection.execute(select(table).where(table.c.provider_id == sid)).one()
        return row.delivery_status, row.delivery_error, row.delivery_updated_at


def count(client, model) -> int:
    with client.app.state.context.store.begin() as connection:
        return connection.execute(select(func.count()).select_from(model)).scalar_one()


def lead(client, lead_id: int):
    """The lead's row as stored now."""
    table = Lead.__table__
    with client.app.state.context.store.begin() as connection:
        return connection.execute(select(table).where(table.c.id == lead_id)).one()


def test_delivery_statuses_are_stored_with_the_execution_in_order_once(sent, run_store):
    sid = sent.sids[0]
    assert signed(sent, STATUS, {"MessageSid": sid, "MessageStatus": "sent"}).status_code == 204
    assert delivery(sent, sid)[0] == "sent"
    assert (
        signed(sent, STATUS, {"MessageSid": sid, "MessageStatus": "delivered"}).status_code == 204
    )
    status, error, when = delivery(sent, sid)
    assert (status, error) == ("delivered", None) and when is not None
    # a late "sent" does not undo "delivered"; a repeat of "delivered" changes nothing
    assert signed(sent, STATUS, {"MessageSid": sid, "MessageStatus": "sending"}).status_code == 204
    assert (
        signed(sent, STATUS, {"MessageSid": sid, "MessageStatus": "delivered"}).status_code == 204
    )
    assert delivery(sent, sid) == ("delivered", None, when)
    logged = json.loads(run_store("logs", "--json").output)
    assert {entry["provider_id"]: entry["delivery_status"] for entry in logged} == {
        sid: "delivered", sent.sids[1]: None,
    }  # fmt: skip
    assert count(sent, ProviderCallback) == 3
    assert delivery(sent, sent.sids[1])[0] is None


def test_an_undelivered_message_keeps_its_error_and_21610_opts_the_lead_out(sent):
    form = {"MessageSid": sent.sids[1], "MessageStatus": "undelivered", "ErrorCode": "30003"}
    assert signed(sent, STATUS, form | {"ErrorMessage": "Unreachable handset"}).status_code == 204
    assert delivery(sent, sent.sids[1])[:2] == ("undelivered", "30003: Unreachable handset")
    assert lead(sent, sent.leads[1]).opted_out == []
    form = {"MessageSid": sent.sids[0], "MessageStatus": "failed", "ErrorCode": "21610"}
    assert signed(sent, STATUS, form).status_code == 204
    assert lead(sent, sent.leads[0]).opted_out == ["sms"]
    with sent.app.state.context.store.session() as session:
        [event] = consent.history(session, session.get(Lead, sent.leads[0]))
        assert (event.source, event.detail) == ("provider", "the provider reported 21610")


def test_inbound_messages_set_the_last_inbound_time_and_stop_start_change_consent(sent):
    sam = sent.leads[0]
    hello = {"MessageSid": "SMin1", "From": PHONE, "Body": "Thanks!"}
    answer = signed(sent, INBOUND, hello)
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/xml"
    assert answer.text.endswith("<Response></Response>")
    wrote = lead(sent, sam).last_inbound_at
    assert wrote is not None and lead(sent, sam).opted_out == []
    assert (
        signed(sent, INBOUND, {"MessageSid": "SMin2", "From": PHONE, "Body": "STOP"}).status_code
        == 200
    )
    assert lead(sent, sam).opted_out == ["sms"]
    start = {"MessageSid": "SMin3", "From": f"whatsapp:{PHONE}", "Body": "stop"}
    assert signed(sent, INBOUND, start).status_code == 200
    assert lead(sent, sam).opted_out == ["whatsapp", "sms"]
    assert (
        signed(sent, INBOUND, {"MessageSid": "SMin4", "From": PHONE, "Body": "Start"}).status_code
        == 200
    )
    assert lead(sent, sam).opted_out == ["whatsapp"]
    # Twilio retrying the earlier STOP changes nothing
    assert (
        signed(sent, INBOUND, {"MessageSid": "SMin2", "From": PHONE, "Body": "STOP"}).status_code
        == 200
    )
    assert lead(sent, sam).opted_out == ["whatsapp"]
    stranger = {"MessageSid": "SMin5", "From": "+12025550199", "Body": "STOP"}
    assert signed(sent, INBOUND, stranger).status_code == 200


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        (STATUS, {}, 403),
        (STATUS, {"X-Twilio-Signature": "forged"}, 403),
        (
            INBOUND,
            {"X-Twilio-Signature": SIGNER.compute_signature("http://testserver" + INBOUND, {})},
            403,
        ),
    ],
)
def test_unsigned_or_forged_callbacks_are_403_and_change_nothing(sent, path, headers, status):
    form = {"MessageSid": "SMx", "From": PHONE, "Body": "STOP", "MessageStatus": "delivered"}
    answer = sent.post(path, data=form, headers=headers)
    assert answer.status_code == status
    assert "X-Twilio-Signature" in answer.json()["message"]
    assert lead(sent, sent.leads[0]).opted_out == [] and count(sent, ProviderCallback) == 0


def test_a_signed_callback_without_its_fields_is_422_and_an_unknown_message_is_accepted(sent):
    missing = signed(sent, STATUS, {"MessageStatus": "delivered"})
    assert (
        missing.status_code == 422
        and missing.json()["message"] == "the callback has no valid MessageSid"
    )
    assert (
        signed(sent, STATUS, {"MessageSid": "SMnope", "MessageStatus": "sent"}).status_code == 204
    )


def test_behind_a_proxy_the_public_url_is_what_twilio_signed(project, store, store_url):
    configure(project, '[api]\npublic_url = "https://hooks.example.com"\n')
    apply(store, project, sequence("Texts", step("Hello")))
    lead_id = lead_of(store, enroll(store, "Texts", name="Sam", phone=PHONE)).id
    with serving(project, store_url) as client:
        form = {"MessageSid": "SMin1", "From": PHONE, "Body": "STOP"}
        assert signed(client, INBOUND, form).status_code == 403
        assert signed(client, INBOUND, form, "https://hooks.example.com").status_code == 200
        assert lead(client, lead_id).opted_out == ["sms"]


def test_without_twilio_settings_the_callbacks_say_what_is_missing(project, store):
    with serving(project, store.url) as client:
        answer = client.post(STATUS, data={"MessageSid": "SM1", "MessageStatus": "sent"})
        assert (
            answer.status_code == 503 and "NURTURE_TWILIO__AUTH_TOKEN" in answer.json()["message"]
        )


def test_the_same_callback_twice_at_once_is_handled_once(sent):
    """Two servers get Twilio's retry while the first delivery is still being handled."""
    handled = []

    def handle(session, now) -> None:
        handled.append(now)
        time.sleep(0.2)  # the second request arrives meanwhile

    def receive(_: int) -> None:
        webhooks._once(sent.app.state.context, "twilio:inbound:SMsame", handle)

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(receive, range(2)))
    assert len(handled) == 1 and count(sent, ProviderCallback) == 1


def test_an_inbound_message_stops_a_sequence_that_stops_on_reply(project, store, store_url):
    configure(project)
    apply(store, project, sequence("Texts", step("Hello"), step("Again"), stop_on_reply=True))
    scripted = enroll(store, "Texts", name="Sam", phone=PHONE)
    other = enroll(store, "Texts", name="Kim", phone="+12025550101")
    with serving(project, store_url) as client:
        answer = signed(client, INBOUND, {"MessageSid": "SMr1", "From": PHONE, "Body": "Hi!"})
        assert answer.status_code == 200
    assert (enrollment(store, scripted).status, enrollment(store, scripted).exit_reason) == (
        "stopped", "the lead replied",
    )  # fmt: skip
    assert enrollment(store, other).status == "active"
