"""A dress rehearsal: the REAL scheduled trading flow over a recorded day on replay liquidity.

``replay_day`` serves a paper exchange whose clock stands still until the test moves it (so the
flow's ``as_of``, the exchange's clock and the replay clock are one instant), ``replay`` liquidity
(recorded trades of KXHIGHNY-25MAY08 become IOC counter-orders at their recorded instant, speed 1;
a market maker quotes two cents either side of each market's last recorded print) and an NWS
stand-in on the same clock that serves the latest archived forecast issued at or before "now".
``run_day`` then runs ``trade-weather`` at every time of the deployment's schedule inside the
window, moving the clock between runs in one-minute steps (each waits for a replay step, so the
tape reaches the exchange in recorded order and our orders expire on time); after the window it
stops the replay, moves the clock past the recorded close, settles every market with its recorded
result through ``eventdesk exchange settle`` and runs ``reconcile``.

``check_fills`` and ``expected_top`` hold the fill rule and the book the tape implies; the test
asserts on them. Shared helpers come from ``_tax_history`` (venue, settling through the CLI),
``_liquidity_helpers`` (a clock the test moves) and ``_trading_helpers`` (``/points``).

The trading code signs with the wall clock while the exchange runs in May 2025, so the exchange is
created with a signature skew allowance covering the distance (as in ``_tax_history``).
"""

from __future__ import annotations

import asyncio
import csv
import gzip
import json
import os
import random
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from kalshi.paper.app import create_app
from kalshi.paper.exchange import PaperExchange
from kalshi.paper.liquidity import (
    MM_ACCOUNT,
    REPLAY_ACCOUNT,
    LiquidityHandle,
    start_liquidity,
)
from kalshi.paper.server import serve_in_thread
from kalshi.signing import generate_private_key, private_key_pem
from models.ledger import ms_from_datetime
from models.liquidity import MakerConfig, RecordedTrade, maker_orders
from models.matching import Fill, Order
from tests.integration._liquidity_helpers import StepClock
from tests.integration._tax_history import HistoryVenue, _settle
from tests.integration._trading_helpers import points_endpoint
from tests.integration.conftest import register_key

__all__ = [
    "EVENT_TICKER",
    "KEY_ID",
    "MAKER",
    "NDFD_FORECASTS",
    "SERIES",
    "TRADES_FIXTURE",
    "WINDOW_END",
    "WINDOW_START",
    "ArchivedForecast",
    "Cycle",
    "DayClock",
    "DayRun",
    "FillCheck",
    "ReplayDay",
    "check_fills",
    "expected_top",
    "last_print",
    "load_tape",
    "recorded_results",
    "replay_day",
    "run_day",
    "schedule_times",
]

SERIES = "KXHIGHNY"
EVENT_TICKER = "KXHIGHNY-25MAY08"
EVENT_FIXTURE = "kalshi_paper/KXHIGHNY_event_legacy.jsonl"
TRADES_FIXTURE = "kalshi_paper/KXHIGHNY-25MAY08_trades_1200_1515Z.csv"
# 8 to 11 am New York time on the recorded day: its busiest morning (449 recorded trades); the
# fixture's trades run 15 minutes longer, so the last cycle's orders meet the tape until they expire
WINDOW_START = datetime(2025, 5, 8, 12, 0, tzinfo=UTC)
WINDOW_END = datetime(2025, 5, 8, 15, 0, tzinfo=UTC)
TAPE_END = datetime(2025, 5, 8, 15, 15, tzinfo=UTC)
KEY_ID = "replay-day-trader"
BALANCE_CENTS = 1_000_000
STEP_S = 60  # the clock moves in steps of a minute between runs
# the replay's market maker: one level two cents either side of the last print (a taker's spread
# cost; at one cent the flow only ever takes, so no resting order meets the tape), no noise, no
# inventory skew and no inventory cap, so the book is a function of the tape alone
MAKER = MakerConfig(half_spread_cents=2, levels=1, noise_sd_cents=0.0, skew_cents_per_10=0,
                    max_inventory=1_000_000_000, ttl_ms=3_600_000)
@dataclass(frozen=True)
class ArchivedForecast:
    """One issued NWS forecast of a climate day's high: what the stand-in can serve after it."""

    issued: datetime
    day: date
    high_f: float


# The NWS NDFD forecast of the Central Park high for 2025-05-08 at the grid point 0.70 km from the
# park, issued 2025-05-08 00:46 UTC (the evening before): 74.93 F (the CLI reported 78). NWS data
# (US government, public domain); the value as archived in ../shared/data/forecasts/ndfd-knyc/
# daily_forecast_error_targets.csv (test_paper_replay_day checks it against that file when present).
# It is the latest forecast issued before the window, 11.2 to 14.1 hours old during it, so the
# rehearsal runs with EVENTDESK_NWS_MAX_AGE_HOURS=18.
NDFD_FORECASTS = (ArchivedForecast(datetime(2025, 5, 8, 0, 46, tzinfo=UTC), date(2025, 5, 8),
                                   74.93000000000004),)


class DayClock(StepClock):
    """Exchange time in ms that moves only when told; ``now`` is the same instant as a datetime."""

    def __init__(self, start: datetime) -> None:
        super().__init__(ms_from_datetime(start))

    def now(self) -> datetime:
        """The current instant (whole ms) as an aware UTC datetime."""
        return datetime.fromtimestamp(self() / 1000, tz=UTC)

    def jump_to(self, when: datetime) -> None:
        """Move forward to ``when``; refuses to go back."""
        delta = ms_from_datetime(when) - self()
        if delta < 0:
            raise ValueError(f"when: {when.isoformat()} is before the clock ({self.now()})")
        self.advance(delta)


@dataclass
class NwsArchive:
    """The NWS stand-in: serves the latest archived forecast issued at or before the clock."""

    clock: DayClock
    forecasts: tuple[ArchivedForecast, ...]
    served: list[tuple[int, int]] = field(default_factory=list)  # (clock ms, updateTime ms)
    hits: Counter[str] = field(default_factory=Counter)


def _nws_app(archive: NwsArchive) -> Starlette:
    points = points_endpoint(archive.hits)

    async def gridpoint(request: Request) -> Response:
        archive.hits["gridpoints"] += 1
        now = archive.clock.now()
        issued = [f for f in archive.forecasts if f.issued <= now]
        if request.path_params["wfo"] != "OKX" or not issued:
            return JSONResponse({"title": "Not Found", "status": 404}, status_code=404,
                                media_type="application/problem+json")
        latest = max(f.issued for f in issued)
        values = []
        for f in (f for f in issued if f.issued == latest):
            # NDFD's daytime maximum: 7 am to 7 pm local standard time of the climate day
            start = datetime.combine(f.day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=12)
            values.append({"validTime": f"{start.strftime('%Y-%m-%dT%H:%M:%S+00:00')}/PT12H",
                           "value": (f.high_f - 32.0) * 5.0 / 9.0})
        archive.served.append((archive.clock(), ms_from_datetime(latest)))
        return JSONResponse({"properties": {
            "updateTime": latest.strftime("%Y-%m-%dT%H:%M:%S+00:00"),
            "maxTemperature": {"uom": "wmoUnit:degC", "values": values}}},
            media_type="application/geo+json")

    return Starlette(routes=[Route("/points/{coords}", points),
                             Route("/gridpoints/{wfo}/{xy}", gridpoint)])


def load_tape(fixtures_dir: Path) -> list[RecordedTrade]:
    """The fixture's recorded trades, in recorded order, as the replay reads them."""
    with (fixtures_dir / TRADES_FIXTURE).open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    tape = [RecordedTrade(r["trade_id"], r["ticker"], int(r["count"]),
                          ms_from_datetime(datetime.fromisoformat(r["created_time"])),
                          int(r["yes_price"]), r["taker_side"])  # type: ignore[arg-type]
            for r in rows]
    return sorted(tape, key=lambda t: t.ts_ms)


def recorded_results(fixtures_dir: Path) -> tuple[dict[str, str], datetime]:
    """Each market of the recorded event with its recorded result, and the markets' close."""
    record = json.loads((fixtures_dir / EVENT_FIXTURE).read_text(encoding="utf-8"))
    close = max(datetime.fromisoformat(m["close_time"]) for m in record["markets"])
    return {m["ticker"]: m["result"] for m in record["markets"]}, close


def _recorded_data_dir(fixtures_dir: Path, out: Path) -> Path:
    # the layout replay liquidity reads: {SERIES}_events.jsonl.gz and {SERIES}_trades.parquet
    out.mkdir(parents=True, exist_ok=True)
    with gzip.open(out / f"{SERIES}_events.jsonl.gz", "wt", encoding="utf-8") as handle:
        handle.write((fixtures_dir / EVENT_FIXTURE).read_text(encoding="utf-8"))
    frame = pd.read_csv(fixtures_dir / TRADES_FIXTURE, dtype={"trade_id": str, "ticker": str,
                                                              "taker_side": str})
    frame["created_time"] = pd.to_datetime(frame["created_time"], utc=True, format="ISO8601")
    frame.to_parquet(out / f"{SERIES}_trades.parquet")
    return out


def last_print(tape: Sequence[RecordedTrade], ticker: str, at_ms: int) -> int | None:
    """The YES price of ``ticker``'s last recorded trade in the window at or before ``at_ms``."""
    start_ms = ms_from_datetime(WINDOW_START)
    prices = [t.yes_price_cents for t in tape
              if t.ticker == ticker and start_ms <= t.ts_ms <= at_ms]
    return prices[-1] if prices else None


def expected_top(tape: Sequence[RecordedTrade], ticker: str,
                 at_ms: int) -> tuple[int | None, int | None]:
    """The (YES bid, YES ask) the replay's market maker shows at ``at_ms``: none before the
    market's first print in the window, else its quotes around the last print."""
    last = last_print(tape, ticker, at_ms)
    if last is None:
        return None, None
    quotes = maker_orders(MM_ACCOUNT, ticker, fair_cents=last, inventory=0, now_ms=at_ms,
                          rng=random.Random(0), config=MAKER)
    bids = [q.price_cents for q in quotes if q.side == "bid"]
    asks = [q.price_cents for q in quotes if q.side == "ask"]
    return (max(bids) if bids else None), (min(asks) if asks else None)


@dataclass
class ReplayDay:
    """The running venue (``HistoryVenue``: exchange, clock, NWS, our key), replay and tape."""

    venue: HistoryVenue
    clock: DayClock
    nws: NwsArchive
    replay: LiquidityHandle
    tape: list[RecordedTrade]
    results: dict[str, str]
    close: datetime  # the recorded close of the event's markets


def _wait_steps(replay: LiquidityHandle, n: int = 2, timeout_s: float = 20.0) -> None:
    # two step counts after a clock move: at least one whole replay step ran on the new time
    target = replay.stats.steps + n
    deadline = time.monotonic() + timeout_s
    while replay.stats.steps < target:
        assert replay.running, f"replay stopped: {replay.stats.errors}"
        assert time.monotonic() < deadline, f"no replay step in {timeout_s}s"
        time.sleep(0.005)


@contextmanager
def replay_day(tmp: Path, fixtures_dir: Path) -> Iterator[ReplayDay]:
    """Serve the exchange (clock at the window's start) with replay liquidity, and the NWS."""
    clock = DayClock(WINDOW_START)
    skew_ms = abs(int(time.time() * 1000) - clock()) + 2 * 86_400_000
    exchange = PaperExchange(tmp / "exchange.sqlite", seed=1, synchronous="NORMAL", clock=clock,
                             max_skew_ms=skew_ms, advance_interval_s=0.05)
    archive = NwsArchive(clock, NDFD_FORECASTS)
    data_dir = _recorded_data_dir(fixtures_dir, tmp / "recorded")
    key = generate_private_key()
    key_path = tmp / "trader.pem"
    key_path.write_bytes(private_key_pem(key))
    os.chmod(key_path, 0o600)
    with serve_in_thread(create_app(exchange)) as root, \
            serve_in_thread(_nws_app(archive)) as nws_url:
        register_key(f"{root}/operator", KEY_ID, key, balance_cents=BALANCE_CENTS)
        loop = exchange._loop  # the exchange's event loop (uvicorn's thread)
        assert loop is not None

        async def start() -> LiquidityHandle:
            return start_liquidity(exchange, "replay", data_dir=data_dir,
                                   event_ticker=EVENT_TICKER, speed=1, quote=True, maker=MAKER,
                                   recorded_start=WINDOW_START, interval_s=0.01)

        replay = asyncio.run_coroutine_threadsafe(start(), loop).result(30)
        _wait_steps(replay)
        venue = HistoryVenue(root, exchange, clock, archive, nws_url,  # type: ignore[arg-type]
                             key_path, tmp / "data", (SERIES,), key_id=KEY_ID)
        try:
            yield ReplayDay(venue, clock, archive, replay, load_tape(fixtures_dir),
                            *recorded_results(fixtures_dir))
        finally:
            replay.stop()
    exchange.close()


def schedule_times(start: datetime, end: datetime) -> list[datetime]:
    """The ``trade-weather`` deployment's run times in [start, end), from its own schedule, as
    Prefect's scheduler computes them."""
    from prefect.server.schemas.schedules import CronSchedule

    from deployments.definitions import SPECS

    spec = next(s for s in SPECS if s.name == "trade-weather")
    (schedule,) = spec.schedules()
    cron = CronSchedule(cron=schedule.cron, timezone=schedule.timezone)
    dates = asyncio.run(cron.get_dates(start=start, end=end - timedelta(microseconds=1)))
    return [datetime.fromtimestamp(d.timestamp(), tz=UTC) for d in dates]


@dataclass(frozen=True)
class Cycle:
    """One ``trade-weather`` run: its scheduled instant, flow run id and summary."""

    as_of: datetime
    flow_run_id: str
    state: str
    summary: dict[str, Any]


@dataclass
class DayRun:
    """What ``run_day`` did."""

    cycles: list[Cycle] = field(default_factory=list)
    balance_start_cents: int = 0
    balance_end_cents: int = 0
    settled: dict[str, str] = field(default_factory=dict)
    reconcile: dict[str, Any] = field(default_factory=dict)
    replay_stats: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def _walk_to(day: ReplayDay, when: datetime) -> None:
    # one-minute steps, each seen by a whole replay step (orders expire, trades land, in order)
    while day.clock.now() < when:
        day.clock.jump_to(min(day.clock.now() + timedelta(seconds=STEP_S), when))
        _wait_steps(day.replay)


def run_day(day: ReplayDay, times: Sequence[datetime]) -> DayRun:
    """Run ``trade-weather`` at each of ``times``; then settle as recorded and reconcile.

    Needs the EVENTDESK_* environment of ``day.venue.env`` and a Prefect (test) server.
    """
    from flows.reconcile import reconcile
    from flows.trade_weather import trade_weather

    started = time.monotonic()
    run = DayRun()
    with day.venue.client() as client:
        run.balance_start_cents = client.get_balance().balance_cents
    for at in times:
        _walk_to(day, at)
        state = trade_weather(as_of=day.clock.now(), series=[SERIES], interval_s=600,
                              return_state=True)
        summary = state.result(raise_on_failure=False)
        run.cycles.append(Cycle(at, str(state.state_details.flow_run_id), str(state.type.value),
                                summary if isinstance(summary, dict) else {"error": summary}))
    _walk_to(day, TAPE_END)  # the last orders expire; the tape is fully replayed
    day.replay.stop()
    deadline = time.monotonic() + 10
    while day.replay.running:
        assert time.monotonic() < deadline, "replay did not stop"
        time.sleep(0.01)
    run.replay_stats = day.replay.stats.snapshot()
    day.clock.jump_to(day.close + timedelta(minutes=2))  # the replay adds a few seconds' grace
    day.venue.wait_closed(sorted(day.results))
    for ticker, result in sorted(day.results.items()):
        _settle(day.venue.root, ticker, result)  # `eventdesk exchange settle`
        run.settled[ticker] = result
    run.reconcile = reconcile(as_of=day.clock.now())
    with day.venue.client() as client:
        run.balance_end_cents = client.get_balance().balance_cents
    run.seconds = time.monotonic() - started
    return run


# --- the fill rule ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FillCheck:
    """Our fills judged by the replay's fill rule; ``problems`` lists every fill that breaks it."""

    maker_fills: int
    taker_fills: int
    against_tape: int  # maker fills whose counterparty is a replayed recorded trade
    against_maker: int  # fills against the replay's market maker
    contracts: int
    problems: tuple[str, ...]


def check_fills(exchange: PaperExchange, tape: Sequence[RecordedTrade],
                account_id: str = KEY_ID) -> FillCheck:
    """Explain each of our fills by the tape (read after the run, the exchange idle).

    A resting order of ours fills only when a recorded trade printed at or through its price
    after it was placed and no later than the fill; a taking order fills at the market maker's
    quote, ``MAKER.half_spread_cents`` from the last recorded print at or before the order. A
    fill against the replay account must be its counter-order of exactly such a trade.
    """
    engine = exchange.engine
    orders: dict[str, Order] = {o.order_id: o for o in engine.orders(account_id)}
    fills: list[Fill] = engine.fills(account_id)
    counterparty: dict[str, tuple[str, str]] = {}
    for account in (REPLAY_ACCOUNT, MM_ACCOUNT):
        for f in engine.fills(account):
            counterparty[f.trade_id] = (account, f.order_id)
    replay_orders = sorted(engine.orders(REPLAY_ACCOUNT), key=lambda o: o.order_id)
    start_ms = ms_from_datetime(WINDOW_START)
    replayed = [t for t in tape if t.ts_ms >= start_ms]
    by_replay_order = dict(zip((o.order_id for o in replay_orders), replayed, strict=False))
    problems: list[str] = []
    if len(replay_orders) != len(replayed):
        problems.append(f"{len(replay_orders)} replay orders for {len(replayed)} recorded trades")
    maker = taker = on_tape = on_mm = 0
    for f in fills:
        order = orders[f.order_id]
        who, their_order = counterparty.get(f.trade_id, ("?", ""))
        label = (f"fill {f.fill_id} ({order.ticker} {order.side}@{order.price_cents} placed "
                 f"{order.created_ts_ms}, {'taker' if f.is_taker else 'maker'} x{f.count} at "
                 f"{f.yes_price_cents} {f.ts_ms}, against {who})")
        through = ((lambda t, o=order: t.yes_price_cents <= o.price_cents) if order.side == "bid"
                   else (lambda t, o=order: t.yes_price_cents >= o.price_cents))
        if not f.is_taker:
            maker += 1
            if f.yes_price_cents != order.price_cents:
                problems.append(f"{label}: a maker fill off its own price")
            witnesses = [t for t in tape if t.ticker == order.ticker and through(t)
                         and order.created_ts_ms < t.ts_ms <= f.ts_ms]
            if not witnesses:
                problems.append(f"{label}: no recorded trade at or through the price after the "
                                f"order was placed")
            if who == REPLAY_ACCOUNT:
                on_tape += 1
                trade = by_replay_order.get(their_order)
                if trade is None or trade not in witnesses or \
                        trade.taker_side != ("no" if order.side == "bid" else "yes"):
                    problems.append(f"{label}: counter-order {their_order} is not a recorded "
                                    f"trade through the price after placement ({trade})")
            elif who == MM_ACCOUNT:
                on_mm += 1
            else:
                problems.append(f"{label}: unknown counterparty")
        else:
            taker += 1
            last = last_print(tape, order.ticker, order.created_ts_ms)
            bid, ask = expected_top(tape, order.ticker, order.created_ts_ms)
            quote = ask if order.side == "bid" else bid
            if who != MM_ACCOUNT:
                problems.append(f"{label}: a taking fill not against the market maker")
            else:
                on_mm += 1
            if last is None or f.yes_price_cents != quote or \
                    abs(f.yes_price_cents - last) > MAKER.half_spread_cents:
                problems.append(f"{label}: taker price not the quote {quote} around the last "
                                f"print {last}")
    return FillCheck(maker, taker, on_tape, on_mm, sum(f.count for f in fills), tuple(problems))
