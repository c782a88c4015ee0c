"""`eventdesk exchange ...` against the live paper exchange (and `serve` in a subprocess)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from deployments.cli import app
from kalshi.signing import generate_private_key, public_key_pem
from tests.integration.conftest import PaperExchangeHandle

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def test_cli_add_key_add_markets_settle_faults_roundtrip(
    paper_exchange: PaperExchangeHandle, tmp_path: Path
) -> None:
    url = paper_exchange.root_url
    pem = tmp_path / "key.pub.pem"
    pem.write_bytes(public_key_pem(generate_private_key()))
    markets = tmp_path / "markets.json"
    markets.write_text(json.dumps({"markets": [
        {"ticker": "KXCLI-26JAN01-B1", "event_ticker": "KXCLI-26JAN01", "market_type": "binary",
         "open_time": "2026-01-01T00:00:00Z", "close_time": "2026-01-02T00:00:00Z"},
        {"ticker": "KXCLI-26JAN01-B2", "event_ticker": "KXCLI-26JAN01", "market_type": "scalar",
         "open_time": "2026-01-01T00:00:00Z", "close_time": "2026-01-02T00:00:00Z"}]}))

    key = runner.invoke(app, ["exchange", "add-key", "--key-id", "cli-key", "--public-key",
                              str(pem), "--balance", "250.50", "--url", url])
    added = runner.invoke(app, ["exchange", "add-markets", str(markets), "--reopen",
                                "--url", url])
    settled = runner.invoke(app, ["exchange", "settle", "KXCLI-26JAN01-B1", "--result", "no",
                                  "--url", url])
    shown = runner.invoke(app, ["exchange", "faults", "--url", url])
    bad = runner.invoke(app, ["exchange", "faults", "--error-rate", "2", "--url", url])
    unknown = runner.invoke(app, ["exchange", "settle", "KXNOPE", "--result", "yes",
                                  "--url", url])

    assert key.exit_code == 0, key.output
    assert json.loads(key.stdout)["balance_cents"] == 25_050
    assert added.exit_code == 0, added.output
    assert "added 1 markets, 1 refused" in added.stdout
    assert "scalar" in added.stderr
    assert json.loads(settled.stdout)["status"] == "finalized"
    assert json.loads(shown.stdout)["error_rate"] == 0.0
    assert bad.exit_code == 1
    assert "error_rate" in bad.stderr
    assert unknown.exit_code == 1


def test_cli_without_a_running_exchange_says_how_to_start_one() -> None:
    result = runner.invoke(app, ["exchange", "faults", "--url", "http://127.0.0.1:9"])
    assert result.exit_code == 2
    assert "eventdesk exchange serve" in result.stderr


def test_cli_serve_starts_on_ephemeral_port_and_answers(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "EVENTDESK_DATA_DIR": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "deployments.cli", "exchange", "serve", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("paper exchange listening on http://127.0.0.1:"), (
            line + proc.stderr.read() if proc.poll() is not None else line)
        url = line.split()[4]
        shown = runner.invoke(app, ["exchange", "faults", "--url", url])
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    assert shown.exit_code == 0
    assert (tmp_path / "paper.sqlite").is_file()


def test_cli_serve_refuses_unknown_liquidity_mode() -> None:
    result = runner.invoke(app, ["exchange", "serve", "--liquidity", "magic"])
    assert result.exit_code == 2
    assert "synthetic" in result.stderr
