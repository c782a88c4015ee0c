"""News reaction time on loopback: item arrival at the watcher -> order acknowledged by the paper
exchange (webhook path, >= 200 items), and item published -> order acknowledged for a polled local
RSS feed at its configured interval.

Everything is real except the network distance: the paper exchange (uvicorn, SQLite, RSA-PSS
signature checks), the SQLite ledger (WAL), the risk gate, the order gateway, the watcher's
webhook (Starlette/uvicorn) and the feed server. Each webhook item is a vendor item tagged with
its own market (one fresh market per item, two-sided book, traded volume, a seeded 50% model
probability); the matching rule shifts the log-odds by +0.7, which makes buying YES at 55c a take.
The polled feed gets one new RSS item at a time, each matching its own rule and series.

By default items are pushed one at a time (each after the previous order was acknowledged), so
the figure is the reaction to an isolated headline; ``--push-gap S`` pushes open loop every S
seconds and then includes queueing behind earlier items (throughput).

Usage: python bench/news_latency.py [--items 210] [--poll-items 20] [--poll-interval 0.25]
Last line: {"n", "p50_ms", "p99_ms", "poll_n", "poll_p50_ms", "poll_p99_ms", ...}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kalshi.client import KalshiClient  # noqa: E402
from kalshi.paper.server import serve_in_thread  # noqa: E402
from kalshi.signing import KalshiAuth, generate_private_key  # noqa: E402
from models.news_rules import load_rules  # noqa: E402
from tasks.db import ledger_engine, upgrade_ledger  # noqa: E402
from tasks.news import FeedSource  # noqa: E402
from tasks.news_watcher import NewsWatcher, WatcherConfig, webhook_app  # noqa: E402
from tests.integration._news_helpers import (  # noqa: E402
    FeedScript,
    add_markets,
    feed_app,
    make_book,
    seed_model,
)
from tests.integration.conftest import http, register_key  # noqa: E402

BALANCE_CENTS = 100_000_000  # $1M: the daily-loss limit must not stop the run


@contextmanager
def _exchange_process(db: Path) -> Iterator[str]:
    # the paper exchange is a separate venue: its own process (as in production, where the
    # exchange is remote), so it does not share this process's GIL with the watcher
    proc = subprocess.Popen([sys.executable, "-m", "kalshi.paper.server", "--db", str(db),
                             "--port", "0"], stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[1])
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line.startswith("listening "):
            raise RuntimeError(f"paper exchange did not start: {line!r}")
        yield line.split(" ", 1)[1]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def _rules(poll_items: int) -> str:
    lines = ["version: 1", "rules:",
             "  - id: vendor-push", "    source: vendor", "    pattern: '(?i)bench headline'",
             "    series: [KXNEWSB]", "    effect: shift", "    weight: 0.7", "    ttl: 1h"]
    for i in range(poll_items):
        lines += [f"  - id: poll-{i:03d}", "    source: bench-feed",
                  f"    pattern: 'bench poll item {i:03d}\\b'", "    field: title",
                  f"    series: [KXPOLLB{i:03d}]", "    effect: shift", "    weight: 0.7",
                  "    ttl: 1h"]
    return "\n".join(lines) + "\n"


def _rss(entries: list[tuple[int, datetime]]) -> bytes:
    items = "".join(
        f"<item><guid>bench-poll-{i:03d}</guid><title>bench poll item {i:03d}</title>"
        f"<pubDate>{format_datetime(ts, usegmt=True)}</pubDate></item>" for i, ts in entries)
    return (f"<?xml version='1.0'?><rss version='2.0'><channel><title>bench</title>{items}"
            "</channel></rss>").encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=210)
    parser.add_argument("--poll-items", type=int, default=20)
    parser.add_argument("--poll-interval", type=float, default=0.25)
    parser.add_argument("--push-gap", type=float, default=0.0,
                        help="seconds between pushes (open loop); 0: push each item after the "
                             "previous one was acknowledged (closed loop, no queueing)")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="news-bench-"))
    key, other = generate_private_key(), generate_private_key()
    url = f"sqlite:///{tmp / 'ledger.sqlite'}"
    upgrade_ledger(url)
    engine = ledger_engine(url)
    script = FeedScript()
    with _exchange_process(tmp / "exchange.sqlite") as root, \
            serve_in_thread(feed_app(script)) as feeds:
        operator = f"{root}/operator"
        register_key(operator, "bench-key", key, balance_cents=BALANCE_CENTS)
        register_key(operator, "bench-other", other, balance_cents=BALANCE_CENTS)
        base = f"{root}/trade-api/v2"
        setup_started = time.perf_counter()
        push_markets = [(f"KXNEWSB-26JAN01-M{i:03d}", f"KXNEWSB-26JAN01-E{i:03d}")
                        for i in range(args.items)]
        poll_markets = [(f"KXPOLLB{i:03d}-26JAN01-M", f"KXPOLLB{i:03d}-26JAN01")
                        for i in range(args.poll_items)]
        add_markets(operator, "KXNEWSB", push_markets, category="Bench")
        for i, market in enumerate(poll_markets):
            add_markets(operator, f"KXPOLLB{i:03d}", [market], category="Bench")
        with KalshiClient(base, KalshiAuth("bench-other", other), timeout=30) as counterparty:
            make_book(root, operator, counterparty, [t for t, _ in push_markets + poll_markets])
        now = datetime.now(UTC)
        for ticker, event in push_markets + poll_markets:
            seed_model(engine, ticker, event, 0.50, now)
        setup_s = time.perf_counter() - setup_started

        source = FeedSource("bench-feed", f"{feeds}/bench.xml", "feed", args.poll_interval)
        script.set("/bench.xml", _rss([]), "application/rss+xml")
        rules = load_rules(_rules(args.poll_items), origin="bench-rules")
        with KalshiClient(base, KalshiAuth("bench-key", key), timeout=30) as client:
            watcher = NewsWatcher(engine=engine, client=client, rules=rules, sources=[source],
                                  config=WatcherConfig(strategy="news-bench"))
            with serve_in_thread(webhook_app(watcher)) as hook, watcher.running(), \
                    http(base_url=hook, timeout=30) as web:
                # webhook path
                for i, (ticker, _event) in enumerate(push_markets):
                    item = {"source": "vendor", "id": f"bench-{i:04d}",
                            "title": f"bench headline {i}", "tickers": [ticker],
                            "published": datetime.now(UTC).isoformat()}
                    acked = watcher.stats.orders_acked
                    response = web.post("/news", json=item)
                    assert response.status_code == 202, response.text
                    if args.push_gap > 0:  # open loop: a burst, queueing included
                        time.sleep(args.push_gap)
                        continue
                    deadline = time.perf_counter() + 30  # closed loop: one headline at a time
                    while (watcher.stats.orders_acked == acked
                           and time.perf_counter() < deadline):
                        time.sleep(0.001)
                    time.sleep(0.02)
                watcher.wait_idle(60)
                push_ms = list(watcher.stats.reaction_ms)
                stages = {name: round(statistics.median(st[name] for st in
                                                        watcher.stats.stages_ms), 1)
                          for name in ("intake", "reads", "plan", "gateway")}
                outcomes_push = dict(watcher.stats.outcomes)
                # polled path: publish one item at a time into the feed, wait for its ack
                poll_ms: list[float] = []
                entries: list[tuple[int, datetime]] = []
                for i in range(args.poll_items):
                    acked = watcher.stats.orders_acked
                    time.sleep(args.poll_interval * (0.3 + 0.7 * ((i * 37) % 10) / 10))
                    entries.append((i, datetime.now(UTC)))
                    published = time.perf_counter()
                    script.set("/bench.xml", _rss(entries[-5:]), "application/rss+xml")
                    deadline = published + 10 * args.poll_interval + 5
                    while watcher.stats.orders_acked == acked and time.perf_counter() < deadline:
                        time.sleep(0.001)
                    if watcher.stats.orders_acked > acked:
                        poll_ms.append((time.perf_counter() - published) * 1000)
                watcher.wait_idle(30)
                outcomes_all = dict(watcher.stats.outcomes)
    engine.dispose()
    for name, values in (("webhook", push_ms), ("poll", poll_ms)):
        if values:
            print(f"{name}: n={len(values)} p50={statistics.median(values):.1f} ms "
                  f"p99={_percentile(values, 0.99):.1f} ms max={max(values):.1f} ms")
    print(f"setup {setup_s:.1f}s; outcomes after webhook {outcomes_push}; all {outcomes_all}")
    result = {
        "n": len(push_ms), "items_pushed": args.items,
        "p50_ms": round(statistics.median(push_ms), 1) if push_ms else None,
        "p99_ms": round(_percentile(push_ms, 0.99), 1) if push_ms else None,
        "max_ms": round(max(push_ms), 1) if push_ms else None,
        "poll_n": len(poll_ms), "poll_interval_s": args.poll_interval,
        "poll_p50_ms": round(statistics.median(poll_ms), 1) if poll_ms else None,
        "poll_p99_ms": round(_percentile(poll_ms, 0.99), 1) if poll_ms else None,
        "target_p99_ms": 500, "push_gap_s": args.push_gap, "stage_p50_ms": stages,
        "load_avg_1m": round(os.getloadavg()[0], 2), "cpus": os.cpu_count(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
