"""The WSGI entry point for gunicorn: `gunicorn service.wsgi:app`."""

import gc

from config.logging_setup import configure_logging
from config.settings import load_settings
from service.app import create_app

_settings = load_settings()
configure_logging(_settings.log_format)
app = create_app(_settings)

# What is built by now (modules, the app, its configuration) lives as long as the worker: take it
# out of the collector's sight, so that a full collection scans only what requests allocate.
# Measured on the call path: a full collection went from ~90 ms to ~2 ms, and it was the p99.
gc.freeze()
