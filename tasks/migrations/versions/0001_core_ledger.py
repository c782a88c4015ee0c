"""Core ledger: decisions, orders and their events, fills, positions, settlements, daily equity.

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the core ledger tables."""
    op.create_table(
        "decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("strategy", sa.String(), nullable=False),
        sa.Column("market_ticker", sa.String(), nullable=False),
        sa.Column("event_ticker", sa.String(), nullable=False),
        sa.Column("model_version", sa.String(), nullable=False),
        sa.Column("model_inputs_json", sa.String(), nullable=False),
        sa.Column("prob_yes", sa.Float(), nullable=False),
        sa.Column("yes_bid_cents", sa.BigInteger(), nullable=True),
        sa.Column("yes_ask_cents", sa.BigInteger(), nullable=True),
        sa.Column("edge_cents", sa.BigInteger(), nullable=True),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("intended_side", sa.String(), nullable=True),
        sa.Column("intended_price_cents", sa.BigInteger(), nullable=True),
        sa.Column("intended_count", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("decided_ts_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decisions")),
    )
    op.create_index(
        op.f("ix_decisions_decided_ts_ms"), "decisions", ["decided_ts_ms"], unique=False
    )
    op.create_index(
        op.f("ix_decisions_market_ticker"), "decisions", ["market_ticker"], unique=False
    )
    op.create_index(op.f("ix_decisions_strategy"), "decisions", ["strategy"], unique=False)

    op.create_table(
        "orders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_order_id", sa.String(length=64), nullable=False),
        sa.Column("exchange_order_id", sa.String(), nullable=True),
        sa.Column("decision_id", sa.Integer(), nullable=True),
        sa.Column("strategy", sa.String(), nullable=False),
        sa.Column("market_ticker", sa.String(), nullable=False),
        sa.Column("event_ticker", sa.String(), nullable=False),
        sa.Column("category", sa.String(), nullable=False),
        sa.Column("side", sa.String(), nullable=False),
        sa.Column("price_cents", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("filled_count", sa.Integer(), nullable=False),
        sa.Column("exchange_filled_count", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("time_in_force", sa.String(), nullable=False),
        sa.Column("expiration_ts_ms", sa.BigInteger(), nullable=True),
        sa.Column("created_ts_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_ts_ms", sa.BigInteger(), nullable=False),
        sa.Column("detail", sa.String(), nullable=True),
        sa.CheckConstraint("side IN ('yes', 'no')", name=op.f("ck_orders_side")),
        sa.CheckConstraint("count > 0", name=op.f("ck_orders_count_positive")),
        sa.CheckConstraint(
            "filled_count >= 0 AND filled_count <= count", name=op.f("ck_orders_filled_range")
        ),
        sa.CheckConstraint(
            "exchange_filled_count >= 0 AND exchange_filled_count <= count",
            name=op.f("ck_orders_exchange_filled_range"),
        ),
        sa.CheckConstraint("price_cents BETWEEN 1 AND 99", name=op.f("ck_orders_price_range")),
        sa.ForeignKeyConstraint(
            ["decision_id"], ["decisions.id"], name=op.f("fk_orders_decision_id_decisions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("client_order_id", name=op.f("uq_orders_client_order_id")),
        sa.UniqueConstraint("exchange_order_id", name=op.f("uq_orders_exchange_order_id")),
    )
    op.create_index(op.f("ix_orders_category"), "orders", ["category"], unique=False)
    op.create_index(op.f("ix_orders_created_ts_ms"), "orders", ["created_ts_ms"], unique=False)
    op.create_index(op.f("ix_orders_decision_id"), "orders", ["decision_id"], unique=False)
    op.create_index(op.f("ix_orders_event_ticker"), "orders", ["event_ticker"], unique=False)
    op.create_index(op.f("ix_orders_market_ticker"), "orders", ["market_ticker"], unique=False)
    op.create_index(op.f("ix_orders_status"), "orders", ["status"], unique=False)
    op.create_index(op.f("ix_orders_updated_ts_ms"), "orders", ["updated_ts_ms"], unique=False)

    op.create_table(
        "order_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("detail", sa.String(), nullable=True),
        sa.Column("ts_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_order_events_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_events")),
    )
    op.create_index(op.f("ix_order_events_order_id"), "order_events", ["order_id"], unique=False)
    op.create_index(op.f("ix_order_events_ts_ms"), "order_events", ["ts_ms"], unique=False)

    op.create_table(
        "fills",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("exchange_fill_id", sa.String(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("client_order_id", sa.String(), nullable=True),
        sa.Column("market_ticker", sa.String(), nullable=False),
        sa.Column("side", sa.String(), nullable=False),
        sa.Column("price_cents", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("fee_cents", sa.BigInteger(), nullable=False),
        sa.Column("is_taker", sa.Boolean(), nullable=False),
        sa.Column("ts_ms", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("count > 0", name=op.f("ck_fills_count_positive")),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_fills_order_id_orders")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fills")),
        sa.UniqueConstraint("exchange_fill_id", name=op.f("uq_fills_exchange_fill_id")),
    )
    op.create_index(op.f("ix_fills_client_order_id"), "fills", ["client_order_id"], unique=False)
    op.create_index(op.f("ix_fills_market_ticker"), "fills", ["market_ticker"], unique=False)
    op.create_index(op.f("ix_fills_order_id"), "fills", ["order_id"], unique=False)
    op.create_index(op.f("ix_fills_ts_ms"), "fills", ["ts_ms"], unique=False)

    op.create_table(
        "positions",
        sa.Column("market_ticker", sa.String(), nullable=False),
        sa.Column("event_ticker", sa.String(), nullable=False),
        sa.Column("category", sa.String(), nullable=False),
        sa.Column("contracts", sa.Integer(), nullable=False),
        sa.Column("cost_cents", sa.BigInteger(), nullable=False),
        sa.Column("fees_cents", sa.BigInteger(), nullable=False),
        sa.Column("realized_pnl_cents", sa.BigInteger(), nullable=False),
        sa.Column("updated_ts_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("market_ticker", name=op.f("pk_positions")),
    )
    op.create_index(op.f("ix_positions_category"), "positions", ["category"], unique=False)
    op.create_index(op.f("ix_positions_event_ticker"), "positions", ["event_ticker"], unique=False)
    op.create_index(
        op.f("ix_positions_updated_ts_ms"), "positions", ["updated_ts_ms"], unique=False
    )

    op.create_table(
        "settlements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("market_ticker", sa.String(), nullable=False),
        sa.Column("result", sa.String(), nullable=False),
        sa.Column("contracts", sa.Integer(), nullable=False),
        sa.Column("revenue_cents", sa.BigInteger(), nullable=False),
        sa.Column("cost_cents", sa.BigInteger(), nullable=False),
        sa.Column("realized_pnl_cents", sa.BigInteger(), nullable=False),
        sa.Column("settled_ts_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_settlements")),
        sa.UniqueConstraint("market_ticker", name=op.f("uq_settlements_market_ticker")),
    )
    op.create_index(
        op.f("ix_settlements_settled_ts_ms"), "settlements", ["settled_ts_ms"], unique=False
    )

    op.create_table(
        "daily_equity",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("trading_day", sa.String(), nullable=False),
        sa.Column("start_equity_cents", sa.BigInteger(), nullable=False),
        sa.Column("recorded_ts_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_daily_equity")),
        sa.UniqueConstraint("trading_day", name=op.f("uq_daily_equity_trading_day")),
    )
    op.create_index(
        op.f("ix_daily_equity_recorded_ts_ms"), "daily_equity", ["recorded_ts_ms"], unique=False
    )


def downgrade() -> None:
    """Drop what ``upgrade`` created (its rows are lost)."""
    op.drop_table("daily_equity")
    op.drop_table("settlements")
    op.drop_table("positions")
    op.drop_table("fills")
    op.drop_table("order_events")
    op.drop_table("orders")
    op.drop_table("decisions")
