"""Every eventdesk flow as a Prefect deployment: schedules, run-form parameters, tags, limits.

Invariants:
- Every schedule carries an explicit IANA time zone (a schedule without one runs in UTC, silently).
- Every deployment that places or cancels orders has ``concurrency_limit=1`` with ``CANCEL_NEW``:
  a scan never overlaps another one, and a late run is cancelled rather than queued on stale data
  (the kill switch queues instead: a second kill must still run).
- Every flow parameter has a description, which the Prefect UI shows in the run form
  (``tests/unit/test_definitions.py`` fails when a flow gains an undescribed parameter).
- Only flows that exist are deployed, each imported explicitly: a missing flow is an ImportError.

``build_deployments(env)`` returns the ``RunnerDeployment`` objects ``deployments/serve.py`` serves;
``prefect.yaml`` describes the same deployments for a work pool.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron, Schedule

from flows.backtest import backtest
from flows.export_taxes import YEARLY_CRON, export_tax_year
from flows.guard import guard
from flows.kill import cancel_all_orders, kill_switch, resume
from flows.news import news_watcher, poll_news
from flows.reconcile import reconcile
from flows.record_forecasts import record_forecasts
from flows.trade_weather import trade_weather

__all__ = [
    "CANCEL_NEW_LIMIT",
    "DeploymentSpec",
    "SPECS",
    "build_deployments",
    "deployment_names",
]

CANCEL_NEW_LIMIT = ConcurrencyLimitConfig(
    limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW
)
ENQUEUE_LIMIT = ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE)

_AS_OF = "Decision time (UTC). Leave empty to use the time the run starts."
_HEARTBEATS = ("Maximum age in seconds of each flow's heartbeat before the breaker trips "
               "(empty: the defaults of tasks.safety).")
_FEEDS = ("Maximum age in seconds of each data feed before the breaker trips "
          "(empty: the defaults of tasks.safety).")
_LIMITS = ("Overrides of the risk limits for this run only, "
           "e.g. {\"daily_loss_fraction\": \"0.02\"}.")


@dataclass(frozen=True)
class DeploymentSpec:
    """One deployment: the flow, its schedules and how the UI presents it."""

    flow: Any
    name: str  # deployment name before the ``-<env>`` suffix
    description: str
    tags: tuple[str, ...]
    schedules: Callable[[], list[Schedule]] = list
    parameters: dict[str, Any] = field(default_factory=dict)
    descriptions: dict[str, str] = field(default_factory=dict)
    concurrency: ConcurrencyLimitConfig | None = None
    needs_internet: bool = False  # offline desks keep its schedules inactive (no real feeds)


SPECS: tuple[DeploymentSpec, ...] = (
    DeploymentSpec(
        trade_weather,
        "trade-weather",
        "Trade the KXHIGH weather markets once: forecasts -> probabilities -> risk-gated orders. "
        "Refuses to act when the run starts more than max_late_s late.",
        ("trading", "weather", "places-orders"),
        # Kalshi lists KXHIGH events around the clock; the flow trades only open markets, so a
        # run while nothing is open (exchange maintenance) does nothing.
        lambda: [Cron("*/10 * * * *", timezone="America/New_York")],
        descriptions={
            "as_of": _AS_OF,
            "series": "KXHIGH series to trade, e.g. [\"KXHIGHNY\"] (empty: every supported city).",
            "dry_run": "Decide and record, but send no orders.",
            "strategy": "Strategy name recorded on every decision and order key.",
            "interval_s": "The schedule interval in seconds (order keys are bucketed by it).",
            "max_late_s": "Refuse to act if the run starts more than this many seconds late.",
            "resolve_after_s": "Resolve an order whose outcome is unknown after this many seconds.",
        },
        concurrency=CANCEL_NEW_LIMIT,
    ),
    DeploymentSpec(
        record_forecasts,
        "record-forecasts",
        "Archive every settlement station's NWS forecast (issue time, fetch time, valid date).",
        ("weather", "data"),
        lambda: [Cron("7 * * * *", timezone="UTC")],
        descriptions={
            "series": "KXHIGH series whose stations to record (empty: every supported city).",
            "days_ahead": "Also record this many days after today (0..7).",
        },
    ),
    DeploymentSpec(
        reconcile,
        "reconcile",
        "Compare the exchange's orders, fills, positions and balance with the ledger; import "
        "explained differences, halt trading on unexplained ones.",
        ("risk", "reconcile"),
        lambda: [Cron("*/5 * * * *", timezone="UTC")],
        descriptions={"as_of": _AS_OF},
        concurrency=CANCEL_NEW_LIMIT,
    ),
    DeploymentSpec(
        guard,
        "guard",
        "Evaluate every circuit breaker; a trip halts trading and cancels every resting order.",
        ("risk", "guard", "places-orders"),
        lambda: [Cron("* * * * *", timezone="UTC")],
        descriptions={"as_of": _AS_OF, "heartbeats": _HEARTBEATS, "feeds": _FEEDS,
                      "limits": _LIMITS},
        concurrency=CANCEL_NEW_LIMIT,
    ),
    DeploymentSpec(
        kill_switch,
        "kill-switch",
        "Halt trading and cancel every resting order. Run by hand or by the automations.",
        ("risk", "kill", "places-orders"),
        descriptions={
            "reason": "Why trading is halted (recorded with the halt).",
            "by": "Who or what pulled the switch (a person's name, an automation).",
            "strategy": "Only this strategy's orders are cancelled (one call to its exchange "
                        "order group); empty = every order. The halt blocks all new orders.",
        },
        concurrency=ENQUEUE_LIMIT,
    ),
    DeploymentSpec(
        cancel_all_orders,
        "cancel-all",
        "Cancel every resting order (no halt). Run by hand or by the missing-heartbeat automation.",
        ("risk", "cancel-all", "places-orders"),
        descriptions={
            "reason": "Why every order is cancelled (recorded).",
            "by": "Who or what asked for it (a person's name, an automation).",
        },
        concurrency=ENQUEUE_LIMIT,
    ),
    DeploymentSpec(
        resume,
        "resume-trading",
        "Clear every halt, if no breaker still trips and no unexplained drift remains (the run "
        "fails naming the breakers or differences).",
        ("risk", "resume"),
        descriptions={
            "reason": "Why it is safe to trade again (recorded).",
            "by": "Who resumes trading.",
            "heartbeats": _HEARTBEATS,
            "feeds": _FEEDS,
            "limits": _LIMITS,
            "accept_drift": "After a drift halt: acknowledge every difference the fresh "
                            "reconciliation finds (recorded with who and why; an order placed "
                            "outside the bot is imported as external). Only once explained.",
        },
        concurrency=CANCEL_NEW_LIMIT,
    ),
    DeploymentSpec(
        poll_news,
        "poll-news",
        "Poll every due news source once and store its items (audit trail; never trades).",
        ("news", "data"),
        lambda: [Cron("*/5 * * * *", timezone="UTC")],
        descriptions={
            "sources": "Feed definitions to poll instead of the built-in ones (list of objects).",
            "as_of": _AS_OF,
        },
        concurrency=CANCEL_NEW_LIMIT,
        needs_internet=True,
    ),
    DeploymentSpec(
        news_watcher,
        "news-watcher",
        "Watch news feeds and the local webhook for duration_s and trade on rule firings. "
        "Runnable by hand; schedule it hourly once its rules are trusted.",
        ("news", "trading", "places-orders"),
        descriptions={
            "duration_s": "How long to watch, in seconds (55 minutes by default).",
            "sources": "Feed definitions to watch instead of the built-in ones.",
            "rules_path": "News rules file (empty: the built-in rules file).",
            "port": "Port of the news webhook on 127.0.0.1.",
            "min_depth_contracts": "Act only on markets with at least this many contracts resting.",
            "strategy": "Strategy name recorded on every decision and order key.",
            "reload_every_s": "Check the rules file for edits this often (seconds).",
        },
        concurrency=CANCEL_NEW_LIMIT,
        needs_internet=True,
    ),
    DeploymentSpec(
        backtest,
        "backtest",
        "Walk-forward backtest of a strategy over recorded trades and settlements.",
        ("research", "backtest"),
        descriptions={
            "data_dir": "Directory of the recorded Kalshi trades and settlements.",
            "out": "Directory for the report (HTML, plots, metrics.json).",
            "series": "Series to replay (empty: every KXHIGH series with data).",
            "since": "First day to replay, YYYY-MM-DD (empty: the first day of data).",
            "until": "Last day to replay, YYYY-MM-DD (empty: the last day of data).",
            "strategy": "Strategy to replay.",
            "decision_time": "Local time of day at which decisions are made, HH:MM.",
            "folds": "Walk-forward folds (0: no folds, otherwise at least 2).",
            "spread_cost_cents": "Cost charged per contract for crossing the spread, in cents.",
            "queue_ahead_contracts": "Contracts assumed queued ahead of each resting order.",
            "archive": "Forecast archive database to use for as-of forecasts (optional).",
            "refresh_archive": "Refresh the forecast archive before the replay.",
        },
    ),
    DeploymentSpec(
        export_tax_year,
        "export-tax-year",
        "Form 8949 CSV, summary and reconciliation of one tax year (scheduled: the previous UTC "
        "year, every January 2).",
        ("tax", "reports"),
        lambda: [Cron(YEARLY_CRON, timezone="UTC")],
        parameters={"method": "fifo", "format": "csv"},
        descriptions={
            "year": "Tax year to export (empty: the previous UTC year).",
            "method": "Lot matching: fifo or specific.",
            "format": "Output format of the export file.",
            "out": "Output path (empty: <data dir>/tax/form8949-<year>-<method>.csv).",
            "selection_path": "With method=specific: JSON file choosing the lots per sale.",
            "ledger_url": "Ledger database URL (empty: the configured ledger).",
        },
    ),
)


def deployment_names(env: str) -> list[str]:
    """Return ``flow-name/deployment-name`` of every deployment, as the Prefect API shows them."""
    return [f"{spec.flow.name}/{spec.name}-{env}" for spec in SPECS]


def _describe(deployment: RunnerDeployment, descriptions: dict[str, str]) -> None:
    # Prefect takes run-form descriptions from a Google-style docstring; our flows keep short
    # docstrings, so the descriptions are set on the deployment's parameter schema here.
    properties = deployment._parameter_openapi_schema.properties
    for name, text in descriptions.items():
        if name not in properties:
            raise ValueError(f"deployment {deployment.name}: description for unknown parameter "
                             f"{name!r} (parameters: {', '.join(sorted(properties))})")
        properties[name]["description"] = text


def build_deployments(env: str, *, offline: bool = False) -> list[RunnerDeployment]:
    """Return every deployment for the environment ``env`` (paper, demo or prod).

    ``offline``: schedules of flows that need the internet (news feeds) are created inactive;
    they can be switched on in the UI, and the flows can still be run by hand.
    """
    out = []
    for spec in SPECS:
        schedules = spec.schedules()
        if offline and spec.needs_internet:
            schedules = [dataclasses.replace(s, active=False) for s in schedules]
        deployment = spec.flow.to_deployment(
            name=f"{spec.name}-{env}",
            schedules=schedules,
            parameters=dict(spec.parameters),
            description=spec.description,
            tags=[*spec.tags, f"env:{env}", "eventdesk"],
            concurrency_limit=spec.concurrency,
        )
        _describe(deployment, spec.descriptions)
        out.append(deployment)
    return out
