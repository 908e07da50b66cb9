"""Issue 14 item 7, whole calls: recorded as the centre chooses, told first, kept as evidence
for managers, counted in subject access, and deleted (at Twilio too) with the call log."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from twilio.http.response import Response

from callflow.recording import RECORDED_NOTICE, RecordingPolicy
from store.db import transaction
from store.models import Call, CallRecording
from store.recordings import RecordingNews, keep
from store.twilio_rest import BaseUrlHttpClient, build_client
from tests.calls.test_recording_warning import csv_row
from tests.calls.test_scenarios import HOLD_GREETING, POI, STRANGER, restrict
from tests.support.twilio_mock import TEST_ACCOUNT_SID
from tests.support.web_client import client_signed_in_as
from usecases.recordings import PurgeReport, purge_recordings
from usecases.subject_access import subject_access
from usecases.upkeep import apply_retention

RECORDING_SID = re.compile(r"^RE[0-9a-f]{32}$")


def recording_policy(services, policy: RecordingPolicy) -> None:
    services.settings = services.settings.with_overrides(recording=policy)


def answered_and_hung_up(driver, call, minutes: int = 2) -> None:
    (leg,) = call.staff_legs
    leg.answer()
    driver.clock.set(driver.clock.now + timedelta(minutes=minutes))
    leg.hang_up()


def recordings(services) -> list[CallRecording]:
    with services.sessions() as session:
        return list(session.scalars(select(CallRecording).order_by(CallRecording.id)))


def test_with_all_calls_recorded_the_caller_is_told_first_and_the_recording_is_kept(
        driver, services, staff):
    recording_policy(services, RecordingPolicy.ALL)
    driver.set_available(staff["agent"])
    call = driver.call(STRANGER)
    assert call.said()[:2] == [RECORDED_NOTICE, HOLD_GREETING], "told before anything else"
    conference = call.document("/incoming").find("./Dial/Conference")
    assert conference.get("record") == "record-from-start"
    answered_and_hung_up(driver, call)

    [kept] = recordings(services)
    assert kept.call_sid == call.sid and RECORDING_SID.match(kept.recording_sid)
    assert (kept.status, kept.duration_seconds) == ("completed", 120)
    assert kept.recording_url == (f"https://api.twilio.com/2010-04-01/Accounts/"
                                  f"{driver.emulator.account_sid}/Recordings/{kept.recording_sid}")
    _row, events = driver.call_log(call.sid)
    [logged] = [e for e in events if e.kind == "call_recording"]
    assert logged.detail == {"recording_sid": kept.recording_sid, "status": "completed",
                             "duration": 120, "recording_url": kept.recording_url}


def test_by_default_no_call_is_recorded_and_nobody_is_told_so(driver, services, staff):
    driver.set_available(staff["agent"])
    call = driver.call(STRANGER)
    assert RECORDED_NOTICE not in call.said()
    assert call.document("/incoming").find("./Dial/Conference").get("record") is None
    answered_and_hung_up(driver, call)
    assert recordings(services) == []


def test_recording_register_callers_only_records_them_and_counts_in_subject_access(
        driver, services, clock, staff):
    recording_policy(services, RecordingPolicy.REGISTER)
    restrict(services, clock, call_windows="Tue 09:00-12:00")  # QL-1, within their window
    driver.set_available(staff["agent"])
    stranger = driver.call(STRANGER)
    assert RECORDED_NOTICE not in stranger.said()
    answered_and_hung_up(driver, stranger)

    driver.set_available(staff["agent"])
    poi = driver.call(POI)
    assert poi.said()[0] == RECORDED_NOTICE
    assert poi.document("/incoming").find("./Dial/Conference").get("record") == (
        "record-from-start")
    poi.press("2")  # not the emergency line: on to wait, in a conference still recorded
    assert poi.document("/menu").find("./Dial/Conference").get("record") == "record-from-start"
    assert RECORDED_NOTICE not in poi.said()[1:], "told once"
    answered_and_hung_up(driver, poi, minutes=1)

    [kept] = recordings(services)
    assert kept.call_sid == poi.sid
    held = subject_access(services.sessions, "QL-1")
    assert [r["recording_sid"] for r in held["call_recordings"]] == [kept.recording_sid]
    assert held["call_recordings"][0]["duration_seconds"] == 60


def test_only_a_manager_sees_the_recording_on_the_calls_timeline(driver, services, staff):
    recording_policy(services, RecordingPolicy.ALL)
    driver.set_available(staff["agent"])
    call = driver.call(STRANGER)
    answered_and_hung_up(driver, call, minutes=2)
    [kept] = recordings(services)

    manager = client_signed_in_as(driver.app, "manager@example.org")
    page = manager.get(f"/workspace/calls/{call.sid}").get_data(as_text=True)
    assert "Call recorded" in page and "2 minutes" in page
    assert f'href="{kept.recording_url}"' in page
    supervisor = client_signed_in_as(driver.app, "supervisor@example.org")
    page = supervisor.get(f"/workspace/calls/{call.sid}").get_data(as_text=True)
    assert "Call received" in page  # the same timeline...
    assert "Call recorded" not in page and kept.recording_sid not in page  # ...without it

    # The CSV export too: the manager's says it was recorded; the supervisor's does not.
    said = csv_row(driver, services, staff["manager"], call.sid)["warning_and_recording"]
    left = ("the member of staff left (hung up) at 10:02am; the caller left (the call ended "
            "because the other person left it) at 10:02am")
    assert said == f"{left}; call recorded (2 minutes) at 10:02am"
    assert csv_row(driver, services, staff["supervisor"], call.sid)[
        "warning_and_recording"] == left


def test_retention_deletes_the_recording_at_twilio_and_here_with_its_call(
        driver, services, staff, clock):
    recording_policy(services, RecordingPolicy.ALL)
    driver.set_available(staff["agent"])
    call = driver.call(STRANGER)
    answered_and_hung_up(driver, call)
    [kept] = recordings(services)
    days = services.settings.retention_days

    later = clock.now + timedelta(days=days - 1)
    assert purge_recordings(services, later, days) == PurgeReport()
    assert len(recordings(services)) == 1, "kept while its call is"

    after = clock.now + timedelta(days=days, minutes=1)
    sent_before = len(driver.http.requests)
    assert purge_recordings(services, after, days) == PurgeReport(deleted=1)
    [deleted] = driver.http.requests[sent_before:]
    # Twilio's OpenAPI spec (the Prism mock) accepted the DELETE.
    assert (deleted.method, deleted.path, deleted.status) == (
        "DELETE", f"/2010-04-01/Accounts/{services.settings.twilio_account_sid}/Recordings/"
        f"{kept.recording_sid}.json",
        204)
    driver.http.assert_all_accepted()
    assert recordings(services) == []
    apply_retention(services.sessions, after, after.date(), days)
    with services.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Call)) == 0


class Answering(BaseUrlHttpClient):
    """Twilio answering every request with one status, as when it is down or the recording
    has gone (the Prism mock answers only what its spec allows)."""

    def __init__(self, status: int):
        super().__init__("http://127.0.0.1:9")
        self.status = status
        self.sent: list[tuple[str, str]] = []

    def request(self, method, url, params=None, data=None, headers=None, auth=None,
                timeout=None, allow_redirects=False):
        self.sent.append((method, url))
        return Response(self.status, '{"code": 20404, "message": "not found"}')


@pytest.mark.parametrize(("status", "report", "left"), [
    (404, PurgeReport(already_gone=1), 0),  # gone at Twilio already: forgotten here too
    (503, PurgeReport(kept_for_now=1), 1),  # Twilio away: kept, and tried again next run
])
def test_retention_forgets_a_recording_twilio_no_longer_has_and_keeps_one_it_could_not_delete(
        services, clock, status, report, left):
    with transaction(services.sessions) as session:
        keep(session, RecordingNews("CA" + "1" * 32, "RE" + "2" * 32, None, "completed", 30,
                                    None, clock.now))
    stub = Answering(status)
    services.__dict__["twilio"] = build_client(TEST_ACCOUNT_SID, "token", http_client=stub)
    days = services.settings.retention_days
    assert purge_recordings(services, clock.now + timedelta(days=days, minutes=1), days) == report
    assert stub.sent == [("DELETE", f"https://api.twilio.com/2010-04-01/Accounts/"
                                    f"{TEST_ACCOUNT_SID}/Recordings/{'RE' + '2' * 32}.json")]
    assert len(recordings(services)) == left


def test_a_malformed_recording_callback_says_everything_wrong_at_once(driver, services):
    url = f"{driver.base_url}/twilio/voice/call-recording?call=not-a-call"
    exchange = driver.emulator.request(url, {"RecordingSid": "RE123", "RecordingStatus": "odd"})
    assert exchange.status == 400
    assert ("the query parameter call is missing or not a CallSid; parameter RecordingSid is "
            "missing or malformed; parameter RecordingStatus is missing or not a recording "
            "status") in exchange.body
    assert recordings(services) == []


def test_a_forged_recording_callback_is_refused(driver, services):
    url = f"{driver.base_url}/twilio/voice/call-recording?call={'CA' + '1' * 32}"
    params = {"RecordingSid": "RE" + "3" * 32, "RecordingStatus": "completed"}
    response = driver.client.post(url[len(driver.base_url):], data=params,
                                  headers={"X-Twilio-Signature": "forged"})
    assert response.status_code == 403
    assert recordings(services) == []
