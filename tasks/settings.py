"""One frozen settings object, read from EVENTDESK_* environment variables and a `.env` file.

Secrets are file paths or ``SecretStr`` and never have defaults; nothing is read at import time.
Load once per run with ``load_settings()`` and pass plain values down (``models/`` never sees this).
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "SettingsError", "load_settings", "KALSHI_BASE_URLS", "DEFAULT_PAPER_PORT"]

DEFAULT_PAPER_PORT = 8765
KALSHI_BASE_URLS: dict[str, str] = {
    "paper": f"http://127.0.0.1:{DEFAULT_PAPER_PORT}/trade-api/v2",
    "demo": "https://external-api.demo.kalshi.co/trade-api/v2",
    "prod": "https://external-api.kalshi.com/trade-api/v2",
}
KALSHI_WS_URLS: dict[str, str] = {
    "demo": "wss://external-api-ws.demo.kalshi.co/trade-api/ws/v2",
    "prod": "wss://external-api-ws.kalshi.com/trade-api/ws/v2",
}


class SettingsError(ValueError):
    """Settings that cannot work together; the message says which setting to change."""


class Settings(BaseSettings):
    """Everything eventdesk reads from its environment."""

    model_config = SettingsConfigDict(
        env_prefix="EVENTDESK_",
        env_file=".env",
        env_file_encoding="utf-8",
        frozen=True,
        extra="ignore",
    )

    # --- environment and exchange -------------------------------------------------------------
    env: Literal["paper", "demo", "prod"] = "paper"
    prod_confirm: bool = Field(
        default=False,
        description="Must be true to trade against Kalshi production (EVENTDESK_ENV=prod).",
    )
    kalshi_base_url: str | None = Field(
        default=None, description="Overrides the environment's base URL; includes /trade-api/v2."
    )
    kalshi_ws_url: str | None = None
    kalshi_key_id: str | None = None
    kalshi_private_key_path: Path | None = None
    kalshi_private_key: SecretStr | None = Field(
        default=None, description="PEM text, if not a file."
    )
    kalshi_tier: Literal["basic", "advanced", "premier", "prime"] = "basic"
    kalshi_timeout_s: float = 10.0
    kalshi_max_retries: int = 4

    # --- storage --------------------------------------------------------------------------------
    data_dir: Path = Path(".eventdesk")
    database_url: str | None = Field(
        default=None, description="Ledger database; default sqlite:///<data_dir>/ledger.sqlite"
    )

    # --- paper exchange -------------------------------------------------------------------------
    paper_host: str = "127.0.0.1"
    paper_port: int = DEFAULT_PAPER_PORT
    paper_operator_url: str | None = None

    # --- NWS ------------------------------------------------------------------------------------
    nws_base_url: str = "https://api.weather.gov"
    nws_user_agent: str = (
        "eventdesk/0.1 (https://github.com/eventdesk/eventdesk; ops@example.invalid)"
    )
    nws_max_age_hours: float = 12.0

    # --- risk limits (issue "Order path"); money in cents, fractions as Decimal ------------------
    min_edge_cents: int = 5
    kelly_fraction: Decimal = Decimal("0.25")
    max_contract_fraction: Decimal = Decimal("0.05")
    max_category_fraction: Decimal = Decimal("0.40")
    max_volume_multiple: Decimal = Decimal("2")
    daily_loss_fraction: Decimal = Decimal("0.03")
    capital_allocation: Decimal = Decimal("1.0")
    order_ttl_s: int = 900
    approval_mode: bool = False
    order_group_contracts_limit: int = Field(
        default=500, ge=1, le=1_000_000,
        description="Contracts one strategy's exchange order group may match in any rolling 15 s "
        "window; at the limit the exchange cancels the strategy's orders and the desk halts.",
    )

    # --- alerting -------------------------------------------------------------------------------
    alert_webhook_url: SecretStr | None = None

    # --- news (issue 10) ------------------------------------------------------------------------
    news_webhook_token: SecretStr | None = Field(
        default=None, description="Shared secret a vendor sends as X-Eventdesk-Token to the "
        "news watcher's webhook; unset: loopback callers need no token.",
    )

    @field_validator("kalshi_base_url")
    @classmethod
    def _base_url_has_prefix(cls, value: str | None) -> str | None:
        if value is not None and not value.rstrip("/").endswith("/trade-api/v2"):
            raise ValueError(
                f"EVENTDESK_KALSHI_BASE_URL must end with /trade-api/v2 like Kalshi's documented "
                f"base URLs (got {value!r})"
            )
        return value.rstrip("/") if value else value

    @model_validator(mode="after")
    def _prod_needs_confirmation(self) -> Settings:
        if self.env == "prod" and not self.prod_confirm:
            raise SettingsError(
                "EVENTDESK_ENV=prod trades real money: set EVENTDESK_PROD_CONFIRM=true to confirm"
            )
        return self

    @property
    def resolved_data_dir(self) -> Path:
        """The data directory as an absolute path."""
        return self.data_dir.expanduser().resolve()

    @property
    def base_url(self) -> str:
        """The Kalshi REST base URL for this environment (ends with /trade-api/v2)."""
        if self.kalshi_base_url:
            return self.kalshi_base_url
        if self.env == "paper":
            return f"http://{self.paper_host}:{self.paper_port}/trade-api/v2"
        return KALSHI_BASE_URLS[self.env]

    @property
    def ws_url(self) -> str:
        """The Kalshi WebSocket URL for this environment."""
        if self.kalshi_ws_url:
            return self.kalshi_ws_url
        if self.env == "paper" or self.kalshi_base_url:
            root = self.base_url.rsplit("/trade-api/v2", 1)[0]
            return (
                root.replace("http://", "ws://").replace("https://", "wss://") + "/trade-api/ws/v2"
            )
        return KALSHI_WS_URLS[self.env]

    @property
    def ledger_url(self) -> str:
        """The ledger database URL (SQLite under the data directory unless set)."""
        return self.database_url or f"sqlite:///{self.resolved_data_dir / 'ledger.sqlite'}"

    def __repr_args__(self):  # type: ignore[no-untyped-def]
        # never render secrets, even masked, plus the key id stays out of reprs
        for name, value in super().__repr_args__():
            if name in ("kalshi_private_key", "alert_webhook_url", "kalshi_key_id",
                        "news_webhook_token") and value:
                yield name, "<redacted>"
            else:
                yield name, value


@lru_cache(maxsize=1)
def _cached() -> Settings:
    return Settings()


def load_settings(*, fresh: bool = False) -> Settings:
    """Return the settings, read once per process (``fresh=True`` re-reads the environment)."""
    if fresh:
        _cached.cache_clear()
    return _cached()
