"""Records of exchange API calls and of the exchange link: the error-rate breaker's and the dead
man's switch's input, buffered so that recording never serialises the trading path.

Invariants:
- Every call made through ``RecordingTransport`` / ``AsyncRecordingTransport`` is counted, in the
  minute (``as_of``) it completed, as ``heartbeats`` rows ``api:<minute ms>`` with detail
  ``{"calls": n, "errors": m}``. An error is no response, 429 or 5xx (a 4xx is a business answer).
  Rows are merged by addition, so processes and restarts share the buckets.
- Counts are buffered in memory by the process-wide ``CallRecorder`` of their ledger (one per
  ledger URL, thread-safe) and written in ONE write transaction: on ``flush()`` (the trading tasks
  flush when they finish), when the oldest unwritten count is ``max_age_s`` old (a timer fires
  even if no call follows), when a transport closes, at normal interpreter exit (``atexit``), and
  before this process reads them (``api_call_counts``, ``link_observation``).
- The link is down from the first call that got no response (connect error, timeout) until the
  first call that got any answer; a 5xx is an answer (the error-rate breaker judges it). A change
  of link state is written before the call returns to its caller, together with whatever counts
  are buffered, so the dead man's switch (``link:down-since``, ``link:outage``) never waits for a
  buffer. An older success never ends a newer outage recorded by another process.
- Nothing is dropped: a failed write puts the counts back into the buffer. An explicit
  ``flush()`` raises the failure; the transport path, the timer and ``atexit`` log it and keep the
  counts for the next flush (the HTTP answer of an order is never turned into an exception).
- What ``kill -9`` loses: the counts of the calls of at most the last ``max_age_s`` seconds
  (default 5 s) that were not flushed yet. Link changes are never lost that way (written before the
  call returns). This understates the error rate for a few seconds at most; accepted.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import ssl
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Final

import certifi
import httpx
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from kalshi.client import KalshiClient, RetryPolicy
from models.breakers import ApiCallCounts, LinkObservation
from models.ledger import Heartbeat, datetime_from_ms, ms_from_datetime
from tasks.db import read_session, write_session

__all__ = [
    "API_BUCKET_PREFIX",
    "DEFAULT_MAX_AGE_S",
    "AsyncRecordingTransport",
    "CallRecorder",
    "RecordingTransport",
    "api_call_counts",
    "flush_api_calls",
    "forget_outage",
    "link_observation",
    "note_link",
    "prune_api_buckets",
    "record_api_call",
    "recorder_for",
    "safety_client",
]

log = logging.getLogger(__name__)

API_BUCKET_PREFIX: Final = "api:"
DEFAULT_MAX_AGE_S: Final = 5.0
_BUCKET_MS: Final = 60_000
_LINK_DOWN: Final = "link:down-since"
_LINK_OUTAGE: Final = "link:outage"


def _is_error(status: int | None) -> bool:
    # errors the breaker counts: no response, 429, 5xx (a 4xx rejection is a business answer)
    return status is None or status == 429 or status >= 500


def _bucket(ts_ms: int) -> int:
    return ts_ms - ts_ms % _BUCKET_MS


# --- ledger rows (each helper runs inside the caller's write transaction) ---------------------

def _add_counts(session: Session, bucket_ms: int, calls: int, errors: int, ts_ms: int) -> None:
    name = f"{API_BUCKET_PREFIX}{bucket_ms}"
    row = session.get(Heartbeat, name)
    if row is not None and row.detail:
        counts = json.loads(row.detail)
        calls += int(counts["calls"])
        errors += int(counts["errors"])
    detail = json.dumps({"calls": calls, "errors": errors})
    if row is None:
        row = Heartbeat(component=name, ts_ms=ts_ms, detail=detail)
    else:
        row.ts_ms, row.detail = max(row.ts_ms, ts_ms), detail
    session.add(row)


def _note_link(session: Session, up: bool, ts_ms: int) -> None:
    down = session.get(Heartbeat, _LINK_DOWN)
    if not up:
        if down is None:
            session.add(Heartbeat(component=_LINK_DOWN, ts_ms=ts_ms, detail=None))
        session.flush()
        return
    if down is None or down.ts_ms > ts_ms:  # no outage, or one newer than this success
        return
    down_ms = ts_ms - down.ts_ms
    outage = session.get(Heartbeat, _LINK_OUTAGE)
    if outage is None:
        outage = Heartbeat(component=_LINK_OUTAGE, ts_ms=ts_ms,
                           detail=json.dumps({"down_ms": down_ms}))
    else:  # an outage not acted on yet: keep the longest
        old = int(json.loads(outage.detail or "{}").get("down_ms", 0))
        outage.ts_ms, outage.detail = ts_ms, json.dumps({"down_ms": max(old, down_ms)})
    session.add(outage)
    session.delete(down)
    session.flush()


def record_api_call(engine: Engine, status: int | None, *, as_of: datetime) -> None:
    """Write one call (status None: no response) and the link state now, unbuffered."""
    ts_ms = ms_from_datetime(as_of)
    with write_session(engine) as session:
        _add_counts(session, _bucket(ts_ms), 1, int(_is_error(status)), ts_ms)
        _note_link(session, status is not None, ts_ms)


def note_link(engine: Engine, *, up: bool, as_of: datetime) -> None:
    """Record a failed call (the outage starts) or a successful one (an outage ends)."""
    with write_session(engine) as session:
        _note_link(session, up, ms_from_datetime(as_of))


def forget_outage(engine: Engine) -> None:
    """Delete the record of an ended outage (it was acted on, or too short to matter)."""
    with write_session(engine) as session:
        outage = session.get(Heartbeat, _LINK_OUTAGE)
        if outage is not None:
            session.delete(outage)


def prune_api_buckets(engine: Engine, *, before: datetime) -> None:
    """Delete the call counts of the minutes before `before`."""
    cutoff = ms_from_datetime(before)
    with write_session(engine) as session:
        rows = session.exec(select(Heartbeat).where(
            col(Heartbeat.component).startswith(API_BUCKET_PREFIX)))
        for row in rows:
            if int(row.component[len(API_BUCKET_PREFIX):]) < cutoff:
                session.delete(row)


def api_call_counts(engine: Engine, *, now: datetime, window_s: float) -> ApiCallCounts:
    """Return the API calls and errors recorded in the minutes of the last `window_s` (this
    process's buffered counts are flushed first)."""
    flush_api_calls(engine)
    since = ms_from_datetime(now - timedelta(seconds=window_s))
    first_bucket = _bucket(since)
    calls = errors = 0
    with read_session(engine) as session:
        rows = session.exec(select(Heartbeat).where(
            col(Heartbeat.component).startswith(API_BUCKET_PREFIX)))
        for row in rows:
            if int(row.component[len(API_BUCKET_PREFIX):]) >= first_bucket and row.detail:
                counts = json.loads(row.detail)
                calls += int(counts["calls"])
                errors += int(counts["errors"])
    return ApiCallCounts(calls, errors)


def link_observation(engine: Engine, *, up: bool, detail: str = "") -> LinkObservation:
    """Return the link state from the ledger's records, `up` being this run's probe result."""
    flush_api_calls(engine)
    with read_session(engine) as session:
        down = session.get(Heartbeat, _LINK_DOWN)
        outage = session.get(Heartbeat, _LINK_OUTAGE)
    restored = None
    if outage is not None:
        restored = int(json.loads(outage.detail or "{}").get("down_ms", 0)) / 1000
    return LinkObservation(up=up, down_since=None if down is None else datetime_from_ms(down.ts_ms),
                           restored_after_s=restored if up else None, detail=detail)


# --- the buffer ---------------------------------------------------------------------------------

class _Action(Enum):
    NONE = 0
    WRITE = 1  # the link went down, or came back: write now
    CHECK = 2  # first answer this process saw: write now only if an outage is on record


class CallRecorder:
    """Per-minute call counts and link changes of one ledger, buffered in memory (thread-safe)."""

    def __init__(self, engine: Engine, *, max_age_s: float = DEFAULT_MAX_AGE_S) -> None:
        if not max_age_s > 0:
            raise ValueError(f"max_age_s: expected > 0, got {max_age_s!r}")
        self.engine = engine
        self.max_age_s = max_age_s
        self._lock = threading.Lock()        # guards the buffer
        self._flush_lock = threading.Lock()  # one flush at a time: link changes keep their order
        self._buckets: dict[int, list[int]] = {}  # minute -> [calls, errors, last ts_ms]
        self._links: list[tuple[bool, int]] = []  # link changes not written yet, in order
        self._latest_up: int | None = None        # ts_ms of the latest answer (ends outages)
        self._link_up: bool | None = None
        self._timer: threading.Timer | None = None
        with _REGISTRY_LOCK:
            _LIVE.add(self)

    @property
    def pending(self) -> ApiCallCounts:
        """The calls and errors buffered, not yet written."""
        with self._lock:
            return ApiCallCounts(sum(c[0] for c in self._buckets.values()),
                                 sum(c[1] for c in self._buckets.values()))

    def record(self, status: int | None, *, as_of: datetime) -> None:
        """Count one call (status None: no response); write at once if the link state changed."""
        if self._needs_write(self._observe(status, as_of=as_of)):
            self.flush(strict=False)

    def _observe(self, status: int | None, *, as_of: datetime) -> _Action:
        # buffer one call; say what must be written now (no I/O: the async transport's half)
        ts_ms = ms_from_datetime(as_of)
        up = status is not None
        with self._lock:
            counts = self._buckets.setdefault(_bucket(ts_ms), [0, 0, ts_ms])
            counts[0] += 1
            counts[1] += int(_is_error(status))
            counts[2] = max(counts[2], ts_ms)
            if up:
                self._latest_up = max(self._latest_up or ts_ms, ts_ms)
            previous, self._link_up = self._link_up, up
            if self._timer is None:
                self._timer = threading.Timer(self.max_age_s, self._timed_flush)
                self._timer.daemon = True
                self._timer.start()
            if previous is None and up:
                return _Action.CHECK
            if previous is not up:
                self._links.append((up, ts_ms))
                return _Action.WRITE
            return _Action.NONE

    def _needs_write(self, action: _Action) -> bool:
        return action is _Action.WRITE or (action is _Action.CHECK and self._outage_on_record())

    def _outage_on_record(self) -> bool:
        try:
            with read_session(self.engine) as session:
                return session.get(Heartbeat, _LINK_DOWN) is not None
        except SQLAlchemyError:
            return True  # unknown: try the write (a failure there is logged, counts kept)

    def _timed_flush(self) -> None:
        with self._lock:
            self._timer = None
        self.flush(strict=False)

    def flush(self, *, strict: bool = True) -> bool:
        """Write every buffered count and link change in one transaction; return whether
        anything was written. On failure the counts stay buffered and (if `strict`) it raises."""
        with self._flush_lock:
            with self._lock:
                buckets, self._buckets = self._buckets, {}
                links, self._links = self._links, []
                latest_up = self._latest_up if self._link_up else None
            if not buckets and not links:
                return False
            try:
                with write_session(self.engine) as session:
                    for bucket_ms, (calls, errors, ts_ms) in sorted(buckets.items()):
                        _add_counts(session, bucket_ms, calls, errors, ts_ms)
                    for up, ts_ms in links:
                        _note_link(session, up, ts_ms)
                    if latest_up is not None:
                        _note_link(session, True, latest_up)  # ends an outage another wrote
            except SQLAlchemyError as exc:
                self._restore(buckets, links)
                if strict:
                    raise
                log.warning("API call counts not written yet (kept for the next flush): %s",
                            type(exc).__name__)
                return False
            return True

    def _restore(self, buckets: dict[int, list[int]], links: list[tuple[bool, int]]) -> None:
        with self._lock:
            for bucket_ms, (calls, errors, ts_ms) in buckets.items():
                counts = self._buckets.setdefault(bucket_ms, [0, 0, ts_ms])
                counts[0] += calls
                counts[1] += errors
                counts[2] = max(counts[2], ts_ms)
            self._links = links + self._links

    def close(self) -> None:
        """Stop the timer and flush (strict); calls counted afterwards are still written."""
        with self._lock:
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        self.flush()


_REGISTRY_LOCK: Final = threading.Lock()
_LIVE: set[CallRecorder] = set()          # every recorder of the process: flushed at exit
_SHARED: dict[str, CallRecorder] = {}     # the process-wide recorder of each ledger


def _ledger_key(engine: Engine) -> str:
    url = engine.url
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        return f"memory:{id(engine)}"  # every in-memory engine is its own database
    return url.render_as_string(hide_password=False)


def recorder_for(engine: Engine) -> CallRecorder:
    """Return the process-wide recorder of `engine`'s ledger (created on first use)."""
    key = _ledger_key(engine)
    with _REGISTRY_LOCK:
        found = _SHARED.get(key)
    if found is None:
        created = CallRecorder(engine)
        with _REGISTRY_LOCK:
            found = _SHARED.setdefault(key, created)
        if found is not created:
            with _REGISTRY_LOCK:
                _LIVE.discard(created)
    return found


def flush_api_calls(engine: Engine, *, strict: bool = True) -> bool:
    """Write this process's buffered counts of `engine`'s ledger now; return whether any were."""
    with _REGISTRY_LOCK:
        found = _SHARED.get(_ledger_key(engine))
    return False if found is None else found.flush(strict=strict)


@atexit.register
def _flush_at_exit() -> None:
    with _REGISTRY_LOCK:
        recorders = list(_LIVE)
    for recorder in recorders:
        recorder.flush(strict=False)


# --- transports ----------------------------------------------------------------------------------

def _default_now() -> datetime:
    return datetime.now(UTC)


class RecordingTransport(httpx.BaseTransport):
    """An httpx transport that counts every call's outcome for the error-rate breaker."""

    def __init__(self, engine: Engine, inner: httpx.BaseTransport | None = None,
                 now: Callable[[], datetime] | None = None, *,
                 recorder: CallRecorder | None = None) -> None:
        self._recorder = recorder or recorder_for(engine)
        self._inner = inner or httpx.HTTPTransport(
            verify=ssl.create_default_context(cafile=certifi.where()))
        self._now = now or _default_now

    @property
    def recorder(self) -> CallRecorder:
        """The buffer this transport counts into."""
        return self._recorder

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send `request` and count its status (None when no response came back)."""
        try:
            response = self._inner.handle_request(request)
        except httpx.TransportError:
            self._recorder.record(None, as_of=self._now())
            raise
        self._recorder.record(response.status_code, as_of=self._now())
        return response

    def close(self) -> None:
        """Close the wrapped transport and flush the counts (kept buffered if that fails)."""
        try:
            self._inner.close()
        finally:
            self._recorder.flush(strict=False)


class AsyncRecordingTransport(httpx.AsyncBaseTransport):
    """The asynchronous twin of ``RecordingTransport`` (ledger writes run off the event loop)."""

    def __init__(self, engine: Engine, inner: httpx.AsyncBaseTransport | None = None,
                 now: Callable[[], datetime] | None = None, *,
                 recorder: CallRecorder | None = None) -> None:
        self._recorder = recorder or recorder_for(engine)
        self._inner = inner or httpx.AsyncHTTPTransport(
            verify=ssl.create_default_context(cafile=certifi.where()))
        self._now = now or _default_now

    @property
    def recorder(self) -> CallRecorder:
        """The buffer this transport counts into."""
        return self._recorder

    async def _record(self, status: int | None) -> None:
        action = self._recorder._observe(status, as_of=self._now())
        if action is not _Action.NONE and await asyncio.to_thread(self._recorder._needs_write,
                                                                  action):
            await asyncio.to_thread(self._recorder.flush, strict=False)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send `request` and count its status (None when no response came back)."""
        try:
            response = await self._inner.handle_async_request(request)
        except httpx.TransportError:
            await self._record(None)
            raise
        await self._record(response.status_code)
        return response

    async def aclose(self) -> None:
        """Close the wrapped transport and flush the counts (kept buffered if that fails)."""
        try:
            await self._inner.aclose()
        finally:
            await asyncio.to_thread(self._recorder.flush, strict=False)


def safety_client(base_url: str, auth: httpx.Auth | None, engine: Engine, *,
                  timeout_s: float = 5.0, max_retries: int = 1,
                  inner: httpx.BaseTransport | None = None,
                  now: Callable[[], datetime] | None = None) -> KalshiClient:
    """Return a client whose calls are recorded, with short timeouts (the guard must not hang)."""
    return KalshiClient(base_url, auth, transport=RecordingTransport(engine, inner, now),
                        timeout=timeout_s, backoff=RetryPolicy(max_retries=max_retries,
                                                               base_s=0.1, cap_s=0.5))
