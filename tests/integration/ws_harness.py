"""A real loopback WebSocket server for the stream tests: uvicorn in a thread on 127.0.0.1:0.

``EngineFeed`` is a small ``ExchangeFeed`` on the real matching engine with real RSA signature
checks; every engine call runs on the server's event loop (``ServerHandle.call``), the way the
paper exchange commits outcomes and notifies its listeners.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette

from kalshi.paper.ws import WS_PATH, websocket_route
from kalshi.signing import HEADER_KEY, HEADER_SIGNATURE, HEADER_TIMESTAMP, signing_message, verify
from models.matching import BookView, Engine, MarketSpec, Order, OrderRequest, Outcome

T = TypeVar("T")
DAY_MS = 86_400_000


@dataclass
class Faults:
    ws_drop_rate: float = 0.0
    seq_gap_rate: float = 0.0


@dataclass
class EngineFeed:
    engine: Engine = field(default_factory=Engine)
    faults: Faults = field(default_factory=Faults)
    keys: dict[str, tuple[rsa.RSAPublicKey, str]] = field(default_factory=dict)
    listeners: list[Callable[[Outcome], None]] = field(default_factory=list)
    max_skew_ms: int = 30_000
    now_ms: int = 1_700_000_000_000
    held: list[Outcome] | None = None  # outcomes applied but not yet announced (not committed)

    # ExchangeFeed ---------------------------------------------------------------------------
    def verify_request(self, method: str, path: str, headers: Mapping[str, str]) -> str | None:
        key_id = headers.get(HEADER_KEY)
        ts = headers.get(HEADER_TIMESTAMP, "")
        signature = headers.get(HEADER_SIGNATURE, "")
        if key_id not in self.keys or not ts.isdigit():
            return None
        if abs(int(ts) - time.time_ns() // 1_000_000) > self.max_skew_ms:
            return None
        public_key, account_id = self.keys[key_id]
        ok = verify(public_key, signing_message(int(ts), method, path), signature)
        return account_id if ok else None

    def book(self, ticker: str) -> BookView:
        return self.engine.book(ticker)

    def add_listener(self, fn: Callable[[Outcome], None]) -> Callable[[], None]:
        self.listeners.append(fn)
        return lambda: self.listeners.remove(fn)

    def market_tickers(self) -> list[str]:
        return [m.spec.ticker for m in self.engine.markets()]

    # test drivers (call on the server loop) -------------------------------------------------
    def _publish(self, outcome: Outcome) -> None:
        if self.held is not None:
            self.held.append(outcome)
            return
        for fn in list(self.listeners):
            fn(outcome)

    def hold(self) -> None:
        """Apply later calls to the engine but announce them only on ``release`` (like a commit)."""
        self.held = []

    def release(self) -> None:
        held, self.held = self.held or [], None
        for outcome in held:
            self._publish(outcome)

    def tick(self) -> int:
        self.now_ms += 1
        return self.now_ms

    def add_account(self, key_id: str, public_key: rsa.RSAPublicKey, account_id: str,
                    balance_cents: int = 10_000_000) -> None:
        self.engine.add_account(account_id, balance_cents)
        self.keys[key_id] = (public_key, account_id)

    def add_market(self, ticker: str) -> None:
        spec = MarketSpec(ticker, "EV-1", "KXTEST", self.now_ms, self.now_ms + DAY_MS)
        self._publish(self.engine.add_market(spec, self.tick()))

    def submit(self, account_id: str, ticker: str, side: str, price_cents: int, count: int,
               tif: str = "good_till_canceled") -> Order:
        req = OrderRequest(account_id, ticker, side, price_cents, count, tif)
        order, outcome = self.engine.submit(req, self.tick())
        self._publish(outcome)
        return order

    def create_order_group(self, account_id: str, contracts_limit: int) -> str:
        group_id, outcome = self.engine.create_order_group(account_id, contracts_limit,
                                                           self.tick())
        self._publish(outcome)
        return group_id

    def cancel(self, account_id: str, order_id: str) -> None:
        _, _, outcome = self.engine.cancel(account_id, order_id, self.tick())
        self._publish(outcome)

    def determine_and_settle(self, ticker: str, result: str) -> None:
        self._publish(self.engine.advance(self.now_ms + DAY_MS + 1))
        self.now_ms += DAY_MS + 1
        self._publish(self.engine.determine(ticker, result, self.tick()))
        self._publish(self.engine.settle(ticker, self.tick()))


@dataclass
class ServerHandle:
    url: str
    loop: asyncio.AbstractEventLoop
    feed: EngineFeed

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn`` on the server's event loop (as the exchange does) and return its result."""

        async def run() -> T:
            return fn(*args, **kwargs)

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout=10)

    async def acall(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``call`` from inside another event loop without blocking it."""

        async def run() -> T:
            return fn(*args, **kwargs)

        future = asyncio.run_coroutine_threadsafe(run(), self.loop)
        return await asyncio.wrap_future(future)


@contextmanager
def serve_feed(feed: EngineFeed, seed: int = 7) -> Iterator[ServerHandle]:
    """Serve ``feed`` at ws://127.0.0.1:<port>/trade-api/ws/v2 for the duration of the block."""
    import random

    app = Starlette(routes=[websocket_route(feed, rng=random.Random(seed))])
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                            ws="websockets-sansio", lifespan="off", ws_ping_interval=None)
    server = uvicorn.Server(config)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(server.serve(),),
                              daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield ServerHandle(f"ws://127.0.0.1:{port}{WS_PATH}", loop, feed)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        loop.close()
