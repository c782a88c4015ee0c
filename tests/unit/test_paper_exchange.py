"""PaperExchange without HTTP: command log replay, listeners, auth, rate limits, definitions."""

from __future__ import annotations

import asyncio
import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from kalshi.paper.exchange import Faults, FaultsError, PaperExchange, RateLimiter, TokenBucket
from kalshi.paper.operator import (
    DefinitionError,
    add_definitions,
    load_definitions,
    market_spec,
)
from kalshi.paper.serialize import rfc3339
from kalshi.paper.store import CommandStore
from kalshi.signing import (
    HEADER_KEY,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    generate_private_key,
    public_key_pem,
    sign,
    signing_message,
)
from models.matching import EngineReject, MarketSpec, Outcome

T0 = 1_800_000_000_000
_KEY = generate_private_key()
_PEM = public_key_pem(_KEY).decode()


class Clock:
    """A settable clock for the exchange (milliseconds)."""

    def __init__(self, now_ms: int = T0) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


def _spec(ticker: str = "KXT-1-M") -> MarketSpec:
    return MarketSpec(ticker, "KXT-1", "KXT", T0 - 1000, T0 + 3_600_000)


def _order(account: str, side: str, price: int, count: int, cid: str | None = None,
           tif: str = "good_till_canceled") -> dict[str, Any]:
    return {"request": {"account_id": account, "ticker": "KXT-1-M", "side": side,
                        "price_cents": price, "count": count, "time_in_force": tif,
                        "client_order_id": cid}}


async def _populate(exchange: PaperExchange, clock: Clock) -> None:
    await exchange.start()
    await exchange.add_key("alice", _PEM, balance_cents=50_000)
    await exchange.add_key("bob", public_key_pem(generate_private_key()).decode(),
                           balance_cents=50_000)
    await exchange.add_market(_spec())
    for i in range(5):
        clock.now_ms += 10
        await exchange.run("submit", _order("alice", "bid", 40 + i, 3, f"a{i}"))
    clock.now_ms += 10
    await exchange.run("submit", _order("bob", "ask", 41, 7, tif="immediate_or_cancel"))
    clock.now_ms += 10
    resting = exchange.engine.orders("alice", status="resting")[0]
    await exchange.run("cancel", {"account_id": "alice", "order_id": resting.order_id})
    await exchange.stop()


def _state(exchange: PaperExchange) -> tuple[Any, ...]:
    engine = exchange.engine
    return tuple((engine.orders(a), engine.fills(a), engine.positions(a), engine.balance_cents(a),
                  engine.reserved_cents(a)) for a in ("alice", "bob")) + (
        engine.book("KXT-1-M"), engine.trades())


def test_exchange_reopen_replays_log_to_identical_state(tmp_path: Path) -> None:
    clock = Clock()
    first = PaperExchange(tmp_path / "x.sqlite", clock=clock, advance_interval_s=0)
    asyncio.run(_populate(first, clock))
    before = _state(first)
    first.close()
    again = PaperExchange(tmp_path / "x.sqlite", clock=clock, advance_interval_s=0)
    try:
        after = _state(again)
        replayed = again.replayed_commands
    finally:
        again.close()
    assert before[0][1]  # alice has fills: the replay covered matching, not just listing
    assert after == before
    assert replayed == 2 + 1 + 5 + 1 + 1  # 2 accounts, market, 5 bids, the ask, the cancel


def test_rejected_command_is_not_logged_and_changes_nothing(tmp_path: Path) -> None:
    clock = Clock()
    exchange = PaperExchange(tmp_path / "x.sqlite", clock=clock, advance_interval_s=0)

    async def scenario() -> int:
        await exchange.add_key("alice", _PEM, balance_cents=1_000)
        await exchange.add_market(_spec())
        logged = exchange.store.command_count()
        with pytest.raises(EngineReject) as info:
            await exchange.run("submit", _order("alice", "bid", 50, 1000))
        assert info.value.code == "insufficient_balance"
        return logged

    try:
        logged = asyncio.run(scenario())
        assert exchange.store.command_count() == logged
        assert exchange.engine.balance_cents("alice") == 1_000
    finally:
        exchange.close()


def test_listeners_get_outcomes_after_commit_in_log_order(tmp_path: Path) -> None:
    clock = Clock()
    exchange = PaperExchange(tmp_path / "x.sqlite", clock=clock, advance_interval_s=0)
    seen: list[tuple[int, Outcome]] = []

    async def scenario() -> None:
        await exchange.add_key("alice", _PEM, balance_cents=100_000)
        await exchange.add_market(_spec())
        remove = exchange.add_listener(
            lambda o: seen.append((exchange.store.commands_committed, o)))
        await asyncio.gather(*(exchange.run("submit", _order("alice", "bid", 10 + i, 1))
                               for i in range(20)))
        remove()
        await exchange.run("submit", _order("alice", "bid", 50, 1))

    try:
        asyncio.run(scenario())
    finally:
        exchange.close()
    prices = [o.orders[0].price_cents for _n, o in seen]
    assert prices == list(range(10, 30))
    # each outcome was delivered only once its command (2 setup + i-th submit) was committed
    assert all(committed >= 2 + i + 1 for i, (committed, _o) in enumerate(seen))


def _headers(ts_ms: int, method: str, path: str, key_id: str = "alice") -> dict[str, str]:
    return {HEADER_KEY: key_id, HEADER_TIMESTAMP: str(ts_ms),
            HEADER_SIGNATURE: sign(_KEY, signing_message(ts_ms, method, path))}


def test_verify_request_accepts_valid_and_refuses_skewed_or_foreign(tmp_path: Path) -> None:
    clock = Clock()
    exchange = PaperExchange(tmp_path / "x.sqlite", clock=clock, advance_interval_s=0,
                             max_skew_ms=5_000)
    try:
        asyncio.run(exchange.add_key("alice", _PEM, balance_cents=0))
        path = "/trade-api/v2/portfolio/balance"
        ok = exchange.verify_request("GET", path, _headers(T0 + 4_000, "GET", path))
        stale = exchange.authenticate("GET", path, _headers(T0 - 6_000, "GET", path))
        wrong_method = exchange.verify_request("POST", path, _headers(T0, "GET", path))
        unknown = exchange.authenticate("GET", path, _headers(T0, "GET", path, "mallory"))
    finally:
        exchange.close()
    assert ok == "alice"
    assert stale[0] is None
    assert "stale" in stale[1]
    assert wrong_method is None
    assert unknown == (None, "unknown API key")


def test_token_bucket_refills_continuously_and_never_exceeds_capacity() -> None:
    bucket = TokenBucket(rate_per_s=100, capacity=100, tokens=100, last_s=0.0)
    spent = [bucket.take(10, 0.0) for _ in range(11)]
    assert spent == [True] * 10 + [False]
    assert bucket.take(10, 0.05) is False  # 5 tokens refilled
    assert bucket.take(10, 0.10) is True
    assert bucket.take(10, 100.0) is True
    assert bucket.tokens == 90


def test_rate_limiter_basic_tier_allows_ten_orders_then_refuses() -> None:
    now = [0.0]
    limiter = RateLimiter(monotonic=lambda: now[0])
    allowed = [limiter.allow("k", "basic", "write", 10) for _ in range(12)]
    reads = limiter.allow("k", "basic", "read", 10)
    now[0] = 1.0
    later = limiter.allow("k", "basic", "write", 10)
    assert allowed.count(True) == 10
    assert reads is True  # separate Read and Write buckets
    assert later is True
    assert all(limiter.allow("k", "unlimited", "write", 10**6) for _ in range(3))


@pytest.mark.parametrize(
    ("data", "field"),
    [({"error_rate": 1.5}, "error_rate"), ({"latency_ms": -1}, "latency_ms"),
     ({"seq_gap_rate": "x"}, "seq_gap_rate"), ({"boom": 1}, "boom")],
)
def test_faults_out_of_range_raise_naming_the_field(data: dict[str, Any], field: str) -> None:
    with pytest.raises(FaultsError, match=field):
        Faults.from_dict(data)


def test_rfc3339_formats_utc_with_and_without_milliseconds() -> None:
    assert rfc3339(0) == "1970-01-01T00:00:00Z"
    assert rfc3339(1_767_225_600_123) == "2026-01-01T00:00:00.123Z"


def test_load_definitions_reads_recorded_legacy_event_jsonl(fixtures_dir: Path) -> None:
    text = (fixtures_dir / "kalshi_paper" / "KXHIGHNY_event_legacy.jsonl").read_text()
    defs = load_definitions(text)
    raw = defs.markets["KXHIGHNY-25MAY08-B71.5"]
    spec = market_spec(raw, series_ticker="KXHIGHNY", series_raw=None)
    reopened = market_spec(raw, series_ticker="KXHIGHNY", series_raw=None, reopen_at_ms=T0,
                           reopen_hours=2)
    assert list(defs.events) == ["KXHIGHNY-25MAY08"]
    assert len(defs.markets) == 6
    assert rfc3339(spec.close_ts_ms) == raw["close_time"]
    assert (reopened.open_ts_ms, reopened.close_ts_ms) == (T0, T0 + 7_200_000)
    assert spec.tick_cents == 1


def test_market_spec_refuses_subcent_ticks_flat_fees_and_naive_times() -> None:
    base = {"ticker": "K-1", "event_ticker": "K", "open_time": "2026-01-01T00:00:00Z",
            "close_time": "2026-01-02T00:00:00Z"}
    with pytest.raises(DefinitionError, match="sub-cent"):
        market_spec({**base, "price_ranges": [{"start": "0", "end": "1", "step": "0.001"}]},
                    series_ticker="K", series_raw=None)
    with pytest.raises(DefinitionError, match="fee_type"):
        market_spec(base, series_ticker="K", series_raw={"fee_type": "flat"})
    with pytest.raises(DefinitionError, match="time zone"):
        market_spec({**base, "close_time": "2026-01-02T00:00:00"}, series_ticker="K",
                    series_raw=None)
    with pytest.raises(DefinitionError, match="not a Kalshi"):
        load_definitions(json.dumps({"hello": 1}))


def test_add_definitions_real_series_file_lists_every_market(shared_data: Path,
                                                              tmp_path: Path) -> None:
    path = shared_data / "kalshi" / "weather-events-2024-25" / "KXHIGHDEN_events.jsonl.gz"
    defs = load_definitions(gzip.decompress(path.read_bytes()).decode())
    exchange = PaperExchange(tmp_path / "x.sqlite", clock=Clock(), advance_interval_s=0)
    try:
        result = asyncio.run(add_definitions(exchange, defs, reopen=True, reopen_hours=48))
        states = {s.status for s in exchange.engine.markets()}
    finally:
        exchange.close()
    assert result["errors"] == []
    assert len(result["added"]) == len(defs.markets) > 500
    assert states == {"active"}


def test_command_store_group_commit_keeps_call_order(tmp_path: Path) -> None:
    store = CommandStore(tmp_path / "s.sqlite")
    try:
        futures = [store.append(T0 + i, "k", {"i": i}) for i in range(500)]
        seqs = [f.result(timeout=10) for f in futures]
        commands = list(store.commands())
    finally:
        store.close()
    assert seqs == list(range(1, 501))
    assert [c.args["i"] for c in commands] == list(range(500))
    assert store.batches_committed < 500  # commits were grouped


def test_caller_cancelled_while_waiting_for_commit_still_commits_and_store_survives(
    tmp_path: Path,
) -> None:
    clock = Clock()
    exchange = PaperExchange(tmp_path / "x.sqlite", clock=clock, advance_interval_s=0)

    async def scenario() -> None:
        await exchange.add_key("alice", _PEM, balance_cents=100_000)
        await exchange.add_market(_spec())
        task = asyncio.create_task(exchange.run("submit", _order("alice", "bid", 30, 1, "gone")))
        await asyncio.sleep(0)  # applied and queued, now waiting for the commit
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(exchange.run("submit", _order("alice", "bid", 31, 1, "next")), 10)

    try:
        asyncio.run(scenario())
    finally:
        exchange.close()
    reopened = PaperExchange(tmp_path / "x.sqlite", advance_interval_s=0)
    try:
        ids = [o.client_order_id for o in reopened.engine.orders("alice")]
    finally:
        reopened.close()
    assert ids == ["gone", "next"]


def test_exchange_used_from_a_second_event_loop_still_answers_after_commit(
    tmp_path: Path,
) -> None:
    clock = Clock()
    exchange = PaperExchange(tmp_path / "x.sqlite", clock=clock, advance_interval_s=0)

    async def first() -> None:
        await exchange.start()
        await exchange.add_key("alice", _PEM, balance_cents=100_000)
        await exchange.add_market(_spec())

    async def second() -> str:
        order = await asyncio.wait_for(
            exchange.run("submit", _order("alice", "bid", 30, 1, "later")), 10)
        return str(order.client_order_id)

    try:
        asyncio.run(first())
        cid = asyncio.run(second())  # a new loop: the commit must wake this one, not the old
    finally:
        exchange.close()
    assert cid == "later"
