"""Liquidity driver figures: synthetic step cost over all 84 KXHIGH markets and replay throughput.

Runs a real PaperExchange on a temporary SQLite file (synchronous=FULL, the default). The last line
printed is one JSON object. Usage: ``.venv/bin/python bench/liquidity.py [DATA_DIR]``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

from kalshi.paper.exchange import PaperExchange
from kalshi.paper.liquidity import start_liquidity
from models.liquidity import TakerConfig

START_MS = 1_795_000_000_000  # 2026-11-18
STEPS = 30


async def synthetic(db: Path) -> dict[str, float]:
    t0 = time.monotonic()
    exchange = PaperExchange(db, clock=lambda: START_MS + int((time.monotonic() - t0) * 60_000))
    await exchange.start()
    handle = start_liquidity(exchange, "synthetic", seed=1, interval_s=0.001,
                             taker=TakerConfig(prob_per_step=0.1))
    while handle.stats.steps < 1:
        await asyncio.sleep(0.001)
    steps0, placed0, started = handle.stats.steps, handle.stats.orders_placed, time.perf_counter()
    while handle.stats.steps < steps0 + STEPS:
        await asyncio.sleep(0.001)
    elapsed = time.perf_counter() - started
    steps = handle.stats.steps - steps0
    placed = handle.stats.orders_placed - placed0
    await handle.aclose()
    await exchange.stop()
    exchange.close()
    return {"markets": len(exchange.market_tickers()), "synthetic_step_ms": 1000 * elapsed / steps,
            "synthetic_orders_per_step": placed / steps}


async def replay(db: Path, data_dir: Path) -> dict[str, float]:
    now = [START_MS]
    exchange = PaperExchange(db, clock=lambda: now[0])
    await exchange.start()
    handle = start_liquidity(exchange, "replay", data_dir=data_dir, event_ticker="KXHIGHNY-25MAY08",
                             speed=100_000, interval_s=0.001)
    while handle.stats.steps < 1:
        await asyncio.sleep(0.001)
    started = time.perf_counter()
    now[0] += 10_000_000  # every recorded trade falls due at once
    while handle.stats.trades_replayed < 1500:
        await asyncio.sleep(0.001)
    elapsed = time.perf_counter() - started
    replayed = handle.stats.trades_replayed
    await handle.aclose()
    await exchange.stop()
    exchange.close()
    return {"replay_trades": replayed, "replay_trades_per_s": replayed / elapsed}


def main() -> None:
    data_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else (
        Path(__file__).resolve().parents[2] / "shared" / "data" / "kalshi" /
        "weather-events-2024-25")
    with tempfile.TemporaryDirectory() as tmp:
        figures = asyncio.run(synthetic(Path(tmp) / "synthetic.db"))
        print(f"synthetic: {figures['markets']} markets, {figures['synthetic_step_ms']:.1f} ms "
              f"per step, {figures['synthetic_orders_per_step']:.0f} orders placed per step")
        if data_dir.is_dir():
            figures |= asyncio.run(replay(Path(tmp) / "replay.db", data_dir))
            print(f"replay: {figures['replay_trades']} recorded trades at "
                  f"{figures['replay_trades_per_s']:.0f} trades/s through the exchange")
        else:
            print(f"replay: skipped, no data directory at {data_dir}")
    print(json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in figures.items()}))


if __name__ == "__main__":
    main()
