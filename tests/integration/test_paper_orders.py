"""V2 order writes and portfolio reads against the live paper exchange over loopback."""

from __future__ import annotations

import httpx

from tests.integration.conftest import PaperExchangeHandle


def _order(ticker: str, side: str, count: str, price: str, tif: str = "good_till_canceled",
           **extra: object) -> dict[str, object]:
    body: dict[str, object] = {"ticker": ticker, "side": side, "count": count, "price": price,
                               "time_in_force": tif,
                               "self_trade_prevention_type": "taker_at_cross"}
    body.update(extra)
    return body


def _balance(client: httpx.Client) -> int:
    response = client.get("/portfolio/balance")
    assert response.status_code == 200
    return int(response.json()["balance"])


def test_create_order_resting_bid_shows_in_book_orders_and_reserves_cash(
    paper_exchange: PaperExchangeHandle, paper_market: str
) -> None:
    with paper_exchange.client() as client:
        before = _balance(client)
        value_path = "/portfolio/summary/total_resting_order_value"
        value_before = client.get(value_path).json()["total_resting_order_value"]
        body = _order(paper_market, "bid", "10", "0.4200", client_order_id="r1")
        created = client.post("/portfolio/events/orders", json=body)
        assert created.status_code == 201
        body = created.json()
        assert body["client_order_id"] == "r1"
        assert (body["fill_count"], body["remaining_count"]) == ("0.00", "10.00")
        assert "average_fill_price" not in body
        book = client.get(f"/markets/{paper_market}/orderbook").json()["orderbook_fp"]
        order = client.get(f"/portfolio/orders/{body['order_id']}").json()["order"]
        value_after = client.get(value_path).json()["total_resting_order_value"]
        after = _balance(client)
    assert book == {"yes_dollars": [["0.4200", "10.00"]], "no_dollars": []}
    assert order["status"] == "resting"
    assert (order["yes_price_dollars"], order["no_price_dollars"]) == ("0.4200", "0.5800")
    assert (order["outcome_side"], order["book_side"]) == ("yes", "bid")
    # a resting bid reserves 10 x 42c; the series charges no maker fee, so nothing more
    assert before - after == 420
    assert value_after - value_before == 420


def test_crossing_ask_fills_at_resting_price_and_both_accounts_settle_exactly(
    paper_exchange: PaperExchangeHandle, paper_market: str
) -> None:
    with paper_exchange.client() as maker, paper_exchange.client(counterparty=True) as taker:
        maker.post("/portfolio/events/orders", json=_order(paper_market, "bid", "10", "0.6000"))
        taker_before = _balance(taker)
        hit = taker.post("/portfolio/events/orders",
                         json=_order(paper_market, "ask", "4", "0.5500", "immediate_or_cancel"))
        fills = taker.get("/portfolio/fills", params={"ticker": paper_market}).json()["fills"]
        positions = taker.get("/portfolio/positions",
                              params={"ticker": paper_market}).json()["market_positions"]
        trades = taker.get("/markets/trades", params={"ticker": paper_market}).json()["trades"]
        taker_after = _balance(taker)
        maker_positions = maker.get("/portfolio/positions",
                                    params={"ticker": paper_market}).json()["market_positions"]
        with paper_exchange.operator() as operator:
            settled = operator.post("/settle", json={"ticker": paper_market, "result": "no"})
        taker_final = _balance(taker)
        settlements = taker.get("/portfolio/settlements",
                                params={"ticker": paper_market}).json()["settlements"]
    assert hit.status_code == 201
    assert hit.json()["fill_count"] == "4.00"
    assert hit.json()["average_fill_price"] == "0.6000"  # the maker's price, in YES terms
    assert [(f["count_fp"], f["yes_price_dollars"], f["is_taker"], f["book_side"])
            for f in fills] == [("4.00", "0.6000", True, "ask")]
    assert trades[0]["taker_outcome_side"] == "no"
    assert positions[0]["position_fp"] == "-4.00"
    assert maker_positions[0]["position_fp"] == "4.00"
    # NO bought at 40c x 4 = 160c plus taker fee ceil(0.07*4*0.6*0.4*100) = 7c
    assert taker_before - taker_after == 160 + 7
    assert settled.status_code == 200
    assert settled.json()["status"] == "finalized"
    assert taker_final - taker_after == 400  # four winning NO contracts pay $1 each
    assert settlements[0]["revenue"] == 400
    assert settlements[0]["market_result"] == "no"


def test_amend_decrease_cancel_roundtrip_updates_book_and_returns_reduced_by(
    paper_exchange: PaperExchangeHandle, paper_market: str
) -> None:
    with paper_exchange.client() as client:
        before = _balance(client)
        order_id = client.post("/portfolio/events/orders", json=_order(
            paper_market, "ask", "10", "0.7000", client_order_id="amend-me")).json()["order_id"]
        amended = client.post(f"/portfolio/events/orders/{order_id}/amend", json={
            "ticker": paper_market, "side": "ask", "price": "0.6800", "count": "8",
            "updated_client_order_id": "amended"})
        new_id = amended.json()["order_id"]
        decreased = client.post(f"/portfolio/events/orders/{new_id}/decrease",
                                json={"reduce_by": "3"})
        book = client.get(f"/markets/{paper_market}/orderbook").json()["orderbook_fp"]
        canceled = client.delete(f"/portfolio/events/orders/{new_id}")
        final = client.get(f"/portfolio/orders/{new_id}").json()["order"]
        after = _balance(client)
    assert amended.status_code == 200
    assert amended.json()["client_order_id"] == "amended"
    assert amended.json()["remaining_count"] == "8.00"
    assert decreased.status_code == 200
    assert decreased.json()["remaining_count"] == "5.00"
    assert book["no_dollars"] == [["0.3200", "5.00"]]  # an ask at 68c is a NO bid at 32c
    assert canceled.status_code == 200
    assert canceled.json()["reduced_by"] == "5.00"
    assert final["status"] == "canceled"
    assert after == before  # every reservation released


def test_batch_create_mixed_items_returns_per_item_errors_in_request_order(
    paper_exchange: PaperExchangeHandle, paper_market: str
) -> None:
    with paper_exchange.client() as client:
        response = client.post("/portfolio/events/orders/batched", json={"orders": [
            _order(paper_market, "bid", "2", "0.1000", client_order_id="b-ok-1"),
            _order(paper_market, "bid", "2", "0.1050", client_order_id="b-bad-price"),
            _order("NO-SUCH-MARKET", "bid", "2", "0.1000", client_order_id="b-bad-ticker"),
            _order(paper_market, "bid", "3", "0.1100", client_order_id="b-ok-2"),
        ]})
        items = response.json()["orders"]
        book = client.get(f"/markets/{paper_market}/orderbook").json()["orderbook_fp"]
    assert response.status_code == 201
    assert [i.get("client_order_id") for i in items] == ["b-ok-1", "b-bad-price", "b-bad-ticker",
                                                        "b-ok-2"]
    assert "order_id" in items[0]
    assert "order_id" in items[3]
    assert items[1]["error"]["code"] == "invalid_price"
    assert items[2]["error"]["code"] == "not_found"
    assert book["yes_dollars"] == [["0.1000", "2.00"], ["0.1100", "3.00"]]


def test_batch_cancel_and_cancel_all_empty_the_accounts_resting_orders(
    paper_exchange: PaperExchangeHandle, paper_market: str
) -> None:
    with paper_exchange.client() as client:
        ids = [client.post("/portfolio/events/orders", json=_order(
            paper_market, "bid", "1", f"0.{20 + i}00")).json()["order_id"] for i in range(4)]
        batch = client.request("DELETE", "/portfolio/events/orders/batched", json={"orders": [
            {"order_id": ids[0]}, {"order_id": ids[1]}, {"order_id": "o-999999"}]})
        all_gone = client.delete("/portfolio/events/orders")
        resting = client.get("/portfolio/orders", params={"status": "resting",
                                                          "ticker": paper_market}).json()
        book = client.get(f"/markets/{paper_market}/orderbook").json()["orderbook_fp"]
    assert batch.status_code == 200
    results = batch.json()["orders"]
    assert [r["reduced_by"] for r in results] == ["1.00", "1.00", "0.00"]
    assert results[2]["error"]["code"] == "not_found"
    assert all_gone.status_code == 204
    assert all_gone.content == b""
    assert resting["orders"] == []
    assert book == {"yes_dollars": [], "no_dollars": []}


def test_order_group_create_trigger_reset_delete_follow_the_contract_codes(
    paper_exchange: PaperExchangeHandle, paper_market: str
) -> None:
    with paper_exchange.client() as client:
        created = client.post("/portfolio/order_groups/create", json={"contracts_limit": 5})
        group_id = created.json()["order_group_id"]
        placed = client.post("/portfolio/events/orders", json=_order(
            paper_market, "bid", "2", "0.3000", order_group_id=group_id))
        got = client.get(f"/portfolio/order_groups/{group_id}")
        listed = client.get("/portfolio/order_groups")
        triggered = client.put(f"/portfolio/order_groups/{group_id}/trigger")
        after_trigger = client.get(f"/portfolio/orders/{placed.json()['order_id']}").json()
        refused = client.post("/portfolio/events/orders", json=_order(
            paper_market, "bid", "2", "0.3000", order_group_id=group_id))
        reset = client.put(f"/portfolio/order_groups/{group_id}/reset")
        limit = client.put(f"/portfolio/order_groups/{group_id}/limit",
                           json={"contracts_limit": 9})
        deleted = client.delete(f"/portfolio/order_groups/{group_id}")
        missing = client.get(f"/portfolio/order_groups/{group_id}")
    assert created.status_code == 201
    assert created.json()["subaccount"] == 0
    assert got.status_code == 200
    assert got.json()["orders"] == [placed.json()["order_id"]]
    assert got.json()["contracts_limit_fp"] == "5.00"
    assert group_id in [g["id"] for g in listed.json()["order_groups"]]
    assert (triggered.status_code, triggered.json()) == (200, {})
    assert after_trigger["order"]["status"] == "canceled"
    assert refused.status_code == 400
    assert (reset.status_code, limit.status_code, deleted.status_code) == (200, 200, 200)
    assert missing.status_code == 404


def test_markets_pagination_walks_every_market_once_and_ends_with_empty_cursor(
    paper_exchange: PaperExchangeHandle, paper_market: str
) -> None:
    seen: list[str] = []
    cursor = ""
    with paper_exchange.client() as client:
        total = len(client.get("/markets", params={"limit": 1000}).json()["markets"])
        for _ in range(100):
            page = client.get("/markets", params={"limit": 2, "cursor": cursor}).json()
            seen += [m["ticker"] for m in page["markets"]]
            cursor = page["cursor"]
            if cursor == "":
                break
    assert len(seen) == len(set(seen)) == total
    assert paper_market in seen


def test_events_with_nested_markets_returns_recorded_event_fields(
    paper_exchange: PaperExchangeHandle,
) -> None:
    event_ticker = paper_exchange.event_tickers[0]
    with paper_exchange.client() as client:
        one = client.get(f"/events/{event_ticker}", params={"with_nested_markets": "true"})
        listed = client.get("/events", params={"series_ticker": "KXHIGHNY",
                                               "with_nested_markets": "true"})
        series = client.get("/series/KXHIGHNY")
    event = one.json()["event"]
    assert event["title"].startswith("Highest temperature in NYC")
    assert event["series_ticker"] == "KXHIGHNY"
    assert len(event["markets"]) == len(one.json()["markets"]) == 6
    market = one.json()["markets"][0]
    assert market["rules_primary"].startswith("If the highest temperature recorded in Central Park")
    assert market["status"] == "active"
    assert [e["event_ticker"] for e in listed.json()["events"]] == [event_ticker]
    assert series.status_code == 200


def test_candlesticks_bucket_trades_into_ohlc_periods(
    paper_exchange: PaperExchangeHandle, paper_market: str
) -> None:
    with paper_exchange.client() as maker, paper_exchange.client(counterparty=True) as taker:
        maker.post("/portfolio/events/orders", json=_order(paper_market, "bid", "3", "0.4500"))
        maker.post("/portfolio/events/orders", json=_order(paper_market, "bid", "3", "0.4000"))
        taker.post("/portfolio/events/orders",
                   json=_order(paper_market, "ask", "5", "0.4000", "immediate_or_cancel"))
        now_s = paper_exchange.exchange.clock() // 1000
        candles = taker.get(f"/series/KXPAPERTEST/markets/{paper_market}/candlesticks", params={
            "start_ts": now_s - 3600, "end_ts": now_s + 120, "period_interval": 1}).json()
        market = taker.get(f"/markets/{paper_market}").json()["market"]
    [candle] = candles["candlesticks"]
    assert candle["price"]["open_dollars"] == "0.4500"
    assert candle["price"]["close_dollars"] == "0.4000"
    assert candle["price"]["low_dollars"] == "0.4000"
    assert candle["volume_fp"] == "5.00"
    assert candle["end_period_ts"] % 60 == 0
    assert (market["volume_24h_fp"], market["volume_fp"]) == ("5.00", "5.00")
    assert market["last_price_dollars"] == "0.4000"
    assert market["updated_time"] >= market["created_time"]


def test_orders_pagination_with_inserts_between_pages_neither_repeats_nor_skips(
    paper_exchange: PaperExchangeHandle, paper_market: str
) -> None:
    with paper_exchange.client(counterparty=True) as client:
        placed = [client.post("/portfolio/events/orders", json=_order(
            paper_market, "bid", "1", "0.0200")).json()["order_id"] for _ in range(5)]
        first = client.get("/portfolio/orders", params={"ticker": paper_market, "limit": 2}).json()
        newer = client.post("/portfolio/events/orders",
                            json=_order(paper_market, "bid", "1", "0.0300")).json()["order_id"]
        rest: list[str] = []
        cursor = first["cursor"]
        while cursor:
            page = client.get("/portfolio/orders", params={"ticker": paper_market, "limit": 2,
                                                           "cursor": cursor}).json()
            rest += [o["order_id"] for o in page["orders"]]
            cursor = page["cursor"]
        bogus = client.get("/portfolio/orders", params={"cursor": "bm90LWFuLWlk"})
    seen = [o["order_id"] for o in first["orders"]] + rest
    assert seen == list(reversed(placed))  # newest first, each exactly once
    assert newer not in seen  # it landed before the first page: a fresh walk would see it
    assert bogus.status_code == 400
