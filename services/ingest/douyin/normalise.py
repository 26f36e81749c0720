"""Douyin payloads → canonical event data (pure functions).

oceanengine sends money as float 元 (converted to 分 with Decimal, half-up) and times as
``YYYY-MM-DD HH:MM:SS`` China Standard Time. The live push is a JSON array of messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from services.ingest.normalise import (
    NormaliseError,
    count,
    cst_to_ms,
    epoch_s_to_ms,
    fen,
    opt_count,
    yuan_to_fen,
)


def _half_up(d: Decimal) -> int:
    if d < 0:
        raise NormaliseError(f"live_pay_order_rate: negative {d}")
    return int(d.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class RoomView:
    room_id: str
    data: dict[str, Any]
    living: bool
    started_at: int | None
    ended_at: int | None


def room(doc: dict[str, Any]) -> RoomView:
    """One entry of today_live ``room_list`` (or a ``room_detail``)."""
    status = doc.get("room_status")
    if status not in ("LIVING", "FINISH"):
        raise NormaliseError(f"room_status: expected LIVING or FINISH, got {status!r}")
    created = count(doc["live_create_order_count_alias"], "live_create_order_count_alias")
    # The documented stats have no paid-order count: created orders × the paid rate (live_pay_order_rate)
    # is the paid figure, rounded half-up (exact while the rate's 4 decimals resolve one order).
    rate = doc.get("live_pay_order_rate")
    paid = 0 if not created or rate in (None, "") else _half_up(Decimal(str(rate)) * created)
    started = cst_to_ms(doc.get("start_time"), "start_time")
    ended = cst_to_ms(doc.get("end_time"), "end_time")
    data = {
        "viewers_pv": count(doc["total_live_watch_cnt"], "total_live_watch_cnt"),
        # MODELLED fields (not in the reference's list): read when present, else null
        "viewers_uv": opt_count(doc.get("total_live_watch_ucnt"), "total_live_watch_ucnt"),
        "online_now": opt_count(doc.get("online_user_cnt"), "online_user_cnt"),
        "peak_online": opt_count(doc.get("max_online_user_cnt"), "max_online_user_cnt"),
        "avg_online": None,
        "avg_watch_seconds": opt_count(doc.get("avg_watch_duration"), "avg_watch_duration"),
        "likes": opt_count(doc.get("total_live_like_cnt"), "total_live_like_cnt"),
        "comments": opt_count(doc.get("total_live_comment"), "total_live_comment"),
        "shares": opt_count(doc.get("total_live_share_cnt"), "total_live_share_cnt"),
        "new_followers": opt_count(doc.get("total_live_follow_cnt"), "total_live_follow_cnt"),
        "product_exposure_uv": None,
        "product_click_uv": opt_count(doc.get("live_click_product_count_alias"), "live_click_product_count_alias"),
        "orders_created": created,
        "orders_paid": count(paid, "live_pay_order_rate"),
        # not in today_live (reference): buyers and refunds come from the 抖店 order / after-sale lists
        "paid_buyers_uv": None,
        "gmv_fen": yuan_to_fen(doc["live_pay_order_gmv_alias"], "live_pay_order_gmv_alias"),
        "refunds_count": None,
        "refund_amount_fen": None,
        "live_started_at": started,
        "live_ended_at": ended,
    }
    return RoomView(str(doc["room_id"]), data, status == "LIVING", started, ended)


def video(item: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """One ``video_list`` item → video_stats_snapshot data (no clicks or completion in the open API)."""
    st = item.get("statistics")
    if not isinstance(st, dict):
        raise NormaliseError("statistics: missing")
    return str(item["item_id"]), {
        "plays": count(st["play_count"], "play_count"),
        "likes": count(st["digg_count"], "digg_count"),
        "shares": count(st["share_count"], "share_count"),
        "comments": opt_count(st.get("comment_count"), "comment_count"),
        "clicks": None,
        "completion_rate_ppm": None,
        "avg_play_ms": None,
        "duration_ms": None,
        "published_at": epoch_s_to_ms(item.get("create_time"), "create_time"),
    }


@dataclass(frozen=True)
class Interactions:
    comments: int
    likes: int
    gifts: int
    msg_ids: list[str]
    observed_at: int


def live_messages(msg_type: str, messages: Any) -> list[dict[str, Any]]:
    if not isinstance(messages, list) or not messages:
        raise NormaliseError("live push body: expected a non-empty JSON array")
    for msg in messages:
        if not isinstance(msg, dict) or not isinstance(msg.get("msg_id"), str | int):
            raise NormaliseError("live push message without msg_id")
    return messages


def interactions(msg_type: str, messages: list[dict[str, Any]]) -> Interactions | None:
    """Deltas carried by one batch of new messages (already de-duplicated); None if none count."""
    comments = likes = gifts = 0
    if msg_type == "live_comment":
        comments = len(messages)
    elif msg_type == "live_like":
        likes = sum(count(x.get("like_num", 1), "like_num") for x in messages)
    elif msg_type == "live_gift":
        gifts = sum(count(x.get("gift_num", 1), "gift_num") for x in messages)
    else:
        return None  # fansclub and other kinds carry none of the counted interactions
    ts = [count(x["timestamp"], "timestamp") for x in messages if x.get("timestamp") is not None]
    if not ts:
        raise NormaliseError("live push messages carry no timestamp")
    return Interactions(comments, likes, gifts, [str(x["msg_id"]) for x in messages], max(ts))


# -- 抖店 shop orders and after-sales (bodies modelled, see services/simulator/douyin.py) -----------------

DD_CLOSED = 4  # order_status: cancelled / closed
DD_REFUND_SUCCESS = 3  # after-sale refund_status: the money went back


@dataclass(frozen=True)
class ShopFact:
    order_id: str
    status: str
    observed_at: int
    amount_fen: int
    product_id: str | None
    quantity: int | None
    room_id: str | None
    refund_id: str | None = None
    buyer_id: str | None = None

    @property
    def key(self) -> str:
        return f"{self.order_id}:{self.status}" + (f":{self.refund_id}" if self.refund_id else "")

    @property
    def data(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id,
            "status": self.status,
            "amount_fen": self.amount_fen,
            "product_id": self.product_id,
            "quantity": self.quantity,
            "refund_id": self.refund_id,
            "buyer_id": self.buyer_id,
        }


def _opt_id(value: Any) -> str | None:
    return None if value in (None, "", 0) else str(value)


def shop_order_facts(order: dict[str, Any], author_id: str | None = None) -> list[ShopFact]:
    """One ``shop_order_list`` entry → the lifecycle steps it proves: created, paid (``pay_time`` set),
    cancelled (closed without payment; a paid order closed by refunds is told by its after-sales).

    ``author_id``: keep only the sku orders this account sold (a shop may sell through several accounts);
    an order none of whose sku orders is the account's yields nothing.
    """
    order_id = str(order["order_id"])
    skus = order.get("sku_order_list") or []
    if author_id is not None and skus and all(s.get("author_id") is not None for s in skus):
        skus = [s for s in skus if str(s["author_id"]) == author_id]
        if not skus:
            return []
    created = epoch_s_to_ms(order.get("create_time"), "create_time")
    if created is None:
        raise NormaliseError("create_time: missing")
    amount = fen(order.get("pay_amount") or order["order_amount"], "pay_amount")
    product_id = _opt_id(skus[0].get("product_id")) if skus else None
    quantity = sum(count(s.get("item_num", 0), "item_num") for s in skus) if skus else None
    room_id = next((_opt_id(s.get("room_id")) for s in skus if _opt_id(s.get("room_id"))), None)
    buyer = _opt_id(order.get("doudian_open_id"))
    facts = [ShopFact(order_id, "created", created, amount, product_id, quantity, room_id, None, buyer)]
    paid_at = epoch_s_to_ms(order.get("pay_time") or None, "pay_time")
    if paid_at is not None:
        facts.append(ShopFact(order_id, "paid", paid_at, amount, product_id, quantity, room_id, None, buyer))
    elif count(order.get("order_status", 0), "order_status") == DD_CLOSED:
        at = epoch_s_to_ms(order.get("update_time"), "update_time") or created
        facts.append(ShopFact(order_id, "cancelled", at, amount, product_id, quantity, room_id, None, buyer))
    return facts


def aftersale_fact(item: dict[str, Any]) -> tuple[str, ShopFact | None]:
    """One ``afterSale.List`` item → (shop order id, the refund it proves, or None while it is not refunded).
    The amount is THIS after-sale's ``refund_amount``; its ``aftersale_id`` is the refund's id."""
    a = item.get("aftersale_info")
    if not isinstance(a, dict):
        raise NormaliseError("aftersale_info: missing")
    o = item.get("order_info") or {}
    order_id = _opt_id(o.get("shop_order_id"))
    if order_id is None:
        raise NormaliseError("order_info.shop_order_id: missing")
    if a.get("refund_status") != DD_REFUND_SUCCESS:
        return order_id, None
    refund_id = _opt_id(a.get("aftersale_id"))
    if refund_id is None:
        raise NormaliseError("aftersale_info.aftersale_id: missing")
    at = epoch_s_to_ms(a.get("refund_time") or a.get("update_time"), "refund_time")
    if at is None:
        raise NormaliseError("aftersale_info.refund_time: missing")
    related = o.get("related_order_info") or []
    product_id = _opt_id(related[0].get("product_id")) if related else None
    quantity = opt_count(a.get("aftersale_num"), "aftersale_num")
    amount = fen(a["refund_amount"], "refund_amount")
    return order_id, ShopFact(order_id, "refunded", at, amount, product_id, quantity, None, refund_id, None)
