"""`eventdesk markets|book|balance|positions|orders|fills` against a loopback fake venue."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from deployments.cli import app
from kalshi.signing import generate_private_key, private_key_pem
from tests.integration.fakevenue import FakeVenue, make_market, serve

runner = CliRunner()


@pytest.fixture(scope="module")
def key():
    return generate_private_key()


@pytest.fixture(scope="module")
def served(key):
    venue = FakeVenue(public_key=key.public_key(), key_id="cli-key")
    with serve(venue) as url:
        yield venue, url


@pytest.fixture
def env(served, key, tmp_path):
    venue, url = served
    venue.reset()
    venue.markets.extend([
        make_market("KXHIGHNY-26JUN02-T80", yes_bid="0.4100", yes_ask="0.4300", volume="3041.51"),
        make_market("KXHIGHNY-26JUN02-B78.5", yes_bid="0.0500", yes_ask="0.0700",
                    status="closed"),
        make_market("KXHIGHCHI-26JUN02-T90", event_ticker="KXHIGHCHI-26JUN02"),
    ])
    key_path = tmp_path / "kalshi.pem"
    key_path.write_bytes(private_key_pem(key))
    return venue, {
        "EVENTDESK_ENV": "paper",
        "EVENTDESK_KALSHI_BASE_URL": url,
        "EVENTDESK_KALSHI_KEY_ID": "cli-key",
        "EVENTDESK_KALSHI_PRIVATE_KEY_PATH": str(key_path),
        "EVENTDESK_KALSHI_PRIVATE_KEY": None,
        "EVENTDESK_KALSHI_MAX_RETRIES": "0",
    }


def test_markets_table_filters_series_and_status(env):
    _, variables = env
    result = runner.invoke(app, ["markets", "--series", "KXHIGHNY", "--status", "open"],
                           env=variables)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["ticker", "bid", "ask", "last", "volume", "status"]
    assert lines[1].split() == ["KXHIGHNY-26JUN02-T80", "41c", "43c", "42c", "3041.51", "active"]
    assert len(lines) == 2


def test_markets_json_is_machine_readable_and_exact(env):
    _, variables = env
    result = runner.invoke(app, ["markets", "--json"], env=variables)
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert [m["ticker"] for m in data] == ["KXHIGHNY-26JUN02-T80", "KXHIGHNY-26JUN02-B78.5",
                                           "KXHIGHCHI-26JUN02-T90"]
    assert data[0]["yes_bid"] == "0.4100"
    assert data[0]["volume"] == "3041.51"


def test_markets_bad_status_choice_exits_nonzero(env):
    _, variables = env
    result = runner.invoke(app, ["markets", "--status", "pending"], env=variables)
    assert result.exit_code != 0


def test_book_shows_best_bid_and_implied_ask(env):
    _, variables = env
    result = runner.invoke(app, ["book", "KXHIGHNY-26JUN02-T80"], env=variables)
    assert result.exit_code == 0, result.output
    assert "best yes bid 41c  best yes ask 43c" in result.stdout
    as_json = json.loads(runner.invoke(app, ["book", "KXHIGHNY-26JUN02-T80", "--json"],
                                       env=variables).stdout)
    assert as_json["yes"][-1] == {"price": "0.4100", "count": "5.00"}


def test_book_unknown_ticker_prints_one_line_and_exits_1(env):
    _, variables = env
    result = runner.invoke(app, ["book", "NOPE-1"], env=variables)
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert "NotFound" in result.stderr
    assert "Traceback" not in result.output + result.stderr


def test_balance_positions_orders_fills_signed_and_parsed(env):
    venue, variables = env
    balance = runner.invoke(app, ["balance"], env=variables)
    assert balance.exit_code == 0, balance.output
    assert balance.stdout.strip() == "balance $1,234.56  portfolio value $50.00"
    positions = json.loads(runner.invoke(app, ["positions", "--json"], env=variables).stdout)
    assert positions["market_positions"][0]["position"] == "-3.00"
    orders = runner.invoke(app, ["orders", "--status", "resting", "--json"], env=variables)
    assert orders.exit_code == 0
    assert json.loads(orders.stdout) == []
    fills = runner.invoke(app, ["fills"], env=variables)
    assert fills.exit_code == 0
    assert fills.stdout.split() == ["fill_id", "ticker", "side", "price", "count", "role", "fee"]
    assert venue.bad_signatures == 0
    assert venue.requests_to("GET", "/portfolio/orders") == 1


def test_balance_without_key_fails_fast_naming_setting(env):
    venue, variables = env
    variables = dict(variables, EVENTDESK_KALSHI_KEY_ID=None,
                     EVENTDESK_KALSHI_PRIVATE_KEY_PATH=None)
    result = runner.invoke(app, ["balance"], env=variables)
    assert result.exit_code == 2
    assert "EVENTDESK_KALSHI_KEY_ID" in result.stderr
    assert venue.requests_to("GET", "/portfolio/balance") == 0


def test_balance_server_error_prints_one_line_exit_1(env):
    venue, variables = env
    venue.fail("GET", "/portfolio/balance", status=500)
    result = runner.invoke(app, ["balance"], env=variables)
    assert result.exit_code == 1
    assert result.stderr.startswith("eventdesk: ServerError")
    assert "BEGIN" not in result.stderr


def test_markets_unreachable_exchange_prints_network_error(env):
    _, variables = env
    variables = dict(variables, EVENTDESK_KALSHI_BASE_URL="http://127.0.0.1:9/trade-api/v2")
    result = runner.invoke(app, ["markets"], env=variables)
    assert result.exit_code == 1
    assert result.stderr.startswith("eventdesk: NetworkError")


def test_markets_max_stops_paging_early(env):
    venue, variables = env
    venue.markets.extend(make_market(f"KXHIGHNY-26JUN03-B{i:02d}") for i in range(30))
    result = runner.invoke(app, ["markets", "--max", "4", "--json"], env=variables)
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)) == 4
    assert venue.requests_to("GET", "/markets") == 1
