"""Pure replay engine: recorded trades and market lifecycle on a simulated clock.

Invariants:
- Decisions go through the live desk's code: ``decide_market`` = ``models.risk`` headroom ->
  ``models.edge.plan_market`` -> ``models.risk.check_order``; orders, fills, fees, positions and
  settlement go through the same ``models.matching.Engine`` the paper exchange uses. No other
  place computes money, so the final cash equals the start plus the sum of per-fill P&L.
- No look-ahead: a decision at ``T`` sees only recorded trades strictly before ``T`` (quote and
  volume) and the probabilities the caller computed from inputs issued before ``T``.
- Fill model (conservative, stated in ``FillModel``): a taking order fills at the last recorded
  price before the decision plus ``spread_cost_cents``, at most ``take_volume_percent`` of the
  market's recorded 24 h volume (the rest of the IOC is cancelled); a resting order fills only
  when a later recorded trade *sold into* its side at or through its price (for a YES bid at p:
  a NO-side taker at a YES price <= p); a print exactly at p first consumes
  ``queue_ahead_contracts`` assumed ahead of us, a print through p fills us up to its size.
  Fills execute at our price (maker).
- Bad input is never dropped silently: invalid, duplicate and unsorted trades, gaps, markets
  without a result and skipped decisions are returned as ``Issue`` values with counts.
- Pure: no I/O, no clock; time is integer UTC milliseconds passed in.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal

import numpy as np

from models.backtest_tape import (
    Issue,
    Tape,
    build_tape,
)
from models.edge import EdgeParams, MarketPlan, Quote, plan_market
from models.fees import FeeSchedule
from models.matching import (
    Engine,
    EngineReject,
    Fill,
    MarketSpec,
    OrderRequest,
    Outcome,
    Position,
)
from models.risk import (
    Approved,
    Holding,
    Rejection,
    RiskLimits,
    RiskState,
    check_order,
    max_order_contracts,
)
from models.risk import OrderRequest as RiskOrder

__all__ = [
    "BacktestConfig",
    "BacktestResult",
    "DecisionInput",
    "DecisionRecord",
    "FillModel",
    "FillRecord",
    "Issue",
    "MarketRecord",
    "OrderRecord",
    "Tape",
    "build_tape",
    "decide_market",
    "run_backtest",
]

DESK = "desk"
TAPE = "tape"
_TAPE_CASH = 10**15
_DAY_MS = 86_400_000


@dataclass(frozen=True)
class MarketRecord:
    """One recorded market and its lifecycle; ``result`` '' means no recorded result."""

    ticker: str
    event_ticker: str
    series_ticker: str
    open_ts_ms: int
    close_ts_ms: int
    settle_ts_ms: int
    result: str  # "yes" | "no" | ""
    category: str = "Climate and Weather"
    fee: FeeSchedule = field(default_factory=FeeSchedule)


@dataclass(frozen=True)
class DecisionInput:
    """The desk's probabilities for one event at one decision instant (known before it)."""

    event_ticker: str
    decision_ts_ms: int
    probabilities: tuple[tuple[str, float], ...]  # (market ticker, P(YES))


@dataclass(frozen=True)
class FillModel:
    """How recorded trades fill simulated orders (see the module docstring)."""

    spread_cost_cents: int = 1  # a taker pays last trade + this (YES) or 100 - (last - this) (NO)
    queue_ahead_contracts: int = 100  # contracts assumed ahead of us at our own price
    max_quote_age_ms: int = 6 * 3_600_000  # a last trade older than this is no quote
    take_volume_percent: int = 10  # a take fills at most this % of the recorded 24 h volume

    def __post_init__(self) -> None:
        for name in ("spread_cost_cents", "queue_ahead_contracts", "max_quote_age_ms",
                     "take_volume_percent"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name}: expected an int >= 0, got {value!r}")
        if self.take_volume_percent > 100:
            raise ValueError(f"take_volume_percent: expected 0..100, got "
                             f"{self.take_volume_percent!r}")


@dataclass(frozen=True)
class BacktestConfig:
    """Everything a run depends on besides its data."""

    edge: EdgeParams = field(default_factory=EdgeParams)
    limits: RiskLimits = field(default_factory=RiskLimits)
    fill: FillModel = field(default_factory=FillModel)
    starting_cash_cents: int = 1_000_000
    volume_lookback_ms: int = _DAY_MS  # average daily volume = contracts in the last 24 h

    def __post_init__(self) -> None:
        if isinstance(self.starting_cash_cents, bool) or not isinstance(
                self.starting_cash_cents, int) or self.starting_cash_cents <= 0:
            raise ValueError(f"starting_cash_cents: expected a positive int, got "
                             f"{self.starting_cash_cents!r}")
        if self.volume_lookback_ms <= 0:
            raise ValueError(f"volume_lookback_ms: expected > 0, got {self.volume_lookback_ms!r}")


@dataclass(frozen=True)
class DecisionRecord:
    """What the desk decided for one market at one instant, and why."""

    ts_ms: int
    ticker: str
    event_ticker: str
    series_ticker: str
    prob_yes: float
    quote: Quote | None
    plan: MarketPlan | None
    rejection: Rejection | None
    reason: str
    result: str


@dataclass(frozen=True)
class OrderRecord:
    """An order the backtest sent to the engine and how much of it filled."""

    ts_ms: int
    order_id: str
    ticker: str
    series_ticker: str
    side: str  # yes | no
    price_cents: int
    count: int
    is_taker: bool
    edge_cents: int
    filled: int


@dataclass(frozen=True)
class FillRecord:
    """One of our fills with its exact settlement payoff: pnl = payoff - cost - fee."""

    ts_ms: int
    ticker: str
    event_ticker: str
    series_ticker: str
    side: str  # yes | no
    price_cents: int  # paid per contract of `side`
    count: int
    fee_cents: int
    is_taker: bool
    edge_cents: int  # the decision's per-contract edge
    settle_ts_ms: int
    payoff_cents: int  # 100 x count if `side` won, else 0

    @property
    def pnl_cents(self) -> int:
        """Return the fill's realised P&L at settlement, after its fee."""
        return self.payoff_cents - self.price_cents * self.count - self.fee_cents


@dataclass(frozen=True)
class BacktestResult:
    """Everything a run produced; money in integer cents."""

    config: BacktestConfig
    decisions: tuple[DecisionRecord, ...]
    orders: tuple[OrderRecord, ...]
    fills: tuple[FillRecord, ...]
    issues: tuple[Issue, ...]
    starting_cash_cents: int
    final_cash_cents: int
    events_replayed: int  # recorded trades walked through the replay loop
    engine_fills: int  # trades that reached one of our resting orders


def decide_market(prob_yes: float | None, quote: Quote, *, event_ticker: str, category: str,
                  params: EdgeParams, limits: RiskLimits, state: RiskState, as_of: datetime,
                  held_contracts: int,
                  avg_daily_volume: int | None) -> tuple[MarketPlan, Rejection | None]:
    """The desk's decision for one market: plan within the risk headroom, then gate it.

    The same steps as the live cycle (``tasks.trading.decide_markets`` + the gateway's gate):
    Kelly bankroll = floor(equity x capital_allocation); size against the looser of the YES/NO
    headrooms at 1c; if the chosen order's own headroom is smaller, re-plan with it; finally
    ``check_order``. Returns the plan and the gate's rejection (None: approved or nothing to do).
    """
    bankroll = int(Decimal(max(state.equity_cents, 0)) * limits.capital_allocation)

    def cap(side: str, price: int) -> int:
        probe = RiskOrder(quote.market_ticker, event_ticker, category, side, price, 1,
                          avg_daily_volume)
        return max_order_contracts(probe, state, limits)

    loose = max(cap("yes", 1), cap("no", 1))
    plan = plan_market(prob_yes, quote, params, as_of=as_of, bankroll_cents=bankroll,
                       max_contracts=loose, held_contracts=held_contracts)
    if not plan.orders:
        return plan, None
    order = plan.orders[0]
    tight = cap(order.side, order.price_cents)
    if tight < order.count:
        plan = plan_market(prob_yes, quote, params, as_of=as_of, bankroll_cents=bankroll,
                           max_contracts=tight, held_contracts=held_contracts)
        if not plan.orders:
            return plan, None
        order = plan.orders[0]
    verdict = check_order(RiskOrder(quote.market_ticker, event_ticker, category, order.side,
                                    order.price_cents, order.count, avg_daily_volume),
                          state, limits)
    return plan, None if isinstance(verdict, Approved) else verdict


def _dt(ts_ms: int) -> datetime:
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC)


@dataclass
class _Rest:
    # our resting order in one market, with the assumed queue ahead of it
    order_id: str
    ticker: str
    bid: bool  # True: YES bid at yes_price; False: NO buy = YES ask at yes_price
    yes_price: int
    remaining: int
    queue_ahead: int
    expires_ms: int
    record_index: int


class _Run:
    """One replay: mutable simulation state around a ``models.matching.Engine``."""

    def __init__(self, tape: Tape, markets: Mapping[str, MarketRecord],
                 config: BacktestConfig) -> None:
        self.tape = tape
        self.markets = markets
        self.config = config
        self.engine = Engine(id_prefix="bt-")
        self.engine.add_account(DESK, config.starting_cash_cents)
        self.engine.add_account(TAPE, _TAPE_CASH)
        self.listed: set[str] = set()
        self.rest: dict[int, _Rest] = {}  # tape code -> our resting order
        self.rest_by_ticker: dict[str, _Rest] = {}
        self.decisions: list[DecisionRecord] = []
        self.orders: list[OrderRecord] = []
        self.order_meta: dict[str, tuple[int, int]] = {}  # order_id -> (edge, record index)
        self.fills: list[FillRecord] = []
        self.engine_fills = 0
        self.open: dict[str, Position] = {}  # our non-zero positions
        self.day = -1
        self.day_start_equity = config.starting_cash_cents

    # ------------------------------------------------------------------ engine helpers
    def list_market(self, m: MarketRecord, now_ms: int) -> None:
        if m.ticker in self.listed:
            return
        self.engine.add_market(MarketSpec(m.ticker, m.event_ticker, m.series_ticker,
                                          m.open_ts_ms, m.close_ts_ms, m.fee), now_ms)
        self.listed.add(m.ticker)

    def absorb(self, out: Outcome) -> None:
        # keep our open positions from the engine's own change reports (no full scans)
        for p in out.positions:
            if p.account_id != DESK:
                continue
            if p.position:
                self.open[p.ticker] = p
            else:
                self.open.pop(p.ticker, None)

    def equity(self) -> int:
        e = self.engine
        held = sum(p.market_exposure_cents for p in self.open.values())
        return e.balance_cents(DESK) + e.reserved_cents(DESK) + held

    def state(self, now_ms: int) -> RiskState:
        day = now_ms // _DAY_MS
        equity = self.equity()
        if day != self.day:
            self.day, self.day_start_equity = day, equity
        holdings: dict[str, list[int]] = {}
        for p in self.open.values():
            holdings[p.ticker] = [p.market_exposure_cents, abs(p.position)]
        for r in self.rest_by_ticker.values():
            h = holdings.setdefault(r.ticker, [0, 0])
            own = r.yes_price if r.bid else 100 - r.yes_price
            h[0] += own * r.remaining
            h[1] += r.remaining
        return RiskState(equity, self.day_start_equity, tuple(
            Holding(t, self.markets[t].event_ticker, self.markets[t].category, v[0], v[1])
            for t, v in sorted(holdings.items())))

    def position(self, ticker: str) -> int:
        p = self.open.get(ticker)
        return 0 if p is None else p.position

    def record_fills(self, outcome_fills: Iterable[Fill], now_ms: int) -> int:
        filled = 0
        for f in outcome_fills:
            if f.account_id != DESK:
                continue
            m = self.markets[f.ticker]
            bid = f.side == "bid"
            side = "yes" if bid else "no"
            price = f.yes_price_cents if bid else 100 - f.yes_price_cents
            edge, idx = self.order_meta[f.order_id]
            won = m.result == side
            self.fills.append(FillRecord(
                now_ms, m.ticker, m.event_ticker, m.series_ticker, side, price, f.count,
                f.fee_cents, f.is_taker, edge, m.settle_ts_ms, 100 * f.count if won else 0))
            rec = self.orders[idx]
            self.orders[idx] = replace(rec, filled=rec.filled + f.count)
            filled += f.count
        return filled

    def cancel_rest(self, ticker: str, now_ms: int) -> None:
        r = self.rest_by_ticker.pop(ticker, None)
        if r is None:
            return
        code = self.tape.code_of(ticker)
        if code is not None:
            self.rest.pop(code, None)
        if r.expires_ms > now_ms:
            try:
                self.engine.cancel(DESK, r.order_id, now_ms)
            except EngineReject as exc:
                if exc.code not in ("order_not_found", "market_closed"):
                    raise

    # ----------------------------------------------------------------------- decisions
    def decide(self, d: DecisionInput, issues: Counter[str]) -> None:
        now = d.decision_ts_ms
        for r in [r for r in self.rest_by_ticker.values() if r.expires_ms <= now]:
            self.cancel_rest(r.ticker, now)  # expired at the exchange: no longer exposure
        as_of = _dt(now)
        fillm = self.config.fill
        for ticker, prob in d.probabilities:
            m = self.markets.get(ticker)
            if m is None:
                issues["decision for an unknown or excluded market"] += 1
                continue
            if not m.open_ts_ms <= now < m.close_ts_ms:
                self._skip(d, m, prob, None, "market not open at the decision time", issues)
                continue
            self.cancel_rest(ticker, now)
            last = self.tape.last_before(ticker, now)
            if last is None or now - last[0] > fillm.max_quote_age_ms:
                self._skip(d, m, prob, None, "no recorded trade within max_quote_age_ms "
                                              "before the decision", issues)
                continue
            price, spread = last[1], fillm.spread_cost_cents
            bid, ask = price - spread, price + spread
            quote = Quote(ticker, bid if bid >= 1 else None, ask if ask <= 99 else None)
            if quote.yes_bid_cents is None and quote.yes_ask_cents is None:
                self._skip(d, m, prob, quote, "empty book", issues)
                continue
            volume = self.tape.volume_between(ticker, now - self.config.volume_lookback_ms, now)
            adv = volume * _DAY_MS // self.config.volume_lookback_ms
            plan, rejection = decide_market(
                prob, quote, event_ticker=m.event_ticker, category=m.category,
                params=self.config.edge, limits=self.config.limits, state=self.state(now),
                as_of=as_of, held_contracts=self.position(ticker), avg_daily_volume=adv)
            reason = rejection.reason if rejection is not None else plan.reason
            self.decisions.append(DecisionRecord(now, ticker, m.event_ticker, m.series_ticker,
                                                 prob, quote, plan, rejection, reason, m.result))
            if rejection is not None or not plan.orders:
                continue
            take_cap = volume * self.config.fill.take_volume_percent // 100
            self.execute(m, plan, now, take_cap)

    def _skip(self, d: DecisionInput, m: MarketRecord, prob: float, quote: Quote | None,
              reason: str, issues: Counter[str]) -> None:
        issues[reason] += 1
        self.decisions.append(DecisionRecord(d.decision_ts_ms, m.ticker, m.event_ticker,
                                             m.series_ticker, prob, quote, None, None, reason,
                                             m.result))

    def execute(self, m: MarketRecord, plan: MarketPlan, now: int, take_cap: int) -> None:
        order = plan.orders[0]
        self.list_market(m, now)
        yes_price = order.yes_price_cents
        side = order.book_side
        e = self.engine
        idx = len(self.orders)
        if order.is_taker:
            # the recorded market's liquidity at the quoted price (at most take_cap contracts),
            # then our IOC against it; the IOC's unfilled rest is cancelled by the engine
            other = "ask" if side == "bid" else "bid"
            liq = None
            if take_cap > 0:
                liq, _ = e.submit(OrderRequest(TAPE, m.ticker, other, yes_price,
                                               min(order.count, take_cap),
                                               "good_till_canceled", stp="maker"), now)
            ours, out = e.submit(OrderRequest(DESK, m.ticker, side, yes_price, order.count,
                                              "immediate_or_cancel"), now)
            self.orders.append(OrderRecord(now, ours.order_id, m.ticker, m.series_ticker,
                                           order.side, order.price_cents, order.count, True,
                                           order.edge_cents, 0))
            self.order_meta[ours.order_id] = (order.edge_cents, idx)
            self.absorb(out)
            self.record_fills(out.fills, now)
            if liq is not None and e.order(liq.order_id).status == "resting":
                e.cancel(TAPE, liq.order_id, now)
            return
        expires = order.expiration_ts_ms or m.close_ts_ms
        ours, out = e.submit(OrderRequest(DESK, m.ticker, side, yes_price, order.count,
                                          "good_till_canceled", expiration_ts_ms=expires), now)
        self.orders.append(OrderRecord(now, ours.order_id, m.ticker, m.series_ticker, order.side,
                                       order.price_cents, order.count, False, order.edge_cents,
                                       0))
        self.order_meta[ours.order_id] = (order.edge_cents, idx)
        self.absorb(out)
        self.record_fills(out.fills, now)
        if ours.status != "resting":
            return
        code = self.tape.code_of(m.ticker)
        r = _Rest(ours.order_id, m.ticker, side == "bid", yes_price, ours.remaining_count,
                  self.config.fill.queue_ahead_contracts, min(expires, m.close_ts_ms), idx)
        self.rest_by_ticker[m.ticker] = r
        if code is not None:
            self.rest[code] = r

    # ----------------------------------------------------------------------- the tape
    def on_trade(self, r: _Rest, ts: int, price: int, count: int, taker_yes: bool) -> None:
        if ts >= r.expires_ms:
            self.cancel_rest(r.ticker, ts)
            return
        if r.bid:  # a YES bid fills from sellers of YES (NO-side takers) at or below its price
            if taker_yes or price > r.yes_price:
                return
            through = price < r.yes_price
        else:  # a YES ask (NO buy) fills from YES-side takers at or above its price
            if not taker_yes or price < r.yes_price:
                return
            through = price > r.yes_price
        available = count
        if not through:
            used = min(r.queue_ahead, count)
            r.queue_ahead -= used
            available -= used
        n = min(available, r.remaining)
        if n <= 0:
            return
        side = "ask" if r.bid else "bid"
        _, out = self.engine.submit(OrderRequest(TAPE, r.ticker, side, r.yes_price, n,
                                                 "immediate_or_cancel", stp="maker"), ts)
        self.engine_fills += 1
        self.absorb(out)
        got = self.record_fills(out.fills, ts)
        r.remaining -= got
        if r.remaining <= 0 or got == 0:
            self.rest_by_ticker.pop(r.ticker, None)
            code = self.tape.code_of(r.ticker)
            if code is not None:
                self.rest.pop(code, None)

    def settle(self, m: MarketRecord) -> None:
        self.cancel_rest(m.ticker, m.settle_ts_ms)
        self.absorb(self.engine.determine(m.ticker, m.result, m.settle_ts_ms))
        self.absorb(self.engine.settle(m.ticker, m.settle_ts_ms))


def run_backtest(tape: Tape, markets: Sequence[MarketRecord], decisions: Sequence[DecisionInput],
                 config: BacktestConfig | None = None, *,
                 progress: Callable[[int, int], None] | None = None) -> BacktestResult:
    """Replay ``tape`` on a simulated clock, deciding at each ``DecisionInput``; settle all.

    Markets without a recorded result are excluded (with an ``Issue``), as are decisions for
    them. Decisions and settlements run in time order (decisions first at equal times); the
    trades between two of them are screened in bulk against the markets where we rest (a trade
    elsewhere cannot fill us) and the remaining ones are walked one by one in time order.
    ``progress(done, total)`` is called after each segment of trades.
    """
    config = config or BacktestConfig()
    counts: Counter[str] = Counter()
    issues: list[Issue] = list(tape.issues)
    usable: dict[str, MarketRecord] = {}
    no_result = [m.ticker for m in markets if m.result not in ("yes", "no")]
    for m in markets:
        if m.result in ("yes", "no"):
            usable[m.ticker] = m
    if no_result:
        issues.append(Issue("no_result", len(no_result), "markets without a recorded result "
                                                          f"excluded, e.g. {no_result[:3]}"))
    run = _Run(tape, usable, config)
    ordered = sorted(decisions, key=lambda d: (d.decision_ts_ms, d.event_ticker))
    decided = {t for d in ordered for t, _ in d.probabilities}
    actions: list[tuple[int, int, object]] = [(d.decision_ts_ms, 0, d) for d in ordered]
    actions += [(m.settle_ts_ms, 1, m) for t, m in usable.items() if t in decided]
    actions.sort(key=lambda a: (a[0], a[1]))
    times = np.array([a[0] for a in actions], dtype=np.int64)
    if actions:
        lo = int(np.searchsorted(tape.ts_ms, times[0], side="left"))
        hi = int(np.searchsorted(tape.ts_ms, times[-1], side="left"))
    else:
        lo = hi = 0
    ts_arr = tape.ts_ms[lo:hi]
    code_arr = tape.code[lo:hi]
    total = hi - lo
    # an action at exactly a trade's time runs first: decisions see trades strictly before
    # them, and the trade can then fill an order placed at that instant
    cuts = np.searchsorted(ts_arr, times, side="left").tolist() + [total]
    rest = run.rest
    start = 0
    for k, end in enumerate(cuts):
        if rest and end > start:
            # fast path: only trades in markets where we rest can fill us; screen them in bulk
            wanted = np.fromiter(rest.keys(), dtype=np.int64, count=len(rest))
            for j in (np.flatnonzero(np.isin(code_arr[start:end], wanted)) + start).tolist():
                r = rest.get(int(code_arr[j]))
                if r is not None:
                    row = lo + j
                    run.on_trade(r, int(ts_arr[j]), int(tape.yes_price[row]),
                                 int(tape.count[row]), bool(tape.taker_yes[row]))
        start = max(start, end)
        if progress is not None:
            progress(start, total)
        if k < len(actions):
            _, kind, payload = actions[k]
            if kind == 0:
                run.decide(payload, counts)  # type: ignore[arg-type]
            elif payload.ticker in run.listed:  # type: ignore[attr-defined]
                run.settle(payload)  # type: ignore[arg-type]
    for reason, n in sorted(counts.items()):
        issues.append(Issue("skipped_decision", n, reason))
    return BacktestResult(config, tuple(run.decisions), tuple(run.orders), tuple(run.fills),
                          tuple(issues), config.starting_cash_cents,
                          run.engine.balance_cents(DESK) + run.engine.reserved_cents(DESK),
                          total, run.engine_fills)
