"""Prefect tasks and the I/O edges: settings, clients built from settings, database sessions."""
