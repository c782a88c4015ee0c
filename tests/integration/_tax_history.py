"""A paper-exchange trading history made by the REAL flows, for the tax export to tie out against.

``trading_history`` serves a paper exchange on a simulated clock (``HistoryClock``: a fixed start
instant plus elapsed real time, moved forward by whole hours when a day is done), synthetic
liquidity (makers quoting every bracket, a noise taker that fills resting orders) and an NWS
stand-in on the same clock. ``run_history`` then, for each climate day: refreshes the books, runs
the ``trade-weather`` flow for a few cycles with a forecast bias that flips sign (so the flow buys
one side, then the other: opens, partial closes and flips), moves the exchange clock past the
day's close, settles the day's markets through ``eventdesk exchange settle`` (the operator API,
with the synthetic event's true result) and runs the ``reconcile`` flow so the ledger imports the
settlements. The last day also settles the next day's event, so nothing is open at the end.

``exchange_tie_out`` reads the exchange (balance, fills, settlements) and an export's Form 8949
CSV and returns the figures the tax test asserts on; ``bench/`` or docs can reuse all of this.

The trading code signs with the wall clock while the exchange runs on the history's clock, so the
exchange is created with a signature skew allowance covering the distance (``max_skew_ms``); that
is the only concession, and it is a paper-exchange constructor argument, not a code path.
"""

from __future__ import annotations

import asyncio
import csv
import os
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from kalshi.client import KalshiClient, RetryPolicy
from kalshi.paper.app import create_app
from kalshi.paper.exchange import PaperExchange
from kalshi.paper.liquidity import start_liquidity
from kalshi.paper.server import serve_in_thread
from kalshi.signing import KalshiAuth, generate_private_key, load_private_key, private_key_pem
from models.climate import STATIONS, climate_day_of
from models.ledger import ms_from_datetime
from models.liquidity import MakerConfig, TakerConfig
from models.money import cents_from_dollars
from models.synthetic import SyntheticEvent, seeded_event, series_info, settle_event
from tests.integration._trading_helpers import points_endpoint, synthetic_gridpoint
from tests.integration.conftest import register_key

__all__ = [
    "HistoryClock",
    "HistoryRun",
    "HistoryVenue",
    "TieOut",
    "YearEndState",
    "exchange_tie_out",
    "open_lots",
    "run_history",
    "trading_history",
]

SEED = 11
KEY_ID = "tax-history-trader"
BALANCE_CENTS = 1_000_000
# a maker quote lives an hour of exchange time; the noise taker hits resting orders each step
LIQUIDITY: dict[str, Any] = {
    "seed": SEED, "interval_s": 0.02,
    "maker": MakerConfig(ttl_ms=3_600_000, noise_sd_cents=0.0),
    "taker": TakerConfig(prob_per_step=0.6, max_size=5),
}


class HistoryClock:
    """Exchange time in ms: ``start`` plus the real time elapsed plus every jump forward."""

    def __init__(self, start: datetime) -> None:
        self._base_ms = ms_from_datetime(start)
        self._t0 = time.monotonic()

    def __call__(self) -> int:
        return self._base_ms + int((time.monotonic() - self._t0) * 1000)

    def now(self) -> datetime:
        """The exchange's current time as an aware UTC datetime (ms precision)."""
        return datetime.fromtimestamp(self() / 1000, tz=UTC)

    def jump_to(self, when: datetime) -> None:
        """Move forward to ``when``; refuses to go back (the exchange log never does)."""
        delta = ms_from_datetime(when) - self()
        if delta < 0:
            raise ValueError(f"when: {when.isoformat()} is before the clock ({self.now()})")
        self._base_ms += delta

    def advance(self, seconds: float) -> None:
        """Move forward by ``seconds``."""
        self._base_ms += int(seconds * 1000)


@dataclass
class NwsStandIn:
    """What the NWS stand-in serves: forecasts of the synthetic truth plus a per-series bias."""

    clock: HistoryClock
    bias_f: dict[str, float] = field(default_factory=dict)
    hits: Counter[str] = field(default_factory=Counter)


def build_nws(stand_in: NwsStandIn) -> Starlette:
    """api.weather.gov's ``/points`` and raw ``/gridpoints`` shapes, on the history's clock."""
    by_wfo = {s.wfo: s.series for s in STATIONS.values() if s.series.startswith("KXHIGH")}

    points = points_endpoint(stand_in.hits)

    async def gridpoint(request: Request) -> Response:
        series = by_wfo.get(request.path_params["wfo"])
        stand_in.hits["gridpoints"] += 1
        if series is None:
            return JSONResponse({"title": "Not Found", "status": 404}, status_code=404,
                                media_type="application/problem+json")
        now = stand_in.clock.now()
        info = series_info(series)
        return synthetic_gridpoint(info, SEED, stand_in.bias_f.get(series, 0.0), now,
                                   now - timedelta(minutes=5))

    return Starlette(routes=[Route("/points/{coords}", points),
                             Route("/gridpoints/{wfo}/{xy}", gridpoint)])


@dataclass
class HistoryVenue:
    """The running exchange, its clock, the NWS stand-in and our account's key."""

    root: str
    exchange: PaperExchange
    clock: HistoryClock
    nws: NwsStandIn
    nws_url: str
    key_path: Path
    data_dir: Path
    series: tuple[str, ...]
    key_id: str = KEY_ID

    @property
    def base_url(self) -> str:
        return f"{self.root}/trade-api/v2"

    def client(self) -> KalshiClient:
        """A client of our account (the same key the flows use)."""
        return KalshiClient(self.base_url, KalshiAuth(self.key_id,
                                                      load_private_key(self.key_path)),
                            timeout=10, backoff=RetryPolicy(max_retries=4, base_s=0.005,
                                                            cap_s=0.02))

    def env(self, ledger_url: str) -> dict[str, str]:
        """The EVENTDESK_* settings that point the flows and CLI at this venue and ledger."""
        return {
            "EVENTDESK_ENV": "paper", "EVENTDESK_KALSHI_BASE_URL": self.base_url,
            "EVENTDESK_KALSHI_KEY_ID": self.key_id,
            "EVENTDESK_KALSHI_PRIVATE_KEY_PATH": str(self.key_path),
            "EVENTDESK_KALSHI_TIER": "prime", "EVENTDESK_DATABASE_URL": ledger_url,
            "EVENTDESK_DATA_DIR": str(self.data_dir), "EVENTDESK_NWS_BASE_URL": self.nws_url,
            "EVENTDESK_KALSHI_TIMEOUT_S": "5", "EVENTDESK_PAPER_OPERATOR_URL": self.root,
        }

    def refresh_books(self, seconds: float) -> None:
        """Let the synthetic makers and taker run for ``seconds`` (real time), then stop them."""
        loop = self.exchange._loop  # the exchange's event loop (uvicorn's thread)
        assert loop is not None

        async def start() -> Any:
            return start_liquidity(self.exchange, "synthetic", **LIQUIDITY,
                                   series=list(self.series))

        handle = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
        try:
            time.sleep(seconds)
        finally:
            handle.stop()
            time.sleep(0.1)
        stats = handle.stats.snapshot()
        assert not stats["errors"], stats["errors"]
        assert not stats["settled"], f"the liquidity agent settled {stats['settled']} itself"

    def event(self, series: str, day: date) -> SyntheticEvent:
        """The synthetic event (brackets, close time, true high) of ``series`` on ``day``."""
        return seeded_event(SEED, series_info(series), day)

    def wait_closed(self, tickers: Sequence[str], timeout_s: float = 10.0) -> None:
        """Wait until the exchange's own clock tick has closed every market in ``tickers``."""
        deadline = time.monotonic() + timeout_s
        while any(self.exchange.engine.market(t).status == "active" for t in tickers):
            assert time.monotonic() < deadline, f"markets not closed in {timeout_s}s: {tickers}"
            time.sleep(0.05)


@contextmanager
def trading_history(tmp: Path, start: datetime, series: Sequence[str]) -> Iterator[HistoryVenue]:
    """Serve a paper exchange on a history clock starting at ``start``, and the NWS stand-in."""
    clock = HistoryClock(start)
    skew_ms = abs(int(time.time() * 1000) - clock()) + 400 * 86_400_000  # days ahead, a margin
    exchange = PaperExchange(tmp / "exchange.sqlite", seed=SEED, synchronous="NORMAL",
                             clock=clock, max_skew_ms=skew_ms, advance_interval_s=0.05)
    stand_in = NwsStandIn(clock)
    key = generate_private_key()
    key_path = tmp / "trader.pem"
    key_path.write_bytes(private_key_pem(key))
    os.chmod(key_path, 0o600)
    with serve_in_thread(create_app(exchange)) as root, \
            serve_in_thread(build_nws(stand_in)) as nws_url:
        register_key(f"{root}/operator", KEY_ID, key, balance_cents=BALANCE_CENTS)
        yield HistoryVenue(root, exchange, clock, stand_in, nws_url, key_path, tmp / "data",
                           tuple(series))
    exchange.close()


@dataclass(frozen=True)
class YearEndState:
    """Our account as of a UTC year end: cash (no order resting) and the positions held."""

    at: datetime
    balance_cents: int
    positions: dict[str, int]


def _year_end_state(venue: HistoryVenue, before: datetime) -> YearEndState:
    # let our resting orders expire (their TTL), so the balance holds no order collateral; with
    # the liquidity stopped nothing else trades until the clock jumps past the year end
    venue.clock.advance(900 + 60)
    assert venue.clock.now() < datetime(before.year, 1, 1, tzinfo=UTC), "too late to read"
    deadline = time.monotonic() + 10
    with venue.client() as client:
        while list(client.iter_orders(status="resting")):
            assert time.monotonic() < deadline, "resting orders did not expire"
            time.sleep(0.05)
        return YearEndState(venue.clock.now(), client.get_balance().balance_cents,
                            {p.ticker: int(p.position) for p in client.iter_positions()
                             if p.position != 0})


@dataclass
class HistoryRun:
    """What ``run_history`` did: days, cycles, settlements, balances and its run time."""

    days: list[date] = field(default_factory=list)
    cycles: int = 0
    order_changes: Counter[str] = field(default_factory=Counter)
    settled: dict[str, str] = field(default_factory=dict)  # ticker -> result
    reconciles: list[dict[str, Any]] = field(default_factory=list)
    balance_start_cents: int = 0
    balance_end_cents: int = 0
    daily_balances_cents: list[int] = field(default_factory=list)  # after each day's settling
    daily_at: list[datetime] = field(default_factory=list)  # exchange time just after each read
    year_end: YearEndState | None = None  # read just before a UTC year end, if one was crossed
    seconds: float = 0.0


def _settle(root: str, ticker: str, result: str) -> None:
    # the real CLI command: `eventdesk exchange settle TICKER --result R --url ROOT`
    from typer.testing import CliRunner

    from deployments.cli import app

    out = CliRunner().invoke(app, ["exchange", "settle", ticker, "--result", result,
                                   "--url", root])
    assert out.exit_code == 0, out.output
    assert '"status": "finalized"' in out.output or '"status": "settled"' in out.output, out.output


def run_history(venue: HistoryVenue, *, days: int = 3, cycles: int = 3,
                biases_f: Sequence[float] = (3.0, -3.0, 2.0)) -> HistoryRun:
    """Trade ``days`` climate days of ``cycles`` trade-weather runs each; settle; reconcile.

    Needs the EVENTDESK_* environment of ``venue.env`` and a Prefect (test) server.
    """
    from flows.reconcile import reconcile
    from flows.trade_weather import trade_weather

    started = time.monotonic()
    run = HistoryRun()
    with venue.client() as client:
        run.balance_start_cents = client.get_balance().balance_cents
    first = venue.clock.now()
    for k in range(days):
        venue.clock.jump_to(max(first + timedelta(days=k), venue.clock.now()))
        venue.refresh_books(0.6)
        for c in range(cycles):
            for s in venue.series:
                venue.nws.bias_f[s] = biases_f[(c + k) % len(biases_f)]
            summary = trade_weather(as_of=venue.clock.now(), series=list(venue.series),
                                    interval_s=60)
            assert "refused" not in summary, summary
            skipped = [(d["market_ticker"], d["reason"]) for d in summary["decisions"]
                       if d["action"] == "skip"]
            assert summary["markets"], summary
            assert not skipped, skipped[:3]
            run.order_changes.update(f"{o[1]}:{o[3]}" for o in summary["outcomes"])
            run.cycles += 1
            venue.clock.advance(300)
            venue.refresh_books(0.3)  # the noise taker hits what we left resting
        last = k == days - 1
        to_settle: list[SyntheticEvent] = []
        for s in venue.series:
            today = climate_day_of(venue.clock.now(), series_info(s).standard_offset_hours)
            to_settle.append(venue.event(s, today))
            if last:
                to_settle.append(venue.event(s, today + timedelta(days=1)))
        run.days.append(to_settle[0].day)
        close = max(e.close_time_utc for e in to_settle) + timedelta(minutes=2)
        if close.year != venue.clock.now().year:  # the UTC year ends before the day closes
            run.year_end = _year_end_state(venue, close)
        venue.clock.jump_to(close)
        for event in to_settle:
            results = settle_event(event)
            venue.wait_closed(list(results))
            for ticker, result in sorted(results.items()):
                _settle(venue.root, ticker, result)
                run.settled[ticker] = result
        run.reconciles.append(reconcile(as_of=venue.clock.now()))
        with venue.client() as client:
            run.daily_balances_cents.append(client.get_balance().balance_cents)
        run.daily_at.append(venue.clock.now())
    with venue.client() as client:
        run.balance_end_cents = client.get_balance().balance_cents
    run.seconds = time.monotonic() - started
    return run


# --- tie-out ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TieOut:
    """The exchange's figures next to an export's, all in cents and contracts."""

    balance_change_cents: int
    settlement_revenue_cents: int
    exchange_fills: int
    exchange_contracts: int
    exchange_fees_cents: int
    open_positions: dict[str, int]
    resting_orders: int
    rows: int
    lots: int
    row_gain_cents: int
    settlement_proceeds_cents: int
    disposed_contracts: int
    closed_by_fills_contracts: int
    open_lot_contracts: int
    fills_unaccounted: dict[str, tuple[int, int]]  # fill id -> (count, contracts in lots)
    # ticker -> ((exchange YES, NO settled), (export YES, NO disposed by settlement)) if differ
    settled_counts_differ: dict[str, tuple[tuple[int, int], tuple[int, int]]]
    lot_ids_not_at_exchange: tuple[str, ...]
    bad_rows: tuple[str, ...]


def open_lots(summary_csv: Path) -> list[list[str]]:
    """The ``open_at_year_end`` rows of an export's summary (lot, ticker, series, side, ...)."""
    with summary_csv.open(newline="", encoding="utf-8") as handle:
        return [row for row in csv.reader(handle) if row and row[0] == "open_at_year_end"]


def exchange_tie_out(venue: HistoryVenue, run: HistoryRun, forms_8949: Sequence[Path],
                     last_summary: Path) -> TieOut:
    """Read the exchange (fills, settlements, positions, orders) and consecutive years' Form 8949
    CSV files (``last_summary``: the last year's summary, whose open lots are still held)."""
    with venue.client() as client:
        fills = list(client.iter_fills())
        settlements = list(client.iter_settlements())
        positions = {p.ticker: int(p.position) for p in client.iter_positions()
                     if p.position != 0}
        resting = list(client.iter_orders(status="resting"))
    rows: list[dict[str, str]] = []
    for form in forms_8949:
        with form.open(newline="", encoding="utf-8") as handle:
            rows += list(csv.DictReader(handle))
    opened: dict[str, int] = defaultdict(int)
    closed: dict[str, int] = defaultdict(int)
    settled_rows: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    bad: list[str] = []
    gain = proceeds_settled = disposed = closed_total = 0
    for n, row in enumerate(rows, start=2):
        contracts = int(row["Contracts"])
        proceeds, basis, adjustment, row_gain = (cents_from_dollars(row[column]) for column in (
            "(d) Proceeds", "(e) Cost or other basis", "(g) Amount of adjustment",
            "(h) Gain or (loss)"))
        acquired = date.fromisoformat(row["(b) Date acquired"])
        sold = date.fromisoformat(row["(c) Date sold or disposed of"])
        if proceeds - basis + adjustment != row_gain:
            bad.append(f"line {n}: {proceeds} - {basis} + {adjustment} != {row_gain}")
        if acquired > sold:
            bad.append(f"line {n}: acquired {acquired} after sold {sold}")
        if adjustment and row["(f) Code(s)"] != "E":
            bad.append(f"line {n}: adjustment without code E")
        if row["(a) Description of property"] != f"{contracts} {row['Side'].upper()} " \
                                                f"{row['Ticker']}":
            bad.append(f"line {n}: description {row['(a) Description of property']!r}")
        opened[row["Lot (opening fill)"]] += contracts
        if row["Disposal"] == "close":
            closed[row["Disposed by"]] += contracts
            closed_total += contracts
        elif row["Disposal"] == "settlement":
            proceeds_settled += proceeds
            settled_rows[row["Ticker"]][0 if row["Side"] == "yes" else 1] += contracts
            if row["Disposed by"] != f"settlement:{row['Ticker']}":
                bad.append(f"line {n}: settlement disposed by {row['Disposed by']!r}")
        else:
            bad.append(f"line {n}: disposal kind {row['Disposal']!r}")
        gain += row_gain
        disposed += contracts
    open_contracts = 0
    for lot in open_lots(last_summary):
        opened[lot[1]] += int(lot[5])
        open_contracts += int(lot[5])
    by_id = {f.fill_id: f.count_contracts for f in fills}
    unaccounted = {fid: (count, opened.get(fid, 0) + closed.get(fid, 0))
                   for fid, count in by_id.items()
                   if opened.get(fid, 0) + closed.get(fid, 0) != count}
    strangers = tuple(sorted((set(opened) | set(closed)) - set(by_id)))
    fees = sum(cents_from_dollars(f.fee_cost) for f in fills if f.fee_cost is not None)
    at_exchange = {s.ticker: (int(s.yes_count), int(s.no_count)) for s in settlements
                   if s.yes_count or s.no_count}
    in_rows = {t: (yes, no) for t, (yes, no) in settled_rows.items()}
    counts_differ = {t: (at_exchange.get(t, (0, 0)), in_rows.get(t, (0, 0)))
                     for t in set(at_exchange) | set(in_rows)
                     if at_exchange.get(t, (0, 0)) != in_rows.get(t, (0, 0))}
    return TieOut(
        balance_change_cents=run.balance_end_cents - run.balance_start_cents,
        settlement_revenue_cents=sum(s.revenue_cents for s in settlements),
        exchange_fills=len(fills), exchange_contracts=sum(by_id.values()),
        exchange_fees_cents=fees, open_positions=positions, resting_orders=len(resting),
        rows=len(rows), lots=len(opened), row_gain_cents=gain,
        settlement_proceeds_cents=proceeds_settled,
        disposed_contracts=disposed, closed_by_fills_contracts=closed_total,
        open_lot_contracts=open_contracts, fills_unaccounted=unaccounted,
        settled_counts_differ=counts_differ, lot_ids_not_at_exchange=strangers,
        bad_rows=tuple(bad))
