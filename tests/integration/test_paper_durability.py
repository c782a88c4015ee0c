"""Restart and kill -9 drills: the paper exchange runs in a subprocess on its own SQLite file.

An order, fill or balance change the exchange acknowledged must be there after the process is
killed with SIGKILL (no chance to flush anything) and restarted on the same file.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from kalshi.signing import KalshiAuth, generate_private_key
from tests.integration.conftest import add_market, http, register_key

REPO = Path(__file__).resolve().parents[2]
TICKER = "KXDRILL-26JAN01-B50"

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")


class ServerProcess:
    """``python -m kalshi.paper.server`` on port 0; ``url`` is read from its first stdout line."""

    def __init__(self, db: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kalshi.paper.server", "--db", str(db), "--port", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("listening "):
            self.proc.kill()
            _out, err = self.proc.communicate(timeout=10)
            raise AssertionError(f"server did not start: {line!r} {err[-2000:]}")
        self.url = line.split()[1]

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def terminate(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=20)


def _snapshot(client: httpx.Client) -> dict[str, Any]:
    orders = client.get("/portfolio/orders", params={"limit": 1000}).json()["orders"]
    fills = client.get("/portfolio/fills", params={"limit": 1000}).json()["fills"]
    balance = client.get("/portfolio/balance").json()
    positions = client.get("/portfolio/positions").json()["market_positions"]
    book = client.get(f"/markets/{TICKER}/orderbook").json()
    for position in positions:
        position.pop("last_updated_ts")
    return {"orders": orders, "fills": fills, "balance": balance["balance"],
            "positions": positions, "book": book}


def _order(side: str, price: str, count: str = "2", tif: str = "good_till_canceled") -> dict:
    return {"ticker": TICKER, "side": side, "count": count, "price": price,
            "time_in_force": tif, "self_trade_prevention_type": "maker"}


def _setup(url: str) -> tuple[KalshiAuth, KalshiAuth]:
    key_a, key_b = generate_private_key(), generate_private_key()
    register_key(f"{url}/operator", "drill-a", key_a)
    register_key(f"{url}/operator", "drill-b", key_b)
    add_market(f"{url}/operator", TICKER, "KXDRILL-26JAN01", series_ticker="KXDRILL")
    return KalshiAuth("drill-a", key_a), KalshiAuth("drill-b", key_b)


def _trade_some(url: str, a: KalshiAuth, b: KalshiAuth) -> None:
    with http(base_url=f"{url}/trade-api/v2", auth=a) as ca, \
            http(base_url=f"{url}/trade-api/v2", auth=b) as cb:
        for i in range(6):
            assert ca.post("/portfolio/events/orders",
                           json=_order("bid", f"0.{40 + i}00")).status_code == 201
        assert cb.post("/portfolio/events/orders",
                       json=_order("ask", "0.4300", "5", "immediate_or_cancel")).status_code == 201
        order_id = ca.get("/portfolio/orders", params={"status": "resting"}).json()["orders"][0]
        assert ca.delete(f"/portfolio/events/orders/{order_id['order_id']}").status_code == 200


@pytest.mark.parametrize("how", ["kill9", "sigterm"])
def test_server_restart_after_kill_keeps_every_acknowledged_write(tmp_path: Path,
                                                                 how: str) -> None:
    db = tmp_path / "drill.sqlite"
    server = ServerProcess(db)
    try:
        a, b = _setup(server.url)
        _trade_some(server.url, a, b)
        with http(base_url=f"{server.url}/trade-api/v2", auth=a) as ca, \
                http(base_url=f"{server.url}/trade-api/v2", auth=b) as cb:
            before = (_snapshot(ca), _snapshot(cb))
    finally:
        server.kill9() if how == "kill9" else server.terminate()
    restarted = ServerProcess(db)
    try:
        with http(base_url=f"{restarted.url}/trade-api/v2", auth=a) as ca, \
                http(base_url=f"{restarted.url}/trade-api/v2", auth=b) as cb:
            after = (_snapshot(ca), _snapshot(cb))
            more = ca.post("/portfolio/events/orders", json=_order("bid", "0.1000"))
    finally:
        restarted.kill9()
    assert before[0]["fills"]
    assert before[1]["fills"]
    assert after == before
    # ids keep counting from the replayed state: no id is ever reused after a restart
    assert more.status_code == 201
    assert more.json()["order_id"] not in {o["order_id"] for o in before[0]["orders"]}


@pytest.mark.parametrize("how", ["kill9", "sigterm"])
def test_kill_during_concurrent_orders_loses_no_acknowledged_order(tmp_path: Path,
                                                                   how: str) -> None:
    # SIGTERM: uvicorn stops accepting, in-flight handlers finish (their commands committed
    # before they answer), then the store closes; kill -9: nothing flushes at all
    db = tmp_path / "drill.sqlite"
    server = ServerProcess(db)
    a, b = _setup(server.url)
    acknowledged: list[tuple[str, str]] = []  # (client_order_id, order_id)
    lock = threading.Lock()
    stop = threading.Event()

    def place(worker: int, auth: KalshiAuth) -> None:
        with http(base_url=f"{server.url}/trade-api/v2", auth=auth, timeout=5) as client:
            for i in range(10_000):
                if stop.is_set():
                    return
                side, price = ("bid", "0.4500") if worker % 2 == 0 else ("ask", "0.4500")
                cid = f"w{worker}-{i}"
                try:
                    body = {**_order(side, price, "1"), "client_order_id": cid}
                    response = client.post("/portfolio/events/orders", json=body)
                except httpx.HTTPError:
                    return  # the server died under us: this order was never acknowledged
                if response.status_code == 201:
                    with lock:
                        acknowledged.append((cid, response.json()["order_id"]))

    workers = [threading.Thread(target=place, args=(w, a if w % 2 == 0 else b)) for w in range(4)]
    for worker in workers:
        worker.start()
    while True:
        with lock:
            if len(acknowledged) >= 60:
                break
        threading.Event().wait(0.01)
    server.kill9() if how == "kill9" else server.terminate()
    stop.set()
    for worker in workers:
        worker.join(10)
    if how == "sigterm":
        _out, err = server.proc.communicate(timeout=10)
        assert "Traceback" not in err, err[-2000:]
    restarted = ServerProcess(db)
    try:
        found: dict[str, dict[str, Any]] = {}
        for auth in (a, b):
            with http(base_url=f"{restarted.url}/trade-api/v2", auth=auth) as client:
                cursor = ""
                while True:
                    page = client.get("/portfolio/orders",
                                      params={"limit": 1000, "cursor": cursor}).json()
                    found |= {o["order_id"]: o for o in page["orders"]}
                    cursor = page["cursor"]
                    if not cursor:
                        break
    finally:
        restarted.kill9()
    missing = [(cid, oid) for cid, oid in acknowledged if oid not in found]
    assert len(acknowledged) >= 60
    assert missing == []
    assert all(found[oid]["client_order_id"] == cid for cid, oid in acknowledged)
