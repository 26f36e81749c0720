"""Canonical events for the scorer's tests and benchmarks, built with the contract models.

Every builder returns a validated event model (``parse_event`` of the dict), with its deterministic
``event_id``; ``encode_event`` gives the bytes a collector would produce.
"""

from __future__ import annotations

import hashlib
from typing import Any

from liveboard.contracts import encode_event, event_id_for, parse_event

RAW_TOPIC = "lb.raw.v1"


def _raw_ref(*parts: object) -> dict[str, str]:
    return {"topic": RAW_TOPIC, "raw_id": hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()}


def _finish(doc: dict[str, Any]) -> Any:
    doc["event_id"] = "placeholder"
    doc["event_id"] = event_id_for(doc)
    return parse_event(doc)


def _envelope(
    event_type: str,
    contest_id: str,
    contestant_id: str | None,
    observed_at: int,
    *,
    platform: str | None = None,
    account_id: str | None = None,
    room_id: str | None = None,
    video_id: str | None = None,
    source: str = "poll",
    revision: str = "provisional",
    raw: bool = True,
    ingested_at: int | None = None,
) -> dict[str, Any]:
    return {
        "type": event_type,
        "schema_version": 1,
        "contest_id": contest_id,
        "contestant_id": contestant_id,
        "platform": platform,
        "account_id": account_id,
        "room_id": room_id,
        "video_id": video_id,
        "observed_at": observed_at,
        "ingested_at": ingested_at if ingested_at is not None else observed_at + 150,
        "source": source,
        "revision": revision,
        "raw_ref": _raw_ref(event_type, contestant_id, room_id, video_id, observed_at, revision) if raw else None,
    }


_MANUAL = {"source": "manual", "revision": "final", "raw": False}


def live_snapshot(
    contest_id: str,
    contestant_id: str,
    observed_at: int,
    *,
    gmv_fen: int,
    orders_paid: int,
    platform: str = "douyin",
    account_id: str | None = None,
    room_id: str | None = None,
    revision: str = "provisional",
    viewers_uv: int | None = None,
    viewers_pv: int | None = None,
    refund_amount_fen: int | None = 0,
    refunds_count: int | None = 0,
    paid_buyers_uv: int | None = None,
    likes: int | None = None,
    comments: int | None = None,
    shares: int | None = None,
    new_followers: int | None = None,
    online_now: int | None = None,
    **more: int | None,
) -> Any:
    account_id = account_id or f"acct-{contestant_id}"
    room_id = room_id or f"room-{contestant_id}"
    doc = _envelope(
        "live_metrics_snapshot",
        contest_id,
        contestant_id,
        observed_at,
        platform=platform,
        account_id=account_id,
        room_id=room_id,
        revision=revision,
    )
    data: dict[str, Any] = {
        "viewers_pv": viewers_pv,
        "viewers_uv": viewers_uv,
        "online_now": online_now,
        "peak_online": None,
        "avg_online": None,
        "avg_watch_seconds": None,
        "likes": likes,
        "comments": comments,
        "shares": shares,
        "new_followers": new_followers,
        "product_exposure_uv": None,
        "product_click_uv": None,
        "orders_created": None,
        "orders_paid": orders_paid,
        "paid_buyers_uv": paid_buyers_uv,
        "gmv_fen": gmv_fen,
        "refunds_count": refunds_count,
        "refund_amount_fen": refund_amount_fen,
        "live_started_at": None,
        "live_ended_at": None,
    }
    data.update(more)
    doc["data"] = data
    return _finish(doc)


def video_snapshot(
    contest_id: str,
    contestant_id: str,
    observed_at: int,
    *,
    plays: int,
    likes: int = 0,
    shares: int = 0,
    video_id: str | None = None,
    platform: str = "wechat_channels",
    account_id: str | None = None,
    revision: str = "provisional",
    completion_rate_ppm: int | None = None,
    avg_play_ms: int | None = None,
    published_at: int | None = None,
    comments: int | None = None,
    clicks: int | None = None,
) -> Any:
    doc = _envelope(
        "video_stats_snapshot",
        contest_id,
        contestant_id,
        observed_at,
        platform=platform,
        account_id=account_id or f"acct-{contestant_id}",
        video_id=video_id or f"video-{contestant_id}",
        revision=revision,
    )
    doc["data"] = {
        "plays": plays,
        "likes": likes,
        "shares": shares,
        "comments": comments,
        "clicks": clicks,
        "completion_rate_ppm": completion_rate_ppm,
        "avg_play_ms": avg_play_ms,
        "duration_ms": None,
        "published_at": published_at,
    }
    return _finish(doc)


def order(
    contest_id: str,
    contestant_id: str,
    observed_at: int,
    *,
    order_id: str,
    status: str,
    amount_fen: int,
    platform: str = "douyin",
    account_id: str | None = None,
    room_id: str | None = None,
    revision: str = "provisional",
    refund_id: str | None = None,
    buyer_id: str | None = None,
) -> Any:
    doc = _envelope(
        "order_event",
        contest_id,
        contestant_id,
        observed_at,
        platform=platform,
        account_id=account_id or f"acct-{contestant_id}",
        room_id=room_id or f"room-{contestant_id}",
        source="push",
        revision=revision,
    )
    doc["raw_ref"] = _raw_ref("order", order_id, status, observed_at, revision, *([refund_id] if refund_id else []))
    doc["data"] = {"order_id": order_id, "status": status, "amount_fen": amount_fen, "product_id": None, "quantity": 1}
    if refund_id is not None or buyer_id is not None:
        doc["data"].update(refund_id=refund_id, buyer_id=buyer_id)
    return _finish(doc)


def interactions(
    contest_id: str, contestant_id: str, observed_at: int, *, msg_ids: list[str], likes: int = 0, comments: int = 0
) -> Any:
    doc = _envelope(
        "interaction_counts",
        contest_id,
        contestant_id,
        observed_at,
        platform="douyin",
        account_id=f"acct-{contestant_id}",
        room_id=f"room-{contestant_id}",
        source="push",
    )
    doc["data"] = {"comments": comments, "likes": likes, "gifts": 0, "msg_ids": msg_ids}
    return _finish(doc)


def judge_score(
    contest_id: str,
    contestant_id: str,
    observed_at: int,
    *,
    round_id: str,
    judge_id: str,
    criterion: str,
    points: str,
    max_points: str,
) -> Any:
    doc = _envelope("judge_score", contest_id, contestant_id, observed_at, **_MANUAL)  # type: ignore[arg-type]
    doc["data"] = {
        "judge_id": judge_id,
        "round_id": round_id,
        "criterion": criterion,
        "points": points,
        "max_points": max_points,
    }
    return _finish(doc)


def adjustment(
    contest_id: str,
    contestant_id: str,
    observed_at: int,
    *,
    round_id: str,
    adjustment_id: str,
    value: str,
    kind: str = "delta",
    component: str | None = None,
) -> Any:
    doc = _envelope("score_adjustment", contest_id, contestant_id, observed_at, **_MANUAL)  # type: ignore[arg-type]
    doc["data"] = {
        "adjustment_id": adjustment_id,
        "round_id": round_id,
        "kind": kind,
        "value": value,
        "component": component,
        "reason": "appeal decision",
        "approver": "chief judge",
    }
    return _finish(doc)


def registration(
    contest_id: str,
    contestant_id: str,
    observed_at: int,
    *,
    group_id: str,
    display_name: str | None = None,
    city: str | None = None,
    district: str | None = None,
    team: str | None = None,
) -> Any:
    doc = _envelope("contestant_registered", contest_id, contestant_id, observed_at, **_MANUAL)  # type: ignore[arg-type]
    doc["data"] = {
        "display_name": display_name or contestant_id,
        "group_id": group_id,
        "organisation": {"city": city, "district": district, "team": team},
    }
    return _finish(doc)


def account_bound(
    contest_id: str,
    contestant_id: str,
    observed_at: int,
    *,
    platform: str,
    account_id: str,
    replaces_account_id: str | None = None,
) -> Any:
    doc = _envelope(
        "account_bound",
        contest_id,
        contestant_id,
        observed_at,
        platform=platform,
        account_id=account_id,
        **_MANUAL,  # type: ignore[arg-type]
    )
    doc["data"] = {"replaces_account_id": replaces_account_id, "reason": "rebind", "approver": "operator"}
    return _finish(doc)


def key_of(event: Any) -> bytes:
    return f"{event.contest_id}:{event.contestant_id or ''}".encode()


def encode(event: Any) -> bytes:
    return encode_event(event)
