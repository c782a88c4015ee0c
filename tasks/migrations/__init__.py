"""Alembic revisions of the ledger schema (applied by ``tasks.db.upgrade_ledger``)."""
