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
    national = _uk_national_number(text) if region == "GB" else None
    if national is None:
        e164, valid = _parse(raw, text, region)
    else:
        e164, valid = "+44" + national, _valid_uk_number(national)
    if valid or e164.startswith(_DRAMA_PREFIXES):
        return e164
    raise InvalidNumber(f"{raw!r} cannot be a real number")


def _parse(raw: str, text: str, region: str) -> tuple[str, bool]:
    """libphonenumber's E.164 and its verdict on whether the number is valid."""
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        # The library's own English ("did not seem to be a phone number") is not for people.
        raise InvalidNumber(
            f"{raw!r} is not a phone number: give the digits, such as 07700 900123"
        ) from None
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return e164, phonenumbers.is_valid_number(parsed)


# The two ways a UK number is usually written (+44 7700 900123, 07700 900123), spaces and
# dashes apart. For these libphonenumber's parse comes to the digits after +44 or 0 (at 9 or 10
# digits no national prefix or carrier code can be stripped from them), so they skip it.
_UK_WRITTEN = re.compile(r"(?:\+44|0)([1-9][0-9]{8,9})")
_SEPARATORS = str.maketrans("", "", " -")


def _uk_national_number(text: str) -> str | None:
    """The national significant number of a UK number written in a usual way, else None."""
    match = _UK_WRITTEN.fullmatch(text.translate(_SEPARATORS))
    return match[1] if match else None


class _Region:
    """One region's number types, from libphonenumber's metadata, as it tests a number against
    them: a type fits when the number's length is one of the type's (if it lists any) and its
    pattern matches the whole number. The types are joined into one pattern per length."""

    def __init__(self, region: str):
        metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
        self.leading = re.compile(metadata.leading_digits) if metadata.leading_digits else None
        self.general = metadata.general_desc
        # libphonenumber counts mobile apart only when its pattern differs from fixed lines'.
        self.kinds = [metadata.premium_rate, metadata.toll_free, metadata.shared_cost,
                      metadata.voip, metadata.personal_number, metadata.pager, metadata.uan,
                      metadata.voicemail, metadata.fixed_line]
        if not metadata.same_mobile_and_fixed_line_pattern:
            self.kinds.append(metadata.mobile)
        self._by_length: dict[int, re.Pattern[str] | None] = {}

    def has_type(self, national: str) -> bool:
        """True when libphonenumber gives the number a type here (not UNKNOWN)."""
        length = len(national)
        if length not in self._by_length:
            self._by_length[length] = _type_pattern(self.general, self.kinds, length)
        pattern = self._by_length[length]
        return pattern is not None and pattern.fullmatch(national) is not None


def _type_pattern(general: phonenumbers.PhoneNumberDesc, kinds: list, length: int,
                  ) -> re.Pattern[str] | None:
    """A pattern matching a whole number of this length when the general description and one of
    the kinds both would, or None when none can."""
    def fits(desc: phonenumbers.PhoneNumberDesc | None) -> bool:
        return bool(desc is not None and desc.national_number_pattern
                    and (not desc.possible_length or length in desc.possible_length))
    specific = [desc.national_number_pattern for desc in kinds if fits(desc)]
    if not fits(general) or not specific:
        return None
    # A lookahead holds the general description to the whole number too.
    return re.compile("(?=(?:{})$)(?:{})".format(
        general.national_number_pattern, "|".join(f"(?:{p})" for p in specific)))


_UK_REGIONS = [_Region(region) for region in phonenumbers.COUNTRY_CODE_TO_REGION_CODE[44]]


def _valid_uk_number(national: str) -> bool:
    """phonenumbers.is_valid_number for +44 and this national number, from the same metadata:
    the region is the first (GB, Guernsey, Isle of Man, Jersey) whose leading digits or number
    types fit, and the number is valid when it has a type in that region."""
    for region in _UK_REGIONS:
        if region.leading is None:
            if region.has_type(national):
                return True
        elif region.leading.match(national):
            return region.has_type(national)
    return False


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
