"""Benchmark of the paper exchange: engine events/s in-process, and order round-trips over HTTP.

Usage: ``python bench/exchange.py [--orders-per-client N] [--clients 8] [--synchronous FULL]
[--client raw|httpx]``

1. In-process: random limit orders (half of them crossing) through ``models.matching.Engine``.
2. Over HTTP: the exchange runs in a subprocess (``kalshi.paper.server.run_server``, uvicorn, its
   own SQLite file with ``synchronous=FULL`` group commit); 8 concurrent clients (asyncio in this
   process) each with its own signed key place orders at crossing prices over one keep-alive
   connection, and every round trip (request signed, verified, matched, committed, answered) is
   timed. ``--client raw`` (default) writes the HTTP/1.1 requests by hand, because httpx spends
   about as much CPU per request as the exchange and on a small machine the clients would compete
   with the server; ``--client httpx`` measures with httpx instead.
   Clients reuse one RSA-PSS signature per second (the timestamp stays well inside the exchange's
   5 s skew window), so the figure measures the exchange rather than client-side RSA signing.
   The server's CPU time per order (Linux /proc) is printed too: unlike wall-clock figures it
   moves much less when other processes load the machine (it still rises by 10-25 % on a busy
   2-core box, so compare runs interleaved). ``orders_per_commit`` is how many orders shared
   each group commit (fsync) on average, from ``/operator/health``.
   Also in-process through the ASGI app alone (no sockets) to isolate the exchange's own cost.
3. Restart: how long the exchange takes to replay the resulting command log.

The last line printed is one JSON object with ``engine_events_per_s``, ``orders_per_s``,
``p50_ms`` and ``p99_ms`` (plus details).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Generator
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kalshi.signing import (  # noqa: E402
    HEADER_KEY,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    generate_private_key,
    public_key_pem,
    sign,
    signing_message,
)
from models.matching import Engine, EngineReject, MarketSpec, OrderRequest  # noqa: E402

TICKER = "KXBENCH-26JAN01-B50"


def bench_engine(n_orders: int, seed: int = 1) -> dict[str, float]:
    """Return engine calls per second for a random crossing/non-crossing order stream."""
    rng = random.Random(seed)
    engine = Engine()
    for account in ("a", "b", "c", "d"):
        engine.add_account(account, 10**12)
    engine.add_market(MarketSpec(TICKER, "KXBENCH-26JAN01", "KXBENCH", 0, 10**13), 1)
    requests = []
    for _ in range(n_orders):
        side = rng.choice(("bid", "ask"))
        price = rng.randint(40, 60)
        requests.append(OrderRequest(rng.choice("abcd"), TICKER, side, price, rng.randint(1, 20),
                                     "good_till_canceled"))
    fills = 0
    started = time.perf_counter()
    for i, request in enumerate(requests):
        try:
            order, outcome = engine.submit(request, 1_000 + i)
        except EngineReject:
            continue
        fills += len(outcome.fills)
        if i % 4 == 3 and order.status == "resting":
            engine.cancel(order.account_id, order.order_id, 1_000 + i)
    elapsed = time.perf_counter() - started
    calls = n_orders + n_orders // 4
    return {"engine_events_per_s": calls / elapsed, "engine_orders": n_orders,
            "engine_fills": fills, "engine_seconds": elapsed}


class CachedSignatureAuth(httpx.Auth):
    """Kalshi signing that reuses one signature per (second, method, path)."""

    def __init__(self, key_id: str, key: object) -> None:
        self.key_id = key_id
        self.key = key
        self.cache: dict[tuple[str, str], tuple[int, str]] = {}

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers.update(self.headers(request.method, request.url.path))
        yield request

    def headers(self, method: str, path: str) -> dict[str, str]:
        """Return the three Kalshi auth headers for ``method path``."""
        now = time.time_ns() // 1_000_000
        ts, signature = self.cache.get((method, path), (0, ""))
        if now - ts > 1_000:
            ts, signature = now, sign(self.key, signing_message(now, method, path))  # type: ignore[arg-type]
            self.cache[(method, path)] = (ts, signature)
        return {HEADER_KEY: self.key_id, HEADER_TIMESTAMP: str(ts), HEADER_SIGNATURE: signature}


def _start_server(db: Path, synchronous: str) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    code = ("import sys; from kalshi.paper.server import run_server; "
            f"run_server({str(db)!r}, port=0, synchronous={synchronous!r}, "
            "announce=lambda u: (sys.stdout.write(f'listening {u}\\n'), sys.stdout.flush()))")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            cwd=REPO, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("listening "):
        proc.kill()
        raise SystemExit(f"server did not start: {line!r}")
    return proc, line.split()[1]


async def _client(base: str, auth: httpx.Auth, worker: int, n: int,
                  latencies: list[float], errors: list[int]) -> None:
    side = "bid" if worker % 2 == 0 else "ask"
    async with httpx.AsyncClient(base_url=base, auth=auth, timeout=30) as client:
        for i in range(n):
            body = {"ticker": TICKER, "side": side, "count": "1", "price": "0.5000",
                    "time_in_force": "good_till_canceled", "self_trade_prevention_type": "maker",
                    "client_order_id": f"w{worker}-{i}"}
            started = time.perf_counter()
            response = await client.post("/portfolio/events/orders", json=body)
            latencies.append(time.perf_counter() - started)
            if response.status_code != 201:
                errors.append(response.status_code)


async def _raw_client(base: str, auth: CachedSignatureAuth, worker: int, n: int,
                      latencies: list[float], errors: list[int]) -> None:
    """Like ``_client`` but over one keep-alive socket with hand-built HTTP/1.1 requests.

    httpx costs about as much CPU per request as the exchange itself; on a 2-core machine the
    clients then compete with the server, so this lean client isolates the exchange's figure.
    """
    url = httpx.URL(base)
    path = f"{url.path.rstrip('/')}/portfolio/events/orders"
    reader, writer = await asyncio.open_connection(url.host, url.port)
    side = "bid" if worker % 2 == 0 else "ask"
    try:
        for i in range(n):
            body = json.dumps({"ticker": TICKER, "side": side, "count": "1", "price": "0.5000",
                               "time_in_force": "good_till_canceled",
                               "self_trade_prevention_type": "maker",
                               "client_order_id": f"w{worker}-{i}"}).encode()
            signed = auth.headers("POST", path)
            head = (f"POST {path} HTTP/1.1\r\nhost: {url.host}\r\n"
                    f"content-type: application/json\r\ncontent-length: {len(body)}\r\n"
                    + "".join(f"{k}: {v}\r\n" for k, v in signed.items()) + "\r\n")
            started = time.perf_counter()
            writer.write(head.encode() + body)
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            status = int(status_line.split()[1])
            if status != 201:
                errors.append(status)
    finally:
        writer.close()


def _cpu_s(pid: int) -> float | None:
    # user+system CPU seconds of a process (Linux /proc); None elsewhere
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_http(clients: int, per_client: int, synchronous: str,
               client: str = "raw") -> dict[str, float]:
    """Return order round trips per second and latency percentiles over loopback HTTP."""
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.sqlite"
        proc, url = _start_server(db, synchronous)
        try:
            keys = [generate_private_key() for _ in range(clients)]
            with httpx.Client(base_url=f"{url}/operator", timeout=60) as operator:
                for i, key in enumerate(keys):
                    operator.post("/keys", json={
                        "key_id": f"bench-{i}", "public_key_pem": public_key_pem(key).decode(),
                        "balance_cents": 10**10, "tier": "unlimited"}).raise_for_status()
                operator.post("/markets", json={"definitions": [{
                    "ticker": TICKER, "event_ticker": "KXBENCH-26JAN01",
                    "open_time": "2020-01-01T00:00:00Z",
                    "close_time": "2099-01-01T00:00:00Z"}]}).raise_for_status()
            base = f"{url}/trade-api/v2"
            auths = [CachedSignatureAuth(f"bench-{i}", key) for i, key in enumerate(keys)]

            async def warm_and_run() -> tuple[list[float], list[int], float]:
                warm: list[float] = []
                run = _raw_client if client == "raw" else _client
                await asyncio.gather(*(run(base, a, i, 20, warm, [])
                                       for i, a in enumerate(auths)))
                latencies: list[float] = []
                errors: list[int] = []
                cpu[0] = _cpu_s(proc.pid)
                started = time.perf_counter()
                await asyncio.gather(*(run(base, a, i + clients, per_client, latencies,
                                           errors) for i, a in enumerate(auths)))
                elapsed = time.perf_counter() - started
                cpu[1] = _cpu_s(proc.pid)
                return latencies, errors, elapsed

            cpu: list[float | None] = [None, None]
            health_url = f"{url}/operator/health"
            before = httpx.get(health_url, timeout=30).json()
            latencies, errors, elapsed = asyncio.run(warm_and_run())
            after = httpx.get(health_url, timeout=30).json()
            batches = after["commit_batches"] - before["commit_batches"]
            committed = after["commands_committed"] - before["commands_committed"]
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        started = time.perf_counter()
        replay = subprocess.run(
            [sys.executable, "-c", "import sys; from kalshi.paper.exchange import PaperExchange; "
             f"e = PaperExchange({str(db)!r}); print(e.replayed_commands, e.replay_seconds); "
             "e.close()"], capture_output=True, text=True, cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)}, check=True)
        replay_wall = time.perf_counter() - started
    commands, replay_s = replay.stdout.split()
    latencies.sort()
    total = len(latencies)
    before_cpu, after_cpu = cpu
    server_cpu_us = ((after_cpu - before_cpu) / total * 1e6
                     if before_cpu is not None and after_cpu is not None else -1.0)
    return {
        "orders_per_s": total / elapsed,
        "server_cpu_us_per_order": server_cpu_us,
        "p50_ms": latencies[total // 2] * 1000,
        "p99_ms": latencies[min(total - 1, int(total * 0.99))] * 1000,
        "orders_per_commit": committed / max(batches, 1),  # warm-up included
        "http_orders": total,
        "http_errors": len(errors),
        "http_clients": clients,
        "http_client": client,
        "synchronous": synchronous,
        "replayed_commands": int(commands),
        "replay_commands_per_s": int(commands) / max(float(replay_s), 1e-9),
        "restart_wall_s": replay_wall,
    }


def bench_asgi(clients: int, per_client: int, synchronous: str) -> dict[str, float]:
    """Return orders/s through the ASGI app in-process (no sockets, no HTTP client).

    Every request is still signature-verified, matched, committed with group commit and
    serialized; this isolates the exchange's own cost from uvicorn, the network and the client.
    """
    from kalshi.paper.app import create_app
    from kalshi.paper.exchange import PaperExchange

    async def run(db: Path) -> tuple[int, float, float, float]:
        exchange = PaperExchange(db, synchronous=synchronous, advance_interval_s=0)
        app = create_app(exchange, extra_routes=[])
        await exchange.start()
        keys = [generate_private_key() for _ in range(clients)]
        for i, key in enumerate(keys):
            await exchange.add_key(f"k{i}", public_key_pem(key).decode(), balance_cents=10**10,
                                   tier="unlimited")
        await exchange.add_market(MarketSpec(TICKER, "KXBENCH-26JAN01", "KXBENCH", 0, 10**13))
        path = "/trade-api/v2/portfolio/events/orders"
        signatures: dict[int, tuple[int, str]] = {}

        async def one(worker: int, i: int) -> int:
            now = time.time_ns() // 1_000_000
            ts, sig = signatures.get(worker, (0, ""))
            if now - ts > 1_000:
                ts, sig = now, sign(keys[worker], signing_message(now, "POST", path))
                signatures[worker] = (ts, sig)
            body = json.dumps({"ticker": TICKER, "side": "bid" if worker % 2 else "ask",
                               "count": "1", "price": "0.5000",
                               "time_in_force": "good_till_canceled",
                               "self_trade_prevention_type": "maker"}).encode()
            scope = {"type": "http", "method": "POST", "path": path, "raw_path": path.encode(),
                     "query_string": b"", "root_path": "", "scheme": "http",
                     "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 1),
                     "http_version": "1.1", "asgi": {"version": "3.0"},
                     "headers": [(b"content-type", b"application/json"),
                                 (HEADER_KEY.lower().encode(), f"k{worker}".encode()),
                                 (HEADER_TIMESTAMP.lower().encode(), str(ts).encode()),
                                 (HEADER_SIGNATURE.lower().encode(), sig.encode())]}
            status = 0

            async def receive() -> dict[str, object]:
                return {"type": "http.request", "body": body, "more_body": False}

            async def send(message: dict[str, object]) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = int(message["status"])  # type: ignore[call-overload]

            await app(scope, receive, send)  # type: ignore[arg-type]
            return status

        async def worker(w: int) -> list[int]:
            return [await one(w, i) for i in range(per_client)]

        started = time.perf_counter()
        cpu_started = time.process_time()  # every thread of this process: loop and writer
        results = await asyncio.gather(*(worker(w) for w in range(clients)))
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        await exchange.stop()
        per_commit = exchange.store.commands_committed / max(exchange.store.batches_committed, 1)
        exchange.close()
        ok = sum(1 for statuses in results for s in statuses if s == 201)
        return ok, elapsed, cpu, per_commit

    with tempfile.TemporaryDirectory() as tmp:
        ok, elapsed, cpu, per_commit = asyncio.run(run(Path(tmp) / "asgi.sqlite"))
    return {"asgi_orders_per_s": ok / elapsed, "asgi_orders": ok,
            "asgi_orders_per_commit": per_commit,
            "asgi_us_per_order": elapsed / max(ok, 1) * 1e6,
            "asgi_cpu_us_per_order": cpu / max(ok, 1) * 1e6}


def calibrate() -> dict[str, float]:
    """Return two machine-speed yardsticks (a small json.dumps, one RSA-PSS verify) in us.

    On an idle modern core they take about 3 us and 40-60 us; when these read 10x higher the
    machine is contended and every figure above scales down with it.
    """
    from kalshi.signing import verify

    key = generate_private_key()
    message = signing_message(1, "POST", "/trade-api/v2/portfolio/events/orders")
    signature = sign(key, message)
    started = time.perf_counter()
    for _ in range(3000):
        json.dumps({"a": 1, "b": "xxxxxxxxxx"})
    json_us = (time.perf_counter() - started) / 3000 * 1e6
    started = time.perf_counter()
    for _ in range(200):
        verify(key.public_key(), message, signature)
    verify_us = (time.perf_counter() - started) / 200 * 1e6
    return {"calibration_json_dumps_us": json_us, "calibration_rsa_verify_us": verify_us}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--engine-orders", type=int, default=50_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--orders-per-client", type=int, default=500)
    parser.add_argument("--synchronous", default="FULL", choices=("FULL", "NORMAL"))
    parser.add_argument("--client", default="raw", choices=("raw", "httpx"),
                        help="HTTP client: hand-built keep-alive requests (raw) or httpx")
    args = parser.parse_args()
    calibration = calibrate()
    print(f"machine: json.dumps {calibration['calibration_json_dumps_us']:.1f} us, RSA verify "
          f"{calibration['calibration_rsa_verify_us']:.0f} us, load {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} CPUs")
    engine = bench_engine(args.engine_orders)
    print(f"engine: {engine['engine_events_per_s']:,.0f} calls/s "
          f"({engine['engine_orders']} orders, {engine['engine_fills']} fills)")
    asgi = bench_asgi(args.clients, args.orders_per_client, args.synchronous)
    print(f"asgi in-process: {asgi['asgi_orders_per_s']:,.0f} orders/s "
          f"({asgi['asgi_us_per_order']:.0f} us wall, {asgi['asgi_cpu_us_per_order']:.0f} us CPU "
          f"per order incl. RSA verify and commit)")
    http = bench_http(args.clients, args.orders_per_client, args.synchronous, args.client)
    print(f"http: {http['orders_per_s']:,.0f} orders/s with {args.clients} {args.client} clients, "
          f"p50 {http['p50_ms']:.2f} ms, p99 {http['p99_ms']:.2f} ms, "
          f"errors {http['http_errors']} (synchronous={args.synchronous}); server CPU "
          f"{http['server_cpu_us_per_order']:.0f} us per order, "
          f"{http['orders_per_commit']:.1f} orders per group commit")
    print(f"restart: replayed {http['replayed_commands']} commands at "
          f"{http['replay_commands_per_s']:,.0f}/s ({http['restart_wall_s']:.2f} s wall)")
    result = {k: round(v, 3) if isinstance(v, float) else v
              for part in (engine, asgi, http, calibration) for k, v in part.items()}
    result["load_average_1m"] = round(os.getloadavg()[0], 2)
    result["cpus"] = os.cpu_count()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
