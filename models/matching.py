"""The pure, deterministic matching engine shared by the paper exchange and the backtester.

Invariants: every fill has a counterparty fill of equal count at the same YES price; YES and NO
contracts outstanding are equal in every market; cash + reserved + fees collected + 100 x open
pairs is conserved; no balance is ever negative; a rejected call (``EngineReject``) leaves the state
untouched; replaying the same calls with the same ``now_ms`` values reproduces state and ids
exactly.
No I/O and no clock: every mutating call takes ``now_ms``. Contract: ``docs/engine-api.md``.
"""

from __future__ import annotations

import heapq
from typing import Any

from models._book import NO, YES, Acct, Group, Ord, OrderFees
from models._core import CLOSE, FOK, GTC, OPEN, TRADABLE, EngineCore, Mkt, Out, reject, whole
from models._types import (
    GROUP_WINDOW_MS,
    REJECT_CODES,
    STP_TYPES,
    TIME_IN_FORCE,
    UPDATE_REASONS,
    BookDelta,
    BookView,
    EngineReject,
    Fill,
    GroupEvent,
    Lifecycle,
    MarketSpec,
    MarketState,
    Order,
    OrderRequest,
    Outcome,
    Position,
    Settlement,
    Trade,
)
from models.fees import FEE_TYPES

__all__ = [
    "MarketSpec",
    "MarketState",
    "OrderRequest",
    "Order",
    "Fill",
    "Trade",
    "Position",
    "Settlement",
    "BookDelta",
    "Lifecycle",
    "GroupEvent",
    "BookView",
    "Outcome",
    "EngineReject",
    "Engine",
    "REJECT_CODES",
    "TIME_IN_FORCE",
    "STP_TYPES",
    "UPDATE_REASONS",
    "GROUP_WINDOW_MS",
]



class Engine(EngineCore):
    """One exchange's books, accounts, order groups and markets; see docs/engine-api.md."""

    # ----------------------------------------------------------------- accounts and markets
    def add_account(self, account_id: str, balance_cents: int) -> None:
        """Open an account with a starting cash balance."""
        if not isinstance(account_id, str) or not account_id:
            raise reject("invalid_parameters", f"account_id must be a non-empty string "
                                                f"(got {account_id!r})")
        if account_id in self._accounts:
            raise reject("invalid_parameters", f"account_id already exists: {account_id!r}")
        whole(balance_cents, "balance_cents", "invalid_parameters", 0)
        self._accounts[account_id] = Acct(account_id, balance_cents)

    def deposit(self, account_id: str, cents: int) -> None:
        """Add cash to an account."""
        acct = self._acct(account_id)
        acct.balance += whole(cents, "cents", "invalid_parameters", 1)

    def add_market(self, spec: MarketSpec, now_ms: int) -> Outcome:
        """List a market; it is active once open_ts_ms <= now_ms and closes at close_ts_ms."""
        if not isinstance(spec, MarketSpec):
            raise reject("invalid_parameters", f"spec must be a MarketSpec (got {spec!r})")
        if not spec.ticker or spec.ticker in self._markets:
            raise reject("invalid_parameters", f"ticker empty or already listed: {spec.ticker!r}")
        whole(spec.open_ts_ms, "open_ts_ms", "invalid_parameters")
        whole(spec.close_ts_ms, "close_ts_ms", "invalid_parameters")
        if spec.close_ts_ms <= spec.open_ts_ms:
            raise reject("invalid_parameters", f"close_ts_ms {spec.close_ts_ms} must be after "
                                                f"open_ts_ms {spec.open_ts_ms}")
        whole(spec.tick_cents, "tick_cents", "invalid_parameters", 1)
        whole(spec.min_price_cents, "min_price_cents", "invalid_parameters", 1)
        whole(spec.max_price_cents, "max_price_cents", "invalid_parameters", 1)
        if not spec.min_price_cents <= spec.max_price_cents <= 99:
            raise reject("invalid_parameters", f"price range {spec.min_price_cents}.."
                                                f"{spec.max_price_cents} outside 1..99")
        if spec.fee.fee_type not in FEE_TYPES or spec.fee.fee_type == "flat":
            raise reject("invalid_parameters", f"fee_type not supported: {spec.fee.fee_type!r}")
        whole(now_ms, "now_ms", "invalid_parameters")
        m = Mkt(spec)
        self._markets[spec.ticker] = m
        out = Out()
        out.lifecycle.append(Lifecycle(spec.ticker, "created", now_ms))
        heapq.heappush(self._clock, (spec.open_ts_ms, self._next_seq(), OPEN, spec.ticker))
        heapq.heappush(self._clock, (spec.close_ts_ms, self._next_seq(), CLOSE, spec.ticker))
        self._advance(now_ms, out)
        return self._emit(out)

    # ----------------------------------------------------------------------------- orders
    def submit(self, req: OrderRequest, now_ms: int) -> tuple[Order, Outcome]:
        """Place an order: validate everything first, then match, then rest or cancel the rest."""
        acct, m = self._check_request(req, now_ms)
        tif = FOK if req.buy_max_cost_cents is not None else req.time_in_force
        o = Ord("", req.account_id, req.client_order_id or "", req.ticker, req.side,
                req.price_cents, req.count, tif, req.stp, req.post_only, req.reduce_only, now_ms,
                req.expiration_ts_ms, req.order_group_id, OrderFees(m.spec.fee, m.terms), 0)
        # a GTC order that cannot cross now only ever rests: it needs no taker fee headroom
        taker = not o.post_only and (tif != GTC or self._crosses(o, m))
        need = self._reservation(o, m, taker=taker)
        if need > acct.balance:
            raise reject("insufficient_balance", f"order needs {need} cents, balance is "
                                                  f"{acct.balance} cents")
        if tif == FOK:
            self._check_fill_or_kill(o, m, now_ms, req.buy_max_cost_cents)
        out = Out()
        self._advance(now_ms, out)
        self._n_order += 1
        o.order_id = f"{self._prefix}o-{self._n_order:06d}"
        o.seq = self._next_seq()
        self._orders[o.order_id] = o
        acct.order_ids.append(o.order_id)
        if o.client_order_id:
            acct.client_hist[o.client_order_id] = o
        self._hold(o, acct, need, out)
        cap = self._opposite(o) if o.reduce_only else o.remaining
        self._enter(o, m, acct, now_ms, out, cap)
        return self._emit_for(o, out)

    def amend(self, account_id: str, order_id: str, *, price_cents: int, count: int, now_ms: int,
              updated_client_order_id: str | None = None,
              expiration_ts_ms: int | None = None) -> tuple[Order, Outcome]:
        """Change price and/or total count; priority is kept only for same price, no increase."""
        acct = self._acct(account_id)
        o = self._own_resting(acct, order_id, now_ms)
        m = self._markets[o.ticker]
        self._check_tradable(m, now_ms)
        self._check_price(m, price_cents)
        whole(count, "count", "invalid_count", 1)
        new_remaining = count - o.fill_count
        if new_remaining < 1:
            raise reject("invalid_count", f"count {count} must exceed fill_count {o.fill_count}")
        new_cid = o.client_order_id
        if updated_client_order_id is not None and updated_client_order_id != o.client_order_id:
            self._check_client_id(acct, updated_client_order_id, now_ms)
            new_cid = updated_client_order_id
        if expiration_ts_ms is not None:
            whole(expiration_ts_ms, "expiration_ts_ms", "invalid_parameters", now_ms + 1)
        keep = price_cents == o.price_cents and new_remaining <= o.remaining
        saved = (o.price_cents, o.remaining)
        o.set_price(price_cents)
        o.remaining = new_remaining
        taker = not keep and not o.post_only and self._crosses(o, m)
        need = self._reservation(o, m, taker=taker)
        o.set_price(saved[0])
        o.remaining = saved[1]
        if need - o.reserved > acct.balance:
            raise reject("insufficient_balance", f"amended order needs {need} cents, available "
                                                  f"{acct.balance + o.reserved} cents")
        out = Out()
        self._advance(now_ms, out)
        if new_cid != o.client_order_id:
            if acct.client_ids.get(o.client_order_id) is o:
                del acct.client_ids[o.client_order_id]
            o.client_order_id = new_cid
            acct.client_ids[new_cid] = o
            acct.client_hist[new_cid] = o
        if expiration_ts_ms is not None:
            o.expiration_ts_ms = expiration_ts_ms
            heapq.heappush(self._expiry, (expiration_ts_ms, self._next_seq(), o.order_id))
        o.initial_count = count
        o.reason = "Amend"
        o.last_update_ts_ms = now_ms
        out.orders[o.order_id] = o
        book = m.book
        if keep:
            delta = new_remaining - o.remaining
            if delta:
                book.qty[o.leg][o.leg_price] += delta
                self._delta(out, o.ticker, o.leg, o.leg_price, delta)
                o.remaining = new_remaining
            self._rereserve(o, m, acct, False, out)
        else:
            book.remove(o)
            self._delta(out, o.ticker, o.leg, o.leg_price, -o.remaining)
            self._drop(o, acct)  # in flight: _enter registers it again if it rests
            o.set_price(price_cents)
            o.remaining = new_remaining
            self._rereserve(o, m, acct, taker, out)
            self._enter(o, m, acct, now_ms, out, o.remaining)
            if o.status == "resting":
                o.reason = "Amend"
        return self._emit_for(o, out)

    def decrease(self, account_id: str, order_id: str, *, now_ms: int, reduce_by: int | None = None,
                 reduce_to: int | None = None) -> tuple[Order, Outcome]:
        """Reduce a resting order's remaining count in place (keeps priority); 0 cancels it."""
        acct = self._acct(account_id)
        o = self._own_resting(acct, order_id, now_ms)
        if (reduce_by is None) == (reduce_to is None):
            raise reject("invalid_parameters", "exactly one of reduce_by, reduce_to is required "
                                                f"(got reduce_by={reduce_by!r}, "
                                                f"reduce_to={reduce_to!r})")
        if reduce_by is not None:
            new_remaining = o.remaining - whole(reduce_by, "reduce_by", "invalid_count", 1)
        else:
            new_remaining = whole(reduce_to, "reduce_to", "invalid_count", 0)
            if new_remaining >= o.remaining:
                raise reject("invalid_count", f"reduce_to {reduce_to} must be below remaining "
                                               f"{o.remaining}")
        new_remaining = max(new_remaining, 0)
        out = Out()
        self._advance(now_ms, out)
        m = self._markets[o.ticker]
        if o.status != "resting":  # expired or closed by the advance above
            return self._emit_for(o, out)
        if new_remaining == 0:
            self._cancel(o, "Decrease", now_ms, out)
        else:
            delta = new_remaining - o.remaining
            m.book.qty[o.leg][o.leg_price] += delta
            self._delta(out, o.ticker, o.leg, o.leg_price, delta)
            o.remaining = new_remaining
            o.initial_count = o.fill_count + new_remaining
            o.reason = "Decrease"
            o.last_update_ts_ms = now_ms
            out.orders[o.order_id] = o
            self._rereserve(o, m, acct, False, out)
        return self._emit_for(o, out)

    def cancel(self, account_id: str, order_id: str, now_ms: int) -> tuple[Order, int, Outcome]:
        """Cancel a resting order; returns the order, the contracts cancelled and the outcome."""
        acct = self._acct(account_id)
        o = self._own_resting(acct, order_id, now_ms)
        out = Out()
        self._advance(now_ms, out)
        reduced = o.remaining if o.status == "resting" else 0
        if reduced:
            self._cancel(o, "Cancel", now_ms, out)
        order, outcome = self._emit_for(o, out)
        return order, reduced, outcome

    def cancel_all(self, account_id: str, now_ms: int) -> Outcome:
        """Cancel every resting order of an account, oldest first."""
        acct = self._acct(account_id)
        out = Out()
        self._advance(now_ms, out)
        for o in list(acct.resting.values()):
            self._cancel(o, "Cancel", now_ms, out)
        return self._emit(out)

    # ----------------------------------------------------------------------- order groups
    def create_order_group(self, account_id: str, contracts_limit: int,
                           now_ms: int) -> tuple[str, Outcome]:
        """Create an order group with a rolling 15 s filled-contracts limit."""
        acct = self._acct(account_id)
        whole(contracts_limit, "contracts_limit", "invalid_parameters", 1)
        if contracts_limit > 1_000_000:
            raise reject("invalid_parameters", f"contracts_limit must be <= 1000000 "
                                                f"(got {contracts_limit})")
        self._n_group += 1
        gid = f"{self._prefix}g-{self._n_group:06d}"
        g = Group(gid, account_id, contracts_limit)
        self._groups[gid] = g
        acct.groups[gid] = g
        out = Out()
        out.group_events.append(GroupEvent(gid, account_id, "created", now_ms, contracts_limit))
        return gid, self._emit(out)

    def trigger_order_group(self, account_id: str, group_id: str, now_ms: int) -> Outcome:
        """Cancel the group's orders and refuse new ones until reset."""
        g = self._group(account_id, group_id)
        out = Out()
        self._advance(now_ms, out)
        self._trigger(g, now_ms, out)
        return self._emit(out)

    def reset_order_group(self, account_id: str, group_id: str, now_ms: int) -> Outcome:
        """Clear the triggered state and the rolling counter."""
        g = self._group(account_id, group_id)
        out = Out()
        self._advance(now_ms, out)
        g.triggered = False
        g.window.clear()
        g.window_sum = 0
        out.group_events.append(GroupEvent(g.group_id, account_id, "reset", now_ms, g.limit))
        return self._emit(out)

    def delete_order_group(self, account_id: str, group_id: str, now_ms: int) -> Outcome:
        """Cancel the group's orders and remove the group."""
        g = self._group(account_id, group_id)
        out = Out()
        self._advance(now_ms, out)
        for o in list(g.orders.values()):
            self._cancel(o, "OrderGroupCancel", now_ms, out)
        del self._groups[group_id]
        del self._accounts[account_id].groups[group_id]
        out.group_events.append(GroupEvent(group_id, account_id, "deleted", now_ms, g.limit))
        return self._emit(out)

    def set_order_group_limit(self, account_id: str, group_id: str, contracts_limit: int,
                              now_ms: int) -> Outcome:
        """Change the limit; the group triggers at once if the window already reaches it."""
        g = self._group(account_id, group_id)
        whole(contracts_limit, "contracts_limit", "invalid_parameters", 1)
        if contracts_limit > 1_000_000:
            raise reject("invalid_parameters", f"contracts_limit must be <= 1000000 "
                                                f"(got {contracts_limit})")
        out = Out()
        self._advance(now_ms, out)
        g.limit = contracts_limit
        out.group_events.append(
            GroupEvent(group_id, account_id, "limit_updated", now_ms, contracts_limit))
        if not g.triggered and g.filled_in_window(now_ms, GROUP_WINDOW_MS) >= g.limit:
            self._trigger(g, now_ms, out)
        return self._emit(out)

    # -------------------------------------------------------------------------- lifecycle
    def advance(self, now_ms: int) -> Outcome:
        """Apply what is due by now_ms: market opens and closes, order expiries, in time order."""
        whole(now_ms, "now_ms", "invalid_parameters")
        out = Out()
        self._advance(now_ms, out)
        return self._emit(out)

    def determine(self, ticker: str, result: str, now_ms: int) -> Outcome:
        """Record the result; an open market is closed first (resting orders CloseCancel)."""
        m = self._market(ticker)
        if result not in ("yes", "no"):
            raise reject("invalid_parameters", f"result must be 'yes' or 'no' (got {result!r})")
        if m.status in ("determined", "finalized"):
            raise reject("invalid_parameters", f"market {ticker} is already {m.status}")
        out = Out()
        self._advance(now_ms, out)
        if m.status in TRADABLE:
            self._close(m, now_ms, out)
        m.status = "determined"
        m.result = result
        out.lifecycle.append(Lifecycle(ticker, "determined", now_ms, result))
        return self._emit(out)

    def settle(self, ticker: str, now_ms: int) -> Outcome:
        """Pay 100 cents per winning contract, zero every position, mark the market finalized."""
        m = self._market(ticker)
        if m.status != "determined":
            raise reject("invalid_parameters", f"market {ticker} is {m.status}, not determined")
        out = Out()
        self._advance(now_ms, out)
        for acct in self._accounts.values():
            p = acct.positions.get(ticker)
            if p is None or p.position == 0:
                continue
            yes = max(p.position, 0)
            no = max(-p.position, 0)
            revenue = 100 * (yes if m.result == "yes" else no)
            s = Settlement(acct.account_id, ticker, m.spec.event_ticker, m.result, yes, no,
                           p.exposure if yes else 0, p.exposure if no else 0, revenue, 0, now_ms)
            acct.balance += revenue
            p.realized += revenue - p.exposure
            p.position = 0
            p.exposure = 0
            acct.settlements.append(s)
            out.settlements.append(s)
            out.positions[(acct.account_id, ticker)] = None
            out.balances[acct.account_id] = None
        m.oi = 0
        m.status = "finalized"
        out.lifecycle.append(Lifecycle(ticker, "settled", now_ms, m.result))
        return self._emit(out)

    # ---------------------------------------------------------------------------- queries
    def market(self, ticker: str) -> MarketState:
        """Return a market's state."""
        m = self._market(ticker)
        return MarketState(m.spec, m.status, m.result, m.last_price, m.volume, m.oi)

    def markets(self) -> list[MarketState]:
        """Return every market, in listing order."""
        return [self.market(t) for t in self._markets]

    def book(self, ticker: str, depth: int = 0) -> BookView:
        """Return aggregated YES and NO bid levels, best first (depth 0: all levels)."""
        book = self._market(ticker).book
        whole(depth, "depth", "invalid_parameters", 0)
        return BookView(ticker, book.depth(YES, depth), book.depth(NO, depth))

    def order(self, order_id: str) -> Order:
        """Return one order by id."""
        o = self._orders.get(order_id)
        if o is None:
            raise reject("order_not_found", f"no order {order_id!r}")
        return self._snap(o)

    def orders(self, account_id: str, *, status: str | None = None,
               ticker: str | None = None) -> list[Order]:
        """Return an account's orders, oldest first, optionally filtered."""
        acct = self._acct(account_id)
        found = (self._orders[i] for i in acct.order_ids)
        return [self._snap(o) for o in found
                if (status is None or o.status == status)
                and (ticker is None or o.ticker == ticker)]

    def find_by_client_order_id(self, account_id: str, client_order_id: str) -> Order | None:
        """Return the newest order with this client_order_id, any status, or None."""
        o = self._acct(account_id).client_hist.get(client_order_id)
        return None if o is None else self._snap(o)

    def fills(self, account_id: str) -> list[Fill]:
        """Return an account's fills, oldest first."""
        return list(self._acct(account_id).fills)

    def trades(self, ticker: str | None = None) -> list[Trade]:
        """Return trades, oldest first, optionally for one market."""
        return [t for t in self._trades if ticker is None or t.ticker == ticker]

    def positions(self, account_id: str) -> list[Position]:
        """Return an account's positions (every market it traded)."""
        acct = self._acct(account_id)
        return [self._pos_snap(acct, t) for t in acct.positions]

    def settlements(self, account_id: str) -> list[Settlement]:
        """Return an account's settlements, oldest first."""
        return list(self._acct(account_id).settlements)

    def balance_cents(self, account_id: str) -> int:
        """Return cash available (not reserved for resting orders)."""
        return self._acct(account_id).balance

    def reserved_cents(self, account_id: str) -> int:
        """Return cash held back for resting orders."""
        return self._acct(account_id).reserved

    def order_group(self, account_id: str, group_id: str) -> dict[str, Any]:
        """Return an order group as a dict (id, limit, triggered, resting order ids)."""
        g = self._group(account_id, group_id)
        return {"order_group_id": g.group_id, "contracts_limit": g.limit,
                "is_auto_cancel_enabled": True, "triggered": g.triggered,
                "orders": list(g.orders)}

    def order_groups(self, account_id: str) -> list[dict[str, Any]]:
        """Return an account's order groups, oldest first."""
        acct = self._acct(account_id)
        return [self.order_group(account_id, gid) for gid in acct.groups]

