"""The fast paths of the tape and the engine give exactly what the plain paths give.

Fixed-width trade ids (screened by a 64-bit fold, exact check on shared folds) against the pandas
check on strings; lazily created price levels; per-schedule cached fee terms; generated snapshot
builders against the dataclasses' own constructors.
"""

from __future__ import annotations

from dataclasses import fields
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models._book import EMPTY_LEVEL, fee_terms
from models._types import Fill, Order, new_fill, new_order
from models.backtest import build_tape
from models.fees import FeeSchedule
from models.matching import BookView, Engine, MarketSpec, OrderRequest
from tasks.backtest import read_trades, tape_from_frame

T0 = 1_740_000_000_000
FOLD = 0x9E3779B97F4A7C15


def _tape_parts(tape):  # type: ignore[no-untyped-def]
    return (tape.tickers, tape.ts_ms.tolist(), tape.code.tolist(), tape.yes_price.tolist(),
            tape.count.tolist(), tape.taker_yes.tolist(), tape.issues)


rows = st.lists(st.tuples(st.sampled_from(["aa", "ab", "ba", "bb", "zz"]),
                          st.sampled_from(["M1", "M2"]), st.integers(0, 5),
                          st.integers(0, 100), st.integers(0, 3),
                          st.sampled_from(["yes", "no", "x"])), min_size=0, max_size=30)


@settings(max_examples=150, deadline=None)
@given(rows)
def test_build_tape_fixed_width_ids_same_tape_and_issues_as_strings(
        data: list[tuple[str, str, int, int, int, str]]) -> None:
    ids = [r[0] for r in data]
    cols = ([r[1] for r in data], [T0 + r[2] for r in data], [r[3] for r in data],
            [r[4] for r in data], [r[5] for r in data])
    plain = build_tape(ids, *cols)
    fixed = build_tape(np.array(ids, dtype="S2"), *cols)
    assert _tape_parts(fixed) == _tape_parts(plain)


def _colliding_ids() -> tuple[bytes, bytes]:
    # two different 16-byte ids whose folds w0 * FOLD + w1 (mod 2**64) are equal
    a = np.array([0x4141414141414141, 0x4242424242424242], dtype="<u8")
    b = np.array([0x4141414141414142, (0x4242424242424242 - FOLD) % 2**64], dtype="<u8")
    id_a, id_b = a.tobytes(), b.tobytes()
    fold = [(int(w[0]) * FOLD + int(w[1])) % 2**64 for w in (a, b)]
    assert id_a != id_b
    assert fold[0] == fold[1]
    assert id_a[-1]  # no trailing NUL: numpy would strip it on access
    assert id_b[-1]
    return id_a, id_b


def test_build_tape_fold_collision_exact_check_keeps_distinct_ids() -> None:
    id_a, id_b = _colliding_ids()
    ids = np.array([id_a, id_b, id_a, b"C" * 16], dtype="S16")
    tape = build_tape(ids, ["M"] * 4, [T0, T0 + 1, T0 + 2, T0 + 3], [40] * 4, [1] * 4,
                      ["yes"] * 4)
    issues = {i.kind: i for i in tape.issues}
    assert set(issues) == {"duplicate_trade"}
    assert issues["duplicate_trade"].count == 1  # only the third row, not the colliding second
    assert tape.ts_ms.tolist() == [T0, T0 + 1, T0 + 3]


def test_build_tape_byte_ids_examples_decoded_as_text() -> None:
    ids = np.array([b"id-1", b"id-1", b"id-0"], dtype="S4")
    tape = build_tape(ids, ["M"] * 3, [T0 + 5, T0 + 6, T0], [40] * 3, [1] * 3, ["no"] * 3)
    details = {i.kind: i.detail for i in tape.issues}
    assert "e.g. id-1" in details["duplicate_trade"]
    assert "b'" not in details["duplicate_trade"]
    assert "e.g. id-0" in details["unsorted_trade"]


def test_tape_from_frame_uuid_ids_over_chunks_same_as_object_ids(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    paths = []
    for part in range(2):  # two files: the Arrow column arrives in two chunks
        n = 400
        ids = [f"{rng.integers(0, 50):08x}-aaaa-bbbb-cccc-{rng.integers(0, 4):012x}"
               for _ in range(n)]  # 200 distinct UUID-shaped ids: repeats within and across
        frame = pd.DataFrame({
            "trade_id": ids, "ticker": [f"M{i % 3}" for i in range(n)],
            "count": rng.integers(0, 5, n), "yes_price": rng.integers(0, 101, n),
            "created_time": pd.to_datetime(T0 + rng.integers(0, 10**6, n), unit="ms", utc=True),
            "taker_side": rng.choice(["yes", "no"], n)})
        path = tmp_path / f"S{part}_trades.parquet"
        frame.to_parquet(path)
        paths.append(path)
    frame = read_trades(paths)
    fast = tape_from_frame(frame)
    ts_ms = frame["created_time"].dt.as_unit("ms").astype("int64").to_numpy()
    plain = build_tape(frame["trade_id"].astype(object).tolist(),
                       frame["ticker"].astype(object).tolist(), ts_ms.tolist(),
                       frame["yes_price"].tolist(), frame["count"].tolist(),
                       frame["taker_side"].astype(object).tolist())
    kinds = {i.kind for i in fast.issues}
    assert {"duplicate_trade", "invalid_trade", "unsorted_trade"} <= kinds
    assert fast.issues == plain.issues
    assert [fast.tickers[c] for c in fast.code] == [plain.tickers[c] for c in plain.code]
    assert fast.ts_ms.tolist() == plain.ts_ms.tolist()
    assert fast.count.tolist() == plain.count.tolist()


def test_engine_levels_created_lazily_shared_empty_level_stays_empty() -> None:
    e = Engine()
    for acct in ("a", "b"):
        e.add_account(acct, 10**9)
    for i in range(3):
        e.add_market(MarketSpec(f"T{i}", "E", "S", 0, 1_000), 0)
    now = 1
    for i in range(60):
        ticker, price = f"T{i % 3}", 1 + (7 * i) % 99
        for acct, side in (("a", "bid"), ("b", "ask")):
            now += 1
            e.submit(OrderRequest(acct, ticker, side, price, 1 + i % 4, "good_till_canceled"),
                     now)
    assert e.trades()  # the books crossed and traded
    book = e._markets["T0"].book
    assert any(level is EMPTY_LEVEL for leg in book.levels for level in leg)
    assert any(level is not EMPTY_LEVEL for leg in book.levels for level in leg)
    e.add_market(MarketSpec("T9", "E", "S", 0, 1_000), now)
    assert not EMPTY_LEVEL
    for ticker in ("T0", "T1", "T2"):
        view = e.book(ticker)
        book = e._markets[ticker].book
        for leg, side in ((0, view.yes), (1, view.no)):
            assert dict(side) == {p: q for p, q in enumerate(book.qty[leg]) if q}
            assert book.best[leg] == max((p for p, _ in side), default=0)
    out = e.add_market(MarketSpec("T10", "E", "S", 0, 2_000), 1_000)  # closes T0..T2, T9
    assert sum(1 for life in out.lifecycle if life.event_type == "deactivated") == 4
    assert not EMPTY_LEVEL
    assert all(e.book(t) == BookView(t, (), ()) for t in ("T0", "T1", "T2"))


def test_fee_terms_cached_per_schedule_same_terms_as_uncached() -> None:
    for schedule in (FeeSchedule(), FeeSchedule("quadratic", Decimal("0.5")),
                     FeeSchedule("quadratic_with_maker_fees", Decimal("1.25"))):
        cached = fee_terms(schedule)
        assert fee_terms(FeeSchedule(schedule.fee_type, schedule.fee_multiplier)) is cached
        assert cached == fee_terms.__wrapped__(schedule)
    assert fee_terms(FeeSchedule())[2:] == (0, 1)  # no maker fee on a plain quadratic series
    assert fee_terms(FeeSchedule("quadratic", Decimal("0.5")))[:2] == (7, 200)


def test_snapshot_builders_equal_dataclass_constructors() -> None:
    for cls, build in ((Order, new_order), (Fill, new_fill)):
        values = [f"v{i}" for i, _ in enumerate(fields(cls))]
        built, made = build(*values), cls(*values)
        assert built == made
        assert repr(built) == repr(made)
        assert type(built) is cls
        with pytest.raises(TypeError):
            build(*values[:-1])
        with pytest.raises(AttributeError):
            built.order_id = "x"  # type: ignore[misc]
