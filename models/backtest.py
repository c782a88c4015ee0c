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
import pandas as pd

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
    "Fold",
    "FillModel",
    "FillRecord",
    "Issue",
    "MarketRecord",
    "OrderRecord",
    "Tape",
    "WalkForwardResult",
    "build_tape",
    "decide_market",
    "event_blocks",
    "run_backtest",
    "walk_forward",
]

DESK = "desk"
TAPE = "tape"
_TAPE_CASH = 10**15
_DAY_MS = 86_400_000


@dataclass(frozen=True)
class Issue:
    """Something in the input that was excluded or could not be used, with how often."""

    kind: str  # invalid_trade | duplicate_trade | unsorted_trade | gap | no_result | skipped ...
    count: int
    detail: str


@dataclass(frozen=True, eq=False)
class Tape:
    """Recorded public trades, columnar, time-ordered, validated; build with ``build_tape``."""

    tickers: tuple[str, ...]  # code -> ticker
    ts_ms: np.ndarray  # int64, non-decreasing
    code: np.ndarray  # int64 index into tickers
    yes_price: np.ndarray  # int64 cents 1..99
    count: np.ndarray  # int64 contracts >= 1
    taker_yes: np.ndarray  # bool: the recorded taker bought YES
    issues: tuple[Issue, ...]
    index: dict[str, int]  # ticker -> code
    rows: tuple[np.ndarray, ...]  # code -> row numbers, time-ordered
    cumvol: tuple[np.ndarray, ...]  # code -> cumulative contracts (leading 0)

    def __len__(self) -> int:
        return int(self.ts_ms.shape[0])

    def code_of(self, ticker: str) -> int | None:
        """Return the integer code of a ticker, or None if it never traded."""
        return self.index.get(ticker)

    def last_before(self, ticker: str, ts_ms: int) -> tuple[int, int] | None:
        """Return (ts_ms, yes_price) of the last trade strictly before ``ts_ms``, or None."""
        code = self.index.get(ticker)
        if code is None:
            return None
        rows = self.rows[code]
        i = int(np.searchsorted(self.ts_ms[rows], ts_ms, side="left"))
        if i == 0:
            return None
        row = int(rows[i - 1])
        return int(self.ts_ms[row]), int(self.yes_price[row])

    def volume_between(self, ticker: str, start_ms: int, end_ms: int) -> int:
        """Return contracts traded in [start_ms, end_ms)."""
        code = self.index.get(ticker)
        if code is None:
            return 0
        ts = self.ts_ms[self.rows[code]]
        lo = int(np.searchsorted(ts, start_ms, side="left"))
        hi = int(np.searchsorted(ts, end_ms, side="left"))
        cum = self.cumvol[code]
        return int(cum[hi] - cum[lo])


def _ticker_rows(code: np.ndarray, n_tickers: int,
                 count: np.ndarray) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    # the narrowest code type: numpy's stable sort is a radix sort for 16-bit keys (same order)
    narrow = code.astype(np.int16) if n_tickers <= np.iinfo(np.int16).max else code
    order = np.argsort(narrow, kind="stable")
    bounds = np.searchsorted(code[order], np.arange(n_tickers + 1))
    rows = tuple(order[bounds[c]:bounds[c + 1]] for c in range(n_tickers))
    total = np.concatenate(([0], np.cumsum(count[order])))
    cum = tuple(total[bounds[c]:bounds[c + 1] + 1] - total[bounds[c]] for c in range(n_tickers))
    return rows, cum


_FOLD = np.uint64(0x9E3779B97F4A7C15)


def _repeated_ids(ids: pd.Series | np.ndarray) -> np.ndarray:
    # True for every row whose trade id already occurred in an earlier row (the first copy is
    # kept). Fixed-width byte ids (``dtype S<n>``) are first screened by a 64-bit fold of their
    # bytes: equal ids fold equally, so rows whose fold is unique cannot repeat, and only rows
    # sharing a fold (true repeats plus rare fold collisions) get the exact check, in row order.
    if not isinstance(ids, np.ndarray):
        return np.asarray(ids.duplicated(keep="first").to_numpy(), dtype=bool)
    n = int(ids.shape[0])
    width = ids.dtype.itemsize
    out = np.zeros(n, dtype=bool)
    if n < 2:
        return out
    raw = np.ascontiguousarray(ids).view(np.uint8).reshape(n, width)
    padded = np.zeros((n, -(-width // 8) * 8), dtype=np.uint8)
    padded[:, :width] = raw
    words = padded.view(np.uint64)
    key = words[:, 0].copy()
    for k in range(1, words.shape[1]):
        key *= _FOLD  # wraps modulo 2**64 (array arithmetic does not warn)
        key += words[:, k]
    ordered = np.sort(key)
    if not (ordered[1:] == ordered[:-1]).any():
        return out
    shared = np.flatnonzero(pd.Series(key).duplicated(keep=False).to_numpy())
    out[shared] = pd.Series(ids[shared], dtype=object).duplicated(keep="first").to_numpy()
    return out


def _id_text(ids: pd.Series | np.ndarray, i: int) -> str:
    value = ids[i] if isinstance(ids, np.ndarray) else ids.iat[i]
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def build_tape(trade_id: Sequence[str] | pd.Series | np.ndarray,
               ticker: Sequence[str] | pd.Series,
               ts_ms: Sequence[int] | np.ndarray,
               yes_price: Sequence[int] | np.ndarray, count: Sequence[int] | np.ndarray,
               taker_side: Sequence[str] | pd.Series, *, gap_ms: int = 6 * 3_600_000,
               max_examples: int = 3) -> Tape:
    """Validate recorded trades and return them as a time-ordered ``Tape`` with its issues.

    Excluded and reported: rows with a count < 1, a price outside 1..99 or a taker side other
    than yes/no (``invalid_trade``); repeated trade ids, first copy kept (``duplicate_trade``).
    Reported and fixed by a stable sort: rows earlier than their predecessor
    (``unsorted_trade``). Reported only: silences longer than ``gap_ms`` between consecutive
    trades of one ticker (``gap``; a decision after a gap sees a stale quote and is skipped by
    ``max_quote_age_ms``).
    """
    n = len(trade_id)
    for name, col in (("ticker", ticker), ("ts_ms", ts_ms), ("yes_price", yes_price),
                      ("count", count), ("taker_side", taker_side)):
        if len(col) != n:
            raise ValueError(f"build_tape: column {name} has {len(col)} rows, trade_id has {n}")
    # pandas Series and fixed-width byte arrays (``tasks.backtest`` passes Parquet ids as
    # ``S<n>`` without copying) stay as they are; anything else becomes an object Series
    ids: pd.Series | np.ndarray
    if isinstance(trade_id, pd.Series) or (isinstance(trade_id, np.ndarray)
                                           and trade_id.dtype.kind == "S"):
        ids = trade_id
    else:
        ids = pd.Series(np.asarray(trade_id, dtype=object), dtype=object)
    ts = np.asarray(ts_ms, dtype=np.int64)
    price = np.asarray(yes_price, dtype=np.int64)
    cnt = np.asarray(count, dtype=np.int64)
    side = taker_side if isinstance(taker_side, pd.Series) else pd.Series(
        np.asarray(taker_side, dtype=object), dtype=object)
    issues: list[Issue] = []
    taker_yes = np.asarray(side == "yes", dtype=bool)
    taker_no = np.asarray(side == "no", dtype=bool)
    valid = (cnt >= 1) & (price >= 1) & (price <= 99) & (taker_yes | taker_no)
    bad = np.flatnonzero(~valid)
    if bad.size:
        examples = ", ".join(f"{_id_text(ids, i)} (count={cnt[i]}, yes_price={price[i]}, "
                             f"taker_side={side.iat[i]!r})" for i in bad[:max_examples])
        issues.append(Issue("invalid_trade", int(bad.size), f"excluded, e.g. {examples}"))
    repeated = _repeated_ids(ids)
    dup = np.flatnonzero(repeated & valid)
    if dup.size:
        examples = ", ".join(_id_text(ids, i) for i in dup[:max_examples])
        issues.append(Issue("duplicate_trade", int(dup.size),
                            f"repeated trade_id excluded (first copy kept), e.g. {examples}"))
    idx = np.flatnonzero(valid & ~repeated)
    ts_k = ts[idx]
    back = np.flatnonzero(np.diff(ts_k) < 0) + 1
    if back.size:
        examples = ", ".join(_id_text(ids, idx[i]) for i in back[:max_examples])
        issues.append(Issue("unsorted_trade", int(back.size),
                            f"trades earlier than their predecessor, re-ordered by time, "
                            f"e.g. {examples}"))
        order = idx[np.argsort(ts_k, kind="stable")]
    else:
        order = idx
    if isinstance(ticker, pd.Series) and isinstance(ticker.dtype, pd.CategoricalDtype):
        # dictionary-encoded column: its codes as they are (unused categories are harmless)
        codes_raw = ticker.cat.codes.to_numpy()[order]
        if codes_raw.size and codes_raw.min() < 0:
            raise ValueError("build_tape: ticker has missing values")
        tickers_sorted = np.asarray(ticker.cat.categories, dtype=object)
    else:
        codes_raw, tickers_sorted = pd.factorize(np.asarray(ticker, dtype=object)[order])
    codes = np.asarray(codes_raw, dtype=np.int64)
    ts_o, cnt_o = ts[order], cnt[order]
    rows, cum = _ticker_rows(codes, len(tickers_sorted), cnt_o)
    by_code = np.concatenate(rows) if rows else np.array([], dtype=np.int64)
    silence = np.diff(ts_o[by_code])
    over = np.flatnonzero((silence > gap_ms) & (np.diff(codes[by_code]) == 0))
    if over.size:
        first_row = int(by_code[over[0] + 1])
        issues.append(Issue("gap", int(over.size),
                            f"silences > {gap_ms // 1000} s within a ticker (reported; stale "
                            f"quotes are skipped), e.g. {tickers_sorted[codes[first_row]]}: "
                            f"{int(silence[over[0]]) // 1000} s without trades before ts_ms "
                            f"{int(ts_o[first_row])}"))
    names = tuple(str(t) for t in tickers_sorted)
    return Tape(names, ts_o, codes, price[order], cnt_o, taker_yes[order], tuple(issues),
                {t: i for i, t in enumerate(names)}, rows, cum)


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


# --------------------------------------------------------------------------- walk-forward
@dataclass(frozen=True)
class Fold:
    """One walk-forward step: the parameter chosen on the past, and its result on the block."""

    index: int
    train_events: tuple[str, ...]
    test_events: tuple[str, ...]
    chosen_min_edge_cents: int
    train_pnl_cents: dict[int, int]  # candidate -> P&L on the training events
    test: BacktestResult


@dataclass(frozen=True)
class WalkForwardResult:
    """Each fold and the aggregate of all test blocks (the out-of-sample record)."""

    folds: tuple[Fold, ...]
    test_fills: tuple[FillRecord, ...]
    test_orders: tuple[OrderRecord, ...]
    test_decisions: tuple[DecisionRecord, ...]


def event_blocks(decisions: Sequence[DecisionInput], n_blocks: int) -> list[list[str]]:
    """Split events into ``n_blocks`` time-ordered, disjoint blocks of near-equal size.

    An event belongs to exactly one block (by its first decision time), so no event's trades or
    settlement inform more than one block.
    """
    if n_blocks < 2:
        raise ValueError(f"n_blocks: expected >= 2, got {n_blocks!r}")
    first: dict[str, int] = {}
    for d in decisions:
        first[d.event_ticker] = min(first.get(d.event_ticker, d.decision_ts_ms), d.decision_ts_ms)
    events = sorted(first, key=lambda e: (first[e], e))
    if len(events) < n_blocks:
        raise ValueError(f"n_blocks: {n_blocks} blocks need at least as many events "
                         f"(got {len(events)})")
    bounds = [round(i * len(events) / n_blocks) for i in range(n_blocks + 1)]
    return [events[bounds[i]:bounds[i + 1]] for i in range(n_blocks)]


def walk_forward(tape: Tape, markets: Sequence[MarketRecord],
                 decisions: Sequence[DecisionInput], config: BacktestConfig, *,
                 n_blocks: int = 5, candidates: Sequence[int] = (3, 5, 8, 12),
                 progress: Callable[[int, int], None] | None = None) -> WalkForwardResult:
    """Fit ``min_edge_cents`` on all earlier blocks, test it on the next block, roll.

    Block 0 is training only; folds 1..n-1 each choose the candidate with the highest training
    P&L (ties: the larger minimum edge, the more conservative) and run it on their block from
    a fresh starting bankroll.
    """
    if not candidates:
        raise ValueError("candidates: expected at least one min_edge_cents value")
    blocks = event_blocks(decisions, n_blocks)
    by_event: dict[str, list[DecisionInput]] = {}
    for d in decisions:
        by_event.setdefault(d.event_ticker, []).append(d)
    market_by_event: dict[str, list[MarketRecord]] = {}
    for m in markets:
        market_by_event.setdefault(m.event_ticker, []).append(m)

    def subset(events: Iterable[str]) -> tuple[list[MarketRecord], list[DecisionInput]]:
        ms: list[MarketRecord] = []
        ds: list[DecisionInput] = []
        for ev in events:
            ms += market_by_event.get(ev, [])
            ds += by_event.get(ev, [])
        return ms, ds

    folds: list[Fold] = []
    fills: list[FillRecord] = []
    orders: list[OrderRecord] = []
    decided: list[DecisionRecord] = []
    steps = (n_blocks - 1) * (len(candidates) + 1)
    step = 0
    for k in range(1, n_blocks):
        train_events = [e for b in blocks[:k] for e in b]
        ms, ds = subset(train_events)
        scores: dict[int, int] = {}
        for cand in candidates:
            cfg = replace(config, edge=replace(config.edge, min_edge_cents=cand))
            res = run_backtest(tape, ms, ds, cfg)
            scores[cand] = res.final_cash_cents - res.starting_cash_cents
            step += 1
            if progress is not None:
                progress(step, steps)
        chosen = max(scores, key=lambda c: (scores[c], c))
        ms, ds = subset(blocks[k])
        cfg = replace(config, edge=replace(config.edge, min_edge_cents=chosen))
        test = run_backtest(tape, ms, ds, cfg)
        step += 1
        if progress is not None:
            progress(step, steps)
        folds.append(Fold(k, tuple(train_events), tuple(blocks[k]), chosen, scores, test))
        fills += test.fills
        orders += test.orders
        decided += test.decisions
    return WalkForwardResult(tuple(folds), tuple(fills), tuple(orders), tuple(decided))

