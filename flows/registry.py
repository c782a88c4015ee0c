"""Names of runnable flows (``eventdesk run NAME``) mapped to where the flow object lives.

Invariant: looking a name up imports only that flow's module; an unknown name raises
``UnknownFlowError`` listing the known ones. Other areas add their flows to ``FLOWS``
(``"reconcile": "flows.reconcile:reconcile"``...).
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["FLOWS", "UnknownFlowError", "flow_names", "get_flow"]

FLOWS: dict[str, str] = {
    "trade-weather": "flows.trade_weather:trade_weather",
    "export-tax-year": "flows.export_taxes:export_tax_year",
    "guard": "flows.guard:guard",
    "reconcile": "flows.reconcile:reconcile",
    "kill-switch": "flows.kill:kill_switch",
    "cancel-all": "flows.kill:cancel_all_orders",
    "resume-trading": "flows.kill:resume",
    "poll-news": "flows.news:poll_news",
    "news-watcher": "flows.news:news_watcher",
    "backtest": "flows.backtest:backtest",
}


class UnknownFlowError(KeyError):
    """A flow name that is not registered; the message lists the registered names."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown flow"


def flow_names() -> list[str]:
    """Return the registered flow names, sorted."""
    return sorted(FLOWS)


def get_flow(name: str) -> Any:
    """Return the Prefect flow registered as `name`."""
    target = FLOWS.get(name)
    if target is None:
        known = ", ".join(flow_names())
        raise UnknownFlowError(f"flow {name!r} is not registered (known: {known})")
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)
