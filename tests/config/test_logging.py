"""The logging set-up: JSON or plain lines, the call SID on every record, numbers masked."""

import io
import json
import logging

import pytest

from config.logging_setup import (
    MASK,
    call_sid_bound,
    configure_logging,
    mask_numbers,
    with_call_sid,
)
from config.settings import SettingsError, load_settings
from tests.support.log_capture import captured_log

SID = "CA" + "0123456789abcdef" * 2
log = logging.getLogger("tests.logging")


def test_a_record_in_json_carries_the_call_sid_while_one_is_bound():
    with captured_log("json") as captured:
        log.info("before")
        with call_sid_bound(SID):
            log.info("during %s", "the call")
        log.info("after")
        records = captured.records()
    assert [(r["message"], r["call_sid"]) for r in records] == [
        ("before", None), ("during the call", SID), ("after", None)]
    assert {"time", "level", "logger"} <= set(records[0])


def test_a_plain_line_names_the_call_sid():
    with captured_log("text") as captured, call_sid_bound(SID):
        log.warning("ringing")
        (line,) = captured.lines()
    assert line.endswith(f"WARNING tests.logging [{SID}]: ringing")


def test_a_job_logs_with_its_first_argument_as_the_call_sid():
    @with_call_sid
    def job(call_sid: str, staff_id: int) -> str:
        log.info("staff %s rung", staff_id)
        return "done"

    with captured_log("json") as captured:
        assert job(SID, 7) == "done"
        log.info("between jobs")
        records = captured.records()
    assert [(r["message"], r["call_sid"]) for r in records] == [
        ("staff 7 rung", SID), ("between jobs", None)]


def test_something_that_is_not_a_call_sid_is_not_attached():
    with captured_log("json") as captured, call_sid_bound("+447700900123"):
        log.info("x")
        (record,) = captured.records()
    assert record["call_sid"] is None


@pytest.mark.parametrize("number", [
    "+447700900123", "+44 7700 900123", "07700 900123", "07700900123", "020 7946 0018",
    "00447700900123", "+14155550100",
])
def test_a_phone_number_in_a_message_or_its_arguments_is_masked(number):
    with captured_log("json") as captured:
        log.warning(f"caller {number} rang")
        log.warning("caller %s rang", number)
        records = captured.records()
    assert [r["message"] for r in records] == [f"caller {MASK} rang"] * 2


def test_a_phone_number_in_a_traceback_is_masked():
    with captured_log("json") as captured:
        try:
            raise ValueError("no such caller: 07700 900123")
        except ValueError:
            log.exception("lookup failed")
        output = captured.stream.getvalue()
        (record,) = captured.records()
    assert "900123" not in output
    assert f"no such caller: {MASK}" in record["exc_info"]


@pytest.mark.parametrize("text", [SID, "staff 12 and attempt 3", "2026-12-01 10:00:00",
                                  "123 entries in 2.5 s", "job callflow:call:" + SID,
                                  "01-12-2026 10:00", "staff 0 and 12 more"])
def test_what_is_not_a_phone_number_is_left_alone(text):
    assert mask_numbers(text) == text


def test_configuring_twice_leaves_one_handler_in_the_format_asked():
    root = logging.getLogger()
    before = list(root.handlers)
    level = root.level
    first, second = io.StringIO(), io.StringIO()
    try:
        configure_logging("text", stream=first)
        configure_logging("json", stream=second)
        log.info("once")
        added = [h for h in root.handlers if h not in before]
        assert len(added) == 1
        assert first.getvalue() == ""
        assert json.loads(second.getvalue())["message"] == "once"
    finally:
        for handler in root.handlers[:]:
            if handler not in before:
                root.removeHandler(handler)
                handler.close()
        root.setLevel(level)


@pytest.mark.parametrize(("environ", "expected"), [
    ({}, "text"),
    ({"CALLFLOW_ENV": "test"}, "text"),
    ({"CALLFLOW_ENV": "test", "CALLFLOW_LOG_FORMAT": "JSON"}, "json"),
])
def test_log_format_is_text_for_people_at_a_terminal_unless_asked(tmp_path, environ, expected):
    settings = load_settings({"CALLFLOW_VAR_DIR": str(tmp_path), **environ})
    assert settings.log_format == expected


def test_log_format_is_json_in_production_and_anything_else_is_refused(tmp_path):
    production = {"CALLFLOW_ENV": "production", "CALLFLOW_VAR_DIR": str(tmp_path),
                  "SECRET_KEY": "k", "TWILIO_AUTH_TOKEN": "t", "TWILIO_ACCOUNT_SID": "AC1",
                  "PUBLIC_BASE_URL": "https://callflow.test",
                  "TWILIO_PHONE_NUMBER": "+441632960000",
                  "CALLFLOW_EMERGENCY_NUMBER": "", "CALLFLOW_WRITTEN_CONTACT": "Write to us."}
    assert load_settings(production).log_format == "json"
    with pytest.raises(SettingsError, match="CALLFLOW_LOG_FORMAT"):
        load_settings({"CALLFLOW_VAR_DIR": str(tmp_path), "CALLFLOW_LOG_FORMAT": "xml"})
