"""Circuit breakers, pure: each takes its figures and the time, and returns a decision value.

Invariant: a breaker never raises on a breach and never reads a clock; it returns a ``Breaker``
saying whether it tripped and why, with the figures in the reason. Missing evidence is never
read as "healthy" when it matters: a heartbeat or feed that was seen once and then went silent
trips; one never seen is reported as "not seen yet" (a fresh install does not halt itself).
Money is integer cents; fractions are exact ``Decimal``.

Breakers (the guard runs all of them; any trip halts trading and cancels every resting order):

- ``daily_loss``: start-of-day equity - current marked-to-market equity > fraction x start.
- ``error_rate``: API errors (5xx, 429, network) / calls over the window > ``max_error_rate``
  (only once the window holds ``min_calls`` calls).
- ``fill_rate``: filled / offered contracts over the lookback below ``low_fraction`` x expected
  (our quotes are not where we think) or above ``high_multiple`` x expected (adverse selection).
- ``feed:<name>``: the last update of a market-data or forecast feed is older than its limit,
  while something depends on it: an order of ours rests at the exchange (it was priced on that
  feed), or the exchange could not be read (unknown counts as depended on). With nothing resting
  a stale feed is reported, not tripped: the trading path fetches both feeds itself and prices
  nothing without a fresh forecast, so a quiet night with no open market does not halt the desk.
- ``heartbeat:<name>``: a trading flow's last heartbeat is older than its limit.
- ``link``: dead man's switch. The exchange link was down (no successful call) for more than
  ``link_down_s``; when it comes back the guard cancels everything. While it is still down, the
  breaker reports it (nothing can be cancelled; the orders' expirations are the backstop).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Final

__all__ = [
    "ApiCallCounts",
    "Breaker",
    "BreakerError",
    "BreakerLimits",
    "FillCounts",
    "GuardInputs",
    "LinkObservation",
    "check_daily_loss",
    "check_error_rate",
    "check_feed",
    "check_fill_rate",
    "check_heartbeat",
    "check_link",
    "evaluate_breakers",
    "tripped",
]

DEFAULT_LINK_DOWN_S: Final = 60.0


class BreakerError(ValueError):
    """Breaker input that cannot be judged (negative counts, naive times); names the field."""


@dataclass(frozen=True)
class Breaker:
    """One breaker's verdict at one instant."""

    name: str
    tripped: bool
    reason: str


@dataclass(frozen=True)
class BreakerLimits:
    """Thresholds of every breaker (defaults from issue 6)."""

    daily_loss_fraction: Decimal = Decimal("0.03")
    max_error_rate: Decimal = Decimal("0.05")
    error_window_s: float = 300.0
    min_calls: int = 20
    expected_fill_rate: Decimal = Decimal("0.30")
    fill_low_fraction: Decimal = Decimal("0.20")
    fill_high_multiple: Decimal = Decimal("3")
    fill_lookback_s: float = 3600.0
    min_offered_contracts: int = 50
    link_down_s: float = DEFAULT_LINK_DOWN_S

    def __post_init__(self) -> None:
        for name in ("daily_loss_fraction", "max_error_rate", "expected_fill_rate",
                     "fill_low_fraction"):
            value = getattr(self, name)
            if not isinstance(value, Decimal) or not Decimal(0) < value <= Decimal(1):
                raise BreakerError(f"{name}: expected a Decimal in (0, 1], got {value!r}")
        if not isinstance(self.fill_high_multiple, Decimal) or self.fill_high_multiple <= 1:
            raise BreakerError(f"fill_high_multiple: expected a Decimal > 1, got "
                               f"{self.fill_high_multiple!r}")
        for name in ("error_window_s", "fill_lookback_s", "link_down_s"):
            if not getattr(self, name) > 0:
                raise BreakerError(f"{name}: expected > 0, got {getattr(self, name)!r}")
        for name in ("min_calls", "min_offered_contracts"):
            if getattr(self, name) < 1:
                raise BreakerError(f"{name}: expected >= 1, got {getattr(self, name)!r}")


@dataclass(frozen=True)
class ApiCallCounts:
    """API calls and how many failed (5xx, 429, network) within the error window."""

    calls: int
    errors: int


@dataclass(frozen=True)
class FillCounts:
    """Contracts offered (orders placed) and contracts filled within the fill lookback."""

    offered: int
    filled: int


@dataclass(frozen=True)
class LinkObservation:
    """The exchange link now: reachable or not, since when it is down, the last outage's length.

    ``down_since`` is the first failed call of the current outage (None while up);
    ``restored_after_s`` is the length of an outage that ended and was not yet acted on.
    """

    up: bool
    down_since: datetime | None = None
    restored_after_s: float | None = None
    detail: str = ""


@dataclass(frozen=True)
class GuardInputs:
    """Everything one guard run measured (times aware UTC)."""

    start_equity_cents: int | None
    equity_cents: int | None
    api: ApiCallCounts
    fills: FillCounts
    link: LinkObservation
    feeds: Mapping[str, tuple[datetime | None, float]] = field(default_factory=dict)
    heartbeats: Mapping[str, tuple[datetime | None, float]] = field(default_factory=dict)
    resting_orders: int | None = None  # ours at the exchange now; None: not read (feeds needed)


def _aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise BreakerError(f"{name}: naive datetime {value.isoformat()!r}; pass aware UTC")


def _ratio(num: int, den: int) -> str:
    return f"{Decimal(num) / Decimal(den):.4f}" if den else "n/a"


def check_daily_loss(start_equity_cents: int | None, equity_cents: int | None,
                     fraction: Decimal) -> Breaker:
    """Trip when the day's loss (marked to market) exceeds `fraction` of start-of-day equity."""
    if start_equity_cents is None or equity_cents is None:
        # connectivity is the link breaker's job; an unread balance is reported, not a loss
        return Breaker("daily_loss", False,
                       "equity unknown (exchange balance not read): loss not verified")
    if start_equity_cents <= 0:
        return Breaker("daily_loss", True,
                       f"start-of-day equity {start_equity_cents}c is not positive")
    loss = start_equity_cents - equity_cents
    limit = Decimal(start_equity_cents) * fraction
    reason = (f"loss {loss}c of start-of-day {start_equity_cents}c (limit {fraction} = "
              f"{limit.quantize(Decimal(1))}c); equity {equity_cents}c")
    return Breaker("daily_loss", Decimal(loss) > limit, reason)


def check_error_rate(counts: ApiCallCounts, limits: BreakerLimits) -> Breaker:
    """Trip when the API error rate over the window exceeds the limit (given enough calls)."""
    if counts.calls < 0 or not 0 <= counts.errors <= counts.calls:
        raise BreakerError(f"api: expected 0 <= errors <= calls, got {counts!r}")
    window = f"{limits.error_window_s:.0f}s"
    if counts.calls < limits.min_calls:
        return Breaker("error_rate", False, f"{counts.errors}/{counts.calls} calls failed in "
                       f"{window} (fewer than {limits.min_calls} calls: not judged)")
    over = Decimal(counts.errors) > limits.max_error_rate * counts.calls
    return Breaker("error_rate", over,
                   f"{counts.errors}/{counts.calls} calls failed in {window} "
                   f"(rate {_ratio(counts.errors, counts.calls)}, limit {limits.max_error_rate})")


def check_fill_rate(counts: FillCounts, limits: BreakerLimits) -> Breaker:
    """Trip when the fill rate leaves its band: too low (stale quotes) or too high (adverse)."""
    if counts.offered < 0 or counts.filled < 0:
        raise BreakerError(f"fills: expected non-negative counts, got {counts!r}")
    lookback = f"{limits.fill_lookback_s:.0f}s"
    base = (f"{counts.filled}/{counts.offered} contracts filled in {lookback} "
            f"(rate {_ratio(counts.filled, counts.offered)}, expected "
            f"{limits.expected_fill_rate})")
    if counts.offered < limits.min_offered_contracts:
        return Breaker("fill_rate", False,
                       f"{base}; fewer than {limits.min_offered_contracts} offered: not judged")
    filled, offered = Decimal(counts.filled), Decimal(counts.offered)
    low = limits.expected_fill_rate * limits.fill_low_fraction
    high = limits.expected_fill_rate * limits.fill_high_multiple
    if filled < low * offered:
        return Breaker("fill_rate", True, f"{base}: below {low} (quotes off the market?)")
    if filled > high * offered:
        return Breaker("fill_rate", True, f"{base}: above {high} (adverse selection?)")
    return Breaker("fill_rate", False, base)


def _staleness(kind: str, name: str, last: datetime | None, max_age_s: float,
               now: datetime) -> Breaker:
    label = name if name.startswith(f"{kind}:") else f"{kind}:{name}"
    if max_age_s <= 0:
        raise BreakerError(f"{label}: max age must be > 0 s, got {max_age_s!r}")
    if last is None:
        return Breaker(label, False, "not seen yet")
    _aware(last, f"{label} last update")
    age_s = (now - last).total_seconds()
    reason = f"last update {last.isoformat()} is {age_s:.0f}s old (limit {max_age_s:.0f}s)"
    return Breaker(label, age_s > max_age_s, reason)


def check_feed(name: str, last: datetime | None, max_age_s: float, now: datetime, *,
               resting_orders: int | None = None) -> Breaker:
    """Trip when feed `name` has not updated within `max_age_s` while orders depend on it.

    `resting_orders` is how many of our orders rest at the exchange (None: unknown, which
    counts as depended on); with none resting a stale feed is reported without tripping.
    """
    _aware(now, "now")
    if resting_orders is not None and resting_orders < 0:
        raise BreakerError(f"resting_orders: expected >= 0, got {resting_orders!r}")
    verdict = _staleness("feed", name, last, max_age_s, now)
    if not verdict.tripped or resting_orders is None or resting_orders > 0:
        if verdict.tripped:
            depends = ("resting orders unknown: treated as depended on" if resting_orders is None
                       else f"{resting_orders} resting orders depend on it")
            return Breaker(verdict.name, True, f"{verdict.reason}; {depends}")
        return verdict
    return Breaker(verdict.name, False, f"{verdict.reason}; stale, but no order of ours rests "
                   f"(trips as soon as one does)")


def check_heartbeat(name: str, last: datetime | None, max_age_s: float,
                    now: datetime) -> Breaker:
    """Trip when trading flow `name` has not beaten within `max_age_s`."""
    _aware(now, "now")
    return _staleness("heartbeat", name, last, max_age_s, now)


def check_link(link: LinkObservation, now: datetime,
               link_down_s: float = DEFAULT_LINK_DOWN_S) -> Breaker:
    """Dead man's switch: trip while down > `link_down_s`, and when back after such an outage."""
    _aware(now, "now")
    detail = f": {link.detail}" if link.detail else ""
    if not link.up:
        if link.down_since is None:
            return Breaker("link", False, f"exchange unreachable (first failure){detail}")
        _aware(link.down_since, "link down_since")
        down_s = (now - link.down_since).total_seconds()
        text = (f"exchange unreachable since {link.down_since.isoformat()} ({down_s:.0f}s, "
                f"limit {link_down_s:.0f}s){detail}")
        if down_s > link_down_s:
            text += "; cancel everything as soon as it returns"
        return Breaker("link", down_s > link_down_s, text)
    if link.restored_after_s is not None and link.restored_after_s > link_down_s:
        return Breaker("link", True, f"exchange back after {link.restored_after_s:.0f}s down "
                       f"(limit {link_down_s:.0f}s): cancel everything")
    if link.restored_after_s is not None:
        return Breaker("link", False,
                       f"exchange reachable (last outage {link.restored_after_s:.0f}s)")
    return Breaker("link", False, "exchange reachable")


def evaluate_breakers(inputs: GuardInputs, limits: BreakerLimits, now: datetime) -> tuple[
        Breaker, ...]:
    """Return every breaker's verdict at `now` (daily loss, errors, fills, link, feeds, beats)."""
    _aware(now, "now")
    result = [
        check_daily_loss(inputs.start_equity_cents, inputs.equity_cents,
                         limits.daily_loss_fraction),
        check_error_rate(inputs.api, limits),
        check_fill_rate(inputs.fills, limits),
        check_link(inputs.link, now, limits.link_down_s),
    ]
    result += [check_feed(name, last, age, now, resting_orders=inputs.resting_orders)
               for name, (last, age) in sorted(inputs.feeds.items())]
    result += [check_heartbeat(name, last, age, now)
               for name, (last, age) in sorted(inputs.heartbeats.items())]
    return tuple(result)


def tripped(breakers: Sequence[Breaker]) -> tuple[Breaker, ...]:
    """Return the breakers that tripped."""
    return tuple(b for b in breakers if b.tripped)

