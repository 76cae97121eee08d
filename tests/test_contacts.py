"""Email and phone normalisation: the fast path for everyday addresses agrees with email-validator."""

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from nurture.rules.contacts import ContactError, normalize_email, normalize_phone, phones_ahead


def validator(address: str) -> str | None:
    """email-validator's normalisation, lower-cased whole as nurture keeps addresses."""
    try:
        return validate_email(address, check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        return None


def ours(address: str) -> str | None:
    try:
        return normalize_email(address)
    except ContactError:
        return None


LOCAL = st.text("abcXYZ019._%+-!#'", min_size=0, max_size=70)
LABEL = st.text("abcXYZ019-", min_size=0, max_size=66)
DOMAIN = st.lists(LABEL, min_size=1, max_size=4).map(".".join)
TLD = st.sampled_from(
    ["com", "ORG", "io", "c", "c0m", "test", "local", "localhost", "xn--p1ai", ""]
)


@settings(max_examples=600, deadline=None)
@given(local=LOCAL, domain=DOMAIN, tld=TLD)
def test_every_address_normalises_as_email_validator_does(local: str, domain: str, tld: str):
    address = f"{local}@{domain}.{tld}" if tld else f"{local}@{domain}"
    assert ours(address) == validator(address)


@pytest.mark.parametrize(
    "address",
    [
        "Ana.Ruiz@Example.COM",
        "x@localhost",
        "x@shop.test",
        "a..b@example.com",
        "a@xn--p1ai.com",
        "josé@example.com",
        '"quoted"@example.com',
        "a@1.23",
        "a" * 65 + "@example.com",
        "a@" + "b" * 64 + ".com",
    ],
)
def test_edge_addresses_match_email_validator(address: str):
    assert ours(address) == validator(address)


def test_one_mailbox_is_one_address_whatever_the_case():
    assert normalize_email(" Ana.Ruiz@Example.COM ") == "ana.ruiz@example.com"
    assert normalize_email("JOSÉ@example.com") == normalize_email("josé@example.com")


def test_a_bad_email_says_why():
    with pytest.raises(
        ContactError, match="invalid email 'not-an-email': An email address must have an @-sign"
    ):
        normalize_email("not-an-email")


def test_phones_are_e164_and_bad_ones_say_why():
    assert normalize_phone("+1 (415) 555-0123") == "+14155550123"
    assert normalize_phone("020 7946 0958", "GB") == "+442079460958"
    with pytest.raises(ContactError, match="no country code"):
        normalize_phone("612 345 678")
    with pytest.raises(ContactError, match="not a valid number"):
        normalize_phone("+1 415 555")


def test_phones_worked_out_ahead_in_a_helper_match_the_direct_answers(monkeypatch):
    monkeypatch.setattr("nurture.rules.contacts.PARALLEL_FROM", 1)
    batches = [["+1 650 555 0199", "+1 650 555"], ["650 555 0198"]]
    with phones_ahead(batches, "US") as ready:
        ready(0)
        ready(1)
    monkeypatch.setattr(
        "nurture.rules.contacts._phone", None
    )  # the answers must come from the helper
    assert normalize_phone("+1 650 555 0199", "US") == "+16505550199"
    assert normalize_phone("650 555 0198", "US") == "+16505550198"
    with pytest.raises(ContactError, match="invalid phone '\\+1 650 555': not a valid number"):
        normalize_phone("+1 650 555", "US")


def test_a_helper_that_dies_leaves_the_work_to_normalize_phone(monkeypatch):
    monkeypatch.setattr("nurture.rules.contacts.PARALLEL_FROM", 1)
    monkeypatch.setattr("sys.executable", "/bin/false")
    with phones_ahead([["+1 212 555 0142"]], None) as ready:
        ready(0)
    assert normalize_phone("+1 212 555 0142") == "+12125550142"
