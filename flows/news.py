"""Flows of the news path: ``poll-news`` (scheduled audit trail) and ``news-watcher`` (fast path).

Invariant: both only compose tasks. ``poll-news`` polls each source that is due (its interval
since the last poll recorded in the ledger has passed), stores every item once and never trades.
``news-watcher`` runs for ``duration_s``: pollers at each source's interval plus a webhook on
127.0.0.1, acting on rule firings through the order gateway; a rule file edited while it runs is
reloaded, and a file with errors is refused while the previous rules stay in force. Both record a
heartbeat and leave a table artifact of what they did.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact

from kalshi.paper.server import serve_in_thread
from models.edge import EdgeParams
from models.ledger import ms_from_datetime
from models.news_rules import reload_rules
from models.orderkey import decision_slot
from models.risk import RiskLimits
from tasks.kalshi_client import kalshi_client
from tasks.news import (
    DEFAULT_RULES_PATH,
    DEFAULT_SOURCES,
    FeedSource,
    load_rules_file,
    poll_news_source,
    read_feed_state,
)
from tasks.news_watcher import NewsWatcher, WatcherConfig, webhook_app
from tasks.settings import load_settings
from tasks.trading import ledger, record_run_heartbeat

__all__ = ["news_watcher", "poll_news", "refresh_weather"]


def _sources(raw: Sequence[dict[str, Any]] | None) -> tuple[FeedSource, ...]:
    return DEFAULT_SOURCES if raw is None else tuple(FeedSource.from_dict(r) for r in raw)


@flow(name="poll-news")
def poll_news(sources: list[dict[str, Any]] | None = None,
              as_of: datetime | None = None) -> list[dict[str, Any]]:
    """Poll every due news source once and store its items (no trading)."""
    logger = get_run_logger()
    as_of = (as_of or datetime.now(UTC)).astimezone(UTC)
    engine = ledger()
    rows: list[dict[str, Any]] = []
    for source in _sources(sources):
        state = read_feed_state(engine, source.name)
        if state is not None and state.last_poll_ts_ms is not None:
            since_s = (ms_from_datetime(as_of) - state.last_poll_ts_ms) / 1000
            if since_s < source.interval_s:
                rows.append({"source": source.name, "status": "not due",
                             "error": f"polled {since_s:.0f}s ago (< {source.interval_s}s)",
                             "items": 0, "new": 0, "refused": [], "elapsed_ms": 0})
                continue
        rows.append(poll_news_source(source, as_of))
    create_table_artifact(table=[{**r, "refused": "; ".join(r["refused"])} for r in rows],
                          key="poll-news", description=f"News poll at {as_of.isoformat()}")
    new = sum(int(r["new"]) for r in rows)
    record_run_heartbeat("poll-news", as_of, f"{len(rows)} sources, {new} new items")
    logger.info("poll-news: %d sources, %d new items", len(rows), new)
    return rows


def refresh_weather(series: Sequence[str], as_of: datetime) -> str:
    """Re-price `series` now with the weather model and send its orders (the weather cycle)."""
    from tasks.trading import (
        decide_markets,
        fetch_forecasts,
        fetch_weather_markets,
        place_orders,
        sync_orders,
    )

    chosen = [s for s in series if s.startswith("KXHIGH")]
    if not chosen:
        return f"no weather model for {', '.join(series)}"
    sync = sync_orders.fn(as_of, 30.0)
    markets, skips = fetch_weather_markets.fn(chosen, as_of, sync.resting)
    forecasts = fetch_forecasts.fn(sorted({(m.series_ticker, m.day) for m in markets}), as_of)
    cycle = decide_markets.fn(markets, forecasts, as_of, sync.equity_cents, "weather-v0")
    outcomes = place_orders.fn(cycle, sync, as_of, "weather-v0", 600)
    return (f"refreshed {', '.join(chosen)} at slot {decision_slot(as_of, 600)}: "
            f"{len(markets)} markets, {len(skips)} skipped, {len(outcomes)} order changes")


@flow(name="news-watcher")
def news_watcher(duration_s: float = 3300.0, sources: list[dict[str, Any]] | None = None,
                 rules_path: str | None = None, port: int = 8780,
                 min_depth_contracts: int = 10, strategy: str = "news-v0",
                 reload_every_s: float = 5.0) -> dict[str, Any]:
    """Watch feeds and the webhook for `duration_s`, acting on rule firings immediately."""
    logger = get_run_logger()
    settings = load_settings()
    path = Path(rules_path) if rules_path else DEFAULT_RULES_PATH
    rules = load_rules_file(path)  # a bad file at start fails the run: nothing to fall back on
    started = datetime.now(UTC)
    engine = ledger(settings)
    token = settings.news_webhook_token
    config = WatcherConfig(strategy=strategy, min_depth_contracts=min_depth_contracts,
                           order_ttl_s=settings.order_ttl_s,
                           order_group_limit=settings.order_group_contracts_limit,
                           webhook_token=token.get_secret_value() if token else None)
    with kalshi_client(settings, ledger=engine) as client:  # calls counted for the guard
        watcher = NewsWatcher(engine=engine, client=client, rules=rules,
                              sources=_sources(sources), config=config,
                              limits=RiskLimits.from_settings(settings),
                              params=EdgeParams.from_settings(settings),
                              refresh=refresh_weather, user_agent=settings.nws_user_agent)
        mtime = path.stat().st_mtime
        with serve_in_thread(webhook_app(watcher), port=port) as url, watcher.running():
            logger.info("news-watcher: webhook %s/news, rules v%d (%s), %d sources", url,
                        rules.version, rules.digest, len(watcher.sources))
            deadline = time.monotonic() + duration_s
            while time.monotonic() < deadline:
                time.sleep(min(reload_every_s, max(deadline - time.monotonic(), 0)))
                if path.stat().st_mtime != mtime:
                    mtime = path.stat().st_mtime
                    new, error = reload_rules(watcher.rules, path.read_text(encoding="utf-8"),
                                              origin=str(path))
                    if error is not None:
                        logger.error("news rules NOT reloaded, v%d stays in force: %s",
                                     watcher.rules.version, error)
                    elif new is not None:
                        watcher.rules = new
                        logger.info("news rules reloaded: v%d (%s)", new.version, new.digest)
            watcher.wait_idle(30.0)
    stats = watcher.stats
    summary = {"received": stats.received, "duplicates": stats.duplicates,
               "refused": stats.refused, "fired": stats.fired, "orders_acked": stats.orders_acked,
               "outcomes": stats.outcomes, "poll_errors": stats.poll_errors[-20:],
               "reaction_ms": sorted(stats.reaction_ms)[-5:]}
    create_table_artifact(table=[{"outcome": k, "count": v} for k, v in stats.outcomes.items()],
                          key="news-watcher", description=f"News watcher from "
                                                          f"{started.isoformat()}")
    record_run_heartbeat("news-watcher", datetime.now(UTC),
                         f"{stats.received} items, {stats.orders_acked} orders acknowledged")
    return summary
