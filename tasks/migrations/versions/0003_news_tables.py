"""News: stored items (first-seen times), feed polling state, and the actions taken.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the news item, feed state and news action tables."""
    op.create_table(
        "news_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("item_id", sa.String(), nullable=False),
        sa.Column("thread_id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("message_type", sa.String(), nullable=False),
        sa.Column("title", sa.String(), nullable=False),
        sa.Column("event", sa.String(), nullable=False),
        sa.Column("zones", sa.String(), nullable=False),
        sa.Column("published_ts_ms", sa.BigInteger(), nullable=False),
        sa.Column("expires_ts_ms", sa.BigInteger(), nullable=True),
        sa.Column("first_seen_ts_ms", sa.BigInteger(), nullable=False),
        sa.Column("payload_json", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_news_items")),
        sa.UniqueConstraint("source", "item_id", name=op.f("uq_news_items_source_item_id")),
    )
    op.create_index(op.f("ix_news_items_source"), "news_items", ["source"], unique=False)
    op.create_index(op.f("ix_news_items_thread_id"), "news_items", ["thread_id"], unique=False)
    op.create_index(op.f("ix_news_items_first_seen_ts_ms"), "news_items", ["first_seen_ts_ms"],
                    unique=False)

    op.create_table(
        "news_feeds",
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("url", sa.String(), nullable=False),
        sa.Column("etag", sa.String(), nullable=True),
        sa.Column("last_modified", sa.String(), nullable=True),
        sa.Column("last_poll_ts_ms", sa.BigInteger(), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(), nullable=True),
        sa.Column("items_seen", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("source", name=op.f("pk_news_feeds")),
    )

    op.create_table(
        "news_actions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("news_item_id", sa.Integer(), nullable=False),
        sa.Column("rule_id", sa.String(), nullable=False),
        sa.Column("effect", sa.String(), nullable=False),
        sa.Column("series", sa.String(), nullable=False),
        sa.Column("market_ticker", sa.String(), nullable=True),
        sa.Column("outcome", sa.String(), nullable=False),
        sa.Column("detail", sa.String(), nullable=False),
        sa.Column("client_order_id", sa.String(), nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=True),
        sa.Column("ts_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_news_actions")),
    )
    op.create_index(op.f("ix_news_actions_news_item_id"), "news_actions", ["news_item_id"],
                    unique=False)
    op.create_index(op.f("ix_news_actions_ts_ms"), "news_actions", ["ts_ms"], unique=False)


def downgrade() -> None:
    """Drop what ``upgrade`` created (its rows are lost)."""
    op.drop_index(op.f("ix_news_actions_ts_ms"), table_name="news_actions")
    op.drop_index(op.f("ix_news_actions_news_item_id"), table_name="news_actions")
    op.drop_table("news_actions")
    op.drop_table("news_feeds")
    op.drop_index(op.f("ix_news_items_first_seen_ts_ms"), table_name="news_items")
    op.drop_index(op.f("ix_news_items_thread_id"), table_name="news_items")
    op.drop_index(op.f("ix_news_items_source"), table_name="news_items")
    op.drop_table("news_items")
