"""Synthetic liquidity against a real PaperExchange: two-sided moving books, settlement from the
simulated truth, and every action persisted through the exchange's command log."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from kalshi.paper.exchange import PaperExchange
from kalshi.paper.liquidity import MM_ACCOUNT, TAKER_ACCOUNT, start_liquidity
from models.climate import climate_day_of
from models.liquidity import MakerConfig, TakerConfig
from models.synthetic import seeded_event, series_info, settle_event

from ._liquidity_helpers import StepClock, open_exchange, state_of, wait_until

AS_OF = datetime(2026, 11, 22, 2, 15, tzinfo=UTC)
SYSTEM = [MM_ACCOUNT, TAKER_ACCOUNT]


def _ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


def _tops(exchange: PaperExchange) -> dict[str, tuple[int, int]]:
    out = {}
    for ticker in exchange.market_tickers():
        book = exchange.engine.book(ticker)
        if book.yes and book.no:
            out[ticker] = (book.yes[0][0], 100 - book.no[0][0])
    return out


def test_synthetic_liquidity_books_two_sided_move_and_persist(tmp_path):
    clock = StepClock(_ms(AS_OF), rate=60.0)  # one real second is one exchange minute

    async def scenario():
        async with open_exchange(tmp_path / "paper.db", clock) as exchange:
            handle = start_liquidity(exchange, "synthetic", seed=3, interval_s=0.01,
                                     taker=TakerConfig(prob_per_step=0.3))
            await wait_until(lambda: handle.stats.steps >= 3, what="3 steps")
            first = _tops(exchange)
            await wait_until(lambda: handle.stats.steps >= 25, what="25 steps")
            await handle.aclose()
            last = _tops(exchange)
            return exchange, handle.stats, first, last, state_of(exchange, SYSTEM)

    exchange, stats, first, last, before = asyncio.run(scenario())

    tickers = exchange.market_tickers()
    assert len(tickers) == 7 * 2 * 6
    assert set(last) == set(tickers)  # every market two-sided
    assert all(bid < ask for bid, ask in last.values())
    assert sum(first[t] != last[t] for t in tickers) >= 10  # the books move
    assert stats.rejects == {}
    assert stats.contracts_filled > 0  # the taker trades with the maker
    for order in exchange.engine.orders(MM_ACCOUNT, status="resting"):
        assert 1 <= order.price_cents <= 99
        assert order.expiration_ts_ms is not None  # quotes die with the driver
    # nothing bypassed the log: a fresh exchange replaying it has the same state
    reopened = PaperExchange(tmp_path / "paper.db", clock=clock)
    try:
        assert state_of(reopened, SYSTEM) == before
    finally:
        reopened.close()


def test_synthetic_liquidity_closed_event_settles_from_simulated_truth(tmp_path):
    info = series_info("KXHIGHNY")
    today = climate_day_of(AS_OF, info.standard_offset_hours)
    event = seeded_event(5, info, today, open_not_after=AS_OF)
    clock = StepClock(_ms(event.close_time_utc - timedelta(seconds=30)), rate=60.0)

    async def scenario():
        async with open_exchange(tmp_path / "paper.db", clock) as exchange:
            handle = start_liquidity(exchange, "synthetic", seed=5, interval_s=0.01,
                                     series=["KXHIGHNY"],
                                     maker=MakerConfig(noise_sd_cents=0.5),
                                     taker=TakerConfig(prob_per_step=1.0))
            await wait_until(lambda: handle.stats.markets_added == 12, what="markets added")
            await wait_until(lambda: all(
                exchange.engine.market(m.ticker).status == "finalized" for m in event.markets),
                what="today's NYC markets finalized")
            # one exchange minute later the climate day rolls over: the day after tomorrow lists
            await wait_until(lambda: handle.stats.markets_added == 18, what="roll-over")
            await handle.aclose()
            return exchange, handle.stats

    exchange, stats = asyncio.run(scenario())

    expected = settle_event(event)
    assert {t: exchange.engine.market(t).result for t in expected} == expected
    assert list(expected.values()).count("yes") == 1
    assert {t: stats.determined[t] for t in expected} == expected
    settlements = [s for a in SYSTEM for s in exchange.engine.settlements(a)
                   if s.ticker in expected]
    assert settlements  # maker and taker held positions into the settlement
    for s in settlements:
        winners = s.yes_count if s.result == "yes" else s.no_count
        assert s.revenue_cents == 100 * winners
    for days in (1, 2):
        later = seeded_event(5, info, today + timedelta(days=days))
        assert all(exchange.engine.market(m.ticker).status == "active" for m in later.markets)
    assert len(stats.settled) == 6  # the finished day is not listed again


def test_synthetic_liquidity_restart_reuses_markets_and_orders(tmp_path):
    clock = StepClock(_ms(AS_OF), rate=0.0)

    async def run_once():
        async with open_exchange(tmp_path / "paper.db", clock) as exchange:
            handle = start_liquidity(exchange, "synthetic", seed=9, interval_s=0.01,
                                     series=["KXHIGHMIA"])
            await wait_until(lambda: handle.stats.steps >= 2, what="2 steps")
            await handle.aclose()
            return handle.stats, exchange.engine.orders(MM_ACCOUNT, status="resting")

    first, _ = asyncio.run(run_once())
    clock.advance(1000)
    second, resting = asyncio.run(run_once())

    assert first.markets_added == 12
    assert second.markets_added == 0
    # the restarted maker adopts its old quotes instead of stacking a second ladder on top
    levels = [(o.ticker, o.side, o.price_cents) for o in resting]
    assert len(levels) == len(set(levels))
    assert len(resting) <= 12 * 2 * MakerConfig().levels


def test_start_liquidity_bad_options_rejected_naming_option(tmp_path):
    clock = StepClock(_ms(AS_OF))

    async def scenario():
        async with open_exchange(tmp_path / "paper.db", clock) as exchange:
            errors = {}
            for mode, opts in [("random", {}), ("replay", {"data_dir": tmp_path}),
                               ("replay", {"event_ticker": "KXHIGHNY-25MAY08"}),
                               ("replay", {"data_dir": tmp_path, "event_ticker": "X", "speed": 0}),
                               ("mirror", {"base_url": "http://127.0.0.1:9"}),
                               ("mirror", {"tickers": ["KXHIGHNY-26NOV22-T48"]}),
                               ("synthetic", {"series": ["KXHIGHBOS"]})]:
                try:
                    start_liquidity(exchange, mode, **opts)
                except ValueError as exc:
                    errors[(mode, tuple(opts))] = str(exc)
            none = start_liquidity(exchange, "none")
            return errors, none, exchange.market_tickers()

    errors, none, tickers = asyncio.run(scenario())

    assert [e.split(":")[0] for e in errors.values()] == [
        "mode", "event_ticker", "data_dir", "speed", "tickers", "base_url", "series_ticker"]
    assert none.running is False
    assert tickers == []  # nothing was started or added by a refused call
