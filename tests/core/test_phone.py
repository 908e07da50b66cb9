"""Normalising numbers to E.164 and recognising withheld callers."""

import pytest

from callflow.phone import InvalidNumber, caller_key, is_withheld, normalise


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("07700 900123", "+447700900123"),
        ("+44 7700 900123", "+447700900123"),
        ("0044 7700 900123", "+447700900123"),
        ("(0191) 496 0000", "+441914960000"),
        ("020 7946 0000", "+442079460000"),
        ("+1 202-555-0143", "+12025550143"),
        ("  07700-900-123 ", "+447700900123"),
    ],
)
def test_every_uk_and_international_format_normalises_to_e164(raw, e164):
    assert normalise(raw) == e164


@pytest.mark.parametrize("raw", ["12345", "07700", "+44 1", "not a number", "0800 00"])
def test_a_number_that_cannot_be_real_is_refused_with_the_number_in_the_message(raw):
    with pytest.raises(InvalidNumber) as error:
        normalise(raw)
    assert repr(raw) in str(error.value)


@pytest.mark.parametrize(
    "raw",
    ["", None, "anonymous", "Anonymous", "restricted", "unavailable", "+266696687",
     "+7378742833", "+86282452253", "+2562533", "+8656696"],
)
def test_each_withheld_form_twilio_sends_is_recognised(raw):
    assert is_withheld(raw)
    assert caller_key(raw) is None


def test_a_real_number_is_not_withheld():
    assert not is_withheld("+447700900123")
    assert caller_key("07700 900123") == "+447700900123"


def test_an_unusable_caller_number_has_no_key_instead_of_raising():
    assert caller_key("12345") is None


def test_an_e164_number_from_twilio_is_its_own_key_without_parsing():
    assert caller_key("+447700900123") == "+447700900123"
    assert caller_key("+12025550143") == "+12025550143"
