"""The Flask application factory: Twilio webhooks, the staff console and its API."""

from __future__ import annotations

from pathlib import Path

from flask import Flask, Request
from flask.sessions import SecureCookieSessionInterface, SessionMixin

from config.settings import Settings, load_settings
from service.container import Services

MAX_REQUEST_BYTES = 1024 * 1024


def create_app(settings: Settings | None = None, services: Services | None = None) -> Flask:
    """Build the app; settings are read from the environment when not given."""
    if services is None:
        services = Services(settings or load_settings())
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
    from console.auth import auth
    from console.pages import pages
    from console.workspace import workspace
    from simulator.web import simulator
    from webhooks.announcements import announcements
    from webhooks.incoming import IncomingCalls
    from webhooks.voice import voice

    app.register_blueprint(voice)
    app.wsgi_app = IncomingCalls(app.wsgi_app, services)  # type: ignore[method-assign]
    app.register_blueprint(announcements)
    app.register_blueprint(auth)
    app.register_blueprint(api)
    app.register_blueprint(pages)
    app.register_blueprint(workspace)
    if settings.simulator_enabled:
        app.register_blueprint(simulator)
    # The console's stylesheet and scripts (including the npm-installed Twilio Voice SDK).
    app.add_url_rule("/static/console/<path:filename>", endpoint="static_console",
                     view_func=_console_static)

    @app.get("/healthz")
    def healthz():
        """Liveness for the platform and the runner: the process answers."""
        return {"status": "ok"}

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


def services_of(app: Flask) -> Services:
    """The services an app was built with."""
    return app.extensions["callflow"]
