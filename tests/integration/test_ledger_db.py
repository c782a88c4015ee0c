"""Ledger database: SQLite settings, serialised write transactions, migrations that keep data."""

from __future__ import annotations

import sqlite3

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from models.ledger import (
    LEDGER_METADATA,
    Decision,
    Fill,
    OrderRecord,
    datetime_from_ms,
)
from tasks.db import ledger_engine, ledger_revision, read_session, upgrade_ledger, write_session
from tasks.settings import Settings


@pytest.fixture
def url(tmp_path):
    return f"sqlite:///{tmp_path / 'ledger.sqlite'}"


def _head(url: str) -> str | None:
    # the newest revision in tasks/migrations (a new revision must not need this file edited)
    from alembic.script import ScriptDirectory

    from tasks.db import alembic_config

    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


def _order(coid: str, **overrides) -> OrderRecord:
    values = dict(client_order_id=coid, strategy="s", market_ticker="M", event_ticker="E",
                  category="weather", side="yes", price_cents=40, count=10,
                  time_in_force="good_till_canceled", created_ts_ms=1795305600001,
                  updated_ts_ms=1795305600001)
    values.update(overrides)
    return OrderRecord(**values)


def test_upgrade_ledger_fresh_file_reaches_head_and_matches_tables(url):
    upgrade_ledger(url)
    assert ledger_revision(url) == _head(url)
    engine = ledger_engine(url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, LEDGER_METADATA) == []
    engine.dispose()


def test_upgrade_ledger_twice_is_a_no_op(url):
    upgrade_ledger(url)
    upgrade_ledger(url)
    assert ledger_revision(url) == _head(url)


def test_upgrade_ledger_from_first_revision_keeps_rows(url):
    # Arrange: a ledger created at revision 0001 with real rows in it
    upgrade_ledger(url, "0001")
    engine = ledger_engine(url)
    with write_session(engine) as session:
        session.add(Decision(strategy="s", market_ticker="M", event_ticker="E", model_version="v",
                             model_inputs_json="{}", prob_yes=0.5, action="none", reason="r",
                             decided_ts_ms=1))
        session.add(_order("ed-1"))
    with write_session(engine) as session:
        order = session.exec(select(OrderRecord)).one()
        session.add(Fill(exchange_fill_id="f-1", order_id=order.id, market_ticker="M", side="yes",
                         price_cents=40, count=3, fee_cents=2, is_taker=True, ts_ms=2))
    engine.dispose()
    # Act
    upgrade_ledger(url)
    # Assert: rows survive and the new revision's tables work
    engine = ledger_engine(url)
    with read_session(engine) as session:
        assert session.exec(select(OrderRecord.client_order_id)).all() == ["ed-1"]
        assert session.exec(select(Fill.fee_cents)).all() == [2]
        assert session.exec(select(Decision.reason)).all() == ["r"]
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM halts")).scalar() == 0
    engine.dispose()
    assert ledger_revision(url) == _head(url)


def test_ledger_engine_sqlite_uses_wal_busy_timeout_and_foreign_keys(url):
    upgrade_ledger(url)
    engine = ledger_engine(url)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()


def test_ledger_engine_default_settings_url_creates_data_dir(tmp_path):
    settings = Settings(data_dir=tmp_path / "nested" / "dir")
    upgrade_ledger(settings.ledger_url)
    assert (tmp_path / "nested" / "dir" / "ledger.sqlite").is_file()


def test_write_session_holds_the_write_lock_from_the_start(url):
    upgrade_ledger(url)
    engine = ledger_engine(url)
    path = url.removeprefix("sqlite:///")
    with write_session(engine) as session:
        session.exec(select(OrderRecord)).all()  # a read only: IMMEDIATE must already lock
        other = sqlite3.connect(path, timeout=0.05, isolation_level=None)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
        other.close()
    other = sqlite3.connect(path, timeout=0.05, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # released after commit
    other.execute("ROLLBACK")
    other.close()
    engine.dispose()


def test_write_session_error_rolls_back(url):
    upgrade_ledger(url)
    engine = ledger_engine(url)

    def add_then_fail() -> None:
        with write_session(engine) as session:
            session.add(_order("ed-1"))
            session.flush()
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        add_then_fail()
    with read_session(engine) as session:
        assert session.exec(select(OrderRecord)).all() == []
    engine.dispose()


def test_orders_duplicate_client_order_id_is_impossible(url):
    upgrade_ledger(url)
    engine = ledger_engine(url)
    with write_session(engine) as session:
        session.add(_order("ed-1"))
    with pytest.raises(IntegrityError, match="client_order_id"), write_session(engine) as session:
        session.add(_order("ed-1", price_cents=41))
    engine.dispose()


def test_fills_duplicate_exchange_fill_id_is_impossible(url):
    upgrade_ledger(url)
    engine = ledger_engine(url)
    fill = dict(exchange_fill_id="f-1", market_ticker="M", side="yes", price_cents=40, count=1,
                fee_cents=1, is_taker=True, ts_ms=1)
    with write_session(engine) as session:
        session.add(Fill(**fill))
    with pytest.raises(IntegrityError, match="exchange_fill_id"), write_session(engine) as session:
        session.add(Fill(**fill))
    engine.dispose()


@pytest.mark.parametrize(("field", "value"), [("price_cents", 100), ("count", 0), ("side", "buy")])
def test_orders_check_constraints_refuse_bad_rows(url, field, value):
    upgrade_ledger(url)
    engine = ledger_engine(url)
    with pytest.raises(IntegrityError, match="CHECK"), write_session(engine) as session:
        session.add(_order("ed-1", **{field: value}))
    engine.dispose()


def test_orders_foreign_key_to_missing_decision_is_refused(url):
    upgrade_ledger(url)
    engine = ledger_engine(url)
    with pytest.raises(IntegrityError, match="FOREIGN KEY"), write_session(engine) as session:
        session.add(_order("ed-1", decision_id=999))
    engine.dispose()


def test_ts_ms_column_round_trips_to_aware_utc(url):
    upgrade_ledger(url)
    engine = ledger_engine(url)
    with write_session(engine) as session:
        session.add(_order("ed-1", created_ts_ms=1795305600001, price_cents=99,
                           expiration_ts_ms=2**40))
    with read_session(engine) as session:
        row = session.exec(select(OrderRecord)).one()
    created = datetime_from_ms(row.created_ts_ms)
    assert created.isoformat() == "2026-11-22T00:00:00.001000+00:00"
    assert row.expiration_ts_ms == 2**40
    assert row.price_cents == 99
    engine.dispose()
