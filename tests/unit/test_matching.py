"""Hand-worked examples for models/matching.py: each feature with numbers worked out by hand."""

from __future__ import annotations

import pytest

from models.fees import FeeSchedule, taker_fee_cents
from models.matching import Engine, EngineReject, MarketSpec, OrderRequest
from tests.unit._matching_helpers import CLOSE_MS, OPEN_MS, T2, T, engine, fingerprint, req

NOW = OPEN_MS + 10


def test_submit_crossing_bid_executes_at_resting_price():
    e = engine()
    e.submit(req("a", "ask", 40, 10), NOW)  # a buys NO at 60
    order, out = e.submit(req("b", "bid", 55, 4, "immediate_or_cancel"), NOW + 1)
    assert order.status == "executed"
    assert order.fill_count == 4
    assert [(t.yes_price_cents, t.count, t.taker_side) for t in out.trades] == [(40, 4, "yes")]
    fee = taker_fee_cents(4, 40)  # ceil(0.07*4*0.4*0.6 $) = 7 cents
    assert fee == 7
    assert order.taker_fill_cost_cents == 160
    assert order.taker_fees_cents == 7
    assert e.balance_cents("b") == 100_000 - 160 - 7
    # a reserved 10*60 for the resting ask; 4 filled at NO price 60
    assert e.reserved_cents("a") == 6 * 60
    assert e.balance_cents("a") == 100_000 - 600
    assert {(p.account_id, p.position) for p in e.positions("a") + e.positions("b")} == {
        ("a", -4), ("b", 4)}
    assert e.book(T).no == ((60, 6),)
    assert e.market(T).open_interest == 4
    assert e.market(T).last_price_cents == 40


def test_submit_price_time_priority_best_price_then_oldest_first():
    e = engine()
    first, _ = e.submit(req("a", "ask", 45, 3), NOW)
    second, _ = e.submit(req("b", "ask", 45, 3), NOW + 1)
    better, _ = e.submit(req("c", "ask", 44, 2), NOW + 2)
    taker, out = e.submit(req("c", "bid", 50, 4, "immediate_or_cancel", ticker=T,
                              stp="maker"), NOW + 3)
    # c's own resting ask at 44 is cancelled (stp=maker), then a's 45 (oldest) fills 3, b's 1
    makers = [(f.order_id, f.count, f.yes_price_cents) for f in out.fills if not f.is_taker]
    assert makers == [(first.order_id, 3, 45), (second.order_id, 1, 45)]
    assert e.order(better.order_id).last_update_reason == "SelfTradeCancel"
    assert taker.fill_count == 4


def test_submit_partial_fill_walks_levels_and_gtc_rests_remainder():
    e = engine()
    e.submit(req("a", "ask", 40, 2), NOW)
    e.submit(req("a", "ask", 42, 2), NOW)
    order, out = e.submit(req("b", "bid", 42, 7), NOW + 1)
    assert [(t.yes_price_cents, t.count) for t in out.trades] == [(40, 2), (42, 2)]
    assert order.status == "resting"
    assert order.remaining_count == 3
    assert order.fill_count == 4
    assert e.book(T).yes == ((42, 3),)
    assert e.book(T).no == ()
    fees = taker_fee_cents(2, 40) + taker_fee_cents(2, 42)  # per-order accumulator: 2+2
    assert order.taker_fees_cents <= fees
    assert e.balance_cents("b") == 100_000 - 80 - 84 - order.taker_fees_cents - 3 * 42


def test_submit_ioc_remainder_cancelled_with_ioc_reason():
    e = engine()
    e.submit(req("a", "ask", 40, 2), NOW)
    order, _ = e.submit(req("b", "bid", 41, 5, "immediate_or_cancel"), NOW + 1)
    assert (order.status, order.fill_count, order.remaining_count) == ("canceled", 2, 0)
    assert order.last_update_reason == "IocCancel"
    assert e.reserved_cents("b") == 0
    assert e.book(T).yes == ()


def test_submit_fill_or_kill_short_volume_rejected_and_state_untouched():
    e = engine()
    e.submit(req("a", "ask", 40, 2), NOW)
    before = fingerprint(e)
    with pytest.raises(EngineReject) as err:
        e.submit(req("b", "bid", 45, 3, "fill_or_kill"), NOW + 1)
    assert err.value.code == "fill_or_kill_insufficient_volume"
    assert fingerprint(e) == before
    order, _ = e.submit(req("b", "bid", 45, 2, "fill_or_kill"), NOW + 2)
    assert order.order_id == "o-000002"
    assert order.status == "executed"


def test_submit_fill_or_kill_blocked_by_own_order_rejected():
    e = engine()
    e.submit(req("b", "ask", 40, 2), NOW)
    e.submit(req("a", "ask", 41, 5), NOW)
    with pytest.raises(EngineReject) as err:
        e.submit(req("b", "bid", 45, 3, "fill_or_kill"), NOW + 1)
    assert err.value.code == "fill_or_kill_insufficient_volume"
    order, _ = e.submit(req("b", "bid", 45, 3, "fill_or_kill", stp="maker"), NOW + 2)
    assert order.fill_count == 3  # own ask cancelled, a's 41 fills


def test_advance_expires_gtc_order_and_releases_reservation():
    e = engine()
    order, _ = e.submit(req("a", "bid", 30, 10, expiration_ts_ms=NOW + 500), NOW)
    assert e.reserved_cents("a") == 300
    assert e.advance(NOW + 499).orders == []
    out = e.advance(NOW + 500)
    assert [(o.order_id, o.status, o.last_update_reason) for o in out.orders] == [
        (order.order_id, "canceled", "ExpiryCancel")]
    assert e.reserved_cents("a") == 0
    assert e.balance_cents("a") == 100_000
    assert [(d.side, d.price_cents, d.delta) for d in out.book_deltas] == [("yes", 30, -10)]


def test_submit_expired_maker_is_never_matched():
    e = engine()
    e.submit(req("a", "ask", 40, 5, expiration_ts_ms=NOW + 5), NOW)
    order, out = e.submit(req("b", "bid", 40, 5, "immediate_or_cancel"), NOW + 5)
    assert order.fill_count == 0
    assert out.fills == []
    assert any(o.last_update_reason == "ExpiryCancel" for o in out.orders)


def test_submit_post_only_crossing_cancelled_not_filled():
    e = engine()
    e.submit(req("a", "ask", 40, 5), NOW)
    crossing, out = e.submit(req("b", "bid", 40, 5, post_only=True), NOW + 1)
    assert crossing.status == "canceled"
    assert crossing.last_update_reason == "PostOnlyCrossCancel"
    assert out.fills == []
    assert e.reserved_cents("b") == 0
    assert e.balance_cents("b") == 100_000
    resting, _ = e.submit(req("b", "bid", 39, 5, post_only=True), NOW + 2)
    assert resting.status == "resting"


def test_submit_reduce_only_caps_at_opposite_position():
    e = engine()
    e.submit(req("a", "ask", 40, 3), NOW)
    e.submit(req("b", "bid", 40, 3, "immediate_or_cancel"), NOW + 1)  # b: +3 YES
    e.submit(req("c", "bid", 38, 10), NOW + 2)
    with pytest.raises(EngineReject) as err:
        e.submit(req("b", "ask", 38, 10, reduce_only=True), NOW + 3)
    assert err.value.code == "reduce_only_requires_ioc"
    order, _ = e.submit(req("b", "ask", 38, 10, "immediate_or_cancel", reduce_only=True),
                        NOW + 4)
    assert order.fill_count == 3
    assert order.last_update_reason == "ReduceOnlyCancel"
    assert [p.position for p in e.positions("b")] == [0]
    again, out = e.submit(req("b", "ask", 38, 1, "immediate_or_cancel", reduce_only=True),
                          NOW + 5)
    assert again.fill_count == 0
    assert out.fills == []


def test_submit_buy_max_cost_over_cap_rejected_within_cap_fills():
    e = engine()
    e.submit(req("a", "ask", 50, 10), NOW)
    cost = 10 * 50 + taker_fee_cents(10, 50)  # 500 + ceil(17.5) = 518
    before = fingerprint(e)
    with pytest.raises(EngineReject) as err:
        e.submit(req("b", "bid", 50, 10, buy_max_cost_cents=cost - 1), NOW + 1)
    assert err.value.code == "buy_max_cost_exceeded"
    assert fingerprint(e) == before
    order, _ = e.submit(req("b", "bid", 50, 10, buy_max_cost_cents=cost), NOW + 2)
    assert order.fill_count == 10
    assert order.taker_fill_cost_cents + order.taker_fees_cents == cost


def test_submit_stp_taker_at_cross_keeps_prior_fills_cancels_rest():
    e = engine()
    e.submit(req("a", "ask", 40, 2), NOW)
    own, _ = e.submit(req("b", "ask", 41, 2), NOW)
    e.submit(req("a", "ask", 42, 2), NOW)
    order, out = e.submit(req("b", "bid", 45, 6), NOW + 1)
    assert order.fill_count == 2
    assert order.status == "canceled"
    assert order.last_update_reason == "SelfTradeCancel"
    assert e.order(own.order_id).status == "resting"
    assert e.reserved_cents("b") == 2 * 59  # only the own resting ask remains reserved


def test_submit_stp_maker_cancels_own_resting_and_keeps_matching():
    e = engine()
    e.submit(req("a", "ask", 40, 2), NOW)
    own, _ = e.submit(req("b", "ask", 41, 2), NOW)
    e.submit(req("a", "ask", 42, 2), NOW)
    order, _ = e.submit(req("b", "bid", 45, 6, stp="maker"), NOW + 1)
    assert order.fill_count == 4
    assert order.status == "resting"
    assert order.remaining_count == 2
    assert e.order(own.order_id).last_update_reason == "SelfTradeCancel"


def test_submit_duplicate_client_order_id_among_resting_rejected():
    e = engine()
    first, _ = e.submit(req("a", "bid", 30, 1, client_order_id="c-1"), NOW)
    before = fingerprint(e)
    with pytest.raises(EngineReject) as err:
        e.submit(req("a", "bid", 31, 1, client_order_id="c-1"), NOW + 1)
    assert err.value.code == "order_already_exists"
    assert fingerprint(e) == before
    e.submit(req("b", "bid", 31, 1, client_order_id="c-1"), NOW + 1)  # other account: fine
    e.cancel("a", first.order_id, NOW + 2)
    second, _ = e.submit(req("a", "bid", 32, 1, client_order_id="c-1"), NOW + 3)
    found = e.find_by_client_order_id("a", "c-1")
    assert found is not None
    assert found.order_id == second.order_id


def test_order_group_limit_hit_triggers_cancels_and_rejects_until_reset():
    e = engine()
    gid, out = e.create_order_group("a", 5, NOW)
    assert [g.event_type for g in out.group_events] == ["created"]
    quote, _ = e.submit(req("a", "bid", 40, 10, order_group_id=gid), NOW)
    other, _ = e.submit(req("a", "ask", 45, 10, order_group_id=gid), NOW)
    taker, out = e.submit(req("b", "ask", 40, 8, "immediate_or_cancel"), NOW + 1)
    assert taker.fill_count == 5  # capped at the group's limit
    assert [g.event_type for g in out.group_events] == ["triggered"]
    assert {e.order(i).last_update_reason for i in (quote.order_id, other.order_id)} == {
        "OrderGroupCancel"}
    assert e.reserved_cents("a") == 0
    with pytest.raises(EngineReject) as err:
        e.submit(req("a", "bid", 40, 1, order_group_id=gid), NOW + 2)
    assert err.value.code == "order_group_limit_exceeded"
    e.reset_order_group("a", gid, NOW + 3)
    order, _ = e.submit(req("a", "bid", 40, 1, order_group_id=gid), NOW + 4)
    assert order.status == "resting"
    assert e.order_group("a", gid)["orders"] == [order.order_id]


def test_order_group_rolling_window_frees_allowance_after_15s():
    e = engine()
    gid, _ = e.create_order_group("a", 5, NOW)
    e.submit(req("b", "ask", 40, 100), NOW)
    e.submit(req("a", "bid", 40, 3, "immediate_or_cancel", order_group_id=gid), NOW)
    mid, _ = e.submit(req("a", "bid", 40, 3, "immediate_or_cancel", order_group_id=gid),
                      NOW + 1_000)
    assert mid.fill_count == 2
    assert e.order_group("a", gid)["triggered"]
    e.reset_order_group("a", gid, NOW + 2_000)
    e.submit(req("a", "bid", 40, 4, "immediate_or_cancel", order_group_id=gid), NOW + 3_000)
    late, _ = e.submit(req("a", "bid", 40, 3, "immediate_or_cancel", order_group_id=gid),
                       NOW + 18_001)
    assert late.fill_count == 3  # the fill at +3 s left the window at +18 s


def test_submit_resting_order_needs_exact_cost_crossing_one_needs_fee_headroom():
    e = engine({"a": 1_000, "b": 100_000, "c": 0})
    resting, _ = e.submit(req("a", "bid", 50, 20), NOW)  # cannot cross: 20 x 50 exactly
    assert resting.status == "resting"
    assert (e.balance_cents("a"), e.reserved_cents("a")) == (0, 1_000)
    e.cancel("a", resting.order_id, NOW + 1)
    e.submit(req("b", "ask", 50, 5), NOW + 2)  # now a bid at 50 would take
    before = fingerprint(e)
    with pytest.raises(EngineReject) as err:
        e.submit(req("a", "bid", 50, 20), NOW + 3)  # 1000 + taker fee bound > 1000
    assert err.value.code == "insufficient_balance"
    assert "1000" in err.value.message
    assert fingerprint(e) == before
    order, _ = e.submit(req("a", "bid", 50, 19), NOW + 4)
    assert order.fill_count == 5
    assert e.balance_cents("a") >= 0
    with pytest.raises(EngineReject) as err:
        e.submit(req("c", "bid", 1, 1), NOW + 5)
    assert err.value.code == "insufficient_balance"


def test_submit_closing_trade_nets_position_and_releases_collateral():
    e = engine({"a": 10_000, "b": 10_000, "c": 10_000})
    e.submit(req("a", "ask", 40, 10), NOW)
    e.submit(req("b", "bid", 40, 10, "immediate_or_cancel"), NOW)  # b +10 YES paid 400 + fee
    after_open = e.balance_cents("b")
    e.submit(req("c", "bid", 60, 10), NOW)
    order, _ = e.submit(req("b", "ask", 60, 10, "immediate_or_cancel"), NOW + 1)
    # b sells YES at 60: pays NO 40 x 10, receives 100 x 10 netted, pays the taker fee
    assert e.balance_cents("b") == after_open + 600 - order.taker_fees_cents
    (pos,) = e.positions("b")
    assert pos.position == 0
    assert pos.market_exposure_cents == 0
    assert pos.realized_pnl_cents == 200
    assert e.market(T).open_interest == 10  # a's NO vs c's YES


def test_submit_maker_fee_charged_only_where_schedule_charges_makers():
    e = engine(fee=FeeSchedule("quadratic_with_maker_fees"))
    maker, _ = e.submit(req("a", "ask", 50, 100), NOW)
    e.submit(req("b", "bid", 50, 100, "immediate_or_cancel"), NOW)
    assert e.order(maker.order_id).maker_fees_cents == 44  # ceil(0.0175*100*.25 $) = $0.44
    plain = engine()
    maker2, _ = plain.submit(req("a", "ask", 50, 100), NOW)
    plain.submit(req("b", "bid", 50, 100, "immediate_or_cancel"), NOW)
    assert plain.order(maker2.order_id).maker_fees_cents == 0


def test_market_closes_at_close_ts_cancels_resting_and_refuses_orders():
    e = engine()
    order, _ = e.submit(req("a", "bid", 30, 10), NOW)
    with pytest.raises(EngineReject) as err:
        e.submit(req("b", "ask", 30, 1), CLOSE_MS)
    assert err.value.code == "market_closed"
    out = e.advance(CLOSE_MS)
    assert e.order(order.order_id).last_update_reason == "CloseCancel"
    assert {(x.ticker, x.event_type) for x in out.lifecycle} == {(T, "deactivated"),
                                                                 (T2, "deactivated")}
    assert e.market(T).status == "closed"
    assert e.reserved_cents("a") == 0


def test_settle_pays_100_per_winning_contract_only():
    e = engine()
    e.submit(req("a", "ask", 30, 10), NOW)
    e.submit(req("b", "bid", 30, 10, "immediate_or_cancel"), NOW)
    b_before, a_before = e.balance_cents("b"), e.balance_cents("a")
    e.determine(T, "yes", CLOSE_MS + 1)
    out = e.settle(T, CLOSE_MS + 2)
    assert e.balance_cents("b") == b_before + 1000
    assert e.balance_cents("a") == a_before
    assert {(s.account_id, s.revenue_cents, s.yes_count, s.no_count) for s in out.settlements} == {
        ("b", 1000, 10, 0), ("a", 0, 0, 10)}
    assert e.market(T).status == "finalized"
    assert e.market(T).open_interest == 0
    assert [x.event_type for x in out.lifecycle] == ["settled"]


def test_amend_same_price_smaller_keeps_priority_larger_loses_it():
    e = engine()
    first, _ = e.submit(req("a", "ask", 40, 5), NOW)
    second, _ = e.submit(req("b", "ask", 40, 5), NOW)
    e.amend("a", first.order_id, price_cents=40, count=3, now_ms=NOW + 1)
    _, out = e.submit(req("c", "bid", 40, 1, "immediate_or_cancel"), NOW + 2)
    assert [f.order_id for f in out.fills if not f.is_taker] == [first.order_id]
    e.amend("a", first.order_id, price_cents=40, count=6, now_ms=NOW + 3)
    _, out = e.submit(req("c", "bid", 40, 1, "immediate_or_cancel"), NOW + 4)
    assert [f.order_id for f in out.fills if not f.is_taker] == [second.order_id]
    assert e.book(T).no == ((60, 4 + 5),)


def test_amend_new_price_crossing_executes():
    e = engine()
    e.submit(req("a", "ask", 45, 5), NOW)
    mine, _ = e.submit(req("b", "bid", 40, 5), NOW)
    order, out = e.amend("b", mine.order_id, price_cents=45, count=5, now_ms=NOW + 1)
    assert order.fill_count == 5
    assert order.status == "executed"
    assert e.reserved_cents("b") == 0
    assert len(out.trades) == 1


def test_decrease_and_cancel_release_reservation():
    e = engine()
    order, _ = e.submit(req("a", "bid", 30, 10), NOW)
    dec, _ = e.decrease("a", order.order_id, now_ms=NOW + 1, reduce_by=4)
    assert dec.remaining_count == 6
    assert e.reserved_cents("a") == 180
    _, reduced, out = e.cancel("a", order.order_id, NOW + 2)
    assert reduced == 6
    assert e.reserved_cents("a") == 0
    assert e.balance_cents("a") == 100_000
    with pytest.raises(EngineReject) as err:
        e.cancel("a", order.order_id, NOW + 3)
    assert err.value.code == "order_not_found"


def test_cancel_all_cancels_only_that_account():
    e = engine()
    e.submit(req("a", "bid", 30, 1), NOW)
    e.submit(req("a", "ask", 70, 1, ticker=T2), NOW)
    kept, _ = e.submit(req("b", "bid", 31, 1), NOW)
    out = e.cancel_all("a", NOW + 1)
    assert len(out.orders) == 2
    assert e.orders("a", status="resting") == []
    assert e.order(kept.order_id).status == "resting"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"price_cents": 0}, "invalid_price"),
        ({"price_cents": 100}, "invalid_price"),
        ({"price_cents": True}, "invalid_price"),
        ({"count": 0}, "invalid_count"),
        ({"count": 2.0}, "invalid_count"),
        ({"ticker": "NOPE"}, "market_not_found"),
        ({"account_id": "zz"}, "account_not_found"),
        ({"side": "buy"}, "invalid_parameters"),
        ({"time_in_force": "day"}, "invalid_parameters"),
        ({"stp": "none"}, "invalid_parameters"),
        ({"time_in_force": "immediate_or_cancel", "expiration_ts_ms": NOW + 9},
         "expiration_requires_gtc"),
        ({"order_group_id": "g-999999"}, "order_group_not_found"),
    ],
)
def test_submit_bad_input_rejected_with_code_and_state_untouched(change, code):
    e = engine()
    e.submit(req("b", "ask", 40, 3), NOW)
    before = fingerprint(e)
    fields = {"account_id": "a", "ticker": T, "side": "bid", "price_cents": 40, "count": 1,
              "time_in_force": "good_till_canceled"} | change
    with pytest.raises(EngineReject) as err:
        e.submit(OrderRequest(**fields), NOW + 1)
    assert err.value.code == code
    assert repr(change[next(iter(change))]) in err.value.message or code.endswith("not_found")
    assert fingerprint(e) == before


def test_submit_before_open_rejected_market_closed():
    e = Engine()
    e.add_account("a", 1_000)
    e.add_market(MarketSpec("M", "E", "S", 5_000, 9_000), 0)
    assert e.market("M").status == "initialized"
    with pytest.raises(EngineReject) as err:
        e.submit(OrderRequest("a", "M", "bid", 10, 1, "good_till_canceled"), 4_999)
    assert err.value.code == "market_closed"
    order, out = e.submit(OrderRequest("a", "M", "bid", 10, 1, "good_till_canceled"), 5_000)
    assert order.status == "resting"
    assert [x.event_type for x in out.lifecycle] == ["activated"]


def test_engine_replay_same_calls_same_state_and_ids():
    def run() -> Engine:
        e = engine()
        gid, _ = e.create_order_group("c", 7, NOW)
        for i in range(30):
            side = "bid" if i % 3 else "ask"
            acct = "abc"[i % 3]
            e.submit(req(acct, side, 35 + i % 11, 1 + i % 4,
                         "immediate_or_cancel" if i % 5 == 0 else "good_till_canceled",
                         order_group_id=gid if acct == "c" else None), NOW + i)
        e.advance(NOW + 100)
        return e

    first, second = run(), run()
    assert fingerprint(first) == fingerprint(second)
    assert [o.order_id for o in first.orders("a")] == [o.order_id for o in second.orders("a")]


def test_engine_id_prefix_applies_to_all_ids():
    e = Engine(id_prefix="p1-")
    e.add_account("a", 1_000)
    e.add_account("b", 1_000)
    e.add_market(MarketSpec("M", "E", "S", 0, 9_000), 0)
    gid, _ = e.create_order_group("a", 3, 1)
    e.submit(OrderRequest("a", "M", "bid", 10, 1, "good_till_canceled"), 1)
    _, out = e.submit(OrderRequest("b", "M", "ask", 10, 1, "good_till_canceled"), 2)
    assert gid == "p1-g-000001"
    assert out.trades[0].trade_id == "p1-t-000001"
    assert {f.fill_id for f in out.fills} == {"p1-f-000001", "p1-f-000002"}


def test_amend_crossing_order_triggers_own_group_and_is_cancelled():
    e = engine()
    gid, _ = e.create_order_group("a", 3, NOW)
    e.submit(req("b", "ask", 45, 10), NOW)
    mine, _ = e.submit(req("a", "bid", 40, 5, order_group_id=gid), NOW)
    other, _ = e.submit(req("a", "bid", 30, 5, order_group_id=gid), NOW)
    order, out = e.amend("a", mine.order_id, price_cents=45, count=5, now_ms=NOW + 1)
    assert order.fill_count == 3
    assert order.status == "canceled"
    assert order.last_update_reason == "OrderGroupCancel"
    assert e.order(other.order_id).last_update_reason == "OrderGroupCancel"
    assert [g.event_type for g in out.group_events] == ["triggered"]
    assert e.reserved_cents("a") == 0


def test_submit_buy_max_cost_implies_fill_or_kill_so_reduce_only_rejected():
    e = engine()
    e.submit(req("a", "ask", 40, 3), NOW)
    e.submit(req("b", "bid", 40, 3, "immediate_or_cancel"), NOW)
    e.submit(req("c", "bid", 40, 10), NOW)
    with pytest.raises(EngineReject) as err:
        e.submit(req("b", "ask", 40, 10, "immediate_or_cancel", reduce_only=True,
                     buy_max_cost_cents=10_000), NOW + 1)
    assert err.value.code == "reduce_only_requires_ioc"
    order, _ = e.submit(req("b", "ask", 40, 3, "immediate_or_cancel",
                            buy_max_cost_cents=10_000), NOW + 2)
    assert order.time_in_force == "fill_or_kill"
    assert order.fill_count == 3
