"""gunicorn's settings for the web server, shared by `callflow run` and the Procfile's web line.

The bind address and the number of workers are given on the command line.
"""

# Threads, because the console's warn/end requests call Twilio's REST API, which in simulator
# mode is this same server.
worker_class = "gthread"
threads = 4

accesslog = "-"
# The path without its query string or referrer: the call log's filters carry phone numbers and
# names, which must not reach the logs. %(M)s is the time taken, in milliseconds.
access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms'


def on_starting(server) -> None:
    """Give the workers a fresh directory for prometheus_client's multiprocess files (unless
    PROMETHEUS_MULTIPROC_DIR names one already); the workers inherit it, and must, since the
    library reads it when first imported (so nothing here imports it)."""
    import os
    import shutil
    from pathlib import Path

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    directory = Path(os.environ.get("CALLFLOW_VAR_DIR", "var")).resolve() / "metrics" / "web"
    shutil.rmtree(directory, ignore_errors=True)  # an earlier run's counts would be added in
    directory.mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)


def child_exit(server, worker) -> None:
    """A worker ended: its live gauges (the Redis circuit's state) stop counting."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
