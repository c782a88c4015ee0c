"""Worker of the ledger race test, kept light: a spawned process imports only this module."""

from __future__ import annotations

from datetime import UTC, datetime

from models.orderkey import client_order_id
from models.risk import OrderRequest, RiskLimits
from tasks.db import ledger_engine
from tasks.ledger_store import IntentRequest, ReservedIntent, reserve_and_record_intent

AS_OF = datetime(2026, 11, 22, 14, 0, tzinfo=UTC)
EVENT = "KXHIGHNY-26NOV22"


def race(url: str, worker: int, attempts: int, barrier, results) -> None:
    """Try `attempts` reservations of 10 x 50c on one event; report how many were approved."""
    engine = ledger_engine(url)
    approved = 0
    barrier.wait()
    for n in range(attempts):
        ticker = f"{EVENT}-B{n % 3}"
        request = IntentRequest(
            client_order_id=client_order_id("race", ticker, "yes", "day:2026-11-22",
                                            worker * 1000 + n),
            strategy="race",
            order=OrderRequest(ticker, EVENT, "weather", "yes", 50, 10, 10_000),
            time_in_force="good_till_canceled",
            expiration_ts_ms=None,
        )
        result = reserve_and_record_intent(engine, request, equity_cents=100_000, as_of=AS_OF,
                                           limits=RiskLimits())
        approved += isinstance(result, ReservedIntent)
    engine.dispose()
    results.put((worker, approved))


def upgrade(url: str, barrier, results) -> None:
    """Run the startup migration at the same moment as other processes; report the outcome."""
    from tasks.db import ledger_revision, upgrade_ledger

    barrier.wait()
    upgrade_ledger(url)
    results.put(ledger_revision(url))
