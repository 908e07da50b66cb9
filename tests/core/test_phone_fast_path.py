"""normalise's fast path for UK numbers gives libphonenumber's own answer for every input.

The reference is the library's path (parse, format as E.164, is_valid_number), which
normalise takes for anything not written as +44 or 0 and digits. Each property compares the
two on generated text, weighted towards the shapes the fast path accepts and their edges.
"""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from callflow import phone
from callflow.phone import InvalidNumber, normalise


def reference(raw: str, region: str = "GB") -> str:
    """normalise's answer by libphonenumber alone: the E.164 number or the refusal's message."""
    text = raw.strip()
    if not text:
        return "no number given"
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return f"{raw!r} is not a phone number: give the digits, such as 07700 900123"
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    if phonenumbers.is_valid_number(parsed) or e164.startswith(("+447700900", "+441632960")):
        return e164
    return f"{raw!r} cannot be a real number"


def answer(raw: str) -> str:
    """normalise's answer: the E.164 number or the refusal's message."""
    try:
        return normalise(raw)
    except InvalidNumber as refusal:
        return str(refusal)


# Where UK numbers start: geographic, Guernsey, Isle of Man, Jersey, mobiles, drama ranges,
# free and premium rate, personal numbers, and the 180020 prefix parse may strip.
UK_STARTS = ["1", "11", "1481", "1534", "1624", "16329", "180020", "2", "20", "3", "5",
             "55", "56", "7", "74576", "7624", "75", "7700900", "7781", "7839", "7911", "8",
             "800", "843", "870", "9", "909", "0", "44"]
separators = st.sampled_from(["", " ", "-", "  ", " - "])


@st.composite
def uk_written(draw: st.DrawFn) -> str:
    """A UK-ish number as people type it: +44 or 0 (or neither, or both), a known start, digits
    to about the right length, separators anywhere, sometimes a letter or stray character."""
    prefix = draw(st.sampled_from(["+44", "0", "+440", "0044", "44", "+", "", "+4", "00"]))
    start = draw(st.sampled_from(UK_STARTS))
    rest = draw(st.text("0123456789", min_size=0, max_size=12))
    digits = list(start + rest)
    for _ in range(draw(st.integers(0, 3))):
        digits.insert(draw(st.integers(0, len(digits))), draw(separators))
    text = prefix + draw(separators) + "".join(digits)
    if draw(st.booleans()) and draw(st.booleans()):
        where = draw(st.integers(0, len(text)))
        text = text[:where] + draw(st.sampled_from(
            ["a", "x", "ext. 12", "(", ")", ".", "/", "+", "٣", "\u00a0", "#"])) + text[where:]
    return draw(st.sampled_from(["", " ", "\t"])) + text + draw(st.sampled_from(["", " "]))


@settings(max_examples=3000, deadline=None)
@given(uk_written())
@example("+44 7700 900123")
@example("07700-900-123")
@example("+441800201234")
@example("01800201234")
@example("+441624 123456")
@example("07700 90012")
@example("+44 7700 9001234")
@example("+44 ٧٧٠٠ ٩٠٠١٢٣")
def test_uk_numbers_get_libphonenumbers_answer(raw: str) -> None:
    assert answer(raw) == reference(raw)


@settings(max_examples=1500, deadline=None)
@given(st.text(st.sampled_from("+0123456789 -()x"), max_size=18))
def test_any_short_run_of_number_characters_gets_libphonenumbers_answer(raw: str) -> None:
    assert answer(raw) == reference(raw)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=20))
def test_any_text_gets_libphonenumbers_answer(raw: str) -> None:
    assert answer(raw) == reference(raw)


@pytest.mark.parametrize("raw", ["+33 1 23 45 67 89", "+1 202-555-0143", "+353 1 234 5678",
                                 "+61 2 9876 5432", "+44 (0) 7700 900123", "(0191) 496 0000"])
def test_numbers_outside_the_fast_path_still_get_libphonenumbers_answer(raw: str) -> None:
    assert phone._uk_national_number(raw.strip()) is None
    assert answer(raw) == reference(raw)


@pytest.mark.parametrize(("raw", "national"), [("+447911123456", "7911123456"),
                                               ("07700 900123", "7700900123"),
                                               ("01624 123 456", "1624123456")])
def test_the_usual_uk_forms_take_the_fast_path(raw: str, national: str) -> None:
    assert phone._uk_national_number(raw) == national
