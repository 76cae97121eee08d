"""The import's phone helper: numbers normalised in another process, never another's result."""

import sys

import pytest

from nurture.errors import ContactError
from nurture.rules import contacts

BATCHES = [
    [f"+1 415 {200 + k:03d} {n:04d}" for n in range(1000)] + ["12", "+44 20 7946 0958"]
    for k in range(6)
]
# A helper whose answer to batch 1 is lost: batch 2's answer comes when batch 1's is asked for.
LOSES_ONE = r"""
import json, sys
from nurture.rules.contacts import phones
for number, line in enumerate(sys.stdin):
    results = phones(json.loads(line), None)
    if number != 1:
        print(json.dumps([number, [(isinstance(r, str), str(r)) for r in results]]), flush=True)
"""


def normalised(text: str) -> str:
    try:
        return contacts.normalize_phone(text)
    except ContactError as error:
        return f"error: {error}"


@pytest.fixture(autouse=True)
def no_cache(monkeypatch):
    monkeypatch.setattr(contacts, "_PHONES", {})


def test_the_helper_works_out_each_batch_before_it_is_read(monkeypatch):
    worked_here: list[str] = []
    real = contacts._phone
    monkeypatch.setattr(contacts, "_phone", lambda t, r: worked_here.append(t) or real(t, r))
    with contacts.phones_ahead(BATCHES, None) as ready:
        for number, texts in enumerate(BATCHES):
            ready(number)
            got = [normalised(text) for text in texts]
            assert got[0] == f"+1415{200 + number:03d}0000"
            assert got[-2].startswith("error: invalid phone '12'")
            assert got[-1] == "+442079460958"
    assert worked_here == []  # every number came from the helper


def test_a_lost_answer_never_gives_a_number_another_batchs_result(monkeypatch):
    monkeypatch.setattr(contacts, "helper_command", lambda _: [sys.executable, "-c", LOSES_ONE])
    with contacts.phones_ahead(BATCHES, None) as ready:
        for number, texts in enumerate(BATCHES):
            ready(number)
            assert [normalised(t) for t in texts[:3]] == [
                f"+1415{200 + number:03d}{n:04d}" for n in range(3)
            ]
            assert normalised(texts[-1]) == "+442079460958"


def test_a_helper_that_dies_leaves_the_work_to_the_caller(monkeypatch):
    monkeypatch.setattr(contacts, "helper_command", lambda _: [sys.executable, "-c", "pass"])
    with contacts.phones_ahead(BATCHES, None) as ready:
        for number, texts in enumerate(BATCHES):
            ready(number)
            assert normalised(texts[7]) == f"+1415{200 + number:03d}0007"
