"""Helpers for the liquidity integration tests: a controllable exchange clock, a real
``PaperExchange`` on a temporary SQLite file, waiting on the driver, and a loopback HTTP server."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import uvicorn

from kalshi.paper.exchange import PaperExchange


class StepClock:
    """Exchange time in ms that moves only when the test says so (``advance``/``rate``)."""

    def __init__(self, start_ms: int, rate: float = 0.0) -> None:
        self._start_ms = start_ms
        self._offset_ms = 0
        self._rate = rate
        self._t0 = time.monotonic()

    def __call__(self) -> int:
        elapsed = (time.monotonic() - self._t0) * 1000 * self._rate
        return self._start_ms + self._offset_ms + int(elapsed)

    def advance(self, ms: int) -> None:
        self._offset_ms += ms


@asynccontextmanager
async def open_exchange(db: Path, clock: Callable[[], int]) -> AsyncIterator[PaperExchange]:
    """A started exchange on ``db``; stopped and closed afterwards."""
    exchange = PaperExchange(db, clock=clock, synchronous="NORMAL", advance_interval_s=0.02)
    await exchange.start()
    try:
        yield exchange
    finally:
        await exchange.stop()
        exchange.close()


async def wait_until(predicate: Callable[[], bool], timeout_s: float = 10.0,
                     what: str = "condition") -> None:
    """Poll ``predicate`` on the event loop until it holds, or fail naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def state_of(exchange: PaperExchange, accounts: list[str]) -> dict[str, Any]:
    """Everything the engine knows about ``accounts`` and every book, for restart comparisons."""
    engine = exchange.engine
    return {
        "books": {t: engine.book(t) for t in exchange.market_tickers()},
        "markets": {t: engine.market(t) for t in exchange.market_tickers()},
        "balances": {a: engine.balance_cents(a) for a in accounts},
        "reserved": {a: engine.reserved_cents(a) for a in accounts},
        "positions": {a: engine.positions(a) for a in accounts},
        "orders": {a: engine.orders(a) for a in accounts},
    }


@contextmanager
def serve_http(app: Any) -> Iterator[str]:
    """Serve an ASGI ``app`` on 127.0.0.1:<free port> in a thread; yield its base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
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
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        loop.close()
