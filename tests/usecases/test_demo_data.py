"""The demo data and defaults are fictional: a made-up organisation and Ofcom's drama numbers."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import phonenumbers

from config import settings
from usecases.demo import DEMO_STAFF, demo_rows

ROOT = Path(__file__).resolve().parents[2]
# Ofcom's numbers for drama (TV, radio, film): never allocated to anyone.
DRAMA_RANGES = (
    "+447700900", "+441134960", "+441144960", "+441154960", "+441164960", "+441174960",
    "+441184960", "+441214960", "+441314960", "+441414960", "+441514960", "+441614960",
    "+441914980", "+442079460", "+442920180", "+441632960", "+443069990", "+448081570",
    "+449098790",
)
REAL_ORGANISATION = re.compile(r"Believe Housing|Explorer House|DH1 5TS|D H 1 5 T S", re.I)


def e164(raw: str) -> str:
    """A number in E.164, as the register stores it."""
    parsed = phonenumbers.parse(raw, "GB")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def test_every_demo_and_default_number_is_in_an_ofcom_drama_range():
    numbers = [phone for *_, phone in DEMO_STAFF if phone]
    for row in demo_rows(date(2026, 12, 1)):
        numbers += [n for n in row["phone_numbers"].split(";") if n.strip()]
    defaults = settings.Settings(env="test", var_dir=ROOT / "var")
    numbers += [defaults.twilio_phone_number, defaults.emergency_number]
    outside = [n for n in numbers if not e164(n).startswith(DRAMA_RANGES)]
    assert outside == []


def test_readme_examples_use_drama_numbers_only():
    readme = (ROOT / "README.md").read_text()
    found = re.findall(r"`(\+44\d{9,10}|0\d{3,4} \d{3} ?\d{3,4}|\(0\d{3}\) \d{3} \d{4})", readme)
    assert found, "the README gives example numbers"
    outside = [n for n in found if not e164(n).startswith(DRAMA_RANGES)]
    assert outside == []


def test_no_real_organisation_in_the_demo_the_defaults_or_the_letters():
    texts = {
        "DEFAULT_WRITTEN_CONTACT": settings.DEFAULT_WRITTEN_CONTACT,
        **{str(p.relative_to(ROOT)): p.read_text()
           for p in [ROOT / "README.md", ROOT / "usecases" / "demo.py",
                     *(ROOT / "config" / "templates").glob("*.txt")]},
    }
    assert [name for name, text in texts.items() if REAL_ORGANISATION.search(text)] == []
    assert "Northfield Homes" in settings.DEFAULT_WRITTEN_CONTACT
