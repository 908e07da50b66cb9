"""The Flask application factory: Twilio webhooks, the staff console and its API."""

from __future__ import annotations

from flask import Flask

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

    from webhooks.voice import voice

    app.register_blueprint(voice)

    @app.get("/healthz")
    def healthz():
        """Liveness for the platform and the runner: the process answers."""
        return {"status": "ok"}

    return app


def services_of(app: Flask) -> Services:
    """The services an app was built with."""
    return app.extensions["callflow"]
