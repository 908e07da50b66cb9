"""Workspace commands for the `callflow` command line."""

from __future__ import annotations

import json

import click


@click.command("subject-access")
@click.argument("customer_ref")
def subject_access_command(customer_ref: str) -> None:
    """Print, as JSON, everything held about a person (a subject access request)."""
    # Imported here: service.cli attaches this command, so a top-level import would be circular.
    from service.cli import services
    from service.subject_access import subject_access

    record = subject_access(services().sessions, customer_ref)
    if record is None:
        raise click.ClickException(f"nothing is held under {customer_ref}")
    click.echo(json.dumps(record, indent=2, ensure_ascii=False, default=str))
