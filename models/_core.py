"""The engine's private machinery: validation, reservations, matching, lifecycle, snapshots.

Invariant: a validation step never mutates; every mutation happens after all checks of a call have
passed, so an ``EngineReject`` leaves the state untouched. Reservations only shrink as an order
fills (the fee bound and cost bound are monotone), so balances never go negative. ``Engine`` in
``models.matching`` is the public face; nothing else should import this module.
"""

from __future__ import annotations

import heapq

from models._book import NO, YES, Acct, Group, LevelBook, Ord, Pos, fee_terms
from models._types import (
    GROUP_WINDOW_MS,
    STP_TYPES,
    TIME_IN_FORCE,
    EngineReject,
    Fill,
    GroupEvent,
    Lifecycle,
    MarketSpec,
    Order,
    OrderRequest,
    Outcome,
    Position,
    Settlement,
    Trade,
    new_delta,
    new_fill,
    new_order,
    new_outcome,
    new_position,
    new_trade,
)
from models.fees import FeeAccumulator

__all__ = ["CLOSE", "FOK", "GTC", "IOC", "OPEN", "TRADABLE", "EngineCore", "Mkt", "Out", "reject",
           "whole"]

GTC = "good_till_canceled"
IOC = "immediate_or_cancel"
FOK = "fill_or_kill"
TRADABLE = ("initialized", "active")
OPEN, CLOSE = 0, 1


def reject(code: str, message: str) -> EngineReject:
    return EngineReject(code, message)


def whole(value: object, name: str, code: str, minimum: int | None = None) -> int:
    # A whole number (never a bool or float); `minimum` inclusive. `type(...) is int` excludes
    # bool and int subclasses in one cheap test.
    if type(value) is not int:
        raise reject(code, f"{name} must be an integer (got {value!r})")
    if minimum is not None and value < minimum:
        raise reject(code, f"{name} must be >= {minimum} (got {value!r})")
    return value


class Mkt:
    # A market's mutable state; fee terms precomputed for the reservation bound.
    __slots__ = ("spec", "status", "result", "last_price", "volume", "oi", "book", "tn", "td",
                 "mn", "md", "terms")

    def __init__(self, spec: MarketSpec) -> None:
        self.spec = spec
        self.status = "initialized"
        self.result = ""
        self.last_price: int | None = None
        self.volume = 0
        self.oi = 0
        self.book = LevelBook()
        self.terms = fee_terms(spec.fee)
        self.tn, self.td, self.mn, self.md = self.terms


class Out:
    # What one call changed; turned into a frozen-snapshot Outcome at the end of the call.
    __slots__ = ("orders", "fills", "trades", "deltas", "positions", "balances", "lifecycle",
                 "settlements", "group_events")

    def __init__(self) -> None:
        self.orders: dict[str, Ord] = {}
        self.fills: list[Fill] = []
        self.trades: list[Trade] = []
        self.deltas: dict[tuple[str, int, int], int] = {}
        self.positions: dict[tuple[str, str], None] = {}
        self.balances: dict[str, None] = {}
        self.lifecycle: list[Lifecycle] = []
        self.settlements: list[Settlement] = []
        self.group_events: list[GroupEvent] = []


class EngineCore:
    """State and private steps of the engine; ``models.matching.Engine`` adds the public calls."""

    def __init__(self, id_prefix: str = "") -> None:
        self._prefix = id_prefix
        self._n_order = 0
        self._n_trade = 0
        self._n_fill = 0
        self._n_group = 0
        self._seq = 0
        self._accounts: dict[str, Acct] = {}
        self._markets: dict[str, Mkt] = {}
        self._orders: dict[str, Ord] = {}
        self._trades: list[Trade] = []
        self._groups: dict[str, Group] = {}
        self._expiry: list[tuple[int, int, str]] = []  # (expiration_ts_ms, seq, order_id)
        self._clock: list[tuple[int, int, int, str]] = []  # (ts_ms, seq, OPEN|CLOSE, ticker)

    # ------------------------------------------------------------------- private: lookups
    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _acct(self, account_id: str) -> Acct:
        acct = self._accounts.get(account_id)
        if acct is None:
            raise reject("account_not_found", f"no account {account_id!r}")
        return acct

    def _market(self, ticker: str) -> Mkt:
        m = self._markets.get(ticker)
        if m is None:
            raise reject("market_not_found", f"no market {ticker!r}")
        return m

    def _group(self, account_id: str, group_id: str) -> Group:
        acct = self._acct(account_id)
        g = acct.groups.get(group_id)
        if g is None:
            raise reject("order_group_not_found", f"no order group {group_id!r}")
        return g

    def _own_resting(self, acct: Acct, order_id: str, now_ms: int) -> Ord:
        whole(now_ms, "now_ms", "invalid_parameters")
        o = acct.resting.get(order_id)
        if o is None or (o.expiration_ts_ms is not None and o.expiration_ts_ms <= now_ms):
            raise reject("order_not_found", f"no resting order {order_id!r} for this account")
        if self._markets[o.ticker].spec.close_ts_ms <= now_ms:
            raise reject("market_closed", f"market {o.ticker} closed")
        return o

    # ---------------------------------------------------------------- private: validation
    def _check_tradable(self, m: Mkt, now_ms: int) -> None:
        spec = m.spec
        if m.status not in TRADABLE or not spec.open_ts_ms <= now_ms < spec.close_ts_ms:
            state = m.status if m.status not in TRADABLE else (
                "not yet open" if now_ms < spec.open_ts_ms else "closed")
            raise reject("market_closed", f"market {spec.ticker} is {state} at {now_ms}")

    def _check_price(self, m: Mkt, price_cents: object) -> int:
        spec = m.spec
        price = whole(price_cents, "price_cents", "invalid_price")
        if (not spec.min_price_cents <= price <= spec.max_price_cents
                or (price - spec.min_price_cents) % spec.tick_cents):
            raise reject("invalid_price", f"price_cents {price} is off the market's range "
                                           f"{spec.min_price_cents}..{spec.max_price_cents} "
                                           f"step {spec.tick_cents}")
        return price

    def _check_client_id(self, acct: Acct, client_order_id: object, now_ms: int) -> None:
        if not isinstance(client_order_id, str) or not client_order_id:
            raise reject("invalid_parameters", f"client_order_id must be a non-empty string "
                                                f"(got {client_order_id!r})")
        other = acct.client_ids.get(client_order_id)
        if other is None:
            return
        expired = other.expiration_ts_ms is not None and other.expiration_ts_ms <= now_ms
        closed = self._markets[other.ticker].spec.close_ts_ms <= now_ms
        if not (expired or closed):
            raise reject("order_already_exists", f"client_order_id {client_order_id!r} is "
                                                  f"already used by resting order "
                                                  f"{other.order_id}")

    def _check_request(self, req: OrderRequest, now_ms: int) -> tuple[Acct, Mkt]:
        whole(now_ms, "now_ms", "invalid_parameters")
        if not isinstance(req, OrderRequest):
            raise reject("invalid_parameters", f"expected an OrderRequest (got {req!r})")
        acct = self._acct(req.account_id)
        m = self._market(req.ticker)
        if req.side not in ("bid", "ask"):
            raise reject("invalid_parameters", f"side must be 'bid' or 'ask' (got {req.side!r})")
        if req.time_in_force not in TIME_IN_FORCE:
            raise reject("invalid_parameters", f"time_in_force must be one of {TIME_IN_FORCE} "
                                                f"(got {req.time_in_force!r})")
        if req.stp not in STP_TYPES:
            raise reject("invalid_parameters", f"stp must be one of {STP_TYPES} "
                                                f"(got {req.stp!r})")
        if type(req.post_only) is not bool or type(req.reduce_only) is not bool:
            raise reject("invalid_parameters", f"post_only and reduce_only must be bools (got "
                                                f"{req.post_only!r}, {req.reduce_only!r})")
        self._check_price(m, req.price_cents)
        whole(req.count, "count", "invalid_count", 1)
        self._check_tradable(m, now_ms)
        tif = req.time_in_force
        if req.buy_max_cost_cents is not None:
            whole(req.buy_max_cost_cents, "buy_max_cost_cents", "invalid_parameters", 1)
            tif = FOK  # buy_max_cost implies fill-or-kill whatever time_in_force says
        if req.expiration_ts_ms is not None:
            if tif != GTC:
                raise reject("expiration_requires_gtc", f"expiration_ts_ms needs "
                                                         f"good_till_canceled (got {tif!r})")
            whole(req.expiration_ts_ms, "expiration_ts_ms", "invalid_parameters", now_ms + 1)
        if req.reduce_only and tif != IOC:
            raise reject("reduce_only_requires_ioc", f"reduce_only needs immediate_or_cancel "
                                                      f"(got {tif!r})")
        if req.post_only and tif != GTC:
            raise reject("invalid_parameters", f"post_only needs good_till_canceled "
                                                f"(got {tif!r})")
        if req.client_order_id is not None:
            self._check_client_id(acct, req.client_order_id, now_ms)
        if req.order_group_id is not None:
            g = self._group(req.account_id, req.order_group_id)
            if g.triggered:
                raise reject("order_group_limit_exceeded", f"order group {g.group_id} is "
                                                            f"triggered until reset")
        return acct, m

    def _check_fill_or_kill(self, o: Ord, m: Mkt, now_ms: int, max_cost: int | None) -> None:
        # Walk the book exactly as _match would, without changing anything.
        book = m.book
        opp = 1 - o.leg
        floor = 100 - o.leg_price
        want = o.remaining
        tgroup = self._groups[o.group_id] if o.group_id else None
        t_allow = (tgroup.limit - _window(tgroup, now_ms)) if tgroup is not None else want
        used: dict[str, int] = {}
        pieces: list[tuple[int, int]] = []
        got = 0
        price = book.best[opp]
        stop = False
        while not stop and got < want and price >= floor and price > 0:
            for mk in book.levels[opp][price]:
                if got >= want or got >= t_allow:
                    break
                if mk.expiration_ts_ms is not None and mk.expiration_ts_ms <= now_ms:
                    continue
                if mk.account_id == o.account_id:
                    if o.stp == "maker":
                        continue
                    stop = True
                    break
                n = min(want - got, mk.remaining, t_allow - got)
                if mk.group_id is not None:
                    mg = self._groups[mk.group_id]
                    allow = mg.limit - _window(mg, now_ms) - used.get(mg.group_id, 0)
                    n = min(n, allow)
                    if n <= 0:
                        continue
                    used[mg.group_id] = used.get(mg.group_id, 0) + n
                pieces.append((n, price))
                got += n
            price -= 1
        if got < want:
            raise reject("fill_or_kill_insufficient_volume", f"only {got} of {want} contracts "
                                                              f"can fill at {o.price_cents}")
        if max_cost is not None:
            acc = FeeAccumulator(m.spec.fee)
            cost = 0
            for n, q in pieces:
                yes_price = 100 - q if opp == NO else q
                cost += n * (100 - q) + acc.charge(n, yes_price, is_taker=True)
            if cost > max_cost:
                raise reject("buy_max_cost_exceeded", f"filling {want} would cost {cost} cents "
                                                       f"incl. fees > buy_max_cost_cents "
                                                       f"{max_cost}")

    # ------------------------------------------------------------------- private: money
    def _opposite(self, o: Ord) -> int:
        # Contracts of the other leg this order's account holds in the market.
        p = self._accounts[o.account_id].positions.get(o.ticker)
        if p is None:
            return 0
        return max(-p.position, 0) if o.leg == YES else max(p.position, 0)

    def _reservation(self, o: Ord, m: Mkt, taker: bool) -> int:
        # Worst-case cash the order can still consume: cost of the remaining contracts plus an
        # upper bound on fees still due from its FeeAccumulator. Immediate orders count the
        # contracts that net an opposite position as free (they release 100 each).
        r = o.remaining
        if r <= 0:
            return 0
        if o.reduce_only:
            r = min(r, self._opposite(o))
            cost = 0
        elif taker and o.tif != GTC:
            cost = max(0, r - self._opposite(o)) * o.leg_price
        else:
            cost = r * o.leg_price
        if taker:
            num, den = m.tn, m.td
            x = min(o.price_cents, 50) if o.side == "bid" else max(o.price_cents, 50)
        else:
            num, den = m.mn, m.md
            x = o.price_cents
        if num == 0 or r <= 0:
            return cost
        centicents = -(-(num * r * x * (100 - x)) // den)
        acc = o.acc
        return cost + (-(-(acc.exact_centicents + centicents + r) // 100) - acc.charged_cents)

    @staticmethod
    def _crosses(o: Ord, m: Mkt) -> bool:
        # Whether o would take liquidity now (expired makers count: conservative).
        best = m.book.best[1 - o.leg]
        return best > 0 and best >= 100 - o.leg_price

    def _hold(self, o: Ord, acct: Acct, amount: int, out: Out) -> None:
        acct.balance -= amount
        acct.reserved += amount
        o.reserved = amount
        out.balances[acct.account_id] = None

    def _rereserve(self, o: Ord, m: Mkt, acct: Acct, taker: bool, out: Out) -> None:
        new = self._reservation(o, m, taker) if o.status == "resting" else 0
        acct.balance += o.reserved - new
        acct.reserved += new - o.reserved
        o.reserved = new
        out.balances[acct.account_id] = None

    # ---------------------------------------------------------------- private: matching
    def _enter(self, o: Ord, m: Mkt, acct: Acct, now_ms: int, out: Out, cap: int) -> None:
        # An incoming (new or re-priced) order: post-only check, match, then rest or cancel.
        out.orders[o.order_id] = o
        book = m.book
        opp = 1 - o.leg
        if o.post_only:
            if book.best[opp] and book.best[opp] >= 100 - o.leg_price:
                self._finish(o, acct, m, "PostOnlyCrossCancel", now_ms, out)
                return
            stop = None
        else:
            stop = self._match(o, m, now_ms, out, cap) if cap > 0 else None
        if o.remaining == 0:
            self._finish(o, acct, m, None, now_ms, out)
        elif stop is not None:
            self._finish(o, acct, m, stop, now_ms, out)
        elif o.tif == GTC:
            book.append(o)
            self._delta(out, o.ticker, o.leg, o.leg_price, o.remaining)
            acct.resting[o.order_id] = o
            if o.client_order_id:
                acct.client_ids[o.client_order_id] = o
            if o.group_id is not None:
                self._groups[o.group_id].orders[o.order_id] = o
            if o.expiration_ts_ms is not None:
                heapq.heappush(self._expiry, (o.expiration_ts_ms, self._next_seq(), o.order_id))
            self._rereserve(o, m, acct, False, out)
        else:
            capped = o.reduce_only and o.fill_count >= cap
            self._finish(o, acct, m, "ReduceOnlyCancel" if capped else "IocCancel", now_ms, out)

    def _finish(self, o: Ord, acct: Acct, m: Mkt, reason: str | None, now_ms: int,
                out: Out) -> None:
        # End an order that is not in the book: executed (reason None) or cancelled.
        if reason is None:
            o.status = "executed"
        else:
            o.status = "canceled"
            o.reason = reason
            o.remaining = 0
        o.last_update_ts_ms = now_ms
        self._drop(o, acct)
        self._rereserve(o, m, acct, False, out)
        out.orders[o.order_id] = o

    def _drop(self, o: Ord, acct: Acct) -> None:
        acct.resting.pop(o.order_id, None)
        if o.client_order_id and acct.client_ids.get(o.client_order_id) is o:
            del acct.client_ids[o.client_order_id]
        if o.group_id is not None:
            g = self._groups.get(o.group_id)
            if g is not None:
                g.orders.pop(o.order_id, None)

    def _cancel(self, o: Ord, reason: str, now_ms: int, out: Out) -> None:
        # Cancel a resting order: out of the book, reservation released.
        m = self._markets[o.ticker]
        m.book.remove(o)
        self._delta(out, o.ticker, o.leg, o.leg_price, -o.remaining)
        self._finish(o, self._accounts[o.account_id], m, reason, now_ms, out)

    def _match(self, o: Ord, m: Mkt, now_ms: int, out: Out, cap: int) -> str | None:
        # Fill o against the opposite leg, best price first, FIFO within a level. Returns the
        # cancel reason when matching must stop early (self-trade, order group), else None.
        book = m.book
        opp = 1 - o.leg
        levels = book.levels[opp]
        floor = 100 - o.leg_price
        groups = self._groups
        tgroup = groups[o.group_id] if o.group_id is not None else None
        filled = 0
        while o.remaining > 0 and filled < cap:
            q = book.best[opp]
            if q < floor or q == 0:
                return None
            mk = levels[q][0]
            if mk.expiration_ts_ms is not None and mk.expiration_ts_ms <= now_ms:
                self._cancel(mk, "ExpiryCancel", now_ms, out)
                continue
            if mk.account_id == o.account_id:
                if o.stp == "maker":
                    self._cancel(mk, "SelfTradeCancel", now_ms, out)
                    continue
                return "SelfTradeCancel"
            n = min(o.remaining, mk.remaining, cap - filled)
            if tgroup is not None:
                allow = tgroup.limit - tgroup.filled_in_window(now_ms, GROUP_WINDOW_MS)
                if allow <= 0:
                    self._trigger(tgroup, now_ms, out)
                    return "OrderGroupCancel"
                n = min(n, allow)
            if mk.group_id is not None:
                mg = groups[mk.group_id]
                allow = mg.limit - mg.filled_in_window(now_ms, GROUP_WINDOW_MS)
                if allow <= 0:
                    self._trigger(mg, now_ms, out)
                    continue
                n = min(n, allow)
            self._execute(o, mk, m, n, now_ms, out)
            filled += n
            if tgroup is not None and tgroup.triggered:
                return "OrderGroupCancel"
        return None

    def _execute(self, taker: Ord, maker: Ord, m: Mkt, n: int, now_ms: int, out: Out) -> None:
        # One match of n contracts at the maker's price: two fills, one trade.
        ticker = m.spec.ticker
        yes_price = maker.leg_price if maker.leg == YES else 100 - maker.leg_price
        self._n_trade += 1
        trade_id = f"{self._prefix}t-{self._n_trade:06d}"
        netted = 0
        for o, is_taker in ((taker, True), (maker, False)):
            acct = self._accounts[o.account_id]
            paid = yes_price if o.leg == YES else 100 - yes_price
            fee = o.acc.charge(n, yes_price, is_taker=is_taker)
            cost = n * paid
            o.remaining -= n
            o.fill_count += n
            if is_taker:
                o.taker_cost += cost
                o.taker_fees += fee
            else:
                o.maker_cost += cost
                o.maker_fees += fee
            o.reason = "Trade"
            o.last_update_ts_ms = now_ms
            p = acct.positions.get(ticker)
            if p is None:
                p = acct.positions[ticker] = Pos()
            sign = 1 if o.leg == YES else -1
            held = -p.position * sign
            k = min(n, held) if held > 0 else 0
            if k:
                size = abs(p.position)
                removed = p.exposure if k == size else p.exposure * k // size
                p.exposure -= removed
                p.realized += 100 * k - k * paid - removed
            p.position += sign * n
            p.exposure += (n - k) * paid
            p.fees_paid += fee
            p.total_traded += cost
            acct.balance += 100 * k - cost - fee
            netted += k
            self._rereserve(o, m, acct, is_taker, out)
            self._n_fill += 1
            f = new_fill(f"{self._prefix}f-{self._n_fill:06d}", trade_id, o.order_id, o.account_id,
                     ticker, o.side, yes_price, n, is_taker, fee, now_ms, p.position)
            acct.fills.append(f)
            out.fills.append(f)
            out.positions[(o.account_id, ticker)] = None
            out.orders[o.order_id] = o
        t = new_trade(trade_id, ticker, n, yes_price, "yes" if taker.leg == YES else "no", now_ms)
        self._trades.append(t)
        out.trades.append(t)
        m.last_price = yes_price
        m.volume += n
        m.oi += n - netted
        book = m.book
        book.qty[maker.leg][maker.leg_price] -= n
        self._delta(out, ticker, maker.leg, maker.leg_price, -n)
        if maker.remaining == 0:
            level = book.levels[maker.leg][maker.leg_price]
            level.popleft()
            if not level:
                book.fix_best(maker.leg)
            maker.status = "executed"
            self._drop(maker, self._accounts[maker.account_id])
            self._rereserve(maker, m, self._accounts[maker.account_id], False, out)
        for gid in (taker.group_id, maker.group_id):
            if gid is not None:
                g = self._groups[gid]
                g.add(now_ms, n)
                if not g.triggered and g.filled_in_window(now_ms, GROUP_WINDOW_MS) >= g.limit:
                    self._trigger(g, now_ms, out)

    def _trigger(self, g: Group, now_ms: int, out: Out) -> None:
        for o in list(g.orders.values()):
            self._cancel(o, "OrderGroupCancel", now_ms, out)
        g.triggered = True
        out.group_events.append(GroupEvent(g.group_id, g.account_id, "triggered", now_ms,
                                           g.limit))

    # --------------------------------------------------------------- private: lifecycle
    def _advance(self, now_ms: int, out: Out) -> None:
        clock, expiry = self._clock, self._expiry
        while True:
            next_clock = clock[0][0] if clock else None
            next_expiry = expiry[0][0] if expiry else None
            if next_clock is not None and next_clock <= now_ms and (
                    next_expiry is None or next_clock <= next_expiry):
                ts, _, kind, ticker = heapq.heappop(clock)
                m = self._markets[ticker]
                if kind == OPEN and m.status == "initialized":
                    m.status = "active"
                    out.lifecycle.append(Lifecycle(ticker, "activated", ts))
                elif kind == CLOSE and m.status in TRADABLE:
                    self._close(m, ts, out)
            elif next_expiry is not None and next_expiry <= now_ms:
                ts, _, order_id = heapq.heappop(expiry)
                o = self._orders[order_id]
                if o.status == "resting" and o.expiration_ts_ms == ts:
                    self._cancel(o, "ExpiryCancel", ts, out)
            else:
                return

    def _close(self, m: Mkt, ts_ms: int, out: Out) -> None:
        book = m.book
        resting = sorted((o for leg in (YES, NO) for level in book.levels[leg] for o in level),
                         key=lambda o: o.seq)
        for o in resting:
            self._cancel(o, "CloseCancel", ts_ms, out)
        m.status = "closed"
        out.lifecycle.append(Lifecycle(m.spec.ticker, "deactivated", ts_ms))

    # ----------------------------------------------------------------- private: snapshots
    @staticmethod
    def _delta(out: Out, ticker: str, leg: int, price: int, delta: int) -> None:
        key = (ticker, leg, price)
        out.deltas[key] = out.deltas.get(key, 0) + delta

    @staticmethod
    def _snap(o: Ord) -> Order:
        return new_order(o.order_id, o.account_id, o.client_order_id, o.ticker, o.side,
                          o.price_cents, o.initial_count, o.fill_count, o.remaining, o.status,
                          o.tif, o.stp, o.post_only, o.created_ts_ms, o.last_update_ts_ms,
                          o.expiration_ts_ms, o.taker_cost, o.maker_cost, o.taker_fees,
                          o.maker_fees, o.group_id, o.reason)

    @staticmethod
    def _pos_snap(acct: Acct, ticker: str) -> Position:
        p = acct.positions[ticker]
        return new_position(acct.account_id, ticker, p.position, p.exposure, p.realized,
                             p.fees_paid, p.total_traded)

    def _emit_for(self, o: Ord, out: Out) -> tuple[Order, Outcome]:
        # The order's snapshot is the same object as its entry in the outcome.
        outcome = self._emit(out)
        for snap in outcome.orders:
            if snap.order_id == o.order_id:
                return snap, outcome
        return self._snap(o), outcome

    def _emit(self, out: Out) -> Outcome:
        accounts = self._accounts
        snap, pos_snap = self._snap, self._pos_snap
        return new_outcome(
            [snap(o) for o in out.orders.values()],
            out.fills,
            out.trades,
            [new_delta(t, "yes" if leg == YES else "no", p, d)
             for (t, leg, p), d in out.deltas.items() if d],
            [pos_snap(accounts[a], t) for a, t in out.positions],
            {a: accounts[a].balance for a in out.balances},
            out.lifecycle,
            out.settlements,
            out.group_events,
        )


def _window(g: Group, now_ms: int) -> int:
    # Contracts filled in the group's rolling window, without pruning (a pure read).
    cutoff = now_ms - GROUP_WINDOW_MS
    return sum(n for ts, n in g.window if ts > cutoff)
