"""tasks.kalshi_client: build the client from Settings, failing fast with the setting's name."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from kalshi.signing import generate_private_key, private_key_pem
from tasks.kalshi_client import async_kalshi_client, kalshi_auth, kalshi_client
from tasks.settings import Settings, SettingsError


@pytest.fixture(scope="module")
def pem() -> bytes:
    return private_key_pem(generate_private_key(1024))


def _settings(**kw) -> Settings:
    base = {"env": "demo", "kalshi_key_id": None, "kalshi_private_key_path": None,
            "kalshi_private_key": None}
    base.update(kw)
    return Settings(_env_file=None, **base)


def test_kalshi_client_demo_without_key_fails_naming_settings():
    with pytest.raises(SettingsError, match="EVENTDESK_KALSHI_KEY_ID") as info:
        kalshi_client(_settings())
    assert "EVENTDESK_KALSHI_PRIVATE_KEY_PATH" in str(info.value)
    assert "external-api.demo.kalshi.co" in str(info.value)


def test_kalshi_client_public_reads_allowed_without_key():
    with kalshi_client(_settings(), require_auth=False) as client:
        assert "demo" in repr(client)


def test_kalshi_auth_key_id_without_key_names_missing_path(pem):
    with pytest.raises(SettingsError, match="EVENTDESK_KALSHI_PRIVATE_KEY_PATH"):
        kalshi_auth(_settings(kalshi_key_id="abc"))


def test_kalshi_auth_key_without_id_names_missing_id(tmp_path, pem):
    path = tmp_path / "k.pem"
    path.write_bytes(pem)
    with pytest.raises(SettingsError, match="EVENTDESK_KALSHI_KEY_ID is not set"):
        kalshi_auth(_settings(kalshi_private_key_path=path))


def test_kalshi_auth_from_path_and_from_secret_sign_alike(tmp_path, pem):
    path = tmp_path / "k.pem"
    path.write_bytes(pem)
    from_path = kalshi_auth(_settings(kalshi_key_id="abc", kalshi_private_key_path=path))
    from_secret = kalshi_auth(_settings(kalshi_key_id="abc",
                                        kalshi_private_key=SecretStr(pem.decode())))
    assert from_path.key_id == from_secret.key_id == "abc"
    assert set(from_path.headers_for("GET", "/x")) == set(from_secret.headers_for("GET", "/x"))


def test_kalshi_auth_unreadable_key_names_setting_not_secret(tmp_path):
    bad = tmp_path / "bad.pem"
    bad.write_text("-----BEGIN PRIVATE KEY-----\nnot really a key\n-----END PRIVATE KEY-----\n")
    with pytest.raises(SettingsError) as info:
        kalshi_auth(_settings(kalshi_key_id="abc", kalshi_private_key_path=bad))
    assert str(info.value).startswith("EVENTDESK_KALSHI_PRIVATE_KEY_PATH")
    assert "not really a key" not in str(info.value)
    with pytest.raises(SettingsError, match="cannot read private key file"):
        kalshi_auth(_settings(kalshi_key_id="abc", kalshi_private_key_path=tmp_path / "none"))


def test_kalshi_client_uses_settings_base_url_tier_and_retries(tmp_path, pem):
    path = tmp_path / "k.pem"
    path.write_bytes(pem)
    settings = _settings(kalshi_key_id="abc", kalshi_private_key_path=path,
                         kalshi_base_url="http://127.0.0.1:1/trade-api/v2",
                         kalshi_tier="advanced", kalshi_max_retries=2)
    with kalshi_client(settings) as client:
        assert repr(client) == "KalshiClient(base_url='http://127.0.0.1:1/trade-api/v2')"
        assert client._limiter.budget.write_rate == 300
        assert client._policy.max_retries == 2


def test_async_kalshi_client_builds_from_settings(tmp_path, pem):
    path = tmp_path / "k.pem"
    path.write_bytes(pem)
    client = async_kalshi_client(_settings(kalshi_key_id="abc", kalshi_private_key_path=path))
    assert repr(client).startswith("AsyncKalshiClient(base_url='https://external-api.demo")


def test_kalshi_client_with_ledger_records_each_call_outcome_for_guard(tmp_path):
    from datetime import UTC, datetime

    from kalshi.errors import NetworkError
    from tasks.db import ledger_engine, upgrade_ledger
    from tasks.safety import api_call_counts

    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    upgrade_ledger(url)
    engine = ledger_engine(url)
    settings = _settings(kalshi_base_url="http://127.0.0.1:1/trade-api/v2", kalshi_max_retries=0)
    try:
        with kalshi_client(settings, require_auth=False, ledger=engine) as client, \
                pytest.raises(NetworkError):
            client.get_series("KXHIGHNY")  # nothing listens on port 1: no response
        counts = api_call_counts(engine, now=datetime.now(UTC), window_s=600)
        assert (counts.calls, counts.errors) == (1, 1)
        with kalshi_client(settings, require_auth=False) as client, pytest.raises(NetworkError):
            client.get_series("KXHIGHNY")  # no ledger given: nothing recorded anywhere
        assert api_call_counts(engine, now=datetime.now(UTC), window_s=600) == counts
    finally:
        engine.dispose()
