"""Running the paper exchange with uvicorn: in a background thread (tests) or as a process.

Invariant: ``serve_in_thread`` yields only once the socket is bound and the app's lifespan has
started, and it stops the server (committing every queued command) when the block exits.
``python -m kalshi.paper.server --db FILE --port 0`` prints one line ``listening <url>`` to stdout
once it accepts connections, so a parent process can find an ephemeral port.
Shutdown order (SIGTERM/SIGINT): uvicorn stops accepting, lets in-flight requests finish (their
commands are committed before they are answered), then the app's lifespan stops the liquidity
task, then the exchange's ticker, then commits what is queued and closes the database.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import importlib.util
import inspect
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

from kalshi.paper.app import create_app
from kalshi.paper.exchange import PaperExchange

__all__ = [
    "LIQUIDITY_MODES",
    "WS_PING_INTERVAL_S",
    "LiquidityUnavailable",
    "GC_THRESHOLDS",
    "bound_url",
    "main",
    "run_server",
    "serve_in_thread",
    "start_liquidity_for",
    "stop_liquidity",
    "tune_gc_for_serving",
    "uvicorn_config",
]

log = logging.getLogger(__name__)

LIQUIDITY_MODES = ("synthetic", "replay", "mirror", "none")
WS_PING_INTERVAL_S = 10.0  # Kalshi pings every 10 s
LIQUIDITY_STOP_TIMEOUT_S = 30.0
GC_THRESHOLDS = (20_000, 50, 100)  # see tune_gc_for_serving


class LiquidityUnavailable(RuntimeError):
    """A liquidity mode was asked for but ``kalshi.paper.liquidity`` cannot provide it."""


def bound_url(server: uvicorn.Server, host: str) -> str:
    """Return ``http://host:port`` of a started uvicorn server (resolves port 0)."""
    sockets = [s for srv in server.servers for s in srv.sockets]
    port = sockets[0].getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def uvicorn_config(app: Any, host: str, port: int) -> uvicorn.Config:
    """Return the uvicorn settings of the paper exchange.

    One worker; uvloop and httptools when installed (uvicorn[standard]); no access log; warnings
    only; no proxy-header rewriting (a loopback venue has no proxy in front); WebSocket pings
    every 10 s like Kalshi's.
    """
    loop = "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") is not None else "h11"
    return uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                          lifespan="on", loop=loop, http=http, workers=1, proxy_headers=False,
                          ws_ping_interval=WS_PING_INTERVAL_S)


def tune_gc_for_serving() -> None:
    """Tune the cyclic garbage collector of a process that only serves the exchange.

    Everything loaded by now (modules, the replayed engine state) lives until exit, so it is
    frozen out of collections, and young collections run every 20,000 allocations instead of
    700: full collections otherwise walk every imported module's objects and cost about a sixth
    of the CPU per order. Process-wide, so only ``run_server`` (which owns its process) calls it.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


@contextmanager
def serve_in_thread(app: Any, host: str = "127.0.0.1", port: int = 0,
                    timeout_s: float = 15.0) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a daemon thread; yield its root URL ``http://host:port``."""
    server = uvicorn.Server(uvicorn_config(app, host, port))
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError(f"uvicorn failed to start on {host}:{port}")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise TimeoutError(f"uvicorn did not start on {host}:{port} within {timeout_s}s")
        time.sleep(0.01)
    try:
        yield bound_url(server, host)
    finally:
        server.should_exit = True
        thread.join(timeout_s)


def start_liquidity_for(exchange: PaperExchange, mode: str, **opts: Any) -> Any:
    """Start liquidity agents via ``kalshi.paper.liquidity.start_liquidity``; refuse clearly."""
    if mode not in LIQUIDITY_MODES:
        raise LiquidityUnavailable(f"--liquidity must be one of {LIQUIDITY_MODES} (got {mode!r})")
    if mode == "none":
        return None
    if importlib.util.find_spec("kalshi.paper.liquidity") is None:
        raise LiquidityUnavailable(
            f"--liquidity {mode}: kalshi/paper/liquidity.py is not installed yet; use none"
        )
    module = importlib.import_module("kalshi.paper.liquidity")
    start = getattr(module, "start_liquidity", None)
    if start is None:
        raise LiquidityUnavailable(
            f"--liquidity {mode}: kalshi.paper.liquidity has no start_liquidity(); use none"
        )
    return start(exchange, mode, **opts)


async def _serve(server: uvicorn.Server, host: str, on_ready: Callable[[str], Any]) -> None:
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            await task
            return
        await asyncio.sleep(0.01)
    try:
        started = on_ready(bound_url(server, host))
    except BaseException:
        server.should_exit = True  # a clean shutdown (lifespan included) before re-raising
        await task
        raise
    extra = asyncio.ensure_future(started) if inspect.isawaitable(started) else None
    try:
        await task
    finally:
        if extra is not None:
            extra.cancel()


def run_server(
    db: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    liquidity: str = "none",
    liquidity_opts: Mapping[str, Any] | None = None,
    synchronous: str = "FULL",
    announce: Callable[[str], None] | None = None,
) -> None:
    """Open (or recover) the exchange in ``db`` and serve it until interrupted.

    ``liquidity_opts`` go to ``kalshi.paper.liquidity.start_liquidity`` (e.g. replay:
    ``data_dir``, ``event_ticker``, ``speed``; mirror: ``base_url``, ``tickers``; synthetic:
    ``seed``). The liquidity task is stopped before the exchange stops, so every command it had
    the engine apply is committed. The process's garbage collector is tuned for serving
    (``tune_gc_for_serving``).
    """
    if liquidity not in LIQUIDITY_MODES:
        raise LiquidityUnavailable(f"--liquidity must be one of {LIQUIDITY_MODES} "
                                   f"(got {liquidity!r})")
    if liquidity != "none" and importlib.util.find_spec("kalshi.paper.liquidity") is None:
        raise LiquidityUnavailable(
            f"--liquidity {liquidity}: kalshi/paper/liquidity.py is not installed yet; use none"
        )
    exchange = PaperExchange(db, synchronous=synchronous)
    handles: list[Any] = []

    async def stop_all_liquidity() -> None:
        while handles:
            await stop_liquidity(handles.pop())

    # uvicorn re-raises SIGTERM/SIGINT after its shutdown, so close the store in the lifespan
    app = create_app(exchange, close_on_shutdown=True, before_stop=stop_all_liquidity)
    config = uvicorn_config(app, host, port)
    server = uvicorn.Server(config)
    tune_gc_for_serving()

    def on_ready(url: str) -> Any:
        try:
            handle = start_liquidity_for(exchange, liquidity, **dict(liquidity_opts or {}))
        except (ValueError, LiquidityUnavailable) as exc:
            raise LiquidityUnavailable(f"--liquidity {liquidity}: {exc}") from exc
        if handle is not None:
            handles.append(handle)
        if announce is not None:
            announce(url)
        return None

    try:
        with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
            runner.run(_serve(server, host, on_ready))
    finally:
        exchange.close()


async def stop_liquidity(handle: Any) -> None:
    """Stop a liquidity handle after its current step (cancel it if that step hangs).

    Its engine commands are shielded, so even a cancelled step commits what the engine applied.
    Call it before ``exchange.stop()``; it logs, rather than raises, how the driver ended.
    """
    handle.stop()
    try:
        await asyncio.wait_for(handle.wait(), LIQUIDITY_STOP_TIMEOUT_S)
    except TimeoutError:
        log.error("liquidity did not stop within %.0f s; cancelled it", LIQUIDITY_STOP_TIMEOUT_S)
    except asyncio.CancelledError:
        log.warning("liquidity task was cancelled before shutdown")
    except Exception:  # the driver's own failure was already logged; shutdown goes on
        log.exception("liquidity ended with an error")


def main(argv: list[str] | None = None) -> int:
    """``python -m kalshi.paper.server``: serve an exchange database on a host and port."""
    parser = argparse.ArgumentParser(prog="python -m kalshi.paper.server")
    parser.add_argument("--db", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--liquidity", default="none", choices=LIQUIDITY_MODES)
    parser.add_argument("--synchronous", default="FULL", choices=("FULL", "NORMAL", "EXTRA"))
    args = parser.parse_args(argv)

    def announce(url: str) -> None:
        sys.stdout.write(f"listening {url}\n")
        sys.stdout.flush()

    run_server(args.db, host=args.host, port=args.port, liquidity=args.liquidity,
               synchronous=args.synchronous, announce=announce)
    return 0


if __name__ == "__main__":
    sys.exit(main())
