"""The pure replay engine: tape validation, fill model, fees, settlement, parity, walk-forward."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.backtest import (
    BacktestConfig,
    DecisionInput,
    FillModel,
    MarketRecord,
    build_tape,
    decide_market,
    run_backtest,
)
from models.backtest_walkforward import event_blocks, walk_forward
from models.edge import EdgeParams, Quote, plan_market
from models.fees import taker_fee_cents
from models.risk import Holding, RiskLimits, RiskState, max_order_contracts
from models.risk import OrderRequest as RiskOrder

H = 3_600_000
T0 = 1_740_000_000_000  # 2025-02-19
REST_ONLY = EdgeParams(order_ttl_s=36_000, allow_take=False)
TAKE_ONLY = EdgeParams(allow_rest=False)
# generous limits so the fill model, not the gate, decides what happens in these tests
LOOSE = RiskLimits(max_contract_fraction=Decimal("1"), max_category_fraction=Decimal("1"),
                   max_volume_multiple=Decimal("1000"), daily_loss_fraction=Decimal("1"))


def tape_of(rows: list[tuple[str, str, int, int, int, str]]):  # type: ignore[no-untyped-def]
    ids, tickers, ts, prices, counts, sides = zip(*rows, strict=True)
    return build_tape(list(ids), list(tickers), list(ts), list(prices), list(counts),
                      list(sides))


def market(ticker: str = "M1", result: str = "yes", event: str = "E1") -> MarketRecord:
    return MarketRecord(ticker, event, "KXHIGHNY", T0 - H, T0 + 10 * H, T0 + 12 * H, result)


def config(edge: EdgeParams, queue: int = 100, **fill: int) -> BacktestConfig:
    return BacktestConfig(edge=edge, limits=LOOSE,
                          fill=FillModel(queue_ahead_contracts=queue, **fill))


def test_build_tape_bad_rows_reported_and_excluded() -> None:
    tape = tape_of([
        ("a", "M1", T0, 40, 5, "no"),
        ("b", "M1", T0 + 2, 41, 5, "yes"),
        ("b", "M1", T0 + 3, 41, 5, "yes"),  # duplicate id
        ("c", "M1", T0 + 1, 42, 5, "no"),  # earlier than its predecessor
        ("d", "M1", T0 + 4, 0, 5, "no"),  # price out of range
        ("e", "M1", T0 + 5, 40, 0, "no"),  # zero count
        ("f", "M1", T0 + 6, 40, 1, "maybe"),  # bad taker side
        ("g", "M1", T0 + 30 * H, 40, 1, "no"),  # after a 30 h silence
    ])
    kinds = {i.kind: i.count for i in tape.issues}
    assert kinds == {"invalid_trade": 3, "duplicate_trade": 1, "unsorted_trade": 1, "gap": 1}
    assert len(tape) == 4
    assert tape.ts_ms.tolist() == sorted(tape.ts_ms.tolist())
    assert tape.yes_price.tolist() == [40, 42, 41, 40]


def test_build_tape_mismatched_columns_raises_naming_column() -> None:
    with pytest.raises(ValueError, match="column count has 1 rows"):
        build_tape(["a", "b"], ["M", "M"], [1, 2], [5, 6], [1], ["yes", "no"])


def test_tape_last_before_excludes_trade_at_decision_instant() -> None:
    tape = tape_of([("a", "M1", T0, 40, 5, "no"), ("b", "M1", T0 + H, 60, 5, "no")])
    assert tape.last_before("M1", T0 + H) == (T0, 40)
    assert tape.last_before("M1", T0) is None
    assert tape.volume_between("M1", T0, T0 + H + 1) == 10


def test_rest_order_fills_only_after_queue_ahead_and_through_prints() -> None:
    # quote from the last print (40): bid 39 / ask 41; we rest YES at 40
    tape = tape_of([
        ("a", "M1", T0, 40, 5, "no"),
        ("b", "M1", T0 + 2 * H, 38, 7, "yes"),  # a YES buyer: never fills our bid
        ("c", "M1", T0 + 3 * H, 40, 60, "no"),  # at our price: all 60 go to the queue ahead
        ("d", "M1", T0 + 4 * H, 40, 50, "no"),  # 40 more queue, then 10 for us
        ("e", "M1", T0 + 5 * H, 39, 15, "no"),  # through our price: all 15 for us
    ])
    result = run_backtest(tape, [market()], [DecisionInput("E1", T0 + H, (("M1", 0.7),))],
                          config(REST_ONLY))
    assert [(o.side, o.price_cents, o.is_taker) for o in result.orders] == [("yes", 40, False)]
    assert [(f.ts_ms, f.count, f.price_cents, f.is_taker) for f in result.fills] == [
        (T0 + 4 * H, 10, 40, False), (T0 + 5 * H, 15, 40, False)]
    assert result.orders[0].filled == 25


def test_rest_order_expired_gets_no_fill() -> None:
    tape = tape_of([("a", "M1", T0, 40, 5, "no"), ("b", "M1", T0 + 3 * H, 30, 50, "no")])
    short = replace(REST_ONLY, order_ttl_s=3600)  # expires at T0 + 2 h
    result = run_backtest(tape, [market()], [DecisionInput("E1", T0 + H, (("M1", 0.7),))],
                          config(short))
    assert len(result.orders) == 1
    assert result.fills == ()


def test_no_side_rest_fills_from_yes_takers_at_or_above() -> None:
    # P(YES)=0.2: buy NO; resting NO at 100 - (ask - 1) = 40, i.e. a YES ask at 60
    tape = tape_of([("a", "M1", T0, 60, 5, "yes"), ("b", "M1", T0 + 2 * H, 59, 30, "yes"),
                    ("c", "M1", T0 + 3 * H, 61, 30, "no"), ("d", "M1", T0 + 4 * H, 62, 30, "yes")])
    result = run_backtest(tape, [market(result="no")],
                          [DecisionInput("E1", T0 + H, (("M1", 0.2),))], config(REST_ONLY, 0))
    assert [(o.side, o.price_cents) for o in result.orders] == [("no", 40)]
    assert [(f.ts_ms, f.side, f.price_cents) for f in result.fills] == [(T0 + 4 * H, "no", 40)]
    assert result.fills[0].payoff_cents == 100 * result.fills[0].count


def test_take_fills_at_last_price_plus_spread_with_exact_fee() -> None:
    tape = tape_of([("a", "M1", T0, 40, 500, "no")])
    result = run_backtest(tape, [market()], [DecisionInput("E1", T0 + H, (("M1", 0.7),))],
                          config(TAKE_ONLY, spread_cost_cents=2, take_volume_percent=100))
    (fill,) = result.fills
    assert (fill.side, fill.price_cents, fill.is_taker) == ("yes", 42, True)
    assert fill.fee_cents == taker_fee_cents(fill.count, 42)
    assert fill.pnl_cents == 100 * fill.count - 42 * fill.count - fill.fee_cents
    assert result.final_cash_cents - result.starting_cash_cents == fill.pnl_cents


def test_take_capped_by_recorded_volume_share() -> None:
    tape = tape_of([("a", "M1", T0, 40, 50, "no")])
    result = run_backtest(tape, [market()], [DecisionInput("E1", T0 + H, (("M1", 0.7),))],
                          config(TAKE_ONLY, take_volume_percent=10))
    assert [f.count for f in result.fills] == [5]
    assert result.orders[0].count > 5
    assert result.orders[0].filled == 5


def test_stale_quote_and_missing_result_reported_not_traded() -> None:
    tape = tape_of([("a", "M1", T0 - 30 * H, 40, 5, "no"), ("b", "M2", T0, 40, 5, "no")])
    markets = [market("M1", event="E1"), market("M2", result="", event="E2")]
    decisions = [DecisionInput("E1", T0 + H, (("M1", 0.7),)),
                 DecisionInput("E2", T0 + H, (("M2", 0.7),))]
    result = run_backtest(tape, markets, decisions, config(TAKE_ONLY))
    kinds = {(i.kind, i.detail.split(",")[0]): i.count for i in result.issues}
    assert kinds[("no_result", "markets without a recorded result excluded")] == 1
    assert kinds[("skipped_decision", "decision for an unknown or excluded market")] == 1
    assert kinds[("skipped_decision",
                  "no recorded trade within max_quote_age_ms before the decision")] == 1
    assert result.orders == ()
    assert result.fills == ()


def test_decisions_see_only_trades_before_them() -> None:
    # a print at the decision instant must not be the quote (it is not yet known)
    tape = tape_of([("a", "M1", T0, 40, 500, "no"), ("b", "M1", T0 + H, 90, 500, "no")])
    result = run_backtest(tape, [market()], [DecisionInput("E1", T0 + H, (("M1", 0.7),))],
                          config(TAKE_ONLY))
    assert result.decisions[0].quote == Quote("M1", 39, 41)


def test_decide_market_matches_live_plan_market_path() -> None:
    # the live cycle: bankroll = equity x allocation, loose cap = max YES/NO headroom at 1c,
    # plan_market, re-plan with the chosen order's own headroom when smaller
    state = RiskState(1_000_000, 1_000_000, (
        Holding("KXHIGHNY-25FEB19-B40.5", "KXHIGHNY-25FEB19", "Climate and Weather", 20_000, 400),))
    limits = RiskLimits()
    params = EdgeParams()
    as_of = datetime(2025, 2, 19, 15, tzinfo=UTC)
    for prob, quote in ((0.71, Quote("KXHIGHNY-25FEB19-B42.5", 38, 41)),
                        (0.12, Quote("KXHIGHNY-25FEB19-B42.5", 30, 34)),
                        (0.5, Quote("KXHIGHNY-25FEB19-B42.5", 47, 53))):
        ours, rejection = decide_market(
            prob, quote, event_ticker="KXHIGHNY-25FEB19", category="Climate and Weather",
            params=params, limits=limits, state=state, as_of=as_of, held_contracts=0,
            avg_daily_volume=5_000)

        def cap(side: str, price: int, q: Quote = quote) -> int:
            probe = RiskOrder(q.market_ticker, "KXHIGHNY-25FEB19", "Climate and Weather", side,
                              price, 1, 5_000)
            return max_order_contracts(probe, state, limits)

        live = plan_market(prob, quote, params, as_of=as_of, bankroll_cents=1_000_000,
                           max_contracts=max(cap("yes", 1), cap("no", 1)))
        if live.orders and cap(live.orders[0].side, live.orders[0].price_cents) < \
                live.orders[0].count:
            live = plan_market(prob, quote, params, as_of=as_of, bankroll_cents=1_000_000,
                               max_contracts=cap(live.orders[0].side, live.orders[0].price_cents))
        assert ours == live
        assert rejection is None


def test_backtest_decisions_equal_plan_market_on_same_inputs() -> None:
    tape = tape_of([("a", "M1", T0, 40, 5000, "no")])
    cfg = BacktestConfig()
    result = run_backtest(tape, [market()], [DecisionInput("E1", T0 + H, (("M1", 0.7),))], cfg)
    (decision,) = result.decisions
    state = RiskState(cfg.starting_cash_cents, cfg.starting_cash_cents)
    expected, _ = decide_market(0.7, Quote("M1", 39, 41), event_ticker="E1",
                                category="Climate and Weather", params=cfg.edge,
                                limits=cfg.limits, state=state,
                                as_of=datetime.fromtimestamp((T0 + H) / 1000, UTC),
                                held_contracts=0, avg_daily_volume=5000)
    assert decision.plan == expected
    assert result.orders[0].count == expected.orders[0].count


def _random_tape(seed_rows: list[tuple[int, int, int, bool]]):  # type: ignore[no-untyped-def]
    rows = [(f"t{i}", "M1", T0 + (i + 1) * 60_000, p, c, "yes" if y else "no")
            for i, (p, c, _, y) in enumerate(seed_rows)]
    return tape_of([("t-first", "M1", T0, 50, 10, "no"), *rows])


@settings(max_examples=40, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(1, 99), st.integers(1, 80), st.integers(0, 1),
                               st.booleans()), min_size=1, max_size=40),
       prob=st.floats(0.01, 0.99), result=st.sampled_from(["yes", "no"]),
       queue=st.integers(0, 100))
def test_run_backtest_cash_change_equals_sum_of_fill_pnl(
        rows: list[tuple[int, int, int, bool]], prob: float, result: str, queue: int) -> None:
    tape = _random_tape(rows)
    decisions = [DecisionInput("E1", T0 + 1, (("M1", prob),)),
                 DecisionInput("E1", T0 + 20 * 60_000 + 1, (("M1", prob),))]
    res = run_backtest(tape, [market(result=result)], decisions,
                       config(EdgeParams(min_edge_cents=1, order_ttl_s=3600), queue))
    assert res.final_cash_cents - res.starting_cash_cents == sum(f.pnl_cents for f in res.fills)
    for o in res.orders:
        assert 0 <= o.filled <= o.count


def test_event_blocks_disjoint_and_time_ordered() -> None:
    decisions = [DecisionInput(f"E{i}", T0 + (10 - i) * H, ()) for i in range(10)]
    blocks = event_blocks(decisions, 3)
    flat = [e for b in blocks for e in b]
    assert sorted(flat) == sorted(f"E{i}" for i in range(10))
    assert len(set(flat)) == 10
    assert flat == [f"E{i}" for i in range(9, -1, -1)]
    with pytest.raises(ValueError, match="n_blocks"):
        event_blocks(decisions, 11)


def test_walk_forward_tests_each_block_once_with_past_fit() -> None:
    rows = []
    markets = []
    decisions = []
    for i in range(6):
        t = T0 + i * 24 * H
        ticker = f"M{i}"
        rows.append((f"a{i}", ticker, t, 40, 500, "no"))
        markets.append(MarketRecord(ticker, f"E{i}", "KXHIGHNY", t - H, t + 10 * H, t + 12 * H,
                                    "yes" if i % 2 else "no"))
        decisions.append(DecisionInput(f"E{i}", t + H, ((ticker, 0.7),)))
    wf = walk_forward(tape_of(rows), markets, decisions, config(TAKE_ONLY), n_blocks=3,
                      candidates=(3, 40))
    assert [f.test_events for f in wf.folds] == [("E2", "E3"), ("E4", "E5")]
    assert wf.folds[0].train_events == ("E0", "E1")
    for fold in wf.folds:
        assert set(fold.train_events).isdisjoint(fold.test_events)
        best = max(fold.train_pnl_cents.values())
        assert fold.train_pnl_cents[fold.chosen_min_edge_cents] == best
    assert {f.event_ticker for f in wf.test_fills} <= {"E2", "E3", "E4", "E5"}
