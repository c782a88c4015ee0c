"""Order groups: one exchange order group per strategy, remembered across runs.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the order group table (existing rows of other tables are untouched)."""
    op.create_table(
        "order_groups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("strategy", sa.String(), nullable=False),
        sa.Column("order_group_id", sa.String(), nullable=False),
        sa.Column("contracts_limit", sa.Integer(), nullable=False),
        sa.Column("created_ts_ms", sa.BigInteger(), nullable=False),
        sa.Column("triggered_ts_ms", sa.BigInteger(), nullable=True),
        sa.Column("retired_ts_ms", sa.BigInteger(), nullable=True),
        sa.Column("detail", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_groups")),
        sa.UniqueConstraint("order_group_id", name=op.f("uq_order_groups_order_group_id")),
    )
    op.create_index(op.f("ix_order_groups_strategy"), "order_groups", ["strategy"], unique=False)
    op.create_index(op.f("ix_order_groups_created_ts_ms"), "order_groups", ["created_ts_ms"],
                    unique=False)


def downgrade() -> None:
    """Drop what ``upgrade`` created (its rows are lost)."""
    op.drop_index(op.f("ix_order_groups_created_ts_ms"), table_name="order_groups")
    op.drop_index(op.f("ix_order_groups_strategy"), table_name="order_groups")
    op.drop_table("order_groups")
