"""The Flask application factory: Twilio webhooks, the staff console and its API."""

from __future__ import annotations

from pathlib import Path

from flask import Flask, Request
from flask.sessions import SecureCookieSessionInterface, SessionMixin
from werkzeug.middleware.proxy_fix import ProxyFix

from config.settings import Settings
from service.metrics import install as install_metrics
from usecases.bootstrap import Services, bootstrap
from usecases.health import readiness_problems, redis_problems

MAX_REQUEST_BYTES = 1024 * 1024


def create_app(settings: Settings | None = None, services: Services | None = None) -> Flask:
    """Build the app; settings are read from the environment when not given."""
    if services is None:
        services = bootstrap(settings)
    settings = services.settings
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=MAX_REQUEST_BYTES,
        TESTING=settings.env == "test",
    )
    app.extensions["callflow"] = services
    app.session_interface = _NoCookieSessionForTwilio()

    from console.api import api
    from console.auth import auth, public
    from console.dead_letters import dead_letters
    from console.pages import pages
    from console.supervision import supervision_pages
    from console.workspace import workspace
    from simulator.web import simulator
    from webhooks.announcements import announcements
    from webhooks.incoming import IncomingCalls
    from webhooks.recordings import recordings
    from webhooks.supervision import supervisor_calls
    from webhooks.voice import voice

    app.register_blueprint(voice)
    app.register_blueprint(supervisor_calls)
    app.wsgi_app = IncomingCalls(app.wsgi_app, services)  # type: ignore[method-assign]
    if settings.trusted_proxies:
        # The client's address from X-Forwarded-For, trusting only the configured proxy hops.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=settings.trusted_proxies, x_proto=0, x_host=0, x_port=0,
            x_prefix=0,
        )
    app.register_blueprint(announcements)
    app.register_blueprint(recordings)
    app.register_blueprint(auth)
    app.register_blueprint(api)
    app.register_blueprint(pages)
    app.register_blueprint(supervision_pages)
    app.register_blueprint(workspace)
    app.register_blueprint(dead_letters)
    install_metrics(app, services)
    if settings.simulator_enabled:
        app.register_blueprint(simulator)
    # The console's stylesheet and scripts (including the npm-installed Twilio Voice SDK).
    app.add_url_rule("/static/console/<path:filename>", endpoint="static_console",
                     view_func=_console_static)

    @app.get("/favicon.ico")
    @public
    def favicon():
        """Browsers ask for /favicon.ico on every page without a <link rel=icon> (PDFs, JSON)."""
        from flask import redirect, url_for

        return redirect(url_for("static_console", filename="favicon.svg"), code=301)

    @app.get("/healthz")
    def healthz():
        """Liveness for the platform and the runner: 200 while the process answers, with the
        body saying "degraded" (and why, in plain words) while Redis is away."""
        reasons = redis_problems(services)
        if reasons:
            return {"status": "degraded", "reasons": reasons}
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz():
        """Readiness for a load balancer: 503 with plain reasons unless the database answers and
        is migrated and Redis answers."""
        reasons = readiness_problems(services)
        headers = {"Cache-Control": "no-store"}
        if reasons:
            return {"status": "not ready", "reasons": reasons}, 503, headers
        return {"status": "ready"}, 200, headers

    return app


class _NoCookieSessionForTwilio(SecureCookieSessionInterface):
    """Twilio's requests carry no cookie; skip building a signed-cookie session for each call."""

    def open_session(self, app: Flask, request: Request) -> SessionMixin | None:
        if request.path.startswith("/twilio/"):
            return self.make_null_session(app)
        return super().open_session(app, request)


def _console_static(filename: str):
    """Files from console/static, served by the app rather than a CDN."""
    from flask import send_from_directory

    return send_from_directory(Path(__file__).parent.parent / "console" / "static", filename)

