"""Phone numbers: normalising to E.164 and recognising withheld callers."""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers

DEFAULT_REGION = "GB"

# Ofcom reserves these for drama; libphonenumber calls them unallocated, but they are
# well formed and are what the demo data and tests use.
_DRAMA_PREFIXES = ("+447700900", "+441632960")

_KEYPAD = {
    letter: digit
    for digit, letters in {
        "2": "abc",
        "3": "def",
        "4": "ghi",
        "5": "jkl",
        "6": "mno",
        "7": "pqrs",
        "8": "tuv",
        "9": "wxyz",
    }.items()
    for letter in letters
}

_WITHHELD_WORDS = ("anonymous", "restricted", "unavailable", "unknown", "private", "blocked")


def _keypad_spelling(word: str) -> str:
    return "+" + "".join(_KEYPAD[letter] for letter in word)


# Twilio sends a withheld caller as a word, or as that word typed on a keypad (+266696687).
WITHHELD_FORMS = frozenset(
    {"", "withheld"} | set(_WITHHELD_WORDS) | {_keypad_spelling(w) for w in _WITHHELD_WORDS}
)


class InvalidNumber(ValueError):
    """A phone number that cannot be a real number."""


def is_withheld(raw: str | None) -> bool:
    """True when Twilio's From says the caller withheld their number."""
    return raw is None or raw.strip().lower() in WITHHELD_FORMS


def normalise(raw: str, region: str = DEFAULT_REGION) -> str:
    """Return the number in E.164, or raise InvalidNumber saying why."""
    text = raw.strip()
    if not text:
        raise InvalidNumber("no number given")
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        # The library's own English ("did not seem to be a phone number") is not for people.
        raise InvalidNumber(
            f"{raw!r} is not a phone number: give the digits, such as 07700 900123"
        ) from None
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    if phonenumbers.is_valid_number(parsed) or e164.startswith(_DRAMA_PREFIXES):
        return e164
    raise InvalidNumber(f"{raw!r} cannot be a real number")


_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


@lru_cache(maxsize=4096)
def display(number: str | None, region: str = DEFAULT_REGION) -> str:
    """A number as a person reads it: national format at home (0191 498 0456), international
    abroad (+33 1 23 45 67 89), "withheld" for a withheld caller, and as given if unparseable."""
    if is_withheld(number):
        return "withheld"
    text = (number or "").strip()
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return text
    home = phonenumbers.region_code_for_number(parsed) == region or (
        parsed.country_code == phonenumbers.country_code_for_region(region))
    style = (phonenumbers.PhoneNumberFormat.NATIONAL if home
             else phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    return phonenumbers.format_number(parsed, style)


@lru_cache(maxsize=65536)
def caller_key(raw: str | None) -> str | None:
    """The E.164 key the register is looked up by, or None for withheld or unusable numbers."""
    if is_withheld(raw):
        return None
    text = (raw or "").strip()
    if _E164.match(text):
        # Twilio sends E.164 already; whether it is a valid number does not matter here,
        # since only valid numbers are on the register. This skips ~300 µs of parsing.
        return text
    try:
        return normalise(text)
    except InvalidNumber:
        return None
