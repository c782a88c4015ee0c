"""Liquidity agents: proposals obey the engine's rules; the real Engine makes the book two-sided."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.liquidity import (
    MakerConfig,
    MirrorError,
    RecordedTrade,
    ReplayClock,
    TakerConfig,
    diff_orders,
    due_trades,
    maker_orders,
    mirror_book,
    mirror_orders,
    order_trades,
    replay_order,
    taker_orders,
)
from models.matching import BookView, Engine, MarketSpec, OrderRequest

T0 = 1_790_000_000_000
MM, TAKER, USER, REPLAY, MIRROR = "sys-mm", "sys-taker", "user", "sys-replay", "sys-mirror"
TICKER = "KXHIGHNY-26NOV22-B52.5"
BIG = 100_000_000_00  # $100M


def _engine(*tickers: str) -> Engine:
    engine = Engine()
    for account in (MM, TAKER, USER, REPLAY, MIRROR):
        engine.add_account(account, BIG)
    for ticker in tickers or (TICKER,):
        spec = MarketSpec(ticker, "KXHIGHNY-26NOV22", "KXHIGHNY", T0 - 1, T0 + 86_400_000)
        engine.add_market(spec, T0)
    return engine


def _requote(engine: Engine, ticker: str, fair: int, now_ms: int, rng: random.Random,
             config: MakerConfig = MakerConfig()) -> None:
    position = {p.ticker: p.position for p in engine.positions(MM)}.get(ticker, 0)
    desired = maker_orders(MM, ticker, fair_cents=fair, inventory=position, now_ms=now_ms,
                           rng=rng, config=config)
    diff = diff_orders(desired, engine.orders(MM, status="resting", ticker=ticker),
                       now_ms=now_ms, refresh_before_ms=config.ttl_ms // 2)
    for order_id in diff.cancel:
        engine.cancel(MM, order_id, now_ms)
    for req in diff.place:
        engine.submit(req, now_ms)


# --- market maker ------------------------------------------------------------------------------

@given(fair=st.integers(0, 100), inventory=st.integers(-500, 500), seed=st.integers(0, 10_000))
def test_maker_orders_any_fair_prices_in_range_and_never_self_cross(fair, inventory, seed):
    orders = maker_orders(MM, TICKER, fair_cents=fair, inventory=inventory, now_ms=T0,
                          rng=random.Random(seed))

    bids = [o.price_cents for o in orders if o.side == "bid"]
    asks = [o.price_cents for o in orders if o.side == "ask"]
    assert all(1 <= o.price_cents <= 99 and o.count > 0 for o in orders)
    assert all(o.time_in_force == "good_till_canceled" and o.expiration_ts_ms == T0 + 120_000
               for o in orders)
    if bids and asks:
        assert max(bids) < min(asks)
    assert len({(o.side, o.price_cents) for o in orders}) == len(orders)


def test_maker_orders_long_inventory_skews_quotes_down_and_stops_buying():
    config = MakerConfig(noise_sd_cents=0, max_inventory=100)
    flat = maker_orders(MM, TICKER, fair_cents=50, inventory=0, now_ms=T0,
                        rng=random.Random(1), config=config)
    long = maker_orders(MM, TICKER, fair_cents=50, inventory=100, now_ms=T0,
                        rng=random.Random(1), config=config)

    assert min(o.price_cents for o in flat if o.side == "ask") == 52
    assert min(o.price_cents for o in long if o.side == "ask") == 42  # 1c per 10 contracts
    assert [o for o in long if o.side == "bid"] == []


def test_maker_config_zero_size_rejected_naming_field():
    with pytest.raises(ValueError, match="size"):
        MakerConfig(size=0)


def test_maker_quotes_real_engine_book_two_sided_and_moves():
    engine = _engine()
    rng = random.Random(5)
    tops = []

    for step, fair in enumerate((30, 30, 45, 60, 60)):
        now = T0 + step * 1000
        _requote(engine, TICKER, fair, now, rng)
        book = engine.book(TICKER)
        assert book.yes, f"no YES bids at step {step}"
        assert book.no, f"no NO bids (YES asks) at step {step}"
        best_bid, best_ask = book.yes[0][0], 100 - book.no[0][0]
        assert best_bid < best_ask
        tops.append((best_bid, best_ask))

    assert len(set(tops)) > 1
    assert tops[-1][0] > tops[0][0]  # the fair value rose from 30 to 60
    assert len(engine.orders(MM, status="resting", ticker=TICKER)) == 4  # stale ones canceled


def test_maker_quotes_expire_at_exchange_when_driver_stops():
    engine = _engine()
    _requote(engine, TICKER, 50, T0, random.Random(1))

    engine.advance(T0 + MakerConfig().ttl_ms + 1)

    assert engine.book(TICKER).yes == ()
    assert engine.orders(MM, status="resting") == []


def test_noise_taker_real_engine_trades_with_maker_and_accounts_balance():
    engine = _engine()
    rng = random.Random(9)
    before = engine.balance_cents(MM) + engine.balance_cents(TAKER)
    traded = 0

    for step in range(60):
        now = T0 + step * 1000
        _requote(engine, TICKER, 50, now, rng)
        for req in taker_orders(TAKER, engine.book(TICKER), rng=rng,
                                config=TakerConfig(prob_per_step=0.5)):
            order, outcome = engine.submit(req, now)
            assert order.status in ("executed", "canceled")  # IOC never rests
            traded += sum(t.count for t in outcome.trades)

    assert traded > 0
    maker_pos = {p.ticker: p.position for p in engine.positions(MM)}.get(TICKER, 0)
    taker_pos = {p.ticker: p.position for p in engine.positions(TAKER)}.get(TICKER, 0)
    assert maker_pos == -taker_pos  # every contract has a counterparty
    reserved = engine.reserved_cents(MM) + engine.reserved_cents(TAKER)
    fees = sum(p.fees_paid_cents for a in (MM, TAKER) for p in engine.positions(a))
    cash = engine.balance_cents(MM) + engine.balance_cents(TAKER)
    # money moved only through the engine's accounting: cash + reserves + $1 per open YES/NO
    # pair + fees paid is exactly what the two accounts started with
    assert fees > 0
    assert cash + reserved + 100 * abs(maker_pos) + fees == before


def test_taker_orders_empty_book_proposes_nothing():
    book = BookView(TICKER, (), ())

    orders = [taker_orders(TAKER, book, rng=random.Random(s), config=TakerConfig(1.0))
              for s in range(20)]

    assert all(o == [] for o in orders)


# --- diff ------------------------------------------------------------------------------------

def test_diff_orders_same_quote_kept_changed_quote_replaced():
    engine = _engine()
    config = MakerConfig(noise_sd_cents=0, levels=1)
    first = maker_orders(MM, TICKER, fair_cents=50, inventory=0, now_ms=T0,
                         rng=random.Random(1), config=config)
    for req in first:
        engine.submit(req, T0)
    resting = engine.orders(MM, status="resting")

    same = diff_orders(first, resting, now_ms=T0 + 1)
    moved = diff_orders(maker_orders(MM, TICKER, fair_cents=55, inventory=0, now_ms=T0,
                                     rng=random.Random(1), config=config),
                        resting, now_ms=T0 + 1)
    stale = diff_orders(first, resting, now_ms=T0 + 100_000, refresh_before_ms=30_000)

    assert same.cancel == ()
    assert same.place == ()
    assert sorted(moved.cancel) == sorted(o.order_id for o in resting)
    assert len(moved.place) == 2
    assert len(stale.cancel) == 2
    assert len(stale.place) == 2


def test_diff_orders_duplicate_desired_rejected():
    req = OrderRequest(MM, TICKER, "bid", 40, 1, "good_till_canceled")

    with pytest.raises(ValueError, match="desired"):
        diff_orders([req, req], [], now_ms=T0)


# --- replay ----------------------------------------------------------------------------------

def _trade(trade_id: str, ts: int, price: int = 40, side: str = "yes",
           count: int = 3) -> RecordedTrade:
    return RecordedTrade(trade_id, TICKER, count, ts, price, side)  # type: ignore[arg-type]


def test_order_trades_unsorted_duplicate_gap_reported_not_dropped():
    trades = [_trade("a", T0), _trade("c", T0 + 5000), _trade("b", T0 + 1000),
              _trade("a", T0), _trade("c", T0 + 5000, price=41),
              _trade("d", T0 + 5000 + 7 * 3_600_000)]

    ordered, issues = order_trades(trades, gap_ms=6 * 3_600_000)

    assert [t.trade_id for t in ordered] == ["a", "b", "c", "d"]
    assert [(i.kind, i.trade_id) for i in issues] == [
        ("unsorted", "b"), ("unsorted", "a"), ("duplicate", "a"),
        ("conflicting_duplicate", "c"), ("gap", "d")]


def test_order_trades_clean_stream_no_issues():
    ordered, issues = order_trades([_trade("a", T0), _trade("b", T0 + 1), _trade("c", T0 + 2)])

    assert issues == []
    assert [t.trade_id for t in ordered] == ["a", "b", "c"]


def test_recorded_trade_zero_count_rejected_naming_trade():
    with pytest.raises(ValueError, match="trade x: count"):
        _trade("x", T0, count=0)


def test_replay_clock_speed_maps_both_ways():
    clock = ReplayClock(recorded_start_ms=1_000_000, sim_start_ms=T0, speed=60)

    assert clock.recorded_ms(T0 + 1000) == 1_060_000
    assert clock.sim_ms(1_060_000) == T0 + 1000
    assert clock.sim_ms(1_000_001) == T0 + 1  # never early: rounds up


def test_due_trades_cursor_feeds_each_trade_once_in_time_order():
    ordered, _ = order_trades([_trade(str(i), T0 + i * 10) for i in range(10)])

    first, cursor = due_trades(ordered, 0, T0 + 35)
    second, cursor = due_trades(ordered, cursor, T0 + 35)
    third, cursor = due_trades(ordered, cursor, T0 + 1000)

    assert [t.trade_id for t in first] == ["0", "1", "2", "3"]
    assert second == []
    assert [t.trade_id for t in third] == ["4", "5", "6", "7", "8", "9"]
    assert cursor == 10


def test_replay_order_yes_taker_fills_user_ask_at_or_below_recorded_price():
    engine = _engine()
    engine.submit(OrderRequest(USER, TICKER, "ask", 38, 5, "good_till_canceled"), T0)
    engine.submit(OrderRequest(USER, TICKER, "ask", 45, 5, "good_till_canceled"), T0)

    order, outcome = engine.submit(replay_order(REPLAY, _trade("t1", T0, 40, "yes", 7)),
                                   T0 + 1)

    assert [(t.count, t.yes_price_cents) for t in outcome.trades] == [(5, 38)]
    assert order.status == "canceled"
    assert order.fill_count == 5
    assert {p.ticker: p.position for p in engine.positions(USER)}[TICKER] == -5


def test_replay_order_no_taker_hits_user_bid():
    engine = _engine()
    engine.submit(OrderRequest(USER, TICKER, "bid", 42, 4, "good_till_canceled"), T0)

    _, outcome = engine.submit(replay_order(REPLAY, _trade("t1", T0, 40, "no", 2)), T0 + 1)

    assert [(t.count, t.yes_price_cents, t.taker_side) for t in outcome.trades] == [(2, 42, "no")]


# --- mirror ----------------------------------------------------------------------------------

def _d(text: str) -> Decimal:
    return Decimal(text)


def test_mirror_book_fractional_counts_truncated_and_listed():
    book = mirror_book(TICKER, [(_d("0.41"), _d("5.00")), (_d("0.42"), _d("13.50"))],
                       [(_d("0.55"), _d("0.40"))])

    assert book.yes == ((42, 13), (41, 5))
    assert book.no == ()
    assert book.fractional_dropped == ("yes@42:13.50->13", "no@55:0.40->0")


def test_mirror_book_crossed_book_refused():
    with pytest.raises(MirrorError, match="crossed"):
        mirror_book(TICKER, [(_d("0.60"), _d("1"))], [(_d("0.40"), _d("1"))])


def test_mirror_book_subpenny_price_refused_naming_price():
    with pytest.raises(MirrorError, match="0.415"):
        mirror_book(TICKER, [(_d("0.415"), _d("1"))], [])


@settings(max_examples=50)
@given(yes=st.dictionaries(st.integers(1, 49), st.integers(1, 500), max_size=5),
       no=st.dictionaries(st.integers(1, 50), st.integers(1, 500), max_size=5))
def test_mirror_orders_real_engine_book_equals_source(yes, no):
    engine = _engine()
    source = mirror_book(TICKER, [(Decimal(p) / 100, Decimal(c)) for p, c in yes.items()],
                         [(Decimal(p) / 100, Decimal(c)) for p, c in no.items()])

    for req in mirror_orders(MIRROR, source, now_ms=T0, ttl_ms=60_000):
        engine.submit(req, T0)

    view = engine.book(TICKER)
    assert view.yes == source.yes
    assert view.no == source.no
