"""Worker of the batched-``sent`` crash drill: one gateway run in its own process that dies by
SIGKILL right after the exchange accepted its first batch create (the response is read, never
returned), so that batch's acknowledgements are never recorded and the next batch never leaves.

Usage: ``python -m tests.integration.ledger_batch_worker LEDGER_URL BASE_URL KEY_ID KEY_PATH
TICKERS AS_OF`` (TICKERS comma-separated, AS_OF ISO 8601 with offset).
"""

from __future__ import annotations

import os
import signal
import sys
from datetime import datetime
from pathlib import Path

import httpx

from kalshi.client import KalshiClient
from kalshi.signing import KalshiAuth, load_private_key
from models.edge import DesiredOrder
from models.risk import RiskLimits
from tasks.db import ledger_engine
from tasks.gateway import Want, apply_orders, sync_exchange

SLOT = "drill-slot"
BATCH_PATH = "/portfolio/events/orders/batched"


def wants(tickers: list[str]) -> list[Want]:
    """One resting YES bid per market (each market its own event)."""
    return [Want(DesiredOrder(t, "yes", 20 + n % 10, 2, "good_till_canceled", None, 5, False),
                 t.removesuffix("-M"), "weather", 10_000)
            for n, t in enumerate(tickers)]


class _DieAfterFirstBatch(httpx.BaseTransport):
    """Forward requests; once the first batch create was accepted, die before answering."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.method == "POST" and request.url.path.endswith(BATCH_PATH):
            response.read()  # the exchange has accepted the batch
            os.kill(os.getpid(), signal.SIGKILL)
        return response


def main(argv: list[str]) -> int:
    url, base_url, key_id, key_path, tickers_csv, as_of_text = argv
    tickers = tickers_csv.split(",")
    as_of = datetime.fromisoformat(as_of_text)
    engine = ledger_engine(url)
    auth = KalshiAuth(key_id, load_private_key(Path(key_path)))
    with KalshiClient(base_url, auth, transport=_DieAfterFirstBatch()) as client:
        snapshot = sync_exchange(client, engine, as_of=as_of)
        apply_orders(client, engine, wants(tickers), managed_tickers=tickers, snapshot=snapshot,
                     strategy="batch-drill", slot=SLOT, as_of=as_of, equity_cents=1_000_000,
                     limits=RiskLimits(), ttl_s=900)
    return 0  # not reached: the process is killed in the first batch create


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
