"""The WSGI entry point for gunicorn: `gunicorn service.wsgi:app`."""

import gc

from service.app import create_app

app = create_app()

# What is built by now (modules, the app, its configuration) lives as long as the worker: take it
# out of the collector's sight, so that a full collection scans only what requests allocate.
# Measured on the call path: a full collection went from ~90 ms to ~2 ms, and it was the p99.
gc.freeze()
