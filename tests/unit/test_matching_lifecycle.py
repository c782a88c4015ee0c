"""Hand-worked examples for the less-travelled engine calls: groups, lifecycle, amend, queries."""

from __future__ import annotations

from decimal import Decimal

import pytest

from models.fees import FeeSchedule
from models.matching import Engine, EngineReject, MarketSpec
from tests.unit._matching_helpers import CLOSE_MS, OPEN_MS, T2, T, engine, fingerprint, req

NOW = OPEN_MS + 10


def test_set_order_group_limit_below_window_triggers_at_once():
    e = engine()
    gid, _ = e.create_order_group("a", 10, NOW)
    e.submit(req("b", "ask", 40, 20), NOW)
    e.submit(req("a", "bid", 40, 6, "immediate_or_cancel", order_group_id=gid), NOW)
    resting, _ = e.submit(req("a", "bid", 30, 5, order_group_id=gid), NOW)
    out = e.set_order_group_limit("a", gid, 6, NOW + 1)
    assert [g.event_type for g in out.group_events] == ["limit_updated", "triggered"]
    assert e.order(resting.order_id).last_update_reason == "OrderGroupCancel"
    calm = e.set_order_group_limit("a", gid, 50, NOW + 2)
    assert [g.event_type for g in calm.group_events] == ["limit_updated"]


def test_delete_order_group_cancels_orders_and_forgets_group():
    e = engine()
    gid, _ = e.create_order_group("a", 10, NOW)
    order, _ = e.submit(req("a", "bid", 30, 5, order_group_id=gid), NOW)
    out = e.delete_order_group("a", gid, NOW + 1)
    assert [g.event_type for g in out.group_events] == ["deleted"]
    assert e.order(order.order_id).last_update_reason == "OrderGroupCancel"
    assert e.order_groups("a") == []
    with pytest.raises(EngineReject) as err:
        e.order_group("a", gid)
    assert err.value.code == "order_group_not_found"


def test_order_group_of_other_account_not_found():
    e = engine()
    gid, _ = e.create_order_group("a", 10, NOW)
    with pytest.raises(EngineReject) as err:
        e.submit(req("b", "bid", 30, 1, order_group_id=gid), NOW)
    assert err.value.code == "order_group_not_found"
    with pytest.raises(EngineReject) as err:
        e.create_order_group("a", 0, NOW)
    assert err.value.code == "invalid_parameters"
    assert "contracts_limit" in err.value.message


def test_determine_open_market_closes_it_first_then_settle_needs_determined():
    e = engine()
    order, _ = e.submit(req("a", "bid", 30, 5), NOW)
    with pytest.raises(EngineReject) as err:
        e.settle(T, NOW + 1)
    assert err.value.code == "invalid_parameters"
    out = e.determine(T, "no", NOW + 2)
    assert [x.event_type for x in out.lifecycle] == ["deactivated", "determined"]
    assert out.lifecycle[1].result == "no"
    assert e.order(order.order_id).last_update_reason == "CloseCancel"
    with pytest.raises(EngineReject) as err:
        e.determine(T, "yes", NOW + 3)
    assert err.value.code == "invalid_parameters"
    with pytest.raises(EngineReject) as err:
        e.determine(T2, "maybe", NOW + 3)
    assert "'maybe'" in err.value.message


def test_settle_losing_side_and_flat_accounts_get_nothing():
    e = engine()
    e.submit(req("a", "ask", 70, 4), NOW)
    e.submit(req("b", "bid", 70, 4, "immediate_or_cancel"), NOW)
    e.submit(req("c", "bid", 20, 1), NOW)
    totals = {a: e.balance_cents(a) + e.reserved_cents(a) for a in "abc"}
    e.determine(T, "no", CLOSE_MS)
    out = e.settle(T, CLOSE_MS + 1)
    assert {s.account_id: s.revenue_cents for s in out.settlements} == {"a": 400, "b": 0}
    assert e.balance_cents("a") == totals["a"] + 400
    assert e.balance_cents("b") == totals["b"]
    assert e.balance_cents("c") == totals["c"]  # its resting bid was released at close
    (pos,) = e.positions("b")
    assert (pos.position, pos.market_exposure_cents, pos.realized_pnl_cents) == (0, 0, -280)


def test_add_market_invalid_specs_rejected_naming_field():
    e = Engine()
    e.add_market(MarketSpec("M", "E", "S", 0, 10), 0)
    cases = [
        (MarketSpec("M", "E", "S", 0, 10), "already listed"),
        (MarketSpec("N", "E", "S", 10, 10), "close_ts_ms"),
        (MarketSpec("N", "E", "S", 0, 10, tick_cents=0), "tick_cents"),
        (MarketSpec("N", "E", "S", 0, 10, max_price_cents=100), "1..99"),
        (MarketSpec("N", "E", "S", 0, 10, fee=FeeSchedule("flat")), "flat"),
    ]
    for spec, text in cases:
        with pytest.raises(EngineReject) as err:
            e.add_market(spec, 0)
        assert err.value.code == "invalid_parameters"
        assert text in err.value.message
    assert [m.spec.ticker for m in e.markets()] == ["M"]


def test_add_market_after_close_time_is_created_and_closed():
    e = Engine()
    out = e.add_market(MarketSpec("M", "E", "S", 0, 10), 50)
    assert [x.event_type for x in out.lifecycle] == ["created", "activated", "deactivated"]
    assert e.market("M").status == "closed"


def test_price_off_tick_rejected_and_on_tick_accepted():
    e = Engine()
    e.add_account("a", 10_000)
    e.add_market(MarketSpec("M", "E", "S", 0, 10_000, tick_cents=5, min_price_cents=5,
                            max_price_cents=95), 0)
    with pytest.raises(EngineReject) as err:
        e.submit(req("a", "bid", 42, 1, ticker="M"), 1)
    assert err.value.code == "invalid_price"
    assert "step 5" in err.value.message
    order, _ = e.submit(req("a", "bid", 45, 1, ticker="M"), 1)
    assert order.status == "resting"


def test_amend_updates_client_order_id_and_checks_uniqueness():
    e = engine()
    first, _ = e.submit(req("a", "bid", 30, 5, client_order_id="x"), NOW)
    e.submit(req("a", "bid", 31, 5, client_order_id="y"), NOW)
    with pytest.raises(EngineReject) as err:
        e.amend("a", first.order_id, price_cents=30, count=5, now_ms=NOW + 1,
                updated_client_order_id="y")
    assert err.value.code == "order_already_exists"
    order, _ = e.amend("a", first.order_id, price_cents=30, count=5, now_ms=NOW + 1,
                       updated_client_order_id="z")
    assert order.client_order_id == "z"
    e.submit(req("a", "bid", 32, 1, client_order_id="x"), NOW + 2)  # "x" is free again


def test_amend_insufficient_balance_rejected_state_untouched():
    e = engine({"a": 1_000, "b": 1_000, "c": 1_000})
    order, _ = e.submit(req("a", "bid", 50, 10), NOW)
    before = fingerprint(e)
    with pytest.raises(EngineReject) as err:
        e.amend("a", order.order_id, price_cents=50, count=30, now_ms=NOW + 1)
    assert err.value.code == "insufficient_balance"
    assert fingerprint(e) == before
    with pytest.raises(EngineReject) as err:
        e.amend("a", order.order_id, price_cents=50, count=0, now_ms=NOW + 1)
    assert err.value.code == "invalid_count"


def test_amend_expiration_moves_and_old_deadline_ignored():
    e = engine()
    order, _ = e.submit(req("a", "bid", 30, 5, expiration_ts_ms=NOW + 100), NOW)
    e.amend("a", order.order_id, price_cents=30, count=5, now_ms=NOW + 1,
            expiration_ts_ms=NOW + 500)
    assert e.advance(NOW + 100).orders == []
    assert e.order(order.order_id).status == "resting"
    out = e.advance(NOW + 500)
    assert [o.last_update_reason for o in out.orders] == ["ExpiryCancel"]


def test_decrease_reduce_to_zero_cancels_and_both_args_rejected():
    e = engine()
    order, _ = e.submit(req("a", "bid", 30, 5), NOW)
    with pytest.raises(EngineReject) as err:
        e.decrease("a", order.order_id, now_ms=NOW, reduce_by=1, reduce_to=1)
    assert err.value.code == "invalid_parameters"
    with pytest.raises(EngineReject) as err:
        e.decrease("a", order.order_id, now_ms=NOW, reduce_to=5)
    assert err.value.code == "invalid_count"
    done, out = e.decrease("a", order.order_id, now_ms=NOW + 1, reduce_to=0)
    assert (done.status, done.last_update_reason) == ("canceled", "Decrease")
    assert [(d.price_cents, d.delta) for d in out.book_deltas] == [(30, -5)]


def test_cancel_other_accounts_order_not_found():
    e = engine()
    order, _ = e.submit(req("a", "bid", 30, 5), NOW)
    with pytest.raises(EngineReject) as err:
        e.cancel("b", order.order_id, NOW + 1)
    assert err.value.code == "order_not_found"
    assert e.order(order.order_id).status == "resting"


def test_book_depth_and_aggregation_best_first():
    e = engine()
    for price, count in ((30, 1), (32, 2), (32, 3), (31, 4)):
        e.submit(req("a", "bid", price, count), NOW)
    e.submit(req("b", "ask", 60, 7), NOW)
    assert e.book(T).yes == ((32, 5), (31, 4), (30, 1))
    assert e.book(T, depth=2).yes == ((32, 5), (31, 4))
    assert e.book(T).no == ((40, 7),)


def test_orders_query_filters_and_client_lookup():
    e = engine()
    e.submit(req("a", "bid", 30, 5, client_order_id="k"), NOW)
    e.submit(req("a", "bid", 30, 5, ticker=T2), NOW)
    e.submit(req("b", "ask", 30, 5, "immediate_or_cancel"), NOW)
    assert [o.ticker for o in e.orders("a", ticker=T2)] == [T2]
    assert [o.status for o in e.orders("a", status="executed")] == ["executed"]
    assert e.find_by_client_order_id("a", "nope") is None
    assert e.find_by_client_order_id("b", "k") is None


def test_accounts_bad_input_rejected():
    e = Engine()
    e.add_account("a", 0)
    for call, code in ((lambda: e.add_account("a", 5), "invalid_parameters"),
                       (lambda: e.add_account("b", -1), "invalid_parameters"),
                       (lambda: e.deposit("a", 0), "invalid_parameters"),
                       (lambda: e.deposit("zz", 5), "account_not_found"),
                       (lambda: e.balance_cents("zz"), "account_not_found")):
        with pytest.raises(EngineReject) as err:
            call()
        assert err.value.code == code
    e.deposit("a", 250)
    assert e.balance_cents("a") == 250


def test_fee_multiplier_scales_taker_fee():
    e = engine(fee=FeeSchedule("quadratic", Decimal("0.5")))
    e.submit(req("a", "ask", 50, 100), NOW)
    order, _ = e.submit(req("b", "bid", 50, 100, "immediate_or_cancel"), NOW)
    assert order.taker_fees_cents == 88  # ceil(0.5 * 0.07 * 100 * 0.25 $) = ceil(87.5 c)
