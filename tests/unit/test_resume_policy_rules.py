"""Pure rules behind resume and the feed breakers: acknowledged drift is explained only while it
is exactly what was acknowledged; a stale feed trips only while an order of ours rests on it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from models.breakers import BreakerError, check_feed
from models.reconcile import (
    Acceptance,
    Difference,
    acceptance_refusal,
    apply_acceptances,
    check_balance,
    difference_key,
)

NOW = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
MISMATCH = Difference("position_mismatch", "KXHIGHNY-26NOV22-B50",
                      "ledger (after imports) 0 contracts, exchange 5", False)


def _accept(diff: Difference) -> dict[str, Acceptance]:
    note = Acceptance(diff.kind, diff.subject, diff.detail, "ops", "transferred in", 1)
    return {difference_key(diff): note}


def test_apply_acceptances_exact_difference_becomes_explained_naming_who_and_why() -> None:
    (result,) = apply_acceptances([MISMATCH], _accept(MISMATCH))

    assert result.explained
    assert result.action == "accepted"
    assert result.detail.endswith("[accepted by ops: transferred in]")


def test_apply_acceptances_changed_difference_stays_unexplained() -> None:
    grown = Difference(MISMATCH.kind, MISMATCH.subject,
                       "ledger (after imports) 0 contracts, exchange 7", False)

    (result,) = apply_acceptances([grown], _accept(MISMATCH))

    assert result == grown


def test_acceptance_refusal_unverified_and_explained_cannot_be_accepted() -> None:
    unverified = Difference("unverified", "exchange", "fills: ServerError", False)
    explained = Difference("missing_fill", "f1", "yes M x1 @ 40c", True, "import_fill")

    assert "cannot be accepted" in (acceptance_refusal(unverified) or "")
    assert "already explained" in (acceptance_refusal(explained) or "")
    assert acceptance_refusal(MISMATCH) is None
    assert apply_acceptances([unverified], _accept(unverified)) == (unverified,)


def test_check_balance_drift_carries_its_amount_in_cents() -> None:
    drift = check_balance(10_000, 15_000, 0)

    assert drift is not None
    assert drift.cents == 5_000


@pytest.mark.parametrize(("resting", "tripped"), [(0, False), (1, True), (None, True)])
def test_check_feed_stale_trips_only_while_orders_rest_or_unknown(resting: int | None,
                                                                  tripped: bool) -> None:
    verdict = check_feed("feed:forecast", NOW - timedelta(hours=7), 6 * 3600.0, NOW,
                         resting_orders=resting)

    assert verdict.tripped is tripped
    assert "25200s old" in verdict.reason


def test_check_feed_fresh_with_orders_resting_does_not_trip() -> None:
    verdict = check_feed("feed:forecast", NOW - timedelta(hours=1), 6 * 3600.0, NOW,
                         resting_orders=3)

    assert not verdict.tripped


def test_check_feed_negative_resting_count_is_refused_naming_the_field() -> None:
    with pytest.raises(BreakerError, match="resting_orders"):
        check_feed("feed:forecast", NOW, 60.0, NOW, resting_orders=-1)
