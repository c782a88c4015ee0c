"""Alembic environment of the ledger: migrates ``models.ledger.LEDGER_METADATA``.

Run programmatically through ``tasks.db.upgrade_ledger(url)``, which passes its connection in
``config.attributes["connection"]`` (so the upgrade runs inside the caller's locked transaction).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from models.ledger import LEDGER_METADATA
from tasks.db import ledger_engine

config = context.config
target_metadata = LEDGER_METADATA


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER constraints
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    """Emit the SQL of the migrations without a database (``alembic upgrade --sql``)."""
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Migrate through the caller's connection, or one built from the configured URL."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("sqlalchemy.url: no ledger URL configured for the migration")
    engine = ledger_engine(url)
    try:
        with engine.connect() as new_connection:
            _run(new_connection)
            new_connection.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
