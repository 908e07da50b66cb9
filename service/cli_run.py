"""The `callflow pump`, `callflow worker`, `callflow scheduler` and `callflow run` commands."""

from __future__ import annotations

import signal
import sys
import threading

import click

from config.settings import SettingsError
from service.background import run_scheduler, run_worker
from service.cli_context import command_services
from service.runner import run_service
from store.redis_client import scheduler_redis
from workers.context import use_services
from workers.pump import run_pump


@click.command()
def pump() -> None:
    """Move call events into the call log and start their jobs as they arrive (Ctrl-C stops)."""
    use_services(command_services())
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    run_pump(stop)


@click.command()
def worker() -> None:
    """Run an RQ worker on the callflow queue; it waits out a Redis outage rather than exit."""
    services = command_services()
    run_worker(services.worker_redis)


@click.command()
def scheduler() -> None:
    """Move delayed jobs to the queue when due and enqueue the periodic jobs in workers.cron."""
    services = command_services()
    client = scheduler_redis(services.redis_url)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        run_scheduler(client, stop)
    finally:
        client.close()


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address the web binds.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--web-workers", default=2, show_default=True, type=click.IntRange(1), help="gunicorn workers."
)
def run(host: str, port: int, web_workers: int) -> None:
    """Run the whole service in the foreground: web, pump, worker, scheduler (Ctrl-C stops it)."""
    try:
        status = run_service(host, port, web_workers, click.echo)
    except SettingsError as error:
        raise click.ClickException(str(error)) from None
    sys.exit(status)


COMMANDS = (pump, worker, scheduler, run)


@click.group()
def cli() -> None:
    """The long-running processes, for `python -m service.cli_run` (the runner's children)."""


for _command in COMMANDS:
    cli.add_command(_command)

if __name__ == "__main__":
    cli()
