"""Secrets from Vault or OpenBao (MONGARS_SECRETS__BACKEND=vault; docs/secrets.md).

:func:`resolve_settings` reads the KV v2 entry once, at start, and returns settings
holding the JWT secret, the database password and the provider API key;
:class:`SecretsRefresher` re-reads it on a timer and applies changes to the running
app. Failures raise :class:`mongars.errors.SecretsUnavailable`: no default is ever
used in a secret's place. Nothing here runs at import.
"""

from mongars.secrets.refresh import SecretsRefresher
from mongars.secrets.resolve import KEYS, Resolved, required_keys, resolve_settings

__all__ = ["KEYS", "Resolved", "SecretsRefresher", "required_keys", "resolve_settings"]
