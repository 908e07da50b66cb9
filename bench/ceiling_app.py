"""The ceiling: the cheapest Flask answer to the incoming-call webhook, under the same gunicorn.

Serve it with ``gunicorn 'bench.ceiling_app:create_app()'``. It answers the same signed requests
the real path gets, on the same path, without reading them: whatever the real path costs beyond
this is callflow's own work.
"""

from __future__ import annotations

from flask import Flask, Response

TWIML = (
    '<?xml version="1.0" encoding="UTF-8"?><Response>'
    '<Say language="en-GB" voice="Polly.Amy">Thank you for calling.</Say><Hangup /></Response>'
)


def create_app() -> Flask:
    """A Flask app with one route that always answers the same small TwiML."""
    app = Flask(__name__)

    @app.post("/twilio/voice/incoming")
    def incoming() -> Response:
        """A fixed TwiML answer: the most any Flask view under gunicorn can do per second."""
        return Response(TWIML, mimetype="text/xml")

    return app
