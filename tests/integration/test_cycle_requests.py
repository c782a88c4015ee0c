"""What a trading cycle asks the exchange, against the paper exchange over HTTP with a real
SQLite ledger: fill booking reads only the fills since the ledger's watermark (minus an overlap),
so its cost stays flat as the account's history grows; a fill listed late inside the overlap is
booked by the next cycle, one listed later than that is imported by reconciliation (never lost);
series metadata is read once per TTL and a failed read is never replaced by a stale one; NWS
``/points`` answers are remembered per cache in process memory, errors never."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest
from sqlmodel import select

from kalshi.client import KalshiClient
from kalshi.errors import KalshiError
from kalshi.signing import KalshiAuth
from models.ledger import Fill
from tasks.db import read_session
from tasks.gateway import FILL_OVERLAP_S, fill_watermark_ms, sync_exchange
from tasks.ledger_store import active_halts
from tasks.nws import NwsClient, NwsHttpError
from tasks.nws_standin import StandinState, serve_standin
from tasks.reconcile import reconcile_once
from tasks.safety import safety_client
from tasks.trading import SeriesCache
from tests.integration.safety_harness import Desk, desk, safety_venue  # noqa: F401

_UA = "eventdesk-test/0.1 (tests@example.org)"
_POINTS = "/points/30.0000,-85.0000"


class FillsTransport(httpx.BaseTransport):
    """Real HTTP to the paper exchange; counts requests and fills listed, and can leave the
    fills of chosen orders out of ``/portfolio/fills`` answers (an exchange listing them late),
    or answer chosen paths 503."""

    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()
        self.calls: Counter[tuple[str, str]] = Counter()
        self.fills_listed = 0
        self.min_ts: list[int | None] = []
        self.hidden_orders: set[str] = set()
        self.fail_containing: str | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/trade-api/v2")
        self.calls[(request.method, path)] += 1
        if self.fail_containing and self.fail_containing in path:
            return httpx.Response(503, json={"error": {"code": "service_unavailable",
                                                       "message": "injected"}})
        response = self._inner.handle_request(request)
        if path != "/portfolio/fills":
            return response
        response.read()
        body = response.json()
        raw_min = parse_qs(request.url.query.decode()).get("min_ts")
        self.min_ts.append(int(raw_min[0]) if raw_min else None)
        body["fills"] = [f for f in body["fills"] if f["order_id"] not in self.hidden_orders]
        self.fills_listed += len(body["fills"])
        return httpx.Response(response.status_code, json=body)

    def reset(self) -> None:
        """Forget the counts (not the hidden orders)."""
        self.calls.clear()
        self.fills_listed = 0
        self.min_ts.clear()

    def close(self) -> None:
        self._inner.close()


def _client(desk: Desk) -> tuple[KalshiClient, FillsTransport]:  # noqa: F811
    transport = FillsTransport()
    client = safety_client(desk.venue.base_url, KalshiAuth(desk.key_id, desk.key), desk.engine,
                           max_retries=0, inner=transport, now=desk.venue.clock.now)
    desk.clients.append(client)
    return client, transport


def _sync(desk: Desk, client: KalshiClient) -> int:  # noqa: F811
    # the first step of a trading cycle (tasks.trading.sync_orders): book fills, resolve intents
    return sync_exchange(client, desk.engine, as_of=desk.venue.clock.now(),
                         resolve_after_s=0).fills_booked


def _booked_contracts(desk: Desk) -> Counter[str]:  # noqa: F811
    # market ticker -> contracts booked in the ledger's fills
    with read_session(desk.engine) as session:
        counts: Counter[str] = Counter()
        for fill in session.exec(select(Fill)):
            counts[fill.market_ticker] += fill.count
        return counts


def _exchange_order_id(client: KalshiClient, ticker: str) -> str:
    (order,) = list(client.iter_orders(ticker=ticker))
    return order.order_id


def _late_fill(desk: Desk, late_by_s: int) -> tuple[KalshiClient, FillsTransport, str, str]:  # noqa: F811
    # our bids rest in two markets; `late` fills first, `recent` `late_by_s` seconds later; the
    # exchange lists `late`'s fill only after a cycle has booked `recent`'s (the watermark)
    client, transport = _client(desk)
    late, recent = desk.venue.market(), desk.venue.market()
    placed = desk.trade([(late, "yes", 30, 2), (recent, "yes", 40, 1)], ttl_s=4 * late_by_s)
    assert placed.count("place", "resting") == 2, placed.outcomes
    transport.hidden_orders.add(_exchange_order_id(client, late))
    desk.fill_resting(late, yes_price_cents=30, count=2)
    desk.venue.clock.advance(late_by_s)
    desk.fill_resting(recent, yes_price_cents=40, count=1)
    assert _sync(desk, client) == 1  # `recent` only: `late` is not listed yet
    assert _booked_contracts(desk) == Counter({recent: 1})
    transport.hidden_orders.clear()  # the exchange now lists the late fill
    return client, transport, late, recent


def test_book_fills_late_fill_inside_overlap_booked_by_next_cycle(desk: Desk) -> None:  # noqa: F811
    # Arrange: a fill listed late whose timestamp is inside the overlap before the watermark
    client, transport, late, recent = _late_fill(desk, FILL_OVERLAP_S // 5)
    watermark = fill_watermark_ms(desk.engine)
    assert watermark is not None
    transport.reset()

    # Act: the next cycle's sync
    booked = _sync(desk, client)

    # Assert: it asked only for fills since watermark - overlap, and found the late one
    assert transport.min_ts == [watermark // 1000 - FILL_OVERLAP_S]
    assert booked == 1
    assert _booked_contracts(desk) == Counter({late: 2, recent: 1})


def test_book_fills_late_fill_outside_overlap_found_by_reconcile(desk: Desk) -> None:  # noqa: F811
    # Arrange: a fill listed late whose timestamp is older than the overlap reaches
    client, transport, late, recent = _late_fill(desk, FILL_OVERLAP_S + 300)

    # Act 1: cycles do not look that far back
    assert _sync(desk, client) == 0
    assert _booked_contracts(desk) == Counter({recent: 1})

    # Act 2: the reconcile flow's full pass (by cursor, no min_ts)
    transport.reset()
    report = reconcile_once(client, desk.engine, now=desk.venue.clock.now(),
                            webhook=desk.webhook.url)

    # Assert: imported as an explained missing fill; nothing unexplained, no halt, not lost
    assert transport.min_ts
    assert all(m is None for m in transport.min_ts)
    assert report.complete
    assert [(d.kind, d.action) for d in report.differences
            if d.kind == "missing_fill"] == [("missing_fill", "import_fill")], report.differences
    assert report.unexplained == ()
    assert active_halts(desk.engine) == []
    assert _booked_contracts(desk) == Counter({late: 2, recent: 1})


def _grow_history(desk: Desk, client: KalshiClient, rounds: int) -> None:  # noqa: F811
    # `rounds` cycles that each get one fill, further apart than the overlap
    for _ in range(rounds):
        market = desk.venue.market()
        assert desk.trade([(market, "yes", 35, 1)]).count("place", "resting") == 1
        desk.fill_resting(market, yes_price_cents=35, count=1)
        assert _sync(desk, client) == 1
        desk.venue.clock.advance(FILL_OVERLAP_S + 60)


def test_sync_fills_read_per_cycle_constant_as_history_grows(desk: Desk) -> None:  # noqa: F811
    # Arrange
    client, transport = _client(desk)
    per_cycle: list[tuple[int, int, int]] = []
    for rounds in (2, 6):
        _grow_history(desk, client, rounds)
        transport.reset()

        # Act: one cycle's sync with no new fill
        assert _sync(desk, client) == 0

        # Assert (below): requests and fills listed, against the history's size
        read = (transport.calls[("GET", "/portfolio/fills")], transport.fills_listed)
        per_cycle.append((*read, len(list(client.iter_fills()))))

    (calls_small, listed_small, history_small), (calls_big, listed_big, history_big) = per_cycle
    assert (history_small, history_big) == (2, 8)  # the history grew fourfold
    assert calls_small == calls_big == 1
    assert listed_small == listed_big == 1  # only the newest fill, inside the overlap


def test_series_cache_reads_once_per_ttl_and_never_serves_a_failed_read(
        desk: Desk) -> None:  # noqa: F811
    # Arrange: the venue lists series KXSAFETY; a clock the test moves
    desk.venue.market()
    client, transport = _client(desk)
    now = [1000.0]
    cache = SeriesCache(ttl_s=600, clock=lambda: now[0])
    venue = desk.venue.base_url

    # Act / Assert: read once, then served from memory within the TTL
    first = cache.get(client, venue, "KXSAFETY")
    now[0] += 599
    assert cache.get(client, venue, "KXSAFETY") == first
    assert transport.calls[("GET", "/series/KXSAFETY")] == 1

    # expired and the exchange fails: the error surfaces, the old entry is not used
    now[0] += 2
    transport.fail_containing = "/series/"
    with pytest.raises(KalshiError):
        cache.get(client, venue, "KXSAFETY")
    with pytest.raises(KalshiError):
        cache.get(client, venue, "KXSAFETY")
    transport.fail_containing = None
    assert cache.get(client, venue, "KXSAFETY").ticker == "KXSAFETY"
    assert transport.calls[("GET", "/series/KXSAFETY")] == 4
    # another venue is another entry
    cache.get(client, "https://other.example/trade-api/v2", "KXSAFETY")
    assert transport.calls[("GET", "/series/KXSAFETY")] == 5


def test_series_cache_negative_ttl_refused_naming_value() -> None:
    with pytest.raises(ValueError, match="ttl_s.*-1"):
        SeriesCache(ttl_s=-1)


def test_nws_points_memo_serves_repeats_per_cache_and_never_remembers_errors(
        fixtures_dir: Path, tmp_path: Path) -> None:
    # Arrange: the NWS stand-in; /points answered once from the network
    state = StandinState(fixtures=fixtures_dir)
    with serve_standin(state) as base_url:
        with NwsClient(base_url, _UA, tmp_path / "a") as client:
            point, doc = client.get_points(30.0, -85.0)
        assert not doc.from_cache
        (tmp_path / "a" / "nws_points_cache.sqlite").unlink()  # even the cache file is gone

        # Act / Assert: the next cycle's client with the same cache asks nobody
        with NwsClient(base_url, _UA, tmp_path / "a") as client:
            again, again_doc = client.get_points(30.0, -85.0)
        assert again == point
        assert again_doc.from_cache
        assert state.hits[_POINTS] == 1

        # another cache is another memo; an error is never remembered
        with NwsClient(base_url, _UA, tmp_path / "b") as client:
            client.get_points(30.0, -85.0)
        assert state.hits[_POINTS] == 2
        state.fail("/points", 404, title="Not Found")
        with NwsClient(base_url, _UA, tmp_path / "c", retries=0) as client:
            with pytest.raises(NwsHttpError):
                client.get_points(30.0, -85.0)
            client.get_points(30.0, -85.0)
        assert state.hits[_POINTS] == 4
