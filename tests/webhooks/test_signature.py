"""The webhook signature check and form parser agree with twilio's validator and parse_qsl."""

from urllib.parse import parse_qsl, quote, urlencode

from hypothesis import given
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from webhooks.signature import parse_form, signature_matches

TOKEN = "test-auth-token"
URL = "https://callflow.test/twilio/voice/incoming"
names = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)
values = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
forms = st.lists(st.tuples(names, values), max_size=12)


@given(forms)
def test_the_parser_reads_any_encoded_form_as_parse_qsl_does(pairs):
    body = urlencode(pairs)
    assert parse_form(body.encode()) == (parse_qsl(body, keep_blank_values=True), True)


@given(st.text(alphabet="ab=&%+2F0x", max_size=30))
def test_the_parser_reads_raw_oddities_as_parse_qsl_does(body):
    # Bare names, empty fields, stray '%' and '+': what a hand-made request might send.
    try:
        expected = parse_qsl(body, keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        assert parse_form(body.encode())[1] is False
        return
    assert parse_form(body.encode()) == (expected, True)


def test_undecodable_bytes_are_flagged_and_replaced():
    pairs, utf8 = parse_form(b"CallSid=CA1&From=%FF%FE&To=\xff")
    assert not utf8
    assert pairs == [("CallSid", "CA1"), ("From", "\ufffd\ufffd"), ("To", "\ufffd")]


@given(forms, st.sampled_from(["HMAC_SHA1", "HMAC_SHA256"]))
def test_a_signature_twilio_made_is_accepted_and_any_change_refused(pairs, algorithm):
    validator = RequestValidator(TOKEN)
    params: dict[str, list[str]] = {}
    for name, value in pairs:
        params.setdefault(name, []).append(value)

    class Multi(dict):
        def getall(self, name):
            return self[name]

    signature = validator.compute_signature(URL, Multi(params), algorithm)
    assert signature_matches(TOKEN, URL, pairs, signature, algorithm)
    assert not signature_matches(TOKEN, URL, [*pairs, ("Extra", "1")], signature, algorithm)
    assert not signature_matches(TOKEN, URL + "x", pairs, signature, algorithm)
    assert not signature_matches("other-token", URL, pairs, signature, algorithm)


def test_twilio_signing_with_the_port_is_still_accepted():
    pairs = [("CallSid", "CA" + "a" * 32), ("From", "+447700900123")]
    with_port = RequestValidator(TOKEN).compute_signature(
        "https://callflow.test:443/twilio/voice/incoming", dict(pairs))
    assert signature_matches(TOKEN, URL, pairs, with_port)


def test_an_unknown_algorithm_or_a_mangled_signature_is_refused():
    pairs = [("CallSid", "CA" + "a" * 32)]
    good = RequestValidator(TOKEN).compute_signature(URL, dict(pairs))
    assert not signature_matches(TOKEN, URL, pairs, good, "HMAC_MD5")
    assert not signature_matches(TOKEN, URL, pairs, good[:-2] + "==")
    assert not signature_matches(TOKEN, URL, pairs, quote("sïgnature"))
