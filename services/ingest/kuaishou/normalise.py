"""Kuaishou payloads → canonical event data (pure functions).

The live-room stats and photo list are the simulator's MODELLED camelCase endpoints (no public real-time
live endpoint exists); money in them is integer 分 like Kuaishou's 电商 ``totalFee``. Order pushes carry
their fields in ``info``, a JSON string (after decryption with the MsgSecret, webhook.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.ingest.normalise import (
    NormaliseError,
    count,
    epoch_ms,
    fen,
    json_object,
    opt_count,
    ratio_to_ppm,
)

ORDER_STATUS = {
    "kwaishop_order_create": "created",
    "kwaishop_order_paySuccess": "paid",
    "kwaishop_order_cancel": "cancelled",
    "kwaishop_aftersales_refundSuccess": "refunded",
}


@dataclass(frozen=True)
class RoomView:
    data: dict[str, Any]
    living: bool
    started_at: int | None
    ended_at: int | None


def room_stats(d: dict[str, Any]) -> RoomView:
    status = d.get("status")
    if status not in ("LIVING", "END"):
        raise NormaliseError(f"status: expected LIVING or END, got {status!r}")
    gmv = d.get("gmvData")
    if not isinstance(gmv, dict):
        raise NormaliseError("gmvData: missing")
    started = epoch_ms(d.get("startTime"), "startTime")
    ended = epoch_ms(d.get("endTime"), "endTime")
    refund = gmv.get("refundAmount")
    return RoomView(
        {
            "viewers_pv": opt_count(d.get("watchNum"), "watchNum"),
            "viewers_uv": count(d["audienceNum"], "audienceNum"),
            "online_now": opt_count(d.get("onlineCount"), "onlineCount"),
            "peak_online": opt_count(d.get("maxOnlineCount"), "maxOnlineCount"),
            "avg_online": None,
            "avg_watch_seconds": opt_count(d.get("avgWatchSeconds"), "avgWatchSeconds"),
            "likes": opt_count(d.get("likeNum"), "likeNum"),
            "comments": opt_count(d.get("commentNum"), "commentNum"),
            "shares": opt_count(d.get("shareNum"), "shareNum"),
            "new_followers": opt_count(d.get("fansIncreaseNum"), "fansIncreaseNum"),
            "product_exposure_uv": None,
            "product_click_uv": opt_count(d.get("cartClickNum"), "cartClickNum"),
            "orders_created": opt_count(gmv.get("createOrderCount"), "createOrderCount"),
            "orders_paid": count(gmv["t0OrderCount"], "t0OrderCount"),
            "paid_buyers_uv": opt_count(gmv.get("t0PayUserNum"), "t0PayUserNum"),
            "gmv_fen": fen(gmv["t0Gmv"], "t0Gmv"),
            "refunds_count": opt_count(gmv.get("refundOrderCount"), "refundOrderCount"),
            "refund_amount_fen": None if refund is None else fen(refund, "refundAmount"),
            "live_started_at": started,
            "live_ended_at": ended,
        },
        status == "LIVING",
        started,
        ended,
    )


def photo(p: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    rate = p.get("completionRate")
    return str(p["photoId"]), {
        "plays": count(p["playCount"], "playCount"),
        "likes": count(p["likeCount"], "likeCount"),
        "shares": count(p["shareCount"], "shareCount"),
        "comments": opt_count(p.get("commentCount"), "commentCount"),
        "clicks": opt_count(p.get("clickCount"), "clickCount"),
        "completion_rate_ppm": None if rate is None else ratio_to_ppm(rate, "completionRate"),
        "avg_play_ms": opt_count(p.get("avgPlayDuration"), "avgPlayDuration"),
        "duration_ms": None,
        "published_at": epoch_ms(p.get("createTime"), "createTime"),
    }


@dataclass(frozen=True)
class OrderPush:
    task_id: str
    account_id: str
    status: str | None  # None: an event kind that is not an order status change
    observed_at: int
    data: dict[str, Any]
    room_id: str | None


def order_push(msg: dict[str, Any]) -> OrderPush:
    task_id = str(msg.get("taskId") or msg.get("msgId") or "")
    if not task_id:
        raise NormaliseError("taskId: missing")
    account_id = str(msg["userId"])
    status = ORDER_STATUS.get(str(msg.get("event", "")))
    info = json_object(msg.get("info"), "info")
    observed = epoch_ms(info.get("updateTime"), "info.updateTime") or epoch_ms(msg.get("createTime"), "createTime")
    if observed is None:
        raise NormaliseError("no time in push")
    amount_field = "refundFee" if status == "refunded" else "totalFee"
    refund_id = info.get("refundId")
    if status == "refunded" and refund_id in (None, "", 0):
        raise NormaliseError("info.refundId: missing in a refund push (several refunds of one order add up)")
    buyer = info.get("buyerOpenId")
    data = {
        "order_id": str(info["oid"]),
        "status": status,
        "amount_fen": fen(info[amount_field], f"info.{amount_field}"),  # a refund: THIS refund's amount
        "product_id": str(info["itemId"]) if info.get("itemId") is not None else None,
        "quantity": opt_count(info.get("num"), "info.num"),
        "refund_id": str(refund_id) if status == "refunded" else None,
        "buyer_id": str(buyer) if buyer else None,
    }
    room = info.get("liveStreamId")
    return OrderPush(task_id, account_id, status, observed, data, str(room) if room else None)
