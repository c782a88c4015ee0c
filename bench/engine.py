"""Engine throughput: a synthetic stream of N random orders through models.matching.Engine.

Prints figures; the last line is one JSON object with ``engine_events_per_s`` (calls per second:
submits plus cancels), plus trades/s and fills. Usage: ``python bench/engine.py [N] [seed]``.
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.matching import Engine, EngineReject, MarketSpec, OrderRequest  # noqa: E402

ACCOUNTS = [f"acct-{i}" for i in range(20)]
TICKERS = [f"KXHIGHNY-25JAN01-B{40 + 2 * i}" for i in range(6)]


def build_stream(n: int, seed: int) -> list[tuple[str, object]]:
    """Pre-generate the calls so the timed loop measures the engine only."""
    rng = random.Random(seed)
    stream: list[tuple[str, object]] = []
    for i in range(n):
        if i > 100 and rng.random() < 0.15:
            stream.append(("cancel", rng.randrange(i)))
            continue
        side = "bid" if rng.random() < 0.5 else "ask"
        mid = 50
        price = max(1, min(99, mid + (rng.randint(-6, 2) if side == "bid" else
                                      rng.randint(-2, 6))))
        tif = "immediate_or_cancel" if rng.random() < 0.25 else "good_till_canceled"
        stream.append(("submit", OrderRequest(
            rng.choice(ACCOUNTS), rng.choice(TICKERS), side, price, rng.randint(1, 20), tif,
            stp="maker")))
    return stream


def run(n: int, seed: int) -> dict[str, float]:
    stream = build_stream(n, seed)
    e = Engine()
    for acct in ACCOUNTS:
        e.add_account(acct, 10 ** 12)
    for ticker in TICKERS:
        e.add_market(MarketSpec(ticker, "KXHIGHNY-25JAN01", "KXHIGHNY", 0, 10 ** 12), 0)
    ids: list[tuple[str, str]] = []
    rejects = 0
    start = time.perf_counter()
    cpu_start = time.process_time()
    now = 1
    for kind, arg in stream:
        now += 1
        try:
            if kind == "submit":
                order, _ = e.submit(arg, now)  # type: ignore[arg-type]
                ids.append((order.account_id, order.order_id))
            else:
                acct, oid = ids[arg % len(ids)]  # type: ignore[operator]
                e.cancel(acct, oid, now)
        except EngineReject:
            rejects += 1
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    trades = len(e.trades())
    return {"events": float(n), "seconds": elapsed, "engine_events_per_s": n / elapsed,
            "cpu_seconds": cpu, "cpu_events_per_s": n / cpu,
            "trades": float(trades), "trades_per_s": trades / elapsed,
            "rejects": float(rejects)}


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    result = run(n, seed)
    print(f"events        {int(result['events'])}")
    print(f"seconds       {result['seconds']:.3f}")
    print(f"events/s      {result['engine_events_per_s']:,.0f} wall, "
          f"{result['cpu_events_per_s']:,.0f} per CPU second (other load excluded)")
    print(f"trades        {int(result['trades'])}  ({result['trades_per_s']:,.0f}/s)")
    print(f"rejects       {int(result['rejects'])} (cancels of orders no longer resting)")
    print(json.dumps({"engine_events_per_s": round(result["engine_events_per_s"]),
                      "cpu_events_per_s": round(result["cpu_events_per_s"]),
                      "trades_per_s": round(result["trades_per_s"]), "events": n}))


if __name__ == "__main__":
    main()
