"""How a lead is reached: email and phone checked and normalised (E.164), names split."""

import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache

import phonenumbers
from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

from nurture.errors import ContactError


def normalize_email(text: str) -> str:
    """The normalised address, lower-cased; ContactError says what is wrong.

    Lower case whole: mail systems treat `Ana@Example.com` and `ana@example.com` as one mailbox,
    and so must the upsert by email, or one person becomes two leads who get every message twice.
    """
    address = text.strip()
    plain = _plain_email(address)
    if plain is not None:
        return plain.lower()
    try:
        return validate_email(address, check_deliverability=False).normalized.lower()
    except EmailNotValidError as error:
        raise ContactError(f"invalid email {text!r}: {error}") from None


# The everyday address (ASCII dot-atom local part, ASCII host names, a letters-only top-level
# domain) as email-validator normalises it: the domain lower-cased, the rest as given. Anything
# else (quoted or Unicode parts, IDNA `--` labels, special-use domains, over-long parts) goes
# through email-validator itself: this is only a shortcut for what it surely accepts.
_PLAIN = re.compile(
    r"(?P<local>[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*)"
    r"@(?P<domain>(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,63})"
)


def _plain_email(address: str) -> str | None:
    match = _PLAIN.fullmatch(address)
    if match is None or len(address) > 254 or len(match["local"]) > 64 or "--" in address:
        return None
    domain = _usual_domain(match["domain"])
    return None if domain is None else f"{match['local']}@{domain}"


@lru_cache(maxsize=4096)  # an import's addresses share a few domains (gmail.com...)
def _usual_domain(domain: str) -> str | None:
    """The domain lower-cased when it is an everyday one: no special-use name, no long label."""
    domain = domain.lower()
    labels = domain.split(".")
    suffixes = {".".join(labels[start:]) for start in range(len(labels))}
    special = not suffixes.isdisjoint(SPECIAL_USE_DOMAIN_NAMES)
    if special or len(domain) > 253 or max(map(len, labels)) > 63:
        return None
    return domain


_PHONES: dict[tuple[str, str | None], str | ContactError] = {}
_PHONES_KEPT = 200_000


def normalize_phone(text: str, region: str | None = None) -> str:
    """The number in E.164 (`+14155550123`); a number without `+` needs a region (country code).

    Cached: an import meets the same numbers again (a re-run, a shared office line), and a
    large one works them out ahead in another process (`remember_phones`).
    """
    found = _PHONES.get((text, region))
    if found is None:
        found = _phone(text, region)
        if len(_PHONES) >= _PHONES_KEPT:
            _PHONES.clear()
        _PHONES[(text, region)] = found
    if isinstance(found, ContactError):
        raise ContactError(str(found))
    return found


def _phone(text: str, region: str | None) -> str | ContactError:
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as error:
        return ContactError(f"invalid phone {text!r}: {_phone_reason(error)}")
    if not phonenumbers.is_valid_number(number):
        return ContactError(f"invalid phone {text!r}: not a valid number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phones(texts: list[str], region: str | None) -> list[str | ContactError]:
    """Many numbers normalised (E.164, or the error): the work a helper process does."""
    return [_phone(text, region) for text in texts]


def remember_phones(texts: list[str], region: str | None, results: list[str | ContactError]):
    """Keep results of `phones` (from another process) for normalize_phone."""
    if len(_PHONES) + len(texts) >= _PHONES_KEPT:
        _PHONES.clear()
    _PHONES.update(((text, region), result) for text, result in zip(texts, results, strict=True))


PARALLEL_FROM = 5_000
"""Fewer numbers than this are not worth starting a helper process for."""


@contextmanager
def phones_ahead(batches: list[list[str]], region: str | None) -> Iterator[Callable[[int], None]]:
    """Normalise the numbers of later batches in a helper process while the caller works on
    earlier ones (phonenumbers is most of an import's time); `ready(k)`, called for k = 0, 1,
    ... in order, makes batch k's results known to normalize_phone. Each answer names its batch
    and holds one result a number: an answer that does not (the helper died, or its output was
    cut) ends the helper, and normalize_phone does the work of that batch and every later one
    itself, so a number never gets another's result."""
    if sum(map(len, batches)) < PARALLEL_FROM:
        yield lambda _: None
        return
    with tempfile.TemporaryFile("w+", encoding="utf-8") as requests:
        requests.writelines(json.dumps(texts) + "\n" for texts in batches)
        requests.seek(0)
        with subprocess.Popen(
            helper_command(region),
            stdin=requests,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        ) as helper:
            trusted = True

            def ready(number: int) -> None:
                nonlocal trusted
                if trusted and not _receive(helper, number, batches[number], region):
                    trusted = False
                    helper.kill()

            try:
                yield ready
            finally:
                helper.kill()


def helper_command(region: str | None) -> list[str]:
    """The helper process of phones_ahead."""
    return [sys.executable, "-m", "nurture.rules.contacts", region or ""]


def _receive(helper: subprocess.Popen, number: int, texts: list[str], region: str | None) -> bool:
    """Batch `number`'s answer remembered; False when the helper gave none that fits."""
    line = helper.stdout.readline() if helper.stdout else ""
    try:
        answered, pairs = json.loads(line)
        if answered != number or len(pairs) != len(texts):
            return False
        results = [value if ok else ContactError(value) for ok, value in pairs]
    except (ValueError, TypeError):
        return False
    remember_phones(texts, region, results)
    return True


def _serve(region: str | None) -> None:
    """The helper: a JSON list of numbers per input line; out, per line, its number (from 0)
    and a JSON list of (ok, result)."""
    for number, line in enumerate(sys.stdin):
        results = phones(json.loads(line), region)
        print(json.dumps([number, [(isinstance(r, str), str(r)) for r in results]]), flush=True)


def _phone_reason(error: phonenumbers.NumberParseException) -> str:
    if error.error_type == phonenumbers.NumberParseException.INVALID_COUNTRY_CODE:
        return "no country code (write it as +<country><number> or set phone_region)"
    return str(error.args[0] if error.args else error).strip().rstrip(".").lower()


HONORIFICS = frozenset({"mr", "mrs", "ms", "miss", "dr", "prof", "sr", "sra", "srta"})


def first_name(name: str) -> str:
    """The first word of a name that is not a title (`Dr. Ana López` -> `Ana`)."""
    words = [word for word in name.split() if word.strip(".").lower() not in HONORIFICS]
    return words[0] if words else name.strip()


if __name__ == "__main__":  # the helper process of phones_ahead
    _serve(sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] else None)
