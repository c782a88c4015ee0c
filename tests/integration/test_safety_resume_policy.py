"""Resume after a drift halt, against the paper exchange with a real SQLite ledger: refused while a
fresh reconciliation still finds unexplained drift (the message names each difference), allowed
once it is reconciled away or explicitly acknowledged (recorded with who, when and why)."""

from __future__ import annotations

import json

import pytest
from sqlmodel import Session, select
from typer.testing import CliRunner

from kalshi.client import order_request
from kalshi.signing import public_key_pem
from models.ledger import Fill, Halt, OrderRecord, RiskEvent
from tasks.ledger_store import active_halts, transition_order
from tasks.reconcile import reconcile_once
from tasks.safety import ResumeRefused, kill, list_halts, resume_checked
from tests.integration.safety_harness import Desk, desk, safety_cli, safety_venue  # noqa: F401

runner = CliRunner()


def _reconcile(desk: Desk):  # noqa: F811
    with desk.client() as client:
        return reconcile_once(client, desk.engine, now=desk.venue.clock.now(),
                              webhook=desk.webhook.url)


def _resume(desk: Desk, reason: str, *, accept: bool = False) -> list[int]:  # noqa: F811
    # the drift policy alone (the breakers have their own tests): no breaker trips
    with desk.client() as client:
        return resume_checked(client, desk.engine, reason, by="tester",
                              as_of=desk.venue.clock.now(), breakers=(), accept_drift=accept,
                              webhook=desk.webhook.url)


def _rows(desk: Desk, model):  # noqa: F811
    with Session(desk.engine) as session:
        return list(session.exec(select(model)))


def test_resume_manual_order_fill_refused_by_name_then_accepted_as_external_order(
        desk: Desk) -> None:  # noqa: F811
    # Arrange: an order placed by hand on the account fills; the trading run's sync cannot book
    # the fill and halts with a drift: reason
    market = desk.venue.market()
    with desk.client() as client:
        client.create_order(order_request(market, "bid", 3, 40, client_order_id="manual-1"))
    desk.fill_resting(market, yes_price_cents=40, count=2)
    desk.sync()
    halts = list_halts(desk.engine)
    assert [h.reason.split(" ", 1)[0] for h in halts] == ["drift:"]
    app = safety_cli()

    # Act: resume without acknowledging
    refused = runner.invoke(app, ["resume", "--reason", "looks fine to me"])

    # Assert: refused, naming the difference (what, ticker, ledger vs exchange); still halted
    assert refused.exit_code == 1, refused.output
    error = json.loads(refused.output.splitlines()[-1])["error"]
    assert "unknown_order" in error
    assert market in error
    assert "'manual-1' is not in the ledger" in error
    assert "--accept-drift" in error
    assert [h.halt_id for h in list_halts(desk.engine)] == [halts[0].halt_id]

    # Act: the operator explains it and acknowledges
    accepted = runner.invoke(app, ["resume", "--reason", "my manual hedge", "--accept-drift"])

    # Assert: resumed; the order is in the ledger as external, the acceptance is recorded
    assert accepted.exit_code == 0, accepted.output
    assert active_halts(desk.engine) == []
    external = next(o for o in _rows(desk, OrderRecord) if o.client_order_id == "manual-1")
    assert (external.strategy, external.category, external.side, external.price_cents,
            external.count, external.status) == ("external", "external", "yes", 40, 3, "resting")
    assert "my manual hedge" in (external.detail or "")
    events = [e for e in _rows(desk, RiskEvent) if e.kind == "drift_accepted"]
    assert len(events) == 1
    assert events[0].market_ticker == market
    assert "unknown_order" in events[0].reason
    assert "accepted by cli" in events[0].reason
    assert "my manual hedge" in events[0].reason
    halt = next(h for h in _rows(desk, Halt) if h.id == halts[0].halt_id)
    assert halt.cleared_by is not None
    assert "my manual hedge" in halt.cleared_by
    # the next trading sync books the fill against it, and reconciliation finds nothing
    desk.sync()
    fill = next(f for f in _rows(desk, Fill) if f.market_ticker == market)
    assert fill.order_id == external.id
    assert list_halts(desk.engine) == []
    clean = _reconcile(desk)
    assert clean.differences == (), clean.differences
    assert clean.halt_id is None


def test_resume_refused_while_reconciliation_cannot_verify_then_allowed_once_reconciled(
        desk: Desk) -> None:  # noqa: F811
    # Arrange: a fill the ledger has not booked yet, and a reconciliation that cannot read
    market = desk.venue.market()
    assert desk.trade([(market, "yes", 25, 2)]).count("place", "resting") == 1
    desk.fill_resting(market, yes_price_cents=25, count=2)
    desk.venue.operator("/faults", {"error_rate": 1.0})
    try:
        report = _reconcile(desk)
        assert not report.complete
        # Act + Assert: the exchange still answers 5xx: nothing can be verified, so no resume
        with pytest.raises(ResumeRefused, match="could not verify"):
            _resume(desk, "exchange looks flaky")
    finally:
        desk.venue.operator("/faults", {"clear": True})
    assert [h.halt_id for h in list_halts(desk.engine)] == [report.halt_id]

    # Act: the exchange answers again; the missed fill is explained (reconciliation imports it)
    cleared = _resume(desk, "exchange back, fill explained")

    # Assert: resumed, the pending import is named in the resume alert, nothing was accepted
    assert cleared == [report.halt_id]
    resume_alert = next(b for b in desk.webhook.bodies if b["kind"] == "resume")
    assert any("missing_fill" in line for line in resume_alert["details"]["pending"])
    assert resume_alert["details"]["accepted"] == []
    assert not [e for e in _rows(desk, RiskEvent) if e.kind == "drift_accepted"]


def test_resume_flow_cash_drift_refused_then_accepted_as_external_cash_movement(
        desk: Desk, prefect_harness) -> None:  # noqa: F811
    from flows.kill import resume

    # Arrange: a clean reconciliation (the cash baseline), then $50 arrives from outside
    assert _reconcile(desk).differences == ()
    desk.venue.operator("/keys", {"key_id": f"{desk.key_id}-deposit",
                                  "public_key_pem": public_key_pem(desk.key).decode(),
                                  "account_id": desk.key_id, "balance_cents": 5_000})
    drifted = _reconcile(desk)
    assert [d.kind for d in drifted.unexplained] == ["balance_drift"]
    assert drifted.halt_id is not None

    # Act + Assert: refused by the flow, naming the amount
    with pytest.raises(ResumeRefused,
                       match=r"balance_drift balance: cash moved 5000c.*\+5000c unexplained"):
        resume(reason="should be fine", by="ops")
    assert [h.halt_id for h in list_halts(desk.engine)] == [drifted.halt_id]

    # Act: acknowledged as a deposit
    cleared = resume(reason="I deposited $50", by="ops", accept_drift=True)

    # Assert: cleared and recorded; the next reconciliation treats the cash as explained
    assert cleared == [drifted.halt_id]
    events = [e for e in _rows(desk, RiskEvent) if e.kind == "drift_accepted"]
    assert len(events) == 1
    assert "external cash movement +5000c" in events[0].reason
    assert "accepted by ops: I deposited $50" in events[0].reason
    again = _reconcile(desk)
    assert again.differences == (), again.differences
    assert again.halt_id is None


def test_resume_kill_halt_only_needs_no_reconciliation(desk: Desk) -> None:  # noqa: F811
    # Arrange: a kill-switch halt (not a drift halt)
    with desk.client() as client:
        halt_id, _report = kill(client, desk.engine, "operator test", by="tester",
                                as_of=desk.venue.clock.now())

    # Act: no reason -> refused; with a reason -> cleared as before
    with pytest.raises(ResumeRefused, match="reason is required"):
        _resume(desk, " ")
    cleared = _resume(desk, "checked the book")

    # Assert
    assert cleared == [halt_id]
    assert active_halts(desk.engine) == []
    resume_alert = next(b for b in desk.webhook.bodies if b["kind"] == "resume")
    assert "drift_checked_at" not in resume_alert["details"]


def test_resume_accepted_difference_stays_explained_only_while_unchanged(
        desk: Desk) -> None:  # noqa: F811
    # Arrange: the ledger lost track of a live order (it thinks it was cancelled)
    market = desk.venue.market()
    assert desk.trade([(market, "yes", 15, 4)]).count("place", "resting") == 1
    (row,) = [o for o in _rows(desk, OrderRecord) if o.market_ticker == market]
    transition_order(desk.engine, row.client_order_id, "canceled", as_of=desk.venue.clock.now(),
                     detail="test: ledger lost track")
    drifted = _reconcile(desk)
    assert [d.kind for d in drifted.unexplained] == ["status_mismatch"]
    with pytest.raises(ResumeRefused, match=rf"status_mismatch {row.client_order_id}: ledger "
                                            rf"canceled but the order is live"):
        _resume(desk, "not yet")

    # Act: acknowledged
    assert _resume(desk, "known paper glitch", accept=True) == [drifted.halt_id]

    # Assert: the next reconciliation shows it as accepted and does not halt ...
    calm = _reconcile(desk)
    assert [(d.kind, d.action) for d in calm.differences] == [("status_mismatch", "accepted")]
    assert "[accepted by tester: known paper glitch]" in calm.differences[0].detail
    assert calm.halt_id is None
    # ... until the difference changes (a contract of the order fills): unexplained again
    desk.fill_resting(market, yes_price_cents=15, count=1)
    changed = _reconcile(desk)
    assert "status_mismatch" in [d.kind for d in changed.unexplained]
    assert changed.halt_id is not None
