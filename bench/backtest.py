"""Replay throughput: every recorded trade of the weather series through the backtest replay.

Replays all trades in ``<data-dir>/kalshi/weather-events-2024-25/*_trades.parquet`` through
``models.backtest.run_backtest`` (the simulated clock, the fill model and the shared
``models.matching.Engine``) with a fixed probe strategy: one decision per settled event (its
middle bracket) two hours after it opens at P(YES) = 0.5, so the desk takes, rests and fills in
the engine on real prints.
Compares with a bare vectorised pass over the same Parquet files (read, sort by time, per-ticker
volume and VWAP with pandas).

``replay_s`` = read Parquet + validate into a Tape + replay; ``bare_s`` = read Parquet + the
vectorised pass. Both read the same columns. The last line is one JSON object with ``events``,
``events_per_s``, ``replay_s``, ``bare_s``, ``ratio`` (replay_s / bare_s) and the parts.
Usage: ``python bench/backtest.py [--data-dir DIR]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402

from models.backtest import DecisionInput, MarketRecord, run_backtest  # noqa: E402
from tasks.backtest import EVENTS_FOLDER, load_markets, read_trades, tape_from_frame  # noqa: E402

SERIES = ("KXHIGHNY", "KXHIGHCHI", "KXHIGHMIA", "KXHIGHAUS", "KXHIGHDEN")


def _read(folder: Path) -> pd.DataFrame:
    return read_trades(sorted(folder.glob("*_trades.parquet")))


def bare_pass(folder: Path) -> tuple[float, float, int]:
    """Read the Parquet files and compute per-ticker volume and VWAP in time order."""
    start = time.perf_counter()
    cpu = time.process_time()
    frame = _read(folder)
    frame = frame.sort_values("created_time", kind="stable")
    notional = frame["yes_price"] * frame["count"]
    grouped = pd.DataFrame({"ticker": frame["ticker"], "count": frame["count"],
                            "notional": notional}).groupby("ticker", sort=False).sum()
    vwap = grouped["notional"] / grouped["count"]
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu
    if not len(vwap):
        raise SystemExit("bare pass found no trades")
    return elapsed, cpu, len(frame)


def replay(data_dir: Path) -> dict[str, float]:
    folder = data_dir / EVENTS_FOLDER
    markets = [m for m in load_markets(data_dir, SERIES) if m.result]
    start = time.perf_counter()
    cpu = time.process_time()
    frame = _read(folder)
    read_s = time.perf_counter() - start
    read_cpu = time.process_time() - cpu
    tape = tape_from_frame(frame)
    tape_s = time.perf_counter() - start - read_s
    tape_cpu = time.process_time() - cpu - read_cpu
    by_event: dict[str, list[MarketRecord]] = {}
    for m in markets:
        by_event.setdefault(m.event_ticker, []).append(m)
    decisions = []
    for ms in by_event.values():  # the middle bracket of each event, 2 h after it opens
        m = sorted(ms, key=lambda x: x.ticker)[len(ms) // 2]
        decisions.append(DecisionInput(m.event_ticker, m.open_ts_ms + 2 * 3_600_000,
                                       ((m.ticker, 0.5),)))
    # two empty decisions pin the simulated clock to the whole tape: every trade is walked
    decisions += [DecisionInput("bench-start", int(tape.ts_ms[0]), ()),
                  DecisionInput("bench-end", int(tape.ts_ms[-1]) + 1, ())]
    loop_start = time.perf_counter()
    loop_cpu = time.process_time()
    result = run_backtest(tape, markets, decisions)
    loop_s = time.perf_counter() - loop_start
    loop_cpu = time.process_time() - loop_cpu
    cpu = time.process_time() - cpu
    return {"events": result.events_replayed, "read_s": read_s, "tape_s": tape_s,
            "loop_s": loop_s, "replay_s": read_s + tape_s + loop_s, "replay_cpu_s": cpu,
            "read_cpu_s": read_cpu, "tape_cpu_s": tape_cpu, "loop_cpu_s": loop_cpu,
            "decisions": len(decisions) - 2, "orders": len(result.orders),
            "fills": len(result.fills),
            "engine_fill_calls": result.engine_fills, "rows": len(frame),
            "pnl_cents": result.final_cash_cents - result.starting_cash_cents,
            "fill_pnl_cents": sum(f.pnl_cents for f in result.fills)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("/work/shared/data"))
    args = parser.parse_args()
    folder = args.data_dir / EVENTS_FOLDER
    if not folder.is_dir():
        raise SystemExit(f"--data-dir: no {EVENTS_FOLDER} under {args.data_dir}")
    bare_s, bare_cpu_s, rows = bare_pass(folder)
    figures = replay(args.data_dir)
    again = bare_pass(folder)  # best of two: the first read warms the file cache
    bare_s, bare_cpu_s = min(bare_s, again[0]), min(bare_cpu_s, again[1])
    events = int(figures["events"])
    out = {"events": events, "events_per_s": round(events / figures["replay_s"]),
           "loop_events_per_s": round(events / figures["loop_s"]),
           "replay_s": round(figures["replay_s"], 3), "bare_s": round(bare_s, 3),
           "ratio": round(figures["replay_s"] / bare_s, 2),
           "replay_cpu_s": round(figures["replay_cpu_s"], 3), "bare_cpu_s": round(bare_cpu_s, 3),
           "cpu_ratio": round(figures["replay_cpu_s"] / bare_cpu_s, 2),
           "cpu_events_per_s": round(events / figures["replay_cpu_s"]),
           "read_s": round(figures["read_s"], 3), "tape_s": round(figures["tape_s"], 3),
           "loop_s": round(figures["loop_s"], 3),
           "read_cpu_s": round(figures["read_cpu_s"], 3),
           "tape_cpu_s": round(figures["tape_cpu_s"], 3),
           "loop_cpu_s": round(figures["loop_cpu_s"], 3), "decisions": figures["decisions"],
           "orders": figures["orders"],
           "fills": figures["fills"], "engine_fill_calls": figures["engine_fill_calls"],
           "rows": rows, "cash_matches_fills": figures["pnl_cents"] == figures["fill_pnl_cents"]}
    for key, value in out.items():
        print(f"{key:20} {value}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
