"""`callflow staff token` and `callflow staff disable`: API tokens and ending a person's access."""

from __future__ import annotations

import click
from sqlalchemy import func, select

from service.clock import now_utc
from store.db import transaction
from store.models import Staff


@click.command("token")
@click.argument("email")
@click.option("--label", default="", help="What the token is for (a Flex plugin, a CRM).")
def token_command(email: str, label: str) -> None:
    """Issue an API token for a staff member; it is shown once and stored only as a hash."""
    from console.tokens import issue_token
    from service.cli import services

    with transaction(services().sessions) as session:
        staff = session.scalar(select(Staff).where(func.lower(Staff.email) == email.lower()))
        if staff is None:
            raise click.ClickException(f"no staff member {email}")
        if not staff.active:
            raise click.ClickException(f"{staff.email} is disabled")
        token = issue_token(session, staff, now_utc(), label)
    click.echo(token)
    click.echo(f"API token for {staff.email} ({staff.role}); it will not be shown again.",
               err=True)


@click.command("disable")
@click.argument("email")
def disable_command(email: str) -> None:
    """Disable a staff member: their sessions and API tokens end at once."""
    from console.auth import disable_staff
    from service.cli import services

    try:
        staff = disable_staff(services(), email, now_utc())
    except LookupError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"{staff.email} disabled; sessions ended and API tokens revoked")
