"""Tax lots from fills and settlements, exact to the cent.

Invariant: every contract acquired is disposed exactly once (by an opposite trade or by
settlement) or is listed open, and the sum of the lots' gains equals the realized P&L of the cash
flows: over any period, ``realized = cash + basis open at its end - basis open at its start``.

Netting (Kalshi holds one signed position per market, +YES / -NO):
- a fill is a signed YES quantity at a YES price: buying YES or selling NO adds, selling YES or
  buying NO subtracts (a V2 ``bid`` fill buys YES; an ``ask`` fill at YES price p buys NO at 100-p);
- a fill in the direction of the position (or from flat) opens one lot of that side, named by the
  fill's id;
- a fill against the position disposes lots of the held side: YES lots at proceeds = the YES price,
  NO lots at proceeds = 100 - the YES price (the NO price); any excess opens a lot on the other
  side;
- settlement disposes every open lot at 100 or 0 per contract (``scalar``: YES gets the value, NO
  gets 100 minus it).
Fees: an opening fee goes to the lot's basis, a closing (or settlement) fee to the disposal. One fee
is split across lots by contracts with the largest-remainder rule, so the parts sum to the fee;
when a lot is partly disposed, its opening fee is shared in proportion to the contracts (rounding
half up, the remainder staying with the lot), so a lot's fee parts also sum to its fee.
Dates are UTC; a disposal belongs to the tax year of its UTC date.
The reconciliation of a year's lots with the ledger's books is in ``models.tax_reconcile``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Literal

__all__ = [
    "Method",
    "LotSelection",
    "TaxInputError",
    "NoActivityError",
    "TaxFill",
    "TaxSettlement",
    "Disposal",
    "OpenLot",
    "LotBook",
    "SeriesSummary",
    "YearReport",
    "fill_from_book_side",
    "split_by_contracts",
    "check_references",
    "build_lots",
    "cash_flow_cents",
    "summarize",
    "report_for_year",
    "year_bounds",
    "series_from_ticker",
    "ordered_events",
]

Method = Literal["fifo", "specific"]
# closing fill_id -> [(lot_id, contracts), ...] in the order the lots are to be disposed
LotSelection = Mapping[str, Sequence[tuple[str, int]]]


class TaxInputError(ValueError):
    """Input that cannot produce correct lots. Names the field and the offending value."""

    def __init__(self, message: str, *, field: str, value: object) -> None:
        self.field = field
        self.value = value
        super().__init__(f"{field}: {message} (got {value!r})")


class NoActivityError(TaxInputError):
    """A tax year without a single fill or settlement."""


def _int(value: object, name: str, *, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TaxInputError("must be an int", field=name, value=value)
    if value < low or (high is not None and value > high):
        bound = f"{low}..{high}" if high is not None else f">= {low}"
        raise TaxInputError(f"out of range {bound}", field=name, value=value)
    return value


def _utc(value: object, name: str) -> datetime:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise TaxInputError("must be a timezone-aware datetime", field=name, value=value)
    return value.astimezone(UTC)


@dataclass(frozen=True)
class TaxFill:
    """One execution: ``count`` contracts of ``side`` bought or sold at that side's price."""

    fill_id: str
    ticker: str
    series: str
    side: Literal["yes", "no"]
    action: Literal["buy", "sell"]
    count: int
    price_cents: int
    fee_cents: int
    ts: datetime
    order_id: str | None = None

    def __post_init__(self) -> None:
        for name in ("fill_id", "ticker", "series"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise TaxInputError("must be a non-empty string", field=name,
                                    value=getattr(self, name))
        if self.side not in ("yes", "no"):
            raise TaxInputError("must be 'yes' or 'no'", field="side", value=self.side)
        if self.action not in ("buy", "sell"):
            raise TaxInputError("must be 'buy' or 'sell'", field="action", value=self.action)
        _int(self.count, "count", low=1)
        _int(self.price_cents, "price_cents", low=1, high=99)
        _int(self.fee_cents, "fee_cents", low=0)
        object.__setattr__(self, "ts", _utc(self.ts, "ts"))

    @property
    def yes_delta(self) -> int:
        """Signed change of the YES position: + for buy YES / sell NO, - for sell YES / buy NO."""
        up = (self.side == "yes") == (self.action == "buy")
        return self.count if up else -self.count

    @property
    def yes_price_cents(self) -> int:
        """The execution price on the YES leg."""
        return self.price_cents if self.side == "yes" else 100 - self.price_cents


@dataclass(frozen=True)
class TaxSettlement:
    """A market's settlement: ``result`` yes/no, or scalar with ``value_cents`` paid per YES."""

    ticker: str
    result: Literal["yes", "no", "scalar"]
    ts: datetime
    value_cents: int | None = None
    fee_cents: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.ticker, str) or not self.ticker:
            raise TaxInputError("must be a non-empty string", field="ticker", value=self.ticker)
        if self.result not in ("yes", "no", "scalar"):
            raise TaxInputError("must be 'yes', 'no' or 'scalar'", field="result",
                                value=self.result)
        if self.result == "scalar":
            _int(self.value_cents, "value_cents", low=0, high=100)
        elif self.value_cents is not None:
            raise TaxInputError("only scalar results carry a value", field="value_cents",
                                value=self.value_cents)
        _int(self.fee_cents, "fee_cents", low=0)
        object.__setattr__(self, "ts", _utc(self.ts, "ts"))

    @property
    def yes_payout_cents(self) -> int:
        """What one YES contract pays (a NO contract pays 100 minus this)."""
        if self.result == "scalar":
            assert self.value_cents is not None
            return self.value_cents
        return 100 if self.result == "yes" else 0


@dataclass(frozen=True)
class Disposal:
    """One Form 8949 row: part or all of a lot, disposed by a closing fill or by settlement."""

    lot_id: str
    ticker: str
    series: str
    side: Literal["yes", "no"]
    contracts: int
    acquired_ts: datetime
    disposed_ts: datetime
    cost_cents: int
    open_fee_cents: int
    proceeds_cents: int
    close_fee_cents: int
    kind: Literal["close", "settlement"]
    disposed_by: str

    @property
    def basis_cents(self) -> int:
        """Cost basis: price paid plus the opening fee allocated to these contracts."""
        return self.cost_cents + self.open_fee_cents

    @property
    def gain_cents(self) -> int:
        """Gain or loss: proceeds minus basis minus the closing fee (Form 8949 column h)."""
        return self.proceeds_cents - self.basis_cents - self.close_fee_cents

    @property
    def acquired_date(self) -> date:
        """UTC date acquired."""
        return self.acquired_ts.date()

    @property
    def disposed_date(self) -> date:
        """UTC date sold or disposed of."""
        return self.disposed_ts.date()

    @property
    def long_term(self) -> bool:
        """Held more than one year (IRS counting: from the day after acquisition)."""
        acquired = self.acquired_date
        try:
            anniversary = acquired.replace(year=acquired.year + 1)
        except ValueError:  # Feb 29
            anniversary = acquired.replace(year=acquired.year + 1, day=28)
        return self.disposed_date > anniversary


@dataclass(frozen=True)
class OpenLot:
    """Contracts still held at the cut-off: not disposed, not reported as a gain."""

    lot_id: str
    ticker: str
    series: str
    side: Literal["yes", "no"]
    contracts: int
    acquired_ts: datetime
    cost_cents: int
    open_fee_cents: int

    @property
    def basis_cents(self) -> int:
        """Cost basis of the open contracts (price plus the remaining opening fee)."""
        return self.cost_cents + self.open_fee_cents


@dataclass(frozen=True)
class LotBook:
    """Disposals (in the order they happened) and the lots still open at the cut-off."""

    disposals: tuple[Disposal, ...]
    open_lots: tuple[OpenLot, ...]

    @property
    def realized_cents(self) -> int:
        """Sum of the disposals' gains."""
        return sum(d.gain_cents for d in self.disposals)

    @property
    def open_basis_cents(self) -> int:
        """Total basis of the open lots."""
        return sum(lot.basis_cents for lot in self.open_lots)


def fill_from_book_side(
    fill_id: str, ticker: str, series: str, book_side: str, yes_price_cents: int, count: int,
    fee_cents: int, ts: datetime, order_id: str | None = None,
) -> TaxFill:
    """Map a V2 fill (``bid`` buys YES at p; ``ask`` buys NO at 100 - p) to a ``TaxFill``."""
    if book_side not in ("bid", "ask"):
        raise TaxInputError("must be 'bid' or 'ask'", field="book_side", value=book_side)
    _int(yes_price_cents, "yes_price_cents", low=1, high=99)
    if book_side == "bid":
        return TaxFill(fill_id, ticker, series, "yes", "buy", count, yes_price_cents, fee_cents, ts,
                       order_id)
    return TaxFill(fill_id, ticker, series, "no", "buy", count, 100 - yes_price_cents, fee_cents,
                   ts, order_id)


def split_by_contracts(amount_cents: int, weights: Sequence[int]) -> list[int]:
    """Split ``amount_cents`` by ``weights`` exactly (largest remainder; ties to the earlier)."""
    total = sum(weights)
    if amount_cents == 0 and total > 0 and min(weights) >= 0:
        return [0] * len(weights)
    if amount_cents < 0 or total <= 0 or any(w < 0 for w in weights):
        raise TaxInputError("cannot split", field="weights", value=(amount_cents, list(weights)))
    parts = [amount_cents * w // total for w in weights]
    leftover = amount_cents - sum(parts)
    order = sorted(range(len(weights)), key=lambda i: (-(amount_cents * weights[i] % total), i))
    for i in order[:leftover]:
        parts[i] += 1
    return parts


def check_references(
    fills: Sequence[TaxFill], settlements: Sequence[TaxSettlement], *,
    order_ids: Iterable[str] | None = None, market_tickers: Iterable[str] | None = None,
) -> None:
    """Refuse fills without a known order and settlements for markets we know nothing of."""
    seen: set[str] = set()
    for f in fills:
        if f.fill_id in seen:
            raise TaxInputError("duplicate fill", field="fill_id", value=f.fill_id)
        seen.add(f.fill_id)
    if order_ids is not None:
        known_orders = set(order_ids)
        orphans = [f.fill_id for f in fills if f.order_id not in known_orders]
        if orphans:
            raise TaxInputError(f"{len(orphans)} fill(s) without a matching order",
                                field="fill_id", value=orphans[:5])
    known = set(market_tickers) if market_tickers is not None else {f.ticker for f in fills}
    unknown = sorted({s.ticker for s in settlements} - known)
    if unknown:
        raise TaxInputError("settlement for an unknown market", field="ticker", value=unknown[:5])
    settled: set[str] = set()
    for s in settlements:
        if s.ticker in settled:
            raise TaxInputError("market settled twice", field="ticker", value=s.ticker)
        settled.add(s.ticker)


@dataclass
class _Lot:
    lot_id: str
    series: str
    side: Literal["yes", "no"]
    contracts: int
    price_cents: int
    fee_cents: int
    acquired_ts: datetime


@dataclass
class _Market:
    lots: list[_Lot] = field(default_factory=list)
    settled_at: datetime | None = None
    position: int = 0  # signed YES contracts held: always the signed sum of the open lots


def ordered_events(
    fills: Sequence[TaxFill], settlements: Sequence[TaxSettlement], end: datetime | None,
) -> list[TaxFill | TaxSettlement]:
    """Return fills and settlements in time order (before `end`, if given); at equal times fills
    precede the settlement, and input order breaks the rest."""
    keyed: list[tuple[datetime, int, int, TaxFill | TaxSettlement]] = []
    keyed += [(f.ts, 0, i, f) for i, f in enumerate(fills)]
    keyed += [(s.ts, 1, i, s) for i, s in enumerate(settlements)]
    keyed.sort(key=lambda k: (k[0], k[1], k[2]))
    return [k[3] for k in keyed if end is None or k[0] < end]


def _take(lot: _Lot, k: int) -> tuple[int, int]:
    # remove k contracts from a lot; return (cost, opening fee share rounded half up)
    fee = (2 * lot.fee_cents * k + lot.contracts) // (2 * lot.contracts)
    lot.contracts -= k
    lot.fee_cents -= fee
    return lot.price_cents * k, fee


def _pick(
    market: _Market, fill: TaxFill, qty: int, method: Method, selection: LotSelection | None,
) -> list[tuple[_Lot, int]]:
    if method == "fifo":
        picks: list[tuple[_Lot, int]] = []
        for lot in market.lots:
            if qty == 0:
                break
            k = min(qty, lot.contracts)
            picks.append((lot, k))
            qty -= k
        return picks
    chosen = (selection or {}).get(fill.fill_id)
    if chosen is None:
        raise TaxInputError("specific-lot method needs a lot selection for this closing fill",
                            field="selection", value=fill.fill_id)
    by_id = {lot.lot_id: lot for lot in market.lots}
    picks, used = [], set()
    for lot_id, k in chosen:
        found = by_id.get(lot_id)
        if found is None or lot_id in used:
            raise TaxInputError(f"lot is not open in {fill.ticker} (or selected twice)",
                                field=f"selection[{fill.fill_id}]", value=lot_id)
        lot = found
        if isinstance(k, bool) or not isinstance(k, int) or not 0 < k <= lot.contracts:
            raise TaxInputError(f"lot {lot_id} holds {lot.contracts} contracts",
                                field=f"selection[{fill.fill_id}]", value=k)
        used.add(lot_id)
        picks.append((lot, k))
    if sum(k for _, k in picks) != qty:
        raise TaxInputError(f"selection must cover exactly the {qty} contracts this fill closes",
                            field=f"selection[{fill.fill_id}]", value=list(chosen))
    return picks


def build_lots(
    fills: Sequence[TaxFill], settlements: Sequence[TaxSettlement], *, method: Method = "fifo",
    selection: LotSelection | None = None, end: datetime | None = None,
) -> LotBook:
    """Build lots from every fill and settlement before ``end`` (all of them if None)."""
    if method not in ("fifo", "specific"):
        raise TaxInputError("must be 'fifo' or 'specific'", field="method", value=method)
    if method == "fifo" and selection:
        raise TaxInputError("a lot selection needs method 'specific'", field="method", value=method)
    end = _utc(end, "end") if end is not None else None
    check_references(fills, settlements)
    markets: dict[str, _Market] = {}
    disposals: list[Disposal] = []
    used_selection: set[str] = set()
    for event in ordered_events(fills, settlements, end):
        market = markets.setdefault(event.ticker, _Market())
        if market.settled_at is not None:
            raise TaxInputError(
                f"event after {event.ticker} settled at {market.settled_at.isoformat()}",
                field="ts", value=getattr(event, "fill_id", event.ticker))
        if isinstance(event, TaxSettlement):
            market.settled_at = event.ts
            disposals += _settle(market, event)
            continue
        position = market.position
        closing = 0 if position * event.yes_delta >= 0 else min(abs(position), event.count)
        close_fee, open_fee = split_by_contracts(event.fee_cents, [closing, event.count - closing])
        if closing:
            used_selection.add(event.fill_id)
            picks = _pick(market, event, closing, method, selection)
            fee_parts = split_by_contracts(close_fee, [k for _, k in picks])
            held_price = event.yes_price_cents if position > 0 else 100 - event.yes_price_cents
            for (lot, k), fee_part in zip(picks, fee_parts, strict=True):
                cost, lot_fee = _take(lot, k)
                disposals.append(Disposal(
                    lot.lot_id, event.ticker, lot.series, lot.side, k, lot.acquired_ts, event.ts,
                    cost, lot_fee, held_price * k, fee_part, "close", event.fill_id))
            market.lots = [lot for lot in market.lots if lot.contracts]
            market.position += closing if position < 0 else -closing
        if event.count > closing:
            side: Literal["yes", "no"] = "yes" if event.yes_delta > 0 else "no"
            price = event.yes_price_cents if side == "yes" else 100 - event.yes_price_cents
            market.lots.append(_Lot(event.fill_id, event.series, side, event.count - closing, price,
                                    open_fee, event.ts))
            market.position += event.count - closing if side == "yes" else closing - event.count
    if selection:
        processed = {f.fill_id for f in fills if end is None or f.ts < end}
        all_ids = {f.fill_id for f in fills}
        stray = sorted(k for k in selection
                       if k not in all_ids or (k in processed and k not in used_selection))
        if stray:
            raise TaxInputError("selection names fills that close nothing", field="selection",
                                value=stray[:5])
    open_lots = tuple(
        OpenLot(lot.lot_id, ticker, lot.series, lot.side, lot.contracts, lot.acquired_ts,
                lot.price_cents * lot.contracts, lot.fee_cents)
        for ticker, market in sorted(markets.items()) for lot in market.lots
    )
    return LotBook(tuple(disposals), open_lots)


def _settle(market: _Market, settlement: TaxSettlement) -> list[Disposal]:
    lots, market.lots, market.position = market.lots, [], 0
    if not lots:
        if settlement.fee_cents:
            raise TaxInputError(f"settlement fee on a flat position in {settlement.ticker}",
                                field="fee_cents", value=settlement.fee_cents)
        return []
    fee_parts = split_by_contracts(settlement.fee_cents, [lot.contracts for lot in lots])
    out = []
    for lot, fee_part in zip(lots, fee_parts, strict=True):
        yes_payout = settlement.yes_payout_cents
        payout = yes_payout if lot.side == "yes" else 100 - yes_payout
        out.append(Disposal(
            lot.lot_id, settlement.ticker, lot.series, lot.side, lot.contracts, lot.acquired_ts,
            settlement.ts, lot.price_cents * lot.contracts, lot.fee_cents, payout * lot.contracts,
            fee_part, "settlement", f"settlement:{settlement.ticker}"))
    return out


def cash_flow_cents(
    fills: Sequence[TaxFill], settlements: Sequence[TaxSettlement], *,
    start: datetime | None = None, end: datetime | None = None,
) -> int:
    """Change in cash from trading, fees and settlement in [start, end), from positions alone.

    Independent of lots: a trade of signed YES quantity d at YES price p moves cash by
    -d*p + 100*(NO held before - NO held after) (a YES+NO pair is worth 100), minus its fee;
    settlement pays each YES contract held its payout and each NO contract 100 minus it.
    """
    positions: dict[str, int] = {}
    cash = 0
    for event in ordered_events(fills, settlements, end):
        before = positions.get(event.ticker, 0)
        if isinstance(event, TaxSettlement):
            payout = event.yes_payout_cents
            flow = (before * payout if before > 0 else -before * (100 - payout)) - event.fee_cents
            positions[event.ticker] = 0
        else:
            after = before + event.yes_delta
            no_change = max(-before, 0) - max(-after, 0)
            flow = -event.yes_delta * event.yes_price_cents + 100 * no_change - event.fee_cents
            positions[event.ticker] = after
        if start is None or event.ts >= start:
            cash += flow
    return cash


@dataclass(frozen=True)
class SeriesSummary:
    """Totals of one year's disposals in one series (``series="ALL"`` for the year's total)."""

    year: int
    series: str
    rows: int
    contracts: int
    proceeds_cents: int
    basis_cents: int
    fees_cents: int
    net_cents: int


def summarize(year: int, disposals: Sequence[Disposal]) -> tuple[SeriesSummary, ...]:
    """Return one summary per series (sorted) and a final ``ALL`` line; fees are all fees."""
    def line(series: str, rows: Sequence[Disposal]) -> SeriesSummary:
        return SeriesSummary(
            year, series, len(rows), sum(d.contracts for d in rows),
            sum(d.proceeds_cents for d in rows), sum(d.cost_cents for d in rows),
            sum(d.open_fee_cents + d.close_fee_cents for d in rows),
            sum(d.gain_cents for d in rows))
    series = sorted({d.series for d in disposals})
    out = [line(s, [d for d in disposals if d.series == s]) for s in series]
    return (*out, line("ALL", disposals))


def year_bounds(year: int) -> tuple[datetime, datetime]:
    """The UTC instants [Jan 1 year, Jan 1 year+1)."""
    _int(year, "year", low=1970, high=9998)
    return datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class YearReport:
    """One tax year: its disposals, lots open at year end, summaries and the reconciliation."""

    year: int
    method: Method
    disposals: tuple[Disposal, ...]
    open_lots: tuple[OpenLot, ...]
    summaries: tuple[SeriesSummary, ...]
    realized_cents: int
    cash_change_cents: int
    open_basis_start_cents: int
    open_basis_end_cents: int
    earlier_gains: tuple[tuple[str, int], ...] = ()  # (ticker, gains disposed before the year)
    continuing: tuple[str, ...] = ()  # markets open at year end or traded/settled after it

    @property
    def cash_ties_out(self) -> bool:
        """Realized equals the year's cash change plus the change in the basis of open lots."""
        return self.realized_cents == (
            self.cash_change_cents + self.open_basis_end_cents - self.open_basis_start_cents)


def report_for_year(
    fills: Sequence[TaxFill], settlements: Sequence[TaxSettlement], year: int, *,
    method: Method = "fifo", selection: LotSelection | None = None,
) -> YearReport:
    """Build the lots of ``year`` (history before it sets the lots carried in)."""
    start, end = year_bounds(year)
    if not any(start <= f.ts < end for f in fills) and not any(
            start <= s.ts < end for s in settlements):
        raise NoActivityError(f"no fills or settlements in {year} (UTC)", field="year", value=year)
    at_start = build_lots(fills, settlements, method=method, selection=selection, end=start)
    at_end = build_lots(fills, settlements, method=method, selection=selection, end=end)
    disposals = tuple(d for d in at_end.disposals if d.disposed_ts >= start)
    earlier: dict[str, int] = {}
    for d in at_start.disposals:
        earlier[d.ticker] = earlier.get(d.ticker, 0) + d.gain_cents
    continuing = {lot.ticker for lot in at_end.open_lots}
    continuing |= {f.ticker for f in fills if f.ts >= end}
    continuing |= {s.ticker for s in settlements if s.ts >= end}
    return YearReport(
        year, method, disposals, at_end.open_lots, summarize(year, disposals),
        sum(d.gain_cents for d in disposals),
        cash_flow_cents(fills, settlements, start=start, end=end),
        at_start.open_basis_cents, at_end.open_basis_cents, tuple(sorted(earlier.items())),
        tuple(sorted(continuing)))


def series_from_ticker(ticker: str) -> str:
    """Return the series of a Kalshi market ticker: the part before the first '-'."""
    series, dash, rest = ticker.partition("-")
    if not series or not dash or not rest:
        raise TaxInputError("not a SERIES-EVENT-MARKET ticker", field="ticker", value=ticker)
    return series
