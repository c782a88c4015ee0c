"""Token buckets: tier budgets, documented costs, waits, refill, thread safety, async."""

from __future__ import annotations

import asyncio
import threading

import pytest

from kalshi.ratelimit import (
    TIER_BUDGETS,
    RateLimiter,
    TokenBucket,
    bucket_for,
    endpoint_cost,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_tier_budgets_match_documented_numbers():
    basic = TIER_BUDGETS["basic"]
    assert (basic.read_rate, basic.write_rate) == (200, 100)
    assert (basic.read_capacity, basic.write_capacity) == (400, 100)
    premier = TIER_BUDGETS["premier"]  # GET /account/limits example: read 1000/1000, write 2000
    assert (premier.read_capacity, premier.write_capacity) == (1000, 2000)
    assert (TIER_BUDGETS["prestige"].read_rate, TIER_BUDGETS["prestige"].write_rate) == (
        10000, 8000)


@pytest.mark.parametrize(("method", "path", "items", "cost"), [
    ("POST", "/portfolio/events/orders", 1, 10),
    ("POST", "/portfolio/events/orders/batched", 5, 50),
    ("DELETE", "/portfolio/events/orders/abc", 1, 2),
    ("DELETE", "/portfolio/events/orders/batched", 5, 10),
    ("DELETE", "/portfolio/events/orders", 1, 2),
    ("GET", "/portfolio/orders/abc", 1, 2),
    ("GET", "/portfolio/orders", 1, 10),
    ("POST", "/portfolio/events/orders/abc/amend", 1, 10),
    ("GET", "/markets?cursor=x", 1, 10),
])
def test_endpoint_cost_matches_documented_table(method, path, items, cost):
    assert endpoint_cost(method, path, items=items) == cost


@pytest.mark.parametrize(("method", "path", "bucket"), [
    ("POST", "/portfolio/events/orders", "write"),
    ("DELETE", "/portfolio/events/orders/x", "write"),
    ("PUT", "/portfolio/order_groups/g/trigger", "write"),
    ("GET", "/portfolio/order_groups", "read"),
    ("GET", "/portfolio/orders", "read"),
])
def test_bucket_for_orders_and_groups_mutations_are_writes(method, path, bucket):
    assert bucket_for(method, path) == bucket


def test_token_bucket_within_capacity_grants_without_wait():
    clock = FakeClock()
    bucket = TokenBucket(100, 100, clock=clock)
    assert [bucket.reserve(10) for _ in range(10)] == [0.0] * 10


def test_token_bucket_over_capacity_waits_for_deficit_over_rate():
    clock = FakeClock()
    bucket = TokenBucket(100, 100, clock=clock)
    for _ in range(10):
        bucket.reserve(10)
    assert bucket.reserve(10) == pytest.approx(0.1)
    assert bucket.reserve(2) == pytest.approx(0.12)


def test_token_bucket_refills_at_rate_up_to_capacity():
    clock = FakeClock()
    bucket = TokenBucket(100, 100, clock=clock)
    bucket.reserve(100)
    clock.now += 0.5
    assert bucket.available() == pytest.approx(50)
    clock.now += 100
    assert bucket.available() == pytest.approx(100)


def test_token_bucket_cost_above_capacity_raises():
    with pytest.raises(ValueError, match="exceeds the bucket capacity"):
        TokenBucket(100, 100).reserve(101)


def test_token_bucket_concurrent_reservations_never_oversubscribe():
    clock = FakeClock()  # frozen: every grant beyond capacity must be pushed into the future
    bucket = TokenBucket(100, 100, clock=clock)
    waits: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(25):
            wait = bucket.reserve(10)
            with lock:
                waits.append(wait)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # 200 grants of 10 tokens: 10 free, then one every 0.1 s, each slot handed out exactly once
    expected = [0.0] * 10 + [round(0.1 * k, 6) for k in range(1, 191)]
    assert sorted(round(w, 6) for w in waits) == expected


def test_rate_limiter_acquire_sleeps_the_wait_on_the_right_bucket():
    clock = FakeClock()
    slept: list[float] = []
    limiter = RateLimiter("basic", clock=clock, sleep=slept.append)
    for _ in range(10):
        limiter.acquire("write", 10)  # basic write capacity is 100 tokens
    limiter.acquire("write", 10)
    limiter.acquire("read", 10)
    assert slept == [pytest.approx(0.1)]


def test_rate_limiter_unknown_tier_raises_naming_it():
    with pytest.raises(ValueError, match="'platinum'"):
        RateLimiter("platinum")


def test_rate_limiter_acquire_async_waits_without_blocking_loop():
    limiter = RateLimiter("basic")
    for _ in range(10):
        limiter.bucket("write").reserve(10)

    async def main() -> tuple[float, int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.005)
                ticks += 1

        task = asyncio.create_task(ticker())
        waited = await limiter.acquire_async("write", 5)
        task.cancel()
        return waited, ticks

    waited, ticks = asyncio.run(main())
    assert waited == pytest.approx(0.05, abs=0.01)
    assert ticks >= 3
