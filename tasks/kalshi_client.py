"""Build a Kalshi client from Settings: base URL, key, tier, timeout and retries.

Invariant: a client that needs a key is never built without one; a missing or unreadable key fails
fast with a message naming the setting to fix (never the key itself). Prod, demo and paper differ
only in base URL and key.

Given a ledger engine, a client sends through ``tasks.api_calls.RecordingTransport`` (or its
async twin), so every call's outcome (trading's too) feeds the guard's error-rate breaker and the
dead man's switch; without one no database is touched. Counts are buffered in memory and written
in one transaction per flush (``tasks.api_calls.flush_api_calls``, every few seconds, on close
and at exit); a change of link state is written before the call returns.
"""

from __future__ import annotations

from pydantic import SecretStr
from sqlalchemy import Engine

from kalshi.client import AsyncKalshiClient, KalshiClient
from kalshi.ratelimit import RateLimiter
from kalshi.signing import KalshiAuth, KeyLoadError, load_private_key
from tasks.api_calls import AsyncRecordingTransport, RecordingTransport
from tasks.settings import Settings, SettingsError

__all__ = ["kalshi_auth", "kalshi_client", "async_kalshi_client"]


def kalshi_auth(settings: Settings, *, required: bool = True) -> KalshiAuth | None:
    """Return request signing from the settings, None if unconfigured and not ``required``."""
    key_id = settings.kalshi_key_id
    path = settings.kalshi_private_key_path
    secret: SecretStr | None = settings.kalshi_private_key
    if not key_id and path is None and secret is None:
        if required:
            raise SettingsError(
                f"EVENTDESK_KALSHI_KEY_ID and EVENTDESK_KALSHI_PRIVATE_KEY_PATH (or "
                f"EVENTDESK_KALSHI_PRIVATE_KEY) must be set to use the {settings.env} exchange "
                f"at {settings.base_url}"
            )
        return None
    if not key_id:
        raise SettingsError("EVENTDESK_KALSHI_KEY_ID is not set (a private key is configured)")
    if path is None and secret is None:
        raise SettingsError(
            "EVENTDESK_KALSHI_PRIVATE_KEY_PATH (or EVENTDESK_KALSHI_PRIVATE_KEY) is not set"
        )
    try:
        if path is not None:
            key = load_private_key(path.expanduser())
        else:
            assert secret is not None
            key = load_private_key(secret.get_secret_value().encode())
    except KeyLoadError as exc:
        setting = ("EVENTDESK_KALSHI_PRIVATE_KEY_PATH" if path is not None
                   else "EVENTDESK_KALSHI_PRIVATE_KEY")
        raise SettingsError(f"{setting}: {exc}") from None
    return KalshiAuth(key_id, key)


def kalshi_client(settings: Settings, *, require_auth: bool = True,
                  ledger: Engine | None = None) -> KalshiClient:
    """Return a synchronous client for the configured exchange (close it, or use ``with``).

    With `ledger`, every call's outcome is recorded there (the guard's error-rate input).
    """
    transport = None if ledger is None else RecordingTransport(ledger)
    return KalshiClient(
        settings.base_url,
        kalshi_auth(settings, required=require_auth),
        transport=transport,
        timeout=settings.kalshi_timeout_s,
        limiter=RateLimiter(settings.kalshi_tier),
        max_retries=settings.kalshi_max_retries,
    )


def async_kalshi_client(settings: Settings, *, require_auth: bool = True,
                        ledger: Engine | None = None) -> AsyncKalshiClient:
    """Return an asynchronous client for the configured exchange (`ledger`: as above)."""
    return AsyncKalshiClient(
        settings.base_url,
        kalshi_auth(settings, required=require_auth),
        transport=None if ledger is None else AsyncRecordingTransport(ledger),
        timeout=settings.kalshi_timeout_s,
        limiter=RateLimiter(settings.kalshi_tier),
        max_retries=settings.kalshi_max_retries,
    )
