"""A year's tax lots reconciled with the cash flows and with the ledger's own books, to the cent.

Invariant: a method difference (ledger average cost vs lots FIFO/specific) is never reported as a
mismatch, nor is a real mismatch hidden. A year is reconciled market by market: exactly for markets
that close in it, by each market's lifetime cash flow for markets that continue past it; see
``Reconciliation`` for the rules.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from models.tax import (
    TaxFill,
    TaxSettlement,
    YearReport,
    cash_flow_cents,
    ordered_events,
    year_bounds,
)

__all__ = [
    "LedgerMarket",
    "Reconciliation",
    "reconcile",
    "settlement_positions",
    "market_cash_flows",
]


@dataclass(frozen=True)
class LedgerMarket:
    """The ledger's own books of one market, lifetime: realized P&L (average cost, before fees),
    fees, and the cost basis still held (``None`` when unknown: the book check is then skipped)."""

    ticker: str
    contracts: int
    realized_cents: int
    fees_cents: int
    closed_ts: datetime | None  # when the position went flat (settled or traded out), else None
    settled_contracts: int | None = None  # the signed position the ledger settled, if settled
    cost_cents: int | None = None  # basis of the contracts held (average cost, before fees)

    @property
    def cash_cents(self) -> int | None:
        """The market's lifetime cash flow by the ledger's books: realized - held cost - fees.

        The ledger's invariant (``models.ledger.NetPosition``) is realized = payouts - paid + held
        cost, so this is payouts - money paid - fees, whatever cost method the ledger uses.
        """
        if self.cost_cents is None:
            return None
        return self.realized_cents - self.cost_cents - self.fees_cents


@dataclass(frozen=True)
class Reconciliation:
    """The export against the cash flows and against the ledger's books, to the cent.

    Per market of the year, with the ledger's books (average cost, fees expensed) on one side and
    the lots (FIFO or specific, fees in basis and disposal) on the other:
    - a market the ledger shows flat with its closing time in the year: its lifetime gain in the
      lots (this year's rows plus rows of earlier years) must equal the ledger's lifetime realized
      P&L after fees, exactly: once a market is flat, every cost method realizes the same total.
      Its part of ``ledger_realized_cents`` is that lifetime figure less what earlier years'
      exports already reported. A difference goes to ``unmatched`` as (ticker, lots, ledger).
    - a market that continues past year end (lots still open at year end, or traded or settled
      again after it) with rows this year, e.g. a partial close: average cost and FIFO
      legitimately realize different amounts until the market is flat for good, and the ledger
      keeps no per-year history, so its realized P&L is not comparable. Its rows are summed in
      ``continuing_gains_cents`` and listed in ``continuing_markets`` as (ticker, lots' gain this
      year, ledger realized before fees, lifetime); what is checked for it instead is the
      cash-flow identity below. It adds to ``ledger_realized_cents`` in the year it closes.
    - any other market with rows this year (the ledger does not show it closed this year, yet
      nothing happens in it after the year): ``unmatched`` (ticker, lots, 0).
    - every market of the ledger or of this year's lots: the ledger's books must account for
      exactly the cash its fills and settlements moved, lifetime (``LedgerMarket.cash_cents``
      against ``market_cash_flows``); a difference (a fill missing from the ledger, a position
      booked wrong) goes to ``book_mismatches`` as (ticker, ledger cents, fills cents), whatever
      year it happened in: the lots of every year are built from those same fills.
    ``position_mismatches`` lists markets closed in the year whose settled position in the ledger
    differs from what its fills add up to, as (ticker, ledger contracts, fills contracts).
    """

    year: int
    net_gain_cents: int
    ledger_realized_cents: int
    cash_change_cents: int
    open_basis_start_cents: int
    open_basis_end_cents: int
    unmatched: tuple[tuple[str, int, int], ...]
    position_mismatches: tuple[tuple[str, int, int], ...] = ()
    continuing_gains_cents: int = 0
    continuing_markets: tuple[tuple[str, int, int], ...] = ()
    book_mismatches: tuple[tuple[str, int, int], ...] = ()

    @property
    def cash_ties_out(self) -> bool:
        """Net gain = cash change + basis open at year end - basis open at year start."""
        return self.net_gain_cents == (
            self.cash_change_cents + self.open_basis_end_cents - self.open_basis_start_cents)

    @property
    def ledger_ties_out(self) -> bool:
        """Net gain = the ledger's realized P&L of markets closed in the year + the rows of
        markets continuing past it, and every per-market check holds."""
        return (self.net_gain_cents == self.ledger_realized_cents + self.continuing_gains_cents
                and not self.unmatched and not self.position_mismatches
                and not self.book_mismatches)

    @property
    def ties_out(self) -> bool:
        """Both reconciliations hold."""
        return self.cash_ties_out and self.ledger_ties_out


def settlement_positions(
    fills: Sequence[TaxFill], settlements: Sequence[TaxSettlement],
) -> dict[str, int]:
    """Return the signed YES position each settled market held at settlement, from fills alone."""
    positions: dict[str, int] = {}
    out: dict[str, int] = {}
    for event in ordered_events(fills, settlements, None):
        if isinstance(event, TaxSettlement):
            out[event.ticker] = positions.get(event.ticker, 0)
        else:
            positions[event.ticker] = positions.get(event.ticker, 0) + event.yes_delta
    return out


def market_cash_flows(
    fills: Sequence[TaxFill], settlements: Sequence[TaxSettlement],
) -> dict[str, int]:
    """Return each market's lifetime cash flow (trades, fees, settlement) from the events alone."""
    by_fills: dict[str, list[TaxFill]] = {}
    by_settlements: dict[str, list[TaxSettlement]] = {}
    for f in fills:
        by_fills.setdefault(f.ticker, []).append(f)
    for s in settlements:
        by_settlements.setdefault(s.ticker, []).append(s)
    return {ticker: cash_flow_cents(by_fills.get(ticker, []), by_settlements.get(ticker, []))
            for ticker in sorted(set(by_fills) | set(by_settlements))}


def reconcile(
    report: YearReport, ledger: Sequence[LedgerMarket], *,
    fill_positions: Mapping[str, int] | None = None,
    fill_cash: Mapping[str, int] | None = None,
) -> Reconciliation:
    """Compare ``report`` with its cash flows, the ledger's books and (if given) the positions
    its fills held at settlement (``settlement_positions``) and each market's cash flow
    (``market_cash_flows``). See ``Reconciliation`` for the rules."""
    start, end = year_bounds(report.year)
    in_year = [m for m in ledger if m.closed_ts is not None and start <= m.closed_ts < end]
    mismatches = tuple(
        (m.ticker, m.settled_contracts, fill_positions.get(m.ticker, 0)) for m in in_year
        if fill_positions is not None and m.settled_contracts is not None
        and m.settled_contracts != fill_positions.get(m.ticker, 0))
    closed = {m.ticker: m.realized_cents - m.fees_cents for m in in_year if m.contracts == 0}
    earlier = dict(report.earlier_gains)
    this_year: dict[str, int] = {}
    for d in report.disposals:
        this_year[d.ticker] = this_year.get(d.ticker, 0) + d.gain_cents
    open_at_end = {lot.ticker for lot in report.open_lots}
    continuing = set(report.continuing) | open_at_end
    books = {m.ticker: m for m in ledger}
    unmatched: list[tuple[str, int, int]] = []
    ledger_year = 0
    for ticker, ledger_cents in sorted(closed.items()):
        lifetime = earlier.get(ticker, 0) + this_year.get(ticker, 0)
        if lifetime != ledger_cents:
            unmatched.append((ticker, lifetime, ledger_cents))
        ledger_year += ledger_cents - earlier.get(ticker, 0)
    continuing_markets: list[tuple[str, int, int]] = []
    for ticker in sorted(set(this_year) - set(closed)):
        if ticker in continuing:
            held = books.get(ticker)
            ledger_realized = 0 if held is None else held.realized_cents
            continuing_markets.append((ticker, this_year[ticker], ledger_realized))
        else:
            unmatched.append((ticker, this_year[ticker], 0))
    book_mismatches: list[tuple[str, int, int]] = []
    if fill_cash is not None:
        for ticker in sorted(set(books) | set(this_year) | open_at_end):
            market = books.get(ticker)
            ledger_cash = 0 if market is None else market.cash_cents
            if ledger_cash is not None and ledger_cash != fill_cash.get(ticker, 0):
                book_mismatches.append((ticker, ledger_cash, fill_cash.get(ticker, 0)))
    return Reconciliation(
        report.year, report.realized_cents, ledger_year, report.cash_change_cents,
        report.open_basis_start_cents, report.open_basis_end_cents,
        tuple(sorted(unmatched)), mismatches, sum(g for _, g, _ in continuing_markets),
        tuple(continuing_markets), tuple(book_mismatches))
