"""SQLite persistence of the paper exchange: an append-only command log plus reference tables.

Invariant: a mutating command is acknowledged to a client only after its log row is committed
(``synchronous=FULL`` in WAL mode, so it survives kill -9 *and* an OS crash). Replaying the log,
in ``seq`` order, through a fresh deterministic engine rebuilds the exact state, ids included.

Commits are grouped: one writer thread takes every command queued since its last commit, writes
them in one transaction and then completes all their futures at once (group commit), so the fsync
cost is shared by concurrent clients instead of paid per order. ``append_many`` queues several
commands as one unit (one hand-off, one future, never split across transactions).
"""

from __future__ import annotations

import json
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Command", "CommandStore", "KeyRecord", "StoreError"]

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS commands (
    seq INTEGER PRIMARY KEY,
    now_ms INTEGER NOT NULL,
    kind TEXT NOT NULL,
    args TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    public_key_pem TEXT NOT NULL,
    tier TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS reference (
    kind TEXT NOT NULL,
    ticker TEXT NOT NULL,
    raw TEXT NOT NULL,
    PRIMARY KEY (kind, ticker)
);
CREATE TABLE IF NOT EXISTS settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


# json.dumps(args, separators=(",", ":"), sort_keys=True), with the encoder built once
_ENCODE = json.JSONEncoder(separators=(",", ":"), sort_keys=True).encode


class StoreError(RuntimeError):
    """The database cannot be opened or written; the message names the file."""


@dataclass(frozen=True)
class Command:
    """One logged engine call: ``kind`` names the call, ``args`` are plain JSON values."""

    seq: int
    now_ms: int
    kind: str
    args: dict[str, Any]


@dataclass(frozen=True)
class KeyRecord:
    """A registered API key: its public key PEM and the account it trades for."""

    key_id: str
    account_id: str
    public_key_pem: str
    tier: str
    created_ms: int


@dataclass(frozen=True)
class _Pending:
    seq: int
    now_ms: int
    kind: str
    text: str
    future: Future[int]


def _settle(future: Future[int], *, seq: int = 0, error: BaseException | None = None) -> None:
    # a waiter may have cancelled its future; the row is committed (or failed) regardless
    if future.cancelled():
        return
    try:
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(seq)
    except InvalidStateError:
        log.warning("paper store: future already settled for seq %d", seq)


class CommandStore:
    """The exchange's own SQLite file. Thread-safe; commands are committed by one writer thread."""

    def __init__(self, path: str | Path, *, synchronous: str = "FULL") -> None:
        if synchronous not in ("FULL", "NORMAL", "EXTRA"):
            raise StoreError(f"synchronous must be FULL, NORMAL or EXTRA (got {synchronous!r})")
        self.path = Path(path)
        self._lock = threading.Lock()  # guards self._conn (reference tables, reads)
        try:
            self._conn = self._connect(synchronous)
            self._conn.executescript(_SCHEMA)
            row = self._conn.execute("SELECT COALESCE(MAX(seq), 0) FROM commands").fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open paper exchange database {self.path}: {exc}") from exc
        self._next_seq = int(row[0]) + 1
        self._seq_lock = threading.Lock()
        self._queue: queue.SimpleQueue[_Pending | list[_Pending] | None] = queue.SimpleQueue()
        self._writer_conn = self._connect(synchronous)
        self._closed = False
        self.batches_committed = 0
        self.commands_committed = 0
        self._commit_hook: Callable[[], None] | None = None
        self._writer = threading.Thread(target=self._write_loop, name="paper-store", daemon=True)
        self._writer.start()

    def _connect(self, synchronous: str) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={synchronous}")
        conn.execute("PRAGMA busy_timeout=10000")
        return conn

    # --- command log -------------------------------------------------------------------------

    def set_commit_hook(self, hook: Callable[[], None] | None) -> None:
        """Call ``hook()`` on the writer thread once per batch, after its futures are settled.

        One call per batch (not per command) lets an event loop be woken once for a whole group
        commit instead of once per command.
        """
        self._commit_hook = hook

    def append(self, now_ms: int, kind: str, args: dict[str, Any]) -> Future[int]:
        """Queue one command; the future completes with its ``seq`` once it is committed."""
        if self._closed:
            raise StoreError(f"paper exchange database {self.path} is closed")
        text = _ENCODE(args)
        future: Future[int] = Future()
        with self._seq_lock:  # seq order == call order == engine application order
            seq = self._next_seq
            self._next_seq += 1
            self._queue.put(_Pending(seq, now_ms, kind, text, future))
        return future

    def append_many(
        self, commands: list[tuple[int, str, dict[str, Any]]]
    ) -> tuple[int, Future[int]]:
        """Queue (now_ms, kind, args) commands as one unit; return (first seq, commit future).

        The commands get consecutive ``seq`` numbers in list order and are always written in
        the same transaction; the future completes with the last ``seq`` once they are
        committed. One hand-off to the writer thread for the lot instead of one per command.
        """
        if self._closed:
            raise StoreError(f"paper exchange database {self.path} is closed")
        texts = [_ENCODE(args) for _now_ms, _kind, args in commands]
        future: Future[int] = Future()
        # running: nobody can cancel it (a cancelled asyncio.wrap_future() would try), so it
        # completes only when the writer has committed or failed
        future.set_running_or_notify_cancel()
        with self._seq_lock:  # seq order == call order == engine application order
            first = self._next_seq
            self._next_seq += len(commands)
            self._queue.put([_Pending(first + i, now_ms, kind, text, future)
                             for i, ((now_ms, kind, _args), text) in
                             enumerate(zip(commands, texts, strict=True))])
        return first, future

    def append_sync(self, now_ms: int, kind: str, args: dict[str, Any]) -> int:
        """Queue one command and wait until it is committed; return its ``seq``."""
        return self.append(now_ms, kind, args).result()

    def _write_loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = first if isinstance(first, list) else [first]
            stop = False
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                if isinstance(item, list):
                    batch.extend(item)
                else:
                    batch.append(item)
            rows = [(p.seq, p.now_ms, p.kind, p.text) for p in batch]
            try:
                with self._writer_conn:
                    self._writer_conn.execute("BEGIN IMMEDIATE")
                    self._writer_conn.executemany(
                        "INSERT INTO commands (seq, now_ms, kind, args) VALUES (?, ?, ?, ?)", rows
                    )
            except sqlite3.Error as exc:
                log.error("paper store commit failed: %s", exc)
                error = StoreError(f"cannot write paper exchange database {self.path}: {exc}")
                for pending in batch:
                    if not pending.future.done():
                        _settle(pending.future, error=error)
            else:
                self.batches_committed += 1
                self.commands_committed += len(batch)
                # newest first: a future shared by several commands settles once, with the
                # last seq of its commands
                for pending in reversed(batch):
                    if not pending.future.done():
                        _settle(pending.future, seq=pending.seq)
            hook = self._commit_hook
            if hook is not None:
                try:
                    hook()
                except Exception:  # the waiter's loop is gone (shutdown): the rows are committed
                    log.exception("paper store: commit hook failed")
            if stop:
                return

    def commands(self, after_seq: int = 0) -> Iterator[Command]:
        """Yield committed commands in ``seq`` order (for replay)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT seq, now_ms, kind, args FROM commands WHERE seq > ? ORDER BY seq",
                (after_seq,),
            ).fetchall()
        for seq, now_ms, kind, args in rows:
            yield Command(int(seq), int(now_ms), str(kind), json.loads(args))

    def command_count(self) -> int:
        """Return how many commands are committed."""
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM commands").fetchone()[0])

    # --- keys, reference data, settings ------------------------------------------------------

    def put_key(self, record: KeyRecord) -> None:
        """Insert or replace an API key (committed before returning)."""
        self._write(
            "INSERT OR REPLACE INTO api_keys "
            "(key_id, account_id, public_key_pem, tier, created_ms) VALUES (?, ?, ?, ?, ?)",
            (record.key_id, record.account_id, record.public_key_pem, record.tier,
             record.created_ms),
        )

    def api_keys(self) -> list[KeyRecord]:
        """Return every registered key."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT key_id, account_id, public_key_pem, tier, created_ms FROM api_keys"
            ).fetchall()
        return [KeyRecord(str(a), str(b), str(c), str(d), int(e)) for a, b, c, d, e in rows]

    def put_reference(self, kind: str, ticker: str, raw: dict[str, Any]) -> None:
        """Store the raw Kalshi JSON of a series, event or market (committed before returning)."""
        self._write(
            "INSERT OR REPLACE INTO reference (kind, ticker, raw) VALUES (?, ?, ?)",
            (kind, ticker, json.dumps(raw, sort_keys=True)),
        )

    def put_references(self, rows: list[tuple[str, str, dict[str, Any]]]) -> None:
        """Store many (kind, ticker, raw) rows in one transaction."""
        with self._lock:
            try:
                with self._conn:
                    self._conn.execute("BEGIN IMMEDIATE")
                    self._conn.executemany(
                        "INSERT OR REPLACE INTO reference (kind, ticker, raw) VALUES (?, ?, ?)",
                        [(k, t, json.dumps(r, sort_keys=True)) for k, t, r in rows],
                    )
            except sqlite3.Error as exc:
                raise StoreError(
                    f"cannot write paper exchange database {self.path}: {exc}"
                ) from exc

    def references(self, kind: str) -> dict[str, dict[str, Any]]:
        """Return ``ticker -> raw JSON`` for one kind ("series", "event" or "market")."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT ticker, raw FROM reference WHERE kind = ?", (kind,)
            ).fetchall()
        return {str(t): json.loads(r) for t, r in rows}

    def put_setting(self, name: str, value: Any) -> None:
        """Store a JSON setting such as the injected faults."""
        self._write(
            "INSERT OR REPLACE INTO settings (name, value) VALUES (?, ?)", (name, json.dumps(value))
        )

    def setting(self, name: str, default: Any = None) -> Any:
        """Return a stored JSON setting, or ``default``."""
        with self._lock:
            row = self._conn.execute(
                "SELECT value FROM settings WHERE name = ?", (name,)
            ).fetchone()
        return default if row is None else json.loads(row[0])

    def _write(self, sql: str, params: tuple[Any, ...]) -> None:
        with self._lock:
            try:
                with self._conn:
                    self._conn.execute("BEGIN IMMEDIATE")
                    self._conn.execute(sql, params)
            except sqlite3.Error as exc:
                raise StoreError(
                    f"cannot write paper exchange database {self.path}: {exc}"
                ) from exc

    def close(self, timeout_s: float = 10.0) -> None:
        """Commit everything queued, stop the writer and close the file."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._writer.join(timeout_s)
        self._writer_conn.close()
        with self._lock:
            self._conn.close()
