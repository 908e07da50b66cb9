"""Sign-in, sessions, the throttle, CSRF, security headers, roles and API tokens."""

from __future__ import annotations

from datetime import timedelta

import pytest
from click.testing import CliRunner
from flask import Blueprint
from sqlalchemy import select

from console import security
from console.auth import disable_staff, login_required, public, restrict_blueprint, roles_required
from console.security import CONTENT_SECURITY_POLICY
from console.sessions import COOKIE_NAME, SESSION_KEY, _digest
from console.tokens import hash_token, issue_token, revoke_token
from service.app import create_app
from service.cli import disable_command, token_command
from store.agent_pool import AgentPool, Availability
from store.db import transaction
from store.models import ApiToken, Staff
from tests.conftest import NOW, TEST_PASSWORD
from tests.console import csrf_token, session_id, signed_in
from tests.support.web_client import sign_in

AGENT = "alex@example.org"
BAD_CREDENTIALS = b"Email or password is not right"


@pytest.fixture
def low_limits(monkeypatch) -> int:
    """Refuse after 3 attempts per email, to keep Argon2 checks few."""
    monkeypatch.setattr(security, "EMAIL_REFUSE_AFTER", 3)
    return 3


def token_for(services, email: str, label: str = "test") -> str:
    with transaction(services.sessions) as db:
        member = db.scalar(select(Staff).where(Staff.email == email))
        return issue_token(db, member, NOW, label)


# --- signing in ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("email", "home"), [
    (AGENT, "/console"),
    ("supervisor@example.org", "/console"),
    ("manager@example.org", "/workspace/calls"),
])
def test_the_right_password_starts_a_session_and_goes_to_the_role_home(client, email, home):
    response = sign_in(client, email)
    assert response.status_code == 303
    assert response.headers["Location"] == home
    assert client.get("/").headers["Location"] == home
    assert client.get("/api/me").json["staff"]["email"] == email


def test_the_email_is_not_case_sensitive(client):
    assert sign_in(client, "  ALEX@Example.org ").status_code == 303


def test_an_unknown_email_and_a_wrong_password_get_the_same_answer(client):
    unknown = sign_in(client, "nobody@example.org")
    wrong = sign_in(client, AGENT, "not the password at all")
    for response in (unknown, wrong):
        assert response.status_code == 401
        assert BAD_CREDENTIALS in response.data
        assert session_id(client) is None
    assert unknown.data.replace(b"nobody@example.org", b"") == wrong.data.replace(
        AGENT.encode(), b"")


def test_a_disabled_staff_member_cannot_sign_in(client, services):
    disable_staff(services, AGENT, NOW)
    response = sign_in(client, AGENT)
    assert response.status_code == 401 and BAD_CREDENTIALS in response.data


def test_the_session_cookie_is_secure_httponly_and_samesite_lax(client):
    cookie = next(c for c in sign_in(client, AGENT).headers.getlist("Set-Cookie")
                  if c.startswith(f"{COOKIE_NAME}="))
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"secure", "httponly", "samesite=lax", "path=/"} <= flags


def test_the_session_lives_on_the_server_and_only_its_hash_is_stored(client, services):
    sign_in(client, AGENT)
    sid = session_id(client)
    assert services.redis.exists(SESSION_KEY.format(digest=_digest(sid)))
    assert not services.redis.keys(f"*{sid}*")


def test_signing_in_starts_a_new_session_id_and_ends_a_planted_one(app, client):
    client.set_cookie(COOKIE_NAME, "planted-by-someone-else")
    sign_in(client, AGENT)
    first = session_id(client)
    assert first != "planted-by-someone-else"
    # Signed in, the form carries the session's CSRF token like any other POST.
    sign_in(client, AGENT, csrf_token=csrf_token(client))
    second = session_id(client)
    assert second != first
    old = app.test_client()
    old.set_cookie(COOKIE_NAME, first)
    assert old.get("/api/me").status_code == 401


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil",
                                    "javascript:alert(1)"])
def test_next_goes_only_to_a_local_page(client, target):
    assert sign_in(client, AGENT, next=target).headers["Location"] == "/console"


def test_next_returns_to_the_page_asked_for(client):
    assert client.get("/").headers["Location"] == "/signin?next=%2F"
    assert sign_in(client, AGENT, next="/console?tab=1").headers["Location"] == "/console?tab=1"


def test_the_signin_page_carries_a_csrf_token_and_signed_in_staff_skip_it(client):
    page = client.get("/signin")
    assert page.status_code == 200 and b'name="csrf_token"' in page.data
    sign_in(client, AGENT)
    assert client.get("/signin").headers["Location"] == "/console"


# --- the throttle -------------------------------------------------------------------------------


def test_repeated_failures_are_refused_even_with_the_right_password(client):
    for _ in range(10):
        assert sign_in(client, AGENT, "wrong password!!").status_code == 401
    refused = sign_in(client, AGENT)
    assert refused.status_code == 429
    assert b"Too many attempts. Try again in 15 minutes." in refused.data
    # Seconds left of the 15-minute window that began with the first attempt.
    assert 840 < int(refused.headers["Retry-After"]) <= 900
    assert session_id(client) is None


def test_the_refusal_keeps_the_form_and_announces_itself(client, low_limits):
    for _ in range(low_limits):
        sign_in(client, AGENT, "wrong password!!")
    page = sign_in(client, AGENT, "x").get_data(as_text=True)
    assert '<p class="flash error" role="alert" id="signin-error">' in page
    assert 'aria-describedby="signin-error"' in page
    assert '<form method="post" action="/signin"' in page
    assert 'id="password"' in page and f'value="{AGENT}"' in page


def test_the_wait_shown_is_what_is_left_of_the_window(client, services, low_limits):
    for _ in range(low_limits):
        sign_in(client, AGENT, "wrong password!!")
    key = security.SignInThrottle._key("email", AGENT)
    services.redis.expire(key, 125)
    refused = sign_in(client, AGENT)
    assert refused.headers["Retry-After"] in ("124", "125")
    assert b"Too many attempts. Try again in 3 minutes." in refused.data


def test_a_refusal_checks_no_password(client, low_limits, monkeypatch):
    checked: list[str] = []
    monkeypatch.setattr("console.auth.verify_password", lambda h, p: checked.append(p) or False)
    answers = [sign_in(client, AGENT, "wrong password!!").status_code for _ in range(5)]
    assert answers == [401, 401, 401, 429, 429]
    assert len(checked) == 3


def test_an_unknown_email_is_refused_the_same_way(client, low_limits):
    answers = {}
    for email in (AGENT, "nobody@example.org"):
        for _ in range(low_limits):
            sign_in(client, email, "wrong password!!")
        answers[email] = sign_in(client, email, "wrong password!!")
    known, unknown = answers.values()
    assert known.status_code == unknown.status_code == 429
    assert known.data.replace(AGENT.encode(), b"") == unknown.data.replace(
        b"nobody@example.org", b"")


def test_the_count_is_per_email(client, low_limits):
    for _ in range(low_limits):
        sign_in(client, "jo@example.org", "wrong password!!")
    assert sign_in(client, "jo@example.org").status_code == 429
    assert sign_in(client, AGENT).status_code == 303


def test_a_successful_sign_in_clears_the_email_count(app, client, low_limits):
    for _ in range(low_limits - 1):
        sign_in(client, AGENT, "wrong password!!")
    assert sign_in(client, AGENT).status_code == 303
    other = app.test_client()
    for _ in range(low_limits):
        assert sign_in(other, AGENT, "wrong password!!").status_code == 401


def test_many_failures_from_one_address_are_refused_for_every_email(client, monkeypatch):
    monkeypatch.setattr(security, "IP_REFUSE_AFTER", 3)
    for email in ("a@example.org", "b@example.org", "c@example.org"):
        sign_in(client, email, "wrong password!!")
    assert sign_in(client, AGENT).status_code == 429


def _spray(client, forwarded_for: str) -> list[int]:
    return [client.post("/signin", data={"email": email, "password": "wrong password!!"},
                        headers={"X-Forwarded-For": forwarded_for}).status_code
            for email in ("a@example.org", "b@example.org", "c@example.org", AGENT)]


def test_behind_a_trusted_proxy_each_client_address_is_counted_apart(
        services, staff, clock, more_services, monkeypatch):
    monkeypatch.setattr(security, "IP_REFUSE_AFTER", 3)
    proxied = more_services(services.settings.with_overrides(trusted_proxies=1))
    client = create_app(services=proxied).test_client()
    assert _spray(client, "198.51.100.7") == [401, 401, 401, 429]
    # Another member of staff behind the same proxy is not throttled with the first.
    assert _spray(client, "198.51.100.8") == [401, 401, 401, 429]


def test_without_a_trusted_proxy_x_forwarded_for_is_ignored(client, monkeypatch):
    monkeypatch.setattr(security, "IP_REFUSE_AFTER", 3)
    assert _spray(client, "198.51.100.7") == [401, 401, 401, 429]
    assert _spray(client, "198.51.100.8") == [429, 429, 429, 429]


# --- sessions ending ----------------------------------------------------------------------------


def test_signing_out_ends_the_session_on_the_server(app, client, services):
    headers = signed_in(client, AGENT)
    old_cookie = session_id(client)
    response = client.post("/signout", headers=headers)
    assert response.status_code == 303 and response.headers["Location"] == "/signin"
    assert session_id(client) is None
    replay = app.test_client()
    replay.set_cookie(COOKIE_NAME, old_cookie)
    assert replay.get("/api/me").status_code == 401
    home = replay.get("/")
    assert (home.status_code, home.headers["Location"]) == (303, "/signin?next=%2F")


def test_signing_out_everywhere_makes_an_agent_away(client, services, staff):
    headers = signed_in(client, AGENT)
    pool = AgentPool(services.redis)
    pool.set_availability(staff["agent"].id, Availability.AVAILABLE)
    client.post("/signout", headers=headers)
    assert pool.availability(staff["agent"].id) is Availability.AWAY


def test_the_signout_form_field_carries_the_token_too(client):
    sign_in(client, AGENT)
    token = csrf_token(client)
    assert client.post("/signout", data={"csrf_token": token}).status_code == 303
    assert client.get("/api/me").status_code == 401


def test_disabling_a_staff_member_ends_their_sessions_and_tokens(app, services, staff,
                                                                 monkeypatch):
    browsers = [app.test_client(), app.test_client()]
    for browser in browsers:
        sign_in(browser, AGENT)
    token = token_for(services, AGENT)
    api = app.test_client()
    bearer = {"Authorization": f"Bearer {token}"}
    assert api.get("/api/me", headers=bearer).status_code == 200
    AgentPool(services.redis).set_availability(staff["agent"].id, Availability.AVAILABLE)
    monkeypatch.setattr("service.cli.services", lambda: services)
    result = CliRunner().invoke(disable_command, [AGENT])
    assert result.exit_code == 0, result.output
    for browser in browsers:
        assert browser.get("/api/me").status_code == 401
    assert api.get("/api/me", headers=bearer).status_code == 401
    assert AgentPool(services.redis).availability(staff["agent"].id) is Availability.AWAY
    with services.sessions() as db:
        assert db.scalar(select(ApiToken.revoked_at)) is not None
        assert not db.scalar(select(Staff.active).where(Staff.email == AGENT))


def test_disabling_an_unknown_email_is_a_clear_error(services, monkeypatch):
    monkeypatch.setattr("service.cli.services", lambda: services)
    result = CliRunner().invoke(disable_command, ["nobody@example.org"])
    assert result.exit_code == 1 and "no staff member nobody@example.org" in result.output


def test_a_session_ends_after_the_idle_time_out(client, clock, services):
    sign_in(client, AGENT)
    idle = timedelta(minutes=services.settings.session_idle_minutes)
    clock.set(NOW + idle - timedelta(minutes=1))
    assert client.get("/api/me").status_code == 200
    clock.set(clock.now + idle - timedelta(minutes=1))
    assert client.get("/api/me").status_code == 200  # each request restarts the idle time
    clock.set(clock.now + idle)
    assert client.get("/api/me").status_code == 401
    clock.set(NOW)
    assert client.get("/api/me").status_code == 401  # ended on the server, not only refused


def test_a_session_ends_after_the_absolute_time_out_however_busy(client, clock, services):
    sign_in(client, AGENT)
    absolute = timedelta(hours=services.settings.session_absolute_hours)
    step = timedelta(minutes=services.settings.session_idle_minutes - 1)
    while clock.now + step < NOW + absolute:
        clock.set(clock.now + step)
        assert client.get("/api/me").status_code == 200
    clock.set(NOW + absolute)
    assert client.get("/api/me").status_code == 401


# --- CSRF ---------------------------------------------------------------------------------------


STATE_CHANGES = [
    ("post", "/signout", None),
    ("put", "/api/me/availability", {"availability": "available"}),
    ("post", "/api/calls/CA" + "a" * 32 + "/warning", None),
    ("post", "/api/calls/CA" + "a" * 32 + "/end", {"reason": "threat_or_violence"}),
    ("post", "/api/calls/CA" + "a" * 32 + "/incident", {"category": "aggressive_abusive"}),
    ("post", "/api/calls/CA" + "a" * 32 + "/proposal", {"reason": "x"}),
]


@pytest.mark.parametrize(("method", "path", "body"), STATE_CHANGES)
@pytest.mark.parametrize(("token", "status"), [(None, 400), ("not-the-token", 403)])
def test_a_state_change_with_a_session_needs_the_csrf_token(client, services, staff, method,
                                                            path, body, token, status):
    sign_in(client, AGENT)
    headers = {"X-CSRF-Token": token} if token else {}
    response = getattr(client, method)(path, json=body, headers=headers)
    assert response.status_code == status
    assert b"CSRF token" in response.data
    # Nothing changed: still signed in, still away.
    assert client.get("/api/me").json["availability"] == "away"


def test_a_form_post_with_a_wrong_field_token_is_refused(client):
    sign_in(client, AGENT)
    assert client.post("/signout", data={"csrf_token": "nope"}).status_code == 403
    assert client.get("/api/me").status_code == 200


def test_a_cross_site_post_is_refused_even_with_the_token(client):
    headers = signed_in(client, AGENT)
    response = client.put("/api/me/availability", json={"availability": "available"},
                          headers={**headers, "Origin": "https://evil.example"})
    assert response.status_code == 403
    assert client.get("/api/me").json["availability"] == "away"


def test_a_cross_site_sign_in_is_refused(client):
    response = client.post("/signin", data={"email": AGENT, "password": TEST_PASSWORD},
                           headers={"Origin": "https://evil.example"})
    assert response.status_code == 403 and session_id(client) is None


def test_a_same_origin_post_passes(client):
    headers = signed_in(client, AGENT)
    response = client.put("/api/me/availability", json={"availability": "available"},
                          headers={**headers, "Origin": "https://callflow.test"})
    assert response.status_code == 200


def test_get_changes_nothing(client):
    signed_in(client, AGENT)
    assert client.get("/signout").status_code == 405
    assert client.get("/api/me/availability?availability=available").status_code == 405
    assert client.get("/api/me").json["availability"] == "away"


def test_a_bearer_token_needs_no_csrf_token(client, services):
    bearer = {"Authorization": f"Bearer {token_for(services, AGENT)}"}
    response = client.put("/api/me/availability", json={"availability": "available"},
                          headers=bearer)
    assert response.status_code == 200 and response.json["availability"] == "available"
    assert "csrf_token" not in response.json


# --- security headers ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/signin", "/healthz", "/api/me", "/", "/api/openapi.json",
                                  "/no-such-page"])
def test_every_response_a_browser_may_see_carries_the_security_headers(client, path):
    headers = client.get(path).headers
    assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Strict-Transport-Security"].startswith("max-age=")


def test_signed_in_answers_are_not_cached(client):
    sign_in(client, AGENT)
    assert client.get("/api/me").headers["Cache-Control"] == "no-store"


def test_no_hsts_and_no_secure_cookie_over_plain_http(services, staff, clock, more_services):
    plain = more_services(services.settings.with_overrides(public_base_url="http://127.0.0.1:5000"))
    client = create_app(services=plain).test_client()
    try:
        response = sign_in(client, AGENT)
    finally:
        plain.engine.dispose()
    assert "Strict-Transport-Security" not in response.headers
    cookie = next(c for c in response.headers.getlist("Set-Cookie")
                  if c.startswith(f"{COOKIE_NAME}="))
    assert "secure" not in cookie.lower()


# --- roles, deny by default ---------------------------------------------------------------------


def _rules_app(services, name: str):
    bp = Blueprint(name, __name__, url_prefix=f"/{name}")

    @bp.get("/unmarked")
    def unmarked():
        return "unmarked"

    @bp.get("/anyone")
    @public
    def anyone():
        return "anyone"

    @bp.get("/staff")
    @login_required
    def any_staff():
        return "staff"

    @bp.post("/supervisors")
    @roles_required("supervisor", "manager")
    def supervisors_only():
        return "supervisors"

    app = create_app(services=services)
    app.register_blueprint(bp)
    api_bp = Blueprint(f"{name}_api", __name__, url_prefix=f"/api/{name}")

    @api_bp.get("/supervisors")
    @roles_required("supervisor")
    def api_supervisors():
        return {"ok": True}

    app.register_blueprint(api_bp)
    return app


@pytest.mark.parametrize(("email", "expected"), [
    (None, {"unmarked": 303, "anyone": 200, "staff": 303, "supervisors": 303, "api": 401}),
    (AGENT, {"unmarked": 403, "anyone": 200, "staff": 200, "supervisors": 403, "api": 403}),
    ("supervisor@example.org",
     {"unmarked": 403, "anyone": 200, "staff": 200, "supervisors": 200, "api": 200}),
])
def test_views_are_refused_unless_marked_and_roles_are_checked(services, staff, clock, email,
                                                               expected):
    client = _rules_app(services, "rules").test_client()
    headers = signed_in(client, email) if email else {}
    answers = {
        "unmarked": client.get("/rules/unmarked").status_code,
        "anyone": client.get("/rules/anyone").status_code,
        "staff": client.get("/rules/staff").status_code,
        "supervisors": client.post("/rules/supervisors", headers=headers).status_code,
        "api": client.get("/api/rules/supervisors").status_code,
    }
    assert answers == expected


def test_signed_out_pages_redirect_to_sign_in_and_api_answers_401_json(services, staff, clock):
    client = _rules_app(services, "rules2").test_client()
    page = client.get("/rules2/staff?x=1")
    assert page.headers["Location"] == "/signin?next=%2Frules2%2Fstaff%3Fx%3D1"
    answer = client.get("/api/rules2/supervisors")
    assert answer.status_code == 401 and answer.json == {"error": "sign in first"}
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_blueprint_can_be_restricted_as_a_whole(services, staff, clock):
    bp = Blueprint("whole", __name__, url_prefix="/whole")

    @bp.get("/page")
    def page():
        return "page"

    restrict_blueprint(bp, "manager")
    app = create_app(services=services)
    app.register_blueprint(bp)
    agent, manager = app.test_client(), app.test_client()
    sign_in(agent, AGENT)
    sign_in(manager, "manager@example.org")
    assert agent.get("/whole/page").status_code == 403
    assert manager.get("/whole/page").status_code == 200


def test_an_agent_cannot_change_availability_for_a_manager_role(client):
    headers = signed_in(client, "manager@example.org")
    response = client.put("/api/me/availability", json={"availability": "available"},
                          headers=headers)
    assert response.status_code == 403


# --- API tokens ---------------------------------------------------------------------------------


def test_the_token_command_prints_a_token_once_and_stores_only_its_hash(app, services,
                                                                        monkeypatch):
    monkeypatch.setattr("service.cli.services", lambda: services)
    result = CliRunner().invoke(token_command, [AGENT, "--label", "flex"])
    assert result.exit_code == 0, result.output
    token = result.stdout.strip().splitlines()[0]
    with services.sessions() as db:
        stored = db.scalar(select(ApiToken))
    assert stored.token_hash == hash_token(token) and stored.label == "flex"
    assert token not in stored.token_hash
    me = app.test_client().get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json["staff"]["email"] == AGENT


def test_the_token_command_refuses_an_unknown_email(services, monkeypatch):
    monkeypatch.setattr("service.cli.services", lambda: services)
    result = CliRunner().invoke(token_command, ["nobody@example.org"])
    assert result.exit_code == 1 and "no staff member" in result.output


@pytest.mark.parametrize("header", ["Bearer cfk_not-a-real-token", "Bearer ", "Basic abc"])
def test_an_unknown_token_is_401(client, header):
    response = client.get("/api/me", headers={"Authorization": header})
    assert response.status_code == 401


def test_a_revoked_token_no_longer_works(client, services):
    token = token_for(services, AGENT)
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/me", headers=bearer).status_code == 200
    with transaction(services.sessions) as db:
        assert revoke_token(db, token, NOW)
    assert client.get("/api/me", headers=bearer).status_code == 401


def test_a_bad_token_does_not_fall_back_to_the_cookie(client):
    sign_in(client, AGENT)
    response = client.get("/api/me", headers={"Authorization": "Bearer cfk_wrong"})
    assert response.status_code == 401
