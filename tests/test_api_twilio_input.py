"""Twilio's inbound callback with values the store cannot keep: a 422, never a 500."""

from test_api_twilio import INBOUND, count, lead, sent, signed  # noqa: F401 - `sent`: a fixture

from nurture.store.tables import ProviderCallback


def test_an_inbound_message_with_a_nul_is_a_422_and_changes_nothing(sent):  # noqa: F811
    for form in (
        {"MessageSid": "SM\x00", "From": "+15555550100", "Body": "hi"},
        {"MessageSid": "SMnul", "From": "+15555550100", "Body": "STOP\x00"},
    ):
        answer = signed(sent, INBOUND, form)
        assert answer.status_code == 422, answer.text
        assert answer.json()["message"] == "the callback's MessageSid, From or Body is not text"
    assert count(sent, ProviderCallback) == 0
    assert lead(sent, sent.leads[0]).last_inbound_at is None
