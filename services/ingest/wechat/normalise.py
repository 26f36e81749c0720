"""WeChat Channels payloads → canonical event data (pure functions).

Money is already integer 分 on WeChat. Dashboard blocks may be objects or strings holding JSON. Times are
Unix seconds. Ratios are ``{value, is_valid}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from services.ingest.normalise import (
    NormaliseError,
    block,
    count,
    epoch_s_to_ms,
    fen,
    opt_count,
    ratio_to_ppm,
    seconds_to_ms,
)

# order status codes of the WeChat shop API
ST_UNPAID, ST_CANCELLED, ST_AFTERSALE_CANCELLED = 10, 250, 200


def _whole(value: Any, what: str) -> int | None:
    """An average WeChat may send with decimals (seconds per audience): rounded half-up."""
    if value is None:
        return None
    if type(value) is int and value >= 0:  # the usual case: the Decimal round trip below gives it back
        return value
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise NormaliseError(f"{what}: expected a number, got {value!r}")
    d = Decimal(str(value))
    if d < 0:
        raise NormaliseError(f"{what}: negative {value!r}")
    return int(d.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class LiveView:
    data: dict[str, Any]
    is_living: bool
    started_at: int | None
    ended_at: int | None


def live_metrics(doc: dict[str, Any], create_time_ms: int | None = None) -> LiveView:
    summary = block(doc, "live_ec_data_summary")
    dash = block(doc, "live_dashboard_data", required=False)
    comparison = block(doc, "live_comparison_index", required=False)
    living = comparison.get("is_living")
    if living is not None and not isinstance(living, bool):
        raise NormaliseError(f"live_comparison_index.is_living: expected a boolean, got {living!r}")
    started = epoch_s_to_ms(dash.get("live_start_time"), "live_start_time") or create_time_ms
    ended = epoch_s_to_ms(dash.get("live_end_time"), "live_end_time")
    s = summary
    data = {
        "viewers_pv": opt_count(dash.get("total_audience_pv"), "total_audience_pv"),
        "viewers_uv": count(s["cumulative_audience_count"], "cumulative_audience_count"),
        "online_now": count(s["online_audience_count"], "online_audience_count"),
        "peak_online": opt_count(dash.get("max_online_audience_count"), "max_online_audience_count"),
        "avg_online": None,
        "avg_watch_seconds": _whole(s.get("average_watch_seconds_per_audience"), "average_watch_seconds_per_audience"),
        "likes": opt_count(dash.get("like_count"), "like_count"),
        "comments": opt_count(s.get("new_comment_count"), "new_comment_count"),
        "shares": opt_count(s.get("share_live_audience_count"), "share_live_audience_count"),
        "new_followers": opt_count(s.get("new_follow_count"), "new_follow_count"),
        "product_exposure_uv": opt_count(s.get("total_exp_uv"), "total_exp_uv"),
        "product_click_uv": opt_count(s.get("total_clk_uv"), "total_clk_uv"),
        "orders_created": opt_count(s.get("total_create_pv"), "total_create_pv"),
        "orders_paid": count(s["total_pay_pv"], "total_pay_pv"),
        "paid_buyers_uv": opt_count(s.get("total_pay_uv"), "total_pay_uv"),
        "gmv_fen": fen(s["total_gmv"], "total_gmv"),
        "refunds_count": opt_count(s.get("refund_pv"), "refund_pv"),
        "refund_amount_fen": None if s.get("refund_amount") is None else fen(s["refund_amount"], "refund_amount"),
        "live_started_at": started,
        "live_ended_at": ended,
    }
    return LiveView(data, bool(living) if living is not None else ended is None, started, ended)


@dataclass(frozen=True)
class OrderFact:
    order_id: str
    status: str
    observed_at: int
    amount_fen: int
    product_id: str | None
    quantity: int | None
    room_id: str | None
    refund_id: str | None = None  # the after-sale's id (refunded only): several refunds of one order add up
    buyer_id: str | None = None  # the buyer's openid, where the body gives it

    @property
    def key(self) -> str:
        """What the collector remembers as emitted: one per order step, one per refund."""
        return f"{self.order_id}:{self.status}" + (f":{self.refund_id}" if self.refund_id else "")


def _opt_str(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def order_facts(order: dict[str, Any]) -> list[OrderFact]:
    """Every lifecycle step an order detail proves: created, paid, cancelled (refunds: aftersale)."""
    order_id = str(order["order_id"])
    status = count(order["status"], "status")
    detail = order.get("order_detail") or {}
    price = detail.get("price_info") or {}
    amount = fen(price["order_price"], "order_price")
    products = detail.get("product_infos") or []
    product_id = str(products[0]["product_id"]) if products else None
    quantity = sum(count(p.get("sku_cnt", 0), "sku_cnt") for p in products) if products else None
    sources = detail.get("source_infos") or []
    room_id = next((str(x["live_id"]) for x in sources if x.get("live_id")), None)
    created = epoch_s_to_ms(order["create_time"], "create_time")
    if created is None:
        raise NormaliseError("create_time: missing")
    buyer = _opt_str(order.get("openid"))
    facts = [OrderFact(order_id, "created", created, amount, product_id, quantity, room_id, None, buyer)]
    pay_time = epoch_s_to_ms((detail.get("pay_info") or {}).get("pay_time"), "pay_time")
    if pay_time is not None:
        facts.append(OrderFact(order_id, "paid", pay_time, amount, product_id, quantity, room_id, None, buyer))
    if status == ST_CANCELLED:
        at = epoch_s_to_ms(order.get("update_time"), "update_time") or created
        facts.append(OrderFact(order_id, "cancelled", at, amount, product_id, quantity, room_id, None, buyer))
    return facts


def aftersale_ids(order: dict[str, Any]) -> list[str]:
    lst = (order.get("aftersale_detail") or {}).get("aftersale_order_list") or []
    return [str(a["aftersale_order_id"]) for a in lst if a.get("aftersale_order_id")]


REFUNDED_STATES = {"MERCHANT_REFUND_SUCCESS", "REFUND_SUCCESS", "MERCHANT_REFUND_RETRY_FAIL_SUCCESS"}


def refund_fact(aftersale: dict[str, Any], room_id: str | None = None) -> OrderFact | None:
    if aftersale.get("status") not in REFUNDED_STATES:
        return None
    at = epoch_s_to_ms(aftersale.get("update_time"), "update_time")
    if at is None:
        raise NormaliseError("after_sale_order.update_time: missing")
    info = aftersale.get("product_info") or {}
    refund_id = _opt_str(aftersale.get("after_sale_order_id"))
    if refund_id is None:
        raise NormaliseError("after_sale_order.after_sale_order_id: missing")
    return OrderFact(
        str(aftersale["order_id"]),
        "refunded",
        at,
        fen((aftersale.get("refund_info") or {})["amount"], "refund_info.amount"),
        str(info["product_id"]) if info.get("product_id") else None,
        opt_count(info.get("count"), "count"),
        room_id,
        refund_id,
        _opt_str(aftersale.get("openid")),
    )


def video_data(feed: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """One entry of the (modelled) feed list → video_stats_snapshot data."""
    finish = feed.get("finish_rate")
    avg = feed.get("avg_play_seconds")
    return str(feed["export_id"]), {
        "plays": count(feed["read_cnt"], "read_cnt"),
        "likes": count(feed["like_cnt"], "like_cnt"),
        "shares": count(feed["share_cnt"], "share_cnt"),
        "comments": opt_count(feed.get("comment_cnt"), "comment_cnt"),
        "clicks": opt_count(feed.get("click_cnt"), "click_cnt"),
        "completion_rate_ppm": None if finish is None else ratio_to_ppm(finish, "finish_rate"),
        "avg_play_ms": None if avg is None else seconds_to_ms(avg, "avg_play_seconds"),
        "duration_ms": None,
        "published_at": epoch_s_to_ms(feed.get("create_time"), "create_time"),
    }
