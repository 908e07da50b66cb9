"""What every `callflow` command starts from: settings, logging and services, or a plain error."""

from __future__ import annotations

import click

from config.logging_setup import configure_logging
from config.settings import SettingsError, load_settings
from usecases.bootstrap import Services, bootstrap


def command_services() -> Services:
    """Settings and connections for a command; wrong settings stop it with a plain message."""
    try:
        settings = load_settings()
    except SettingsError as error:
        raise click.ClickException(str(error)) from None
    configure_logging(settings.log_format)
    return bootstrap(settings)
