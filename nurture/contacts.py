"""How a lead is reached: email and phone checked and normalised (E.164), names split."""

import phonenumbers
from email_validator import EmailNotValidError, validate_email


class ContactError(ValueError):
    """An email or phone number that cannot be used."""


def normalize_email(text: str) -> str:
    """The normalised address; ContactError says what is wrong."""
    try:
        return validate_email(text.strip(), check_deliverability=False).normalized
    except EmailNotValidError as error:
        raise ContactError(f"invalid email {text!r}: {error}") from None


def normalize_phone(text: str, region: str | None = None) -> str:
    """The number in E.164 (`+14155550123`); a number without `+` needs a region (country code)."""
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
