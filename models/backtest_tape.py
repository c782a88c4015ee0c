"""Recorded public trades as a validated, columnar, time-ordered tape for the replay engine.

Invariant: every trade row is either on the tape or counted in an ``Issue`` (invalid, duplicate,
unsorted); nothing is dropped silently. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "Issue",
    "Tape",
    "build_tape",
]

@dataclass(frozen=True)
class Issue:
    """Something in the input that was excluded or could not be used, with how often."""

    kind: str  # invalid_trade | duplicate_trade | unsorted_trade | gap | no_result | skipped ...
    count: int
    detail: str


@dataclass(frozen=True, eq=False)
class Tape:
    """Recorded public trades, columnar, time-ordered, validated; build with ``build_tape``."""

    tickers: tuple[str, ...]  # code -> ticker
    ts_ms: np.ndarray  # int64, non-decreasing
    code: np.ndarray  # int64 index into tickers
    yes_price: np.ndarray  # int64 cents 1..99
    count: np.ndarray  # int64 contracts >= 1
    taker_yes: np.ndarray  # bool: the recorded taker bought YES
    issues: tuple[Issue, ...]
    index: dict[str, int]  # ticker -> code
    rows: tuple[np.ndarray, ...]  # code -> row numbers, time-ordered
    cumvol: tuple[np.ndarray, ...]  # code -> cumulative contracts (leading 0)

    def __len__(self) -> int:
        return int(self.ts_ms.shape[0])

    def code_of(self, ticker: str) -> int | None:
        """Return the integer code of a ticker, or None if it never traded."""
        return self.index.get(ticker)

    def last_before(self, ticker: str, ts_ms: int) -> tuple[int, int] | None:
        """Return (ts_ms, yes_price) of the last trade strictly before ``ts_ms``, or None."""
        code = self.index.get(ticker)
        if code is None:
            return None
        rows = self.rows[code]
        i = int(np.searchsorted(self.ts_ms[rows], ts_ms, side="left"))
        if i == 0:
            return None
        row = int(rows[i - 1])
        return int(self.ts_ms[row]), int(self.yes_price[row])

    def volume_between(self, ticker: str, start_ms: int, end_ms: int) -> int:
        """Return contracts traded in [start_ms, end_ms)."""
        code = self.index.get(ticker)
        if code is None:
            return 0
        ts = self.ts_ms[self.rows[code]]
        lo = int(np.searchsorted(ts, start_ms, side="left"))
        hi = int(np.searchsorted(ts, end_ms, side="left"))
        cum = self.cumvol[code]
        return int(cum[hi] - cum[lo])


def _ticker_rows(code: np.ndarray, n_tickers: int,
                 count: np.ndarray) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    # the narrowest code type: numpy's stable sort is a radix sort for 16-bit keys (same order)
    narrow = code.astype(np.int16) if n_tickers <= np.iinfo(np.int16).max else code
    order = np.argsort(narrow, kind="stable")
    bounds = np.searchsorted(code[order], np.arange(n_tickers + 1))
    rows = tuple(order[bounds[c]:bounds[c + 1]] for c in range(n_tickers))
    total = np.concatenate(([0], np.cumsum(count[order])))
    cum = tuple(total[bounds[c]:bounds[c + 1] + 1] - total[bounds[c]] for c in range(n_tickers))
    return rows, cum


_FOLD = np.uint64(0x9E3779B97F4A7C15)


def _repeated_ids(ids: pd.Series | np.ndarray) -> np.ndarray:
    # True for every row whose trade id already occurred in an earlier row (the first copy is
    # kept). Fixed-width byte ids (``dtype S<n>``) are first screened by a 64-bit fold of their
    # bytes: equal ids fold equally, so rows whose fold is unique cannot repeat, and only rows
    # sharing a fold (true repeats plus rare fold collisions) get the exact check, in row order.
    if not isinstance(ids, np.ndarray):
        return np.asarray(ids.duplicated(keep="first").to_numpy(), dtype=bool)
    n = int(ids.shape[0])
    width = ids.dtype.itemsize
    out = np.zeros(n, dtype=bool)
    if n < 2:
        return out
    raw = np.ascontiguousarray(ids).view(np.uint8).reshape(n, width)
    padded = np.zeros((n, -(-width // 8) * 8), dtype=np.uint8)
    padded[:, :width] = raw
    words = padded.view(np.uint64)
    key = words[:, 0].copy()
    for k in range(1, words.shape[1]):
        key *= _FOLD  # wraps modulo 2**64 (array arithmetic does not warn)
        key += words[:, k]
    ordered = np.sort(key)
    if not (ordered[1:] == ordered[:-1]).any():
        return out
    shared = np.flatnonzero(pd.Series(key).duplicated(keep=False).to_numpy())
    out[shared] = pd.Series(ids[shared], dtype=object).duplicated(keep="first").to_numpy()
    return out


def _id_text(ids: pd.Series | np.ndarray, i: int) -> str:
    value = ids[i] if isinstance(ids, np.ndarray) else ids.iat[i]
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def build_tape(trade_id: Sequence[str] | pd.Series | np.ndarray,
               ticker: Sequence[str] | pd.Series,
               ts_ms: Sequence[int] | np.ndarray,
               yes_price: Sequence[int] | np.ndarray, count: Sequence[int] | np.ndarray,
               taker_side: Sequence[str] | pd.Series, *, gap_ms: int = 6 * 3_600_000,
               max_examples: int = 3) -> Tape:
    """Validate recorded trades and return them as a time-ordered ``Tape`` with its issues.

    Excluded and reported: rows with a count < 1, a price outside 1..99 or a taker side other
    than yes/no (``invalid_trade``); repeated trade ids, first copy kept (``duplicate_trade``).
    Reported and fixed by a stable sort: rows earlier than their predecessor
    (``unsorted_trade``). Reported only: silences longer than ``gap_ms`` between consecutive
    trades of one ticker (``gap``; a decision after a gap sees a stale quote and is skipped by
    ``max_quote_age_ms``).
    """
    n = len(trade_id)
    for name, col in (("ticker", ticker), ("ts_ms", ts_ms), ("yes_price", yes_price),
                      ("count", count), ("taker_side", taker_side)):
        if len(col) != n:
            raise ValueError(f"build_tape: column {name} has {len(col)} rows, trade_id has {n}")
    # pandas Series and fixed-width byte arrays (``tasks.backtest`` passes Parquet ids as
    # ``S<n>`` without copying) stay as they are; anything else becomes an object Series
    ids: pd.Series | np.ndarray
    if isinstance(trade_id, pd.Series) or (isinstance(trade_id, np.ndarray)
                                           and trade_id.dtype.kind == "S"):
        ids = trade_id
    else:
        ids = pd.Series(np.asarray(trade_id, dtype=object), dtype=object)
    ts = np.asarray(ts_ms, dtype=np.int64)
    price = np.asarray(yes_price, dtype=np.int64)
    cnt = np.asarray(count, dtype=np.int64)
    side = taker_side if isinstance(taker_side, pd.Series) else pd.Series(
        np.asarray(taker_side, dtype=object), dtype=object)
    issues: list[Issue] = []
    taker_yes = np.asarray(side == "yes", dtype=bool)
    taker_no = np.asarray(side == "no", dtype=bool)
    valid = (cnt >= 1) & (price >= 1) & (price <= 99) & (taker_yes | taker_no)
    bad = np.flatnonzero(~valid)
    if bad.size:
        examples = ", ".join(f"{_id_text(ids, i)} (count={cnt[i]}, yes_price={price[i]}, "
                             f"taker_side={side.iat[i]!r})" for i in bad[:max_examples])
        issues.append(Issue("invalid_trade", int(bad.size), f"excluded, e.g. {examples}"))
    repeated = _repeated_ids(ids)
    dup = np.flatnonzero(repeated & valid)
    if dup.size:
        examples = ", ".join(_id_text(ids, i) for i in dup[:max_examples])
        issues.append(Issue("duplicate_trade", int(dup.size),
                            f"repeated trade_id excluded (first copy kept), e.g. {examples}"))
    idx = np.flatnonzero(valid & ~repeated)
    ts_k = ts[idx]
    back = np.flatnonzero(np.diff(ts_k) < 0) + 1
    if back.size:
        examples = ", ".join(_id_text(ids, idx[i]) for i in back[:max_examples])
        issues.append(Issue("unsorted_trade", int(back.size),
                            f"trades earlier than their predecessor, re-ordered by time, "
                            f"e.g. {examples}"))
        order = idx[np.argsort(ts_k, kind="stable")]
    else:
        order = idx
    if isinstance(ticker, pd.Series) and isinstance(ticker.dtype, pd.CategoricalDtype):
        # dictionary-encoded column: its codes as they are (unused categories are harmless)
        codes_raw = ticker.cat.codes.to_numpy()[order]
        if codes_raw.size and codes_raw.min() < 0:
            raise ValueError("build_tape: ticker has missing values")
        tickers_sorted = np.asarray(ticker.cat.categories, dtype=object)
    else:
        codes_raw, tickers_sorted = pd.factorize(np.asarray(ticker, dtype=object)[order])
    codes = np.asarray(codes_raw, dtype=np.int64)
    ts_o, cnt_o = ts[order], cnt[order]
    rows, cum = _ticker_rows(codes, len(tickers_sorted), cnt_o)
    by_code = np.concatenate(rows) if rows else np.array([], dtype=np.int64)
    silence = np.diff(ts_o[by_code])
    over = np.flatnonzero((silence > gap_ms) & (np.diff(codes[by_code]) == 0))
    if over.size:
        first_row = int(by_code[over[0] + 1])
        issues.append(Issue("gap", int(over.size),
                            f"silences > {gap_ms // 1000} s within a ticker (reported; stale "
                            f"quotes are skipped), e.g. {tickers_sorted[codes[first_row]]}: "
                            f"{int(silence[over[0]]) // 1000} s without trades before ts_ms "
                            f"{int(ts_o[first_row])}"))
    names = tuple(str(t) for t in tickers_sorted)
    return Tape(names, ts_o, codes, price[order], cnt_o, taker_yes[order], tuple(issues),
                {t: i for i, t in enumerate(names)}, rows, cum)
