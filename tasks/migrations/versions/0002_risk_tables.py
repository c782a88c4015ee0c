"""Risk bookkeeping: risk events (recorded rejections), halts, heartbeats.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the risk-event, halt and heartbeat tables."""
    op.create_table(
        "risk_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("limit_name", sa.String(), nullable=False),
        sa.Column("market_ticker", sa.String(), nullable=True),
        sa.Column("client_order_id", sa.String(), nullable=True),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("ts_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_events")),
    )
    op.create_index(op.f("ix_risk_events_kind"), "risk_events", ["kind"], unique=False)
    op.create_index(
        op.f("ix_risk_events_market_ticker"), "risk_events", ["market_ticker"], unique=False
    )
    op.create_index(op.f("ix_risk_events_ts_ms"), "risk_events", ["ts_ms"], unique=False)

    op.create_table(
        "halts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("set_by", sa.String(), nullable=False),
        sa.Column("set_ts_ms", sa.BigInteger(), nullable=False),
        sa.Column("cleared_by", sa.String(), nullable=True),
        sa.Column("cleared_ts_ms", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_halts")),
    )
    op.create_index(op.f("ix_halts_set_ts_ms"), "halts", ["set_ts_ms"], unique=False)

    op.create_table(
        "heartbeats",
        sa.Column("component", sa.String(), nullable=False),
        sa.Column("ts_ms", sa.BigInteger(), nullable=False),
        sa.Column("detail", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("component", name=op.f("pk_heartbeats")),
    )
    op.create_index(op.f("ix_heartbeats_ts_ms"), "heartbeats", ["ts_ms"], unique=False)


def downgrade() -> None:
    """Drop what ``upgrade`` created (its rows are lost)."""
    op.drop_table("heartbeats")
    op.drop_table("halts")
    op.drop_table("risk_events")
