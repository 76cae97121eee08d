"""How a lead is reached: email and phone checked and normalised (E.164), names split."""

import re
from functools import lru_cache

import phonenumbers
from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email


class ContactError(ValueError):
    """An email or phone number that cannot be used."""


def normalize_email(text: str) -> str:
    """The normalised address; ContactError says what is wrong."""
    address = text.strip()
    plain = _plain_email(address)
    if plain is not None:
        return plain
    try:
        return validate_email(address, check_deliverability=False).normalized
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
    domain = match["domain"].lower()
    labels = domain.split(".")
    special = any(
        domain == name or domain.endswith("." + name) for name in SPECIAL_USE_DOMAIN_NAMES
    )
    if special or len(domain) > 253 or max(map(len, labels)) > 63:
        return None
    return f"{match['local']}@{domain}"


@lru_cache(maxsize=65536)
def normalize_phone(text: str, region: str | None = None) -> str:
    """The number in E.164 (`+14155550123`); a number without `+` needs a region (country code).

    Cached: an import meets the same numbers again (a re-run, a shared office line).
    """
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as error:
        raise ContactError(f"invalid phone {text!r}: {_phone_reason(error)}") from None
    if not phonenumbers.is_valid_number(number):
        raise ContactError(f"invalid phone {text!r}: not a valid number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _phone_reason(error: phonenumbers.NumberParseException) -> str:
    if error.error_type == phonenumbers.NumberParseException.INVALID_COUNTRY_CODE:
        return "no country code (write it as +<country><number> or set phone_region)"
    return str(error.args[0] if error.args else error).strip().rstrip(".").lower()


HONORIFICS = frozenset({"mr", "mrs", "ms", "miss", "dr", "prof", "sr", "sra", "srta"})


def first_name(name: str) -> str:
    """The first word of a name that is not a title (`Dr. Ana López` -> `Ana`)."""
    words = [word for word in name.split() if word.strip(".").lower() not in HONORIFICS]
    return words[0] if words else name.strip()
