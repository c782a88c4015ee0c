"""Flow: backtest the weather strategy on recorded history and publish the report.

Invariant: the flow only composes; it takes plain parameters (a deployment can run it on a
schedule or by hand), validates them before any work with an error naming the parameter and
value, and leaves two artifacts: the metrics table and the report's location.
"""

from __future__ import annotations

from datetime import date
from typing import Any, cast

from prefect import flow
from prefect.deployments.runner import RunnerDeployment

from tasks.backtest import STRATEGIES, publish_backtest, run_backtest_task

__all__ = ["HIGH_SERIES", "backtest", "backtest_deployment"]

HIGH_SERIES = ("KXHIGHNY", "KXHIGHCHI", "KXHIGHMIA", "KXHIGHAUS", "KXHIGHDEN")


def _day(name: str, text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{name}: expected YYYY-MM-DD, got {text!r}") from None


@flow(name="backtest")
def backtest(
    data_dir: str,
    out: str,
    series: list[str] | None = None,
    since: str | None = None,
    until: str | None = None,
    strategy: str = "weather",
    decision_time: str = "10:00",  # local clock times on the climate day, comma-separated
    folds: int = 5,
    spread_cost_cents: int = 1,
    queue_ahead_contracts: int = 100,
    archive: str | None = None,
    refresh_archive: bool = True,
) -> dict[str, Any]:
    """Replay ``strategy`` over recorded trades and settlements; return the metrics summary."""
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy: expected one of {STRATEGIES}, got {strategy!r}")
    if folds == 1 or folds < 0:
        raise ValueError(f"folds: expected 0 or at least 2, got {folds!r}")
    for hhmm in decision_time.split(","):
        parts = hhmm.strip().split(":")
        if len(parts) != 2 or not all(p.isdigit() for p in parts) or int(parts[0]) > 23 \
                or int(parts[1]) > 59:
            raise ValueError(f"decision_time: expected HH:MM[,HH:MM...], got {decision_time!r}")
    first, last = _day("since", since), _day("until", until)
    chosen = list(series or HIGH_SERIES)
    summary = run_backtest_task(data_dir, out, chosen, first, last, strategy, decision_time,
                                folds, spread_cost_cents, queue_ahead_contracts, archive,
                                refresh_archive)
    title = (f"Backtest {strategy} {', '.join(chosen)} {first or 'start'}..{last or 'end'} "
             f"at {decision_time} local")
    publish_backtest(summary, title)
    return summary


def backtest_deployment(env: str, data_dir: str, out: str) -> RunnerDeployment:
    """The ``backtest-<env>`` deployment: run by hand with parameters (no schedule)."""
    deployment = backtest.to_deployment(
        name=f"backtest-{env}",
        parameters={"data_dir": data_dir, "out": out, "strategy": "weather", "folds": 5},
        description="Walk-forward backtest of the weather strategy on recorded history.",
    )
    return cast(RunnerDeployment, deployment)  # sync caller: never the coroutine variant
