"""Ledger database: engines, sessions, write transactions and schema migrations.

Invariant: a ``write_session`` is one serialised transaction. On SQLite it starts with
``BEGIN IMMEDIATE`` (the write lock is taken before the first read, so a risk check and the intent
it approves cannot interleave with another process's); on PostgreSQL it takes one transaction-level
advisory lock. SQLite connections run in WAL mode with a busy timeout and foreign keys on. The
schema is created and upgraded only by the alembic revisions in ``tasks/migrations``
(``upgrade_ledger``), never by ``create_all``, so an upgrade keeps the data.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlmodel import Session

if TYPE_CHECKING:  # alembic costs a second to import; only migrations need it
    from alembic.config import Config

__all__ = [
    "BUSY_TIMEOUT_MS",
    "MIGRATIONS_DIR",
    "LEDGER_LOCK_KEY",
    "alembic_config",
    "ledger_engine",
    "ledger_revision",
    "read_session",
    "upgrade_ledger",
    "write_session",
]

BUSY_TIMEOUT_MS: Final = 30_000
MIGRATIONS_DIR: Final = Path(__file__).resolve().parent / "migrations"
LEDGER_LOCK_KEY: Final = 0x45445F4C45444752  # "ED_LEDGR": PostgreSQL advisory lock of the ledger
_BEGIN_OPTION: Final = "ledger_begin"


def _is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _sqlite_file(url: str) -> Path | None:
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def ledger_engine(url: str, **engine_kwargs: Any) -> Engine:
    """Return an engine for the ledger at `url` (``Settings.ledger_url``)."""
    if not _is_sqlite(url):
        return create_engine(url, pool_pre_ping=True, **engine_kwargs)
    path = _sqlite_file(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
        **engine_kwargs,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # take transaction control away from the sqlite3 module so that BEGIN is ours to emit
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")

    return engine


@contextmanager
def write_session(engine: Engine) -> Iterator[Session]:
    """Yield a session in one serialised write transaction; commit on exit, roll back on error."""
    with engine.connect() as raw:
        connection = raw.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
        with connection.begin():
            if connection.dialect.name == "postgresql":
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": LEDGER_LOCK_KEY}
                )
            with Session(bind=connection, expire_on_commit=False) as session:
                yield session
                session.flush()


@contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    """Yield a session for reads (a deferred transaction: a consistent snapshot, no write lock)."""
    with Session(engine, expire_on_commit=False) as session:
        yield session


def alembic_config(url: str) -> Config:
    """Return the alembic configuration of the ledger at `url` (no ini file needed)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # '%' is interpolation syntax in alembic's ini parser; URLs with passwords may contain it
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade_ledger(url: str, revision: str = "head") -> None:
    """Create or upgrade the ledger schema at `url` to `revision`, keeping all rows."""
    from alembic import command

    engine = ledger_engine(url)
    try:
        # IMMEDIATE: two processes starting at once upgrade one after the other, never both
        with engine.connect() as raw:
            connection = raw.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
            with connection.begin():
                if connection.dialect.name == "postgresql":
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": LEDGER_LOCK_KEY}
                    )
                config = alembic_config(url)
                config.attributes["connection"] = connection
                command.upgrade(config, revision)
    finally:
        engine.dispose()


def ledger_revision(url: str) -> str | None:
    """Return the alembic revision the ledger at `url` is at (None if never migrated)."""
    from alembic.runtime.migration import MigrationContext

    engine = ledger_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()
