"""Sign-in, sign-out, who is asking, and deny-by-default access rules for every endpoint."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlencode

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    flash,
    g,
    has_request_context,
    jsonify,
    redirect,
    render_template,
    request,
    session,
)
from sqlalchemy import func, select

from callflow.roles import Capability, Role, may, roles_with
from config import clock
from console.security import (
    CsrfRefused,
    SignInThrottle,
    add_security_headers,
    check_csrf,
    check_origin,
    configure_cookies,
    csrf_token,
    too_many_attempts,
)
from console.sessions import COOKIE_NAME, ServerSession, SessionStore
from console.tokens import revoke_tokens, verify_token
from store.agent_pool import AgentPool, Availability
from store.db import transaction
from store.models import Staff
from usecases.bootstrap import Services, services_of
from usecases.staff import verify_password

log = logging.getLogger(__name__)

auth = Blueprint("auth", __name__, template_folder="templates")

BAD_CREDENTIALS = "Email or password is not right"
MAX_PASSWORD_CHARS = 1024
# Endpoints outside any blueprint that anyone may reach.
PUBLIC_ENDPOINTS = frozenset({"static", "static_console", "healthz", "readyz"})
# Blueprints whose every request is checked by Twilio's signature instead of a staff sign-in.
TWILIO_BLUEPRINTS = frozenset({"voice", "announcements", "recordings"})
SIMULATOR_BLUEPRINT = "simulator"
ACCESS_ATTR = "_callflow_access"

View = TypeVar("View", bound=Callable[..., Any])


@dataclass(frozen=True)
class Access:
    """Who may reach a view: anyone (public), any signed-in staff (roles None), or some roles."""

    public: bool = False
    roles: tuple[str, ...] | None = None


# Rules given to a whole blueprint with restrict_blueprint(), by blueprint name.
_blueprint_access: dict[str, Access] = {}


def _services() -> Services:
    return services_of(current_app)


def session_store(services: Services) -> SessionStore:
    """The session store, with the configured idle and absolute time-outs."""
    s = services.settings
    return SessionStore(services.redis, s.session_idle_minutes, s.session_absolute_hours)


def secure_cookies(services: Services) -> bool:
    """Cookies are Secure whenever the service is served over https (always in production)."""
    return services.settings.public_base_url.startswith("https://")


# --- who is asking ---------------------------------------------------------------------------


def _load_authority() -> None:
    """Resolve the request's staff member from a Bearer token or the session cookie, once."""
    g.callflow_staff = None
    g.callflow_session = None
    g.auth_via = None
    services = _services()
    now = clock.now_utc()
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        # A bad token never falls back to the cookie: the caller meant to use the token.
        with transaction(services.sessions) as db:
            staff = verify_token(db, header[7:].strip(), now)
        if staff is not None:
            g.callflow_staff, g.auth_via = staff, "token"
        return
    cookie = request.cookies.get(COOKIE_NAME)
    if not cookie:
        return
    store = session_store(services)
    live = store.load(cookie, now)
    if live is None:
        return
    with services.sessions() as db:
        staff = db.get(Staff, live.staff_id)
    if staff is None or not staff.active:
        store.end_all(live.staff_id)
        return
    g.callflow_staff, g.callflow_session, g.auth_via = staff, live, "session"


def current_staff() -> Staff | None:
    """The signed-in staff member (session cookie or Bearer token), or None."""
    if "callflow_staff" not in g:
        _load_authority()
    return g.callflow_staff


def current_session() -> ServerSession | None:
    """The server-side session behind this request's cookie, if it is live."""
    current_staff()
    return g.callflow_session


def authenticated_by() -> str | None:
    """"session", "token", or None: how this request proved who it is."""
    current_staff()
    return g.auth_via


# --- access rules ----------------------------------------------------------------------------


def _wants_json() -> bool:
    if request.path.startswith("/api/") or request.path == "/api":
        return True
    best = request.accept_mimetypes.best
    return best == "application/json"


def _error(status: int, message: str) -> Response:
    if _wants_json():
        response = jsonify(error=message)
        response.status_code = status
    else:
        response = Response(message, status=status, mimetype="text/plain")
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="callflow"'
    return response


def _signed_out_answer() -> Response:
    if _wants_json():
        return _error(401, "sign in first")
    target = "/signin"
    if request.method == "GET":
        target += "?" + urlencode({"next": request.full_path.rstrip("?")})
    return redirect(target, code=303)


def _refusal(access: Access | None) -> Response | None:
    """The answer refusing this request under `access`, or None to let it through."""
    if access is not None and access.public:
        return None
    staff = current_staff()
    if staff is None:
        return _signed_out_answer()
    if access is None:
        log.error("endpoint %s has no access rule; refused (deny by default)", request.endpoint)
        return _error(403, "this page has no access rule, so it is refused")
    if access.roles is not None and staff.role not in access.roles:
        return _error(403, f"your role ({staff.role}) may not do this")
    return None


def _mark(view: View, access: Access) -> View:
    setattr(view, ACCESS_ATTR, access)
    return view


def public(view: View) -> View:
    """Mark a view as reachable without signing in."""
    return _mark(view, Access(public=True))


def _known(roles: tuple[str, ...]) -> tuple[str, ...]:
    """The roles as given, or ValueError naming any the staff table cannot hold."""
    names = tuple(role.value for role in Role)
    unknown = [r for r in roles if r not in names]
    if unknown:
        raise ValueError(f"unknown roles {unknown}; use {names}")
    return roles


def roles_required(*roles: str) -> Callable[[View], View]:
    """Allow only signed-in staff with one of these roles (none given: any signed-in staff)."""
    access = Access(roles=_known(roles) or None)

    def decorate(view: View) -> View:
        @wraps(view)
        def checked(*args: Any, **kwargs: Any) -> Any:
            refused = _refusal(access)
            return refused if refused is not None else view(*args, **kwargs)

        return _mark(checked, access)  # type: ignore[arg-type]

    return decorate


def requires(capability: Capability) -> Callable[[View], View]:
    """Allow only signed-in staff whose role has `capability`."""
    return roles_required(*roles_with(capability))


def login_required(view: View) -> View:
    """Allow any signed-in staff member."""
    return roles_required()(view)


def restrict_blueprint(blueprint: Blueprint, *roles: str) -> None:
    """Give every view of a blueprint a rule (none given: any signed-in staff); views' own win."""
    _blueprint_access[blueprint.name] = Access(roles=_known(roles) or None)


def _access_for_request() -> Access | None:
    endpoint = request.endpoint or ""
    if endpoint in PUBLIC_ENDPOINTS:
        return Access(public=True)
    view = current_app.view_functions.get(endpoint)
    marked = getattr(view, ACCESS_ATTR, None)
    if marked is not None:
        return marked
    if request.blueprint == SIMULATOR_BLUEPRINT and _services().settings.simulator_enabled:
        return Access(public=True)
    return _blueprint_access.get(request.blueprint or "")


def _is_twilio_request() -> bool:
    return request.path.startswith("/twilio/") or request.blueprint in TWILIO_BLUEPRINTS


@auth.before_app_request
def _guard() -> Response | None:
    """Deny by default: every request passes the origin, CSRF and access checks, or is refused."""
    if request.endpoint is None or _is_twilio_request():
        # Unrouted requests 404/405 on their own; Twilio's are checked by signature.
        return None
    try:
        check_origin(_services().settings.public_base_url)
        live = current_session()
        if live is not None and request.blueprint != SIMULATOR_BLUEPRINT:
            # Only cookie authority needs CSRF: a browser never adds a Bearer header by itself.
            check_csrf(live.csrf)
    except CsrfRefused as refused:
        return _error(refused.status, refused.message)
    g.staff_signed_in = current_staff() is not None
    return _refusal(_access_for_request())


@auth.after_app_request
def _headers(response: Response) -> Response:
    if request.path.startswith("/twilio/"):
        return response  # TwiML for Twilio's servers: no browser ever renders it
    return add_security_headers(response, _services().settings.public_base_url)


@auth.app_context_processor
def _template_globals() -> dict[str, Any]:
    return {
        "csrf_token": csrf_token,
        # Templates rendered outside a request (letters, emails) have nobody signed in.
        "staff": current_staff() if has_request_context() else None,
        "simulator_enabled": _services().settings.simulator_enabled,
        # Role checks in templates go through the core's table: may(staff.role, Capability.X).
        "may": may,
        "Capability": Capability,
    }


@auth.record_once
def _configure(state) -> None:
    app: Flask = state.app
    configure_cookies(app, secure_cookies(services_of(app)))


# --- sign-in and sign-out ----------------------------------------------------------------------


def home_for(staff: Staff) -> str:
    """Where a staff member lands after signing in."""
    return "/console" if may(staff.role, Capability.TAKE_CALLS) else "/workspace/calls"


def _safe_next(value: str | None) -> str | None:
    """A local path to return to after sign-in; anything else (another site) is dropped."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return None
    if any(ch in value for ch in "\\\r\n\t") or value.split("?")[0] in ("/signin", "/signout"):
        return None
    return value


def _signin_page(status: int = 200, error: str | None = None, email: str = "") -> Response:
    html = render_template("signin.html", error=error, email=email,
                           next=_safe_next(request.values.get("next")) or "")
    return Response(html, status=status, mimetype="text/html")


def _client_ip() -> str:
    return request.remote_addr or "unknown"


@auth.get("/signin")
@public
def signin_form() -> Response:
    """The sign-in form (signed-in staff go straight to their home page)."""
    staff = current_staff()
    if staff is not None and authenticated_by() == "session":
        return redirect(_safe_next(request.args.get("next")) or home_for(staff), code=303)
    return _signin_page()


@auth.post("/signin")
@public
def signin() -> Response:
    """Check email and password; refused (429, never slowed) after too many attempts."""
    services = _services()
    email = request.form.get("email", "").strip().lower()[:254]
    password = request.form.get("password", "")
    throttle = SignInThrottle(services.redis)
    ip = _client_ip()
    # Counted before the check, atomically, so simultaneous guesses cannot exceed the limit;
    # and refused at once: a sleeping thread here is one that cannot answer Twilio.
    wait = throttle.reserve(email, ip)
    if wait:
        # The same answer whether or not the email belongs to anyone.
        response = _signin_page(429, too_many_attempts(wait), email)
        response.headers["Retry-After"] = str(wait)
        return response
    with services.sessions() as db:
        staff = db.scalar(select(Staff).where(func.lower(Staff.email) == email,
                                              Staff.active.is_(True))) if email else None
    password_hash = staff.password_hash if staff is not None else None
    # verify_password checks a dummy hash for unknown emails, so both answers take as long.
    if not password or len(password) > MAX_PASSWORD_CHARS or not verify_password(
        password_hash, password
    ) or staff is None:
        return _signin_page(401, BAD_CREDENTIALS, email)
    throttle.record_success(email, ip)
    store = session_store(services)
    old = request.cookies.get(COOKIE_NAME)
    if old:
        store.end(old)
    # A new session id on every sign-in, so a planted cookie never becomes authority.
    live = store.create(staff.id, clock.now_utc())
    session.clear()
    log.info("staff %s signed in", staff.id)
    response = redirect(_safe_next(request.form.get("next")) or home_for(staff), code=303)
    response.set_cookie(COOKIE_NAME, live.session_id, secure=secure_cookies(services),
                        httponly=True, samesite="Lax", path="/")
    return response


@auth.post("/signout")
@public
def signout() -> Response:
    """End this session on the server and forget the cookie."""
    services = _services()
    live = current_session()
    if live is not None:
        store = session_store(services)
        store.end(live.session_id, live.staff_id)
        if not store.count(live.staff_id):
            # Signed out everywhere: stop offering them calls.
            AgentPool(services.redis).set_availability(live.staff_id, Availability.AWAY)
        flash("You have signed out.", "info")
    response = redirect("/signin", code=303)
    response.delete_cookie(COOKIE_NAME, path="/", secure=secure_cookies(services),
                           httponly=True, samesite="Lax")
    return response


@auth.get("/")
@login_required
def home() -> Response:
    """Send each role to its own start page."""
    staff = current_staff()
    assert staff is not None
    return redirect(home_for(staff), code=303)


# --- ending a staff member's access ------------------------------------------------------------


def disable_staff(services: Services, email: str, now: datetime) -> Staff:
    """Disable a staff member: no sign-in, every session and token ended, no calls offered."""
    with transaction(services.sessions) as db:
        staff = db.scalar(select(Staff).where(func.lower(Staff.email) == email.strip().lower()))
        if staff is None:
            raise LookupError(f"no staff member {email}")
        staff.active = False
        revoke_tokens(db, staff.id, now)
    session_store(services).end_all(staff.id)
    AgentPool(services.redis).set_availability(staff.id, Availability.AWAY)
    return staff
