"""Walk-forward evaluation over the replay engine: parameters chosen on earlier event blocks are
scored on the next, never on data they were fitted to.

Invariant: a fold's test events never appear in its training blocks; blocks are whole events.
Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

from models.backtest import (
    BacktestConfig,
    BacktestResult,
    DecisionInput,
    DecisionRecord,
    FillRecord,
    MarketRecord,
    OrderRecord,
    run_backtest,
)
from models.backtest_tape import Tape

__all__ = [
    "Fold",
    "WalkForwardResult",
    "event_blocks",
    "walk_forward",
]


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
