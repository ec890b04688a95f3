"""Settings with their secrets for a CLI command (MONGARS_SECRETS__BACKEND=vault)."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.markup import escape

from mongars.errors import SecretsUnavailable
from mongars.secrets.resolve import resolve_settings
from mongars.settings import Settings


def load_settings() -> Settings:
    """``Settings()`` holding the secrets Vault gives (read now, blocking); with the env
    backend, the settings as they are. When Vault cannot give them: one line on stderr
    and exit status 1."""
    settings = Settings()
    try:
        resolved = resolve_settings(settings)
    except SecretsUnavailable as exc:
        Console(stderr=True).print(f"[red]error:[/red] {escape(exc.detail)}", soft_wrap=True)
        raise typer.Exit(code=1) from None
    return settings if resolved is None else resolved.settings
