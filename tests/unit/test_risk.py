"""The pure risk gate: hand-worked limits and the property that approval never breaches one."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.risk import (
    Approved,
    Holding,
    OrderRequest,
    Rejection,
    RiskLimits,
    RiskState,
    check_order,
    max_order_contracts,
)

LIMITS = RiskLimits()
EQUITY = 100_000  # $1,000.00: 5 % = 5,000c per event, 40 % = 40,000c per category


def order(count: int = 10, price: int = 40, *, ticker: str = "KXHIGHNY-26NOV22-B50",
          event: str = "KXHIGHNY-26NOV22", category: str = "weather", side: str = "yes",
          adv: int | None = 1_000) -> OrderRequest:
    return OrderRequest(ticker, event, category, side, price, count, adv)


def state(*holdings: Holding, equity: int = EQUITY, start: int = EQUITY,
          halts: tuple[str, ...] = ()) -> RiskState:
    return RiskState(equity, start, holdings, halts)


def test_check_order_within_every_limit_approves():
    # Arrange: 10 x 40c = 400c against a 5,000c event limit
    # Act
    verdict = check_order(order(), state(), LIMITS)
    # Assert
    assert verdict == Approved(order())


def test_check_order_event_bucket_full_rejects_contract_limit():
    # another bracket of the same event already holds 4,800c; 400c more passes 5,000c
    other_bracket = Holding("KXHIGHNY-26NOV22-B52", "KXHIGHNY-26NOV22", "weather", 4_800, 120)
    verdict = check_order(order(), state(other_bracket), LIMITS)
    assert isinstance(verdict, Rejection)
    assert verdict.limit == "contract"
    assert "4800c + order 400c > 5000c" in verdict.reason


def test_check_order_exactly_at_event_limit_approves():
    other_bracket = Holding("KXHIGHNY-26NOV22-B52", "KXHIGHNY-26NOV22", "weather", 4_600, 120)
    assert isinstance(check_order(order(), state(other_bracket), LIMITS), Approved)


def test_check_order_other_event_does_not_share_the_bucket_approves():
    chicago = Holding("KXHIGHCHI-26NOV22-B40", "KXHIGHCHI-26NOV22", "weather", 4_800, 120)
    assert isinstance(check_order(order(), state(chicago), LIMITS), Approved)


def test_check_order_category_full_rejects_category_limit():
    # 8 other weather events at 4,900c each = 39,200c; +1,000c > 40,000c
    held = tuple(Holding(f"KXHIGH{i}-B1", f"KXHIGH{i}", "weather", 4_900, 10) for i in range(8))
    verdict = check_order(order(25, 40), state(*held), LIMITS)
    assert isinstance(verdict, Rejection)
    assert verdict.limit == "category"


def test_check_order_capital_allocation_rejects_capital_limit():
    # 20 % allocation: desk capital 20,000c; 19,800c held across categories; +400c > 20,000c
    limits = RiskLimits(capital_allocation=Decimal("0.20"))
    held = tuple(Holding(f"M{i}", f"E{i}", f"cat{i}", 990, 10) for i in range(20))
    verdict = check_order(order(), state(*held), limits)
    assert isinstance(verdict, Rejection)
    assert verdict.limit == "capital"
    assert "20000c" in verdict.reason


def test_check_order_volume_cap_counts_in_flight_contracts_rejects_volume():
    # ADV 50 -> cap 100 contracts; 95 already held or in flight in this market; +10 > 100
    held = Holding("KXHIGHNY-26NOV22-B50", "KXHIGHNY-26NOV22", "weather", 950, 95)
    verdict = check_order(order(10, 1, adv=50), state(held), LIMITS)
    assert isinstance(verdict, Rejection)
    assert verdict.limit == "volume"
    assert "95 + order 10 > 2 x average daily volume 50 = 100" in verdict.reason


def test_check_order_unknown_volume_rejects_volume():
    verdict = check_order(order(adv=None), state(), LIMITS)
    assert isinstance(verdict, Rejection)
    assert verdict.limit == "volume"


def test_check_order_daily_loss_reached_rejects_daily_loss():
    # 3 % of 100,000c = 3,000c; equity marked to market is down 3,000c
    verdict = check_order(order(), state(equity=97_000), LIMITS)
    assert isinstance(verdict, Rejection)
    assert verdict.limit == "daily_loss"


def test_check_order_daily_loss_just_below_limit_approves():
    assert isinstance(check_order(order(), state(equity=97_001), LIMITS), Approved)


def test_check_order_halt_flag_rejects_halt():
    verdict = check_order(order(), state(halts=("operator: NWS outage",)), LIMITS)
    assert isinstance(verdict, Rejection)
    assert verdict.limit == "halt"
    assert "NWS outage" in verdict.reason


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        (order(count=0), "count"),
        (order(price=100), "price_cents"),
        (order(side="buy"), "side"),
        (order(ticker=""), "market_ticker"),
        (order(adv=-1), "avg_daily_volume"),
    ],
)
def test_check_order_invalid_input_returns_rejection_naming_field(bad, field):
    verdict = check_order(bad, state(), LIMITS)
    assert isinstance(verdict, Rejection)
    assert verdict.limit == "invalid"
    assert field in verdict.reason


def test_check_order_float_price_returns_rejection_not_exception():
    verdict = check_order(order(price=40.0), state(), LIMITS)  # type: ignore[arg-type]
    assert isinstance(verdict, Rejection)
    assert "price_cents" in verdict.reason


def test_risk_limits_from_settings_reads_the_five_fields():
    settings = SimpleNamespace(max_contract_fraction=Decimal("0.02"),
                               max_category_fraction=Decimal("0.3"),
                               max_volume_multiple=Decimal("1.5"),
                               daily_loss_fraction=Decimal("0.01"),
                               capital_allocation=Decimal("0.1"))
    limits = RiskLimits.from_settings(settings)
    assert limits == RiskLimits(Decimal("0.02"), Decimal("0.3"), Decimal("1.5"),
                                Decimal("0.01"), Decimal("0.1"))


def test_risk_limits_fraction_above_one_raises_naming_field():
    with pytest.raises(ValueError, match="capital_allocation"):
        RiskLimits(capital_allocation=Decimal("1.5"))


# --- properties ---------------------------------------------------------------------------------

EVENTS = ("E1", "E2", "E3")
CATS = ("weather", "econ")
holding_st = st.builds(
    lambda i, e, c, cents, n: Holding(f"{e}-M{i}", e, c, cents, n),
    st.integers(0, 3), st.sampled_from(EVENTS), st.sampled_from(CATS),
    st.integers(0, 5_000), st.integers(0, 200),
)
order_st = st.builds(
    lambda i, e, c, side, price, count, adv: OrderRequest(f"{e}-M{i}", e, c, side, price, count,
                                                          adv),
    st.integers(0, 3), st.sampled_from(EVENTS), st.sampled_from(CATS),
    st.sampled_from(("yes", "no")), st.integers(1, 99), st.integers(1, 300),
    st.one_of(st.none(), st.integers(0, 1_000)),
)
limits_st = st.builds(
    RiskLimits,
    st.decimals("0.01", "1", places=2), st.decimals("0.01", "1", places=2),
    st.decimals("0.5", "5", places=1), st.decimals("0.01", "0.2", places=2),
    st.decimals("0.05", "1", places=2),
)


def _unique_markets(holdings: list[Holding]) -> tuple[Holding, ...]:
    seen: dict[str, Holding] = {}
    for h in holdings:
        seen.setdefault(h.market_ticker, h)
    return tuple(seen.values())


@settings(max_examples=300, deadline=None)
@given(order_st, st.lists(holding_st, max_size=8), limits_st,
       st.integers(1, 2_000_000), st.integers(-20_000, 20_000))
def test_check_order_approval_never_exceeds_any_limit(o, holdings, limits, equity, loss):
    start = max(equity + loss, 1)
    held = _unique_markets(holdings)
    # a market's event and category are fixed: drop holdings that contradict the order's market
    held = tuple(h for h in held if h.market_ticker != o.market_ticker
                 or (h.event_ticker, h.category) == (o.event_ticker, o.category))
    verdict = check_order(o, RiskState(equity, start, held), limits)
    if not isinstance(verdict, Approved):
        return
    capital = int(Decimal(equity) * limits.capital_allocation // 1)
    total = sum(h.exposure_cents for h in held) + o.cost_cents
    event = sum(h.exposure_cents for h in held if h.event_ticker == o.event_ticker) + o.cost_cents
    cat = sum(h.exposure_cents for h in held if h.category == o.category) + o.cost_cents
    contracts = sum(h.contracts for h in held if h.market_ticker == o.market_ticker) + o.count
    assert total <= capital
    assert event <= capital * limits.max_contract_fraction
    assert cat <= capital * limits.max_category_fraction
    assert o.avg_daily_volume is not None
    assert contracts <= o.avg_daily_volume * limits.max_volume_multiple
    assert start - equity < start * limits.daily_loss_fraction


@settings(max_examples=200, deadline=None)
@given(order_st, st.lists(holding_st, max_size=6), st.integers(1_000, 2_000_000))
def test_max_order_contracts_is_the_exact_boundary(o, holdings, equity):
    held = _unique_markets(holdings)
    state_ = RiskState(equity, equity, held)
    n = max_order_contracts(o, state_, LIMITS)

    def sized(count: int) -> OrderRequest:
        return OrderRequest(o.market_ticker, o.event_ticker, o.category, o.side, o.price_cents,
                            count, o.avg_daily_volume)

    if n > 0:
        assert isinstance(check_order(sized(n), state_, LIMITS), Approved)
    assert isinstance(check_order(sized(n + 1), state_, LIMITS), Rejection)


def test_risk_limits_from_default_settings_equal_documented_defaults():
    from tasks.settings import Settings

    assert RiskLimits.from_settings(Settings(_env_file=None)) == RiskLimits()


def test_with_order_counts_the_order_in_flight_in_its_market_or_a_new_holding():
    from models.risk import Holding, OrderRequest, RiskState, with_order

    state = RiskState(100_000, 100_000, (Holding("M1", "E1", "weather", 400, 10),))
    one = with_order(state, OrderRequest("M1", "E1", "weather", "no", 30, 5, None))
    two = with_order(one, OrderRequest("M2", "E1", "weather", "yes", 7, 3, None))
    assert one.holdings == (Holding("M1", "E1", "weather", 550, 15),)
    assert two.holdings == (Holding("M1", "E1", "weather", 550, 15),
                            Holding("M2", "E1", "weather", 21, 3))
    assert state.holdings == (Holding("M1", "E1", "weather", 400, 10),)  # unchanged
