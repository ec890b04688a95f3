"""From configured settings to settings holding the secrets Vault gives.

The KV entry's keys (docs/secrets.md):

=====================  ===============================================================
``secret_key``         the JWT/CSRF/ticket signing secret (always required)
``database_password``  put into MONGARS_DATABASE_URL (required unless SQLite)
``llm_api_key``        the provider's API key (required with the openai provider)
=====================  ===============================================================
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import SecretStr
from sqlalchemy.engine import make_url

from mongars.errors import SecretsUnavailable
from mongars.secrets.vault import VaultReader
from mongars.settings import Settings, check_secret_key

SECRET_KEY = "secret_key"  # noqa: S105 - key names, not secrets
DATABASE_PASSWORD = "database_password"  # noqa: S105
LLM_API_KEY = "llm_api_key"
KEYS = (SECRET_KEY, DATABASE_PASSWORD, LLM_API_KEY)


@dataclass(frozen=True, slots=True)
class Resolved:
    """Settings with the secrets in place, the values read and where they came from."""

    settings: Settings
    values: dict[str, str]
    version: int
    reader: VaultReader


def required_keys(settings: Settings) -> tuple[str, ...]:
    """The keys these settings cannot run without."""
    keys = [SECRET_KEY]
    if settings.database_url and make_url(settings.database_url).get_backend_name() != "sqlite":
        keys.append(DATABASE_PASSWORD)
    if settings.llm.provider == "openai":
        keys.append(LLM_API_KEY)
    return tuple(keys)


def read_secrets(settings: Settings, reader: VaultReader) -> tuple[dict[str, str], int]:
    """The known keys' values from Vault, checked; blocking (hvac)."""
    entry = reader.read(required_keys(settings))
    values = {k: v for k, v in entry.values.items() if k in KEYS}
    if not values[SECRET_KEY]:
        raise SecretsUnavailable(f"Vault key 'secret_key' is empty at {reader.where}")
    try:
        check_secret_key(
            settings.env, values[SECRET_KEY], f"Vault key 'secret_key' at {reader.where}"
        )
    except ValueError as exc:
        raise SecretsUnavailable(str(exc)) from None
    return values, entry.version


def resolve_settings(settings: Settings) -> Resolved | None:
    """Read the secrets once (blocking) and return settings holding them; None for the
    env backend. Raises :class:`SecretsUnavailable`, never falls back to a default."""
    if settings.secrets.backend != "vault":
        return None
    reader = VaultReader(settings.secrets)
    values, version = read_secrets(settings, reader)
    return Resolved(with_secrets(settings, values), values, version, reader)


def with_secrets(settings: Settings, values: dict[str, str]) -> Settings:
    """A copy of ``settings`` holding ``values`` (no validation re-run: the configured
    settings were validated, and the values checked by :func:`read_secrets`)."""
    copy = settings.model_copy(deep=True)
    copy.secret_key = SecretStr(values[SECRET_KEY])
    if LLM_API_KEY in values:
        copy.llm.api_key = SecretStr(values[LLM_API_KEY])
    if DATABASE_PASSWORD in values and settings.database_url:
        copy.database_url = url_with_password(settings.database_url, values[DATABASE_PASSWORD])
    return copy


def url_with_password(url: str, password: str) -> str:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return url
    return parsed.set(password=password).render_as_string(hide_password=False)
