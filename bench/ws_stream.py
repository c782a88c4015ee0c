"""WebSocket feed figures: order-book deltas per second from engine to ``KalshiStream``'s local book
over loopback, and the commit-to-local-book latency of single deltas (p50/p99).

Run: ``.venv/bin/python bench/ws_stream.py [--deltas N] [--probes N]``. The last line is one JSON
object with ``deltas_per_s``, ``p50_ms``, ``p99_ms``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kalshi.signing import KalshiAuth, generate_private_key  # noqa: E402
from kalshi.stream import KalshiStream  # noqa: E402
from tests.integration.ws_harness import EngineFeed, serve_feed  # noqa: E402

TICKER = "KXBENCH-26JAN01-B40"


def _submit_many(feed: EngineFeed, n: int, seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(n):  # resting bids only: one delta each, nothing crosses
        feed.submit("maker", TICKER, "bid", rng.randint(1, 49), rng.randint(1, 5))


async def _run(deltas: int, probes: int) -> dict[str, float]:
    key = generate_private_key()
    feed = EngineFeed()
    feed.add_account("key-bench", key.public_key(), "bench")
    feed.add_account("key-maker", generate_private_key().public_key(), "maker", 10**12)
    feed.add_market(TICKER)
    with serve_feed(feed) as server:
        stream = KalshiStream(server.url, KalshiAuth("key-bench", key), quiet_snapshot_s=None,
                              queue_size=1)  # books only: data messages are not queued
        async with stream:
            await stream.subscribe("orderbook_delta", [TICKER])
            await stream.wait_books([TICKER])

            def resting() -> int:
                book = stream.book(TICKER)
                return 0 if book is None else int(sum(q for _, q in book.yes))

            expected = sum(q for _, q in (await server.acall(feed.book, TICKER)).yes)
            start = time.perf_counter()
            await server.acall(_submit_many, feed, deltas, 1)
            expected = sum(q for _, q in (await server.acall(feed.book, TICKER)).yes)
            while resting() != expected:
                await asyncio.sleep(0.0005)
            elapsed = time.perf_counter() - start

            latencies = []
            for i in range(probes):
                before = resting()
                sent = time.perf_counter()
                await server.acall(feed.submit, "maker", TICKER, "bid", 1 + i % 49, 1)
                while resting() != before + 1:
                    await asyncio.sleep(0)
                latencies.append((time.perf_counter() - sent) * 1000)
    latencies.sort()
    return {
        "deltas": deltas,
        "deltas_per_s": round(deltas / elapsed),
        "p50_ms": round(latencies[len(latencies) // 2], 3),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 3),
        "seq_gaps": stream.seq_gap_count,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--deltas", type=int, default=20_000)
    parser.add_argument("--probes", type=int, default=300)
    args = parser.parse_args()
    figures = asyncio.run(_run(args.deltas, args.probes))
    print(f"{figures['deltas']} deltas engine -> local book: {figures['deltas_per_s']}/s")
    print(f"single delta commit -> local book: p50 {figures['p50_ms']} ms, "
          f"p99 {figures['p99_ms']} ms")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
