"""Order requests (current V2 shape only, unknown fields forbidden) and their responses.

Invariant: a request is validated before it is sent: prices on the grid, whole counts where
required, exactly one way of giving each value.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from kalshi.wire._base import (
    BookSide,
    SelfTradePrevention,
    TimeInForce,
    _count,
    _fail,
    _Frozen,
    _int,
    _money,
    _rbool,
    _rcount,
    _rstr,
    _str,
    require_object,
)
from kalshi.wire.portfolio import (
    ErrorResponse,
    parse_error,
)

__all__ = [
    "CreateOrderV2Request",
    "CreateOrderV2Response",
    "BatchCreateOrdersV2Request",
    "BatchCreateItem",
    "AmendOrderV2Request",
    "AmendOrderV2Response",
    "DecreaseOrderV2Request",
    "DecreaseOrderV2Response",
    "CancelOrderV2Response",
    "BatchCancelOrder",
    "BatchCancelOrdersV2Request",
    "BatchCancelItem",
    "CreateOrderGroupRequest",
    "UpdateOrderGroupLimitRequest",
    "OrderGroup",
    "parse_create_order_response",
    "parse_batch_create_item",
    "parse_amend_response",
    "parse_decrease_response",
    "parse_cancel_response",
    "parse_batch_cancel_item",
    "parse_order_group",
]

# --------------------------------------------------------------------------------------------
# requests: the current (V2) shape only, unknown fields forbidden

_PRICE_TEXT = re.compile(r"^(0\.\d{2,4}|1\.0{2,4})$")
_COUNT_TEXT = re.compile(r"^\d+(\.\d{1,2})?$")


def _check_price_text(value: str, field: str) -> str:
    if not _PRICE_TEXT.match(value) or not Decimal(0) < Decimal(value) < Decimal(1):
        raise ValueError(f"{field}: expected a dollar price string like '0.56' in (0, 1), "
                         f"got {value!r}")
    return value


def _check_count_text(value: str, field: str, *, positive: bool = True) -> str:
    if not _COUNT_TEXT.match(value) or (positive and Decimal(value) <= 0):
        raise ValueError(f"{field}: expected a positive count string like '10' or '10.00', "
                         f"got {value!r}")
    return value


class _Request(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    def to_wire(self) -> dict[str, Any]:
        """The JSON body (unset optional fields dropped, as the official SDK does)."""
        return self.model_dump(exclude_none=True)


class CreateOrderV2Request(_Request):
    """``POST /portfolio/events/orders``: a limit order on the YES book (bid buys YES)."""

    ticker: str
    side: BookSide
    count: str
    price: str
    time_in_force: TimeInForce
    self_trade_prevention_type: SelfTradePrevention
    client_order_id: str | None = None
    expiration_time: int | None = None
    post_only: bool | None = None
    reduce_only: bool | None = None
    cancel_order_on_pause: bool | None = None
    subaccount: int | None = None
    order_group_id: str | None = None
    exchange_index: int | None = None

    @field_validator("price")
    @classmethod
    def _price_ok(cls, value: str) -> str:
        return _check_price_text(value, "price")

    @field_validator("count")
    @classmethod
    def _count_ok(cls, value: str) -> str:
        return _check_count_text(value, "count")

    @model_validator(mode="after")
    def _combination_ok(self) -> CreateOrderV2Request:
        if self.reduce_only and self.time_in_force != "immediate_or_cancel":
            raise ValueError("reduce_only requires time_in_force=immediate_or_cancel")
        if self.expiration_time is not None and self.time_in_force != "good_till_canceled":
            raise ValueError("expiration_time requires time_in_force=good_till_canceled")
        if self.subaccount is not None and not 0 <= self.subaccount <= 63:
            raise ValueError(f"subaccount: expected 0..63, got {self.subaccount}")
        return self


class BatchCreateOrdersV2Request(_Request):
    """``POST /portfolio/events/orders/batched``."""

    orders: tuple[CreateOrderV2Request, ...]


class AmendOrderV2Request(_Request):
    """``POST /portfolio/events/orders/{id}/amend``: new price and new *total* count."""

    ticker: str
    side: BookSide
    price: str
    count: str
    client_order_id: str | None = None
    updated_client_order_id: str | None = None
    expiration_time: int | None = None
    exchange_index: int | None = None

    @field_validator("price")
    @classmethod
    def _price_ok(cls, value: str) -> str:
        return _check_price_text(value, "price")

    @field_validator("count")
    @classmethod
    def _count_ok(cls, value: str) -> str:
        return _check_count_text(value, "count")


class DecreaseOrderV2Request(_Request):
    """``POST /portfolio/events/orders/{id}/decrease``: exactly one of reduce_by / reduce_to."""

    reduce_by: str | None = None
    reduce_to: str | None = None
    exchange_index: int | None = None
    market_ticker: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> DecreaseOrderV2Request:
        if (self.reduce_by is None) == (self.reduce_to is None):
            raise ValueError("give exactly one of reduce_by or reduce_to")
        if self.reduce_by is not None:
            _check_count_text(self.reduce_by, "reduce_by")
        if self.reduce_to is not None:
            _check_count_text(self.reduce_to, "reduce_to", positive=False)
        return self


class BatchCancelOrder(_Request):
    """One item of a batch cancel."""

    order_id: str
    subaccount: int | None = None
    exchange_index: int | None = None
    market_ticker: str | None = None


class BatchCancelOrdersV2Request(_Request):
    """``DELETE /portfolio/events/orders/batched`` (a DELETE with a JSON body)."""

    orders: tuple[BatchCancelOrder, ...]


class CreateOrderGroupRequest(_Request):
    """``POST /portfolio/order_groups/create``."""

    contracts_limit: int | None = None
    contracts_limit_fp: str | None = None
    subaccount: int | None = None
    exchange_index: int | None = None

    @model_validator(mode="after")
    def _limit_ok(self) -> CreateOrderGroupRequest:
        if (self.contracts_limit is None) == (self.contracts_limit_fp is None):
            raise ValueError("give exactly one of contracts_limit or contracts_limit_fp")
        if self.contracts_limit is not None and not 1 <= self.contracts_limit <= 1_000_000:
            raise ValueError(f"contracts_limit: expected 1..1000000, got {self.contracts_limit}")
        return self


class UpdateOrderGroupLimitRequest(_Request):
    """``PUT /portfolio/order_groups/{id}/limit``."""

    contracts_limit: int | None = None
    contracts_limit_fp: str | None = None


# --------------------------------------------------------------------------------------------
# write responses


class CreateOrderV2Response(_Frozen):
    """The acknowledgement of a create (or, with ``resolved_by_lookup``, the order found)."""

    order_id: str
    client_order_id: str | None
    fill_count: Decimal
    remaining_count: Decimal
    average_fill_price: Decimal | None
    average_fee_paid: Decimal | None
    ts_ms: int | None
    resolved_by_lookup: bool = False


def parse_create_order_response(raw: Any) -> CreateOrderV2Response:
    """Map ``CreateOrderV2Response``."""
    obj = require_object(raw, "create order response")
    ctx = f"create_order[{obj.get('order_id')}]"
    ts_ms = _int(obj, "ts_ms", ctx)
    return CreateOrderV2Response(
        order_id=_rstr(obj, "order_id", ctx),
        client_order_id=_str(obj, "client_order_id", ctx, required=False),
        fill_count=_rcount(obj, "fill_count", ctx),
        remaining_count=_rcount(obj, "remaining_count", ctx),
        average_fill_price=_money(obj, "average_fill_price", ctx, required=False),
        average_fee_paid=_money(obj, "average_fee_paid", ctx, required=False),
        ts_ms=ts_ms,
    )


class BatchCreateItem(_Frozen):
    """One result of a batch create: an acknowledgement or an error, in request order."""

    order_id: str | None
    client_order_id: str | None
    fill_count: Decimal | None
    remaining_count: Decimal | None
    ts_ms: int | None
    error: ErrorResponse | None


def parse_batch_create_item(raw: Any) -> BatchCreateItem:
    """Map one ``BatchCreateOrdersV2ResponseOrdersInner``."""
    obj = require_object(raw, "batch create item")
    ctx = f"batch_create[{obj.get('client_order_id')}]"
    error = obj.get("error")
    item = BatchCreateItem(
        order_id=_str(obj, "order_id", ctx, required=False),
        client_order_id=_str(obj, "client_order_id", ctx, required=False),
        fill_count=_count(obj, "fill_count", ctx, required=False),
        remaining_count=_count(obj, "remaining_count", ctx, required=False),
        ts_ms=_int(obj, "ts_ms", ctx, required=False),
        error=parse_error(error) if error is not None else None,
    )
    if item.error is None and item.order_id is None:
        raise _fail(f"{ctx}.order_id", "an item must carry order_id or error", None)
    return item


class AmendOrderV2Response(_Frozen):
    """The acknowledgement of an amend."""

    order_id: str
    client_order_id: str | None
    remaining_count: Decimal | None
    fill_count: Decimal | None
    ts_ms: int


def parse_amend_response(raw: Any) -> AmendOrderV2Response:
    """Map ``AmendOrderV2Response``."""
    obj = require_object(raw, "amend response")
    ctx = f"amend[{obj.get('order_id')}]"
    ts_ms = _int(obj, "ts_ms", ctx)
    assert ts_ms is not None
    return AmendOrderV2Response(
        order_id=_rstr(obj, "order_id", ctx),
        client_order_id=_str(obj, "client_order_id", ctx, required=False),
        remaining_count=_count(obj, "remaining_count", ctx, required=False),
        fill_count=_count(obj, "fill_count", ctx, required=False),
        ts_ms=ts_ms,
    )


class DecreaseOrderV2Response(_Frozen):
    """The acknowledgement of a decrease."""

    order_id: str
    client_order_id: str | None
    remaining_count: Decimal
    ts_ms: int | None


def parse_decrease_response(raw: Any) -> DecreaseOrderV2Response:
    """Map ``DecreaseOrderV2Response``."""
    obj = require_object(raw, "decrease response")
    ctx = f"decrease[{obj.get('order_id')}]"
    return DecreaseOrderV2Response(
        order_id=_rstr(obj, "order_id", ctx),
        client_order_id=_str(obj, "client_order_id", ctx, required=False),
        remaining_count=_rcount(obj, "remaining_count", ctx),
        ts_ms=_int(obj, "ts_ms", ctx, required=False),
    )


class CancelOrderV2Response(_Frozen):
    """The acknowledgement of a cancel: how many contracts it removed."""

    order_id: str
    client_order_id: str | None
    reduced_by: Decimal
    ts_ms: int


def parse_cancel_response(raw: Any) -> CancelOrderV2Response:
    """Map ``CancelOrderV2Response``."""
    obj = require_object(raw, "cancel response")
    ctx = f"cancel[{obj.get('order_id')}]"
    ts_ms = _int(obj, "ts_ms", ctx)
    assert ts_ms is not None
    return CancelOrderV2Response(
        order_id=_rstr(obj, "order_id", ctx),
        client_order_id=_str(obj, "client_order_id", ctx, required=False),
        reduced_by=_rcount(obj, "reduced_by", ctx),
        ts_ms=ts_ms,
    )


class BatchCancelItem(_Frozen):
    """One result of a batch cancel."""

    order_id: str
    client_order_id: str | None
    reduced_by: Decimal | None
    ts_ms: int | None
    error: ErrorResponse | None


def parse_batch_cancel_item(raw: Any) -> BatchCancelItem:
    """Map one ``BatchCancelOrdersV2ResponseOrdersInner``."""
    obj = require_object(raw, "batch cancel item")
    ctx = f"batch_cancel[{obj.get('order_id')}]"
    error = obj.get("error")
    return BatchCancelItem(
        order_id=_rstr(obj, "order_id", ctx),
        client_order_id=_str(obj, "client_order_id", ctx, required=False),
        reduced_by=_count(obj, "reduced_by", ctx, required=error is None),
        ts_ms=_int(obj, "ts_ms", ctx, required=False),
        error=parse_error(error) if error is not None else None,
    )


class OrderGroup(_Frozen):
    """An order group (rolling 15 s contracts limit)."""

    id: str
    is_auto_cancel_enabled: bool
    contracts_limit: Decimal | None
    orders: tuple[str, ...] | None


def parse_order_group(raw: Any, group_id: str | None = None) -> OrderGroup:
    """Map ``OrderGroup`` (list item) or ``GetOrderGroupResponse`` (id given by the caller)."""
    obj = require_object(raw, "order_group")
    ctx = f"order_group[{obj.get('id') or group_id}]"
    orders = obj.get("orders")
    if orders is not None and not (
        isinstance(orders, list) and all(isinstance(o, str) for o in orders)
    ):
        raise _fail(f"{ctx}.orders", "expected a list of order ids", orders)
    gid = group_id if group_id is not None else _rstr(obj, "id", ctx)
    return OrderGroup(
        id=gid,
        is_auto_cancel_enabled=_rbool(obj, "is_auto_cancel_enabled", ctx),
        contracts_limit=_count(obj, "contracts_limit_fp", ctx, "contracts_limit", required=False),
        orders=tuple(orders) if orders is not None else None,
    )
