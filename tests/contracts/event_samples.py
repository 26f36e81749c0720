"""One valid sample of every event type; tests mutate copies of them (via the ``samples`` fixture)."""

from __future__ import annotations

from typing import Any

from liveboard.contracts.events import event_id_for

T0 = 1_600_000_000_000  # 2020-09-13T12:26:40Z
RAW = {"topic": "lb.raw.v1", "raw_id": "0f" * 32}


def _env(event_type: str, **over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "event_id": "placeholder",
        "type": event_type,
        "schema_version": 1,
        "contest_id": "harbin-2020",
        "contestant_id": "hrb-001",
        "platform": "kuaishou",
        "account_id": "ks_3xk9",
        "room_id": None,
        "video_id": None,
        "observed_at": T0,
        "ingested_at": T0 + 250,
        "source": "poll",
        "revision": "provisional",
        "raw_ref": dict(RAW),
    }
    base.update(over)
    return base


MANUAL = {"platform": None, "account_id": None, "source": "manual", "revision": "final", "raw_ref": None}


def sample_events() -> dict[str, dict[str, Any]]:
    samples = {
        "live_metrics_snapshot": _env(
            "live_metrics_snapshot",
            room_id="room-77",
            data={
                "viewers_pv": 12_000,
                "viewers_uv": 8_100,
                "online_now": 640,
                "peak_online": 1_200,
                "avg_online": 410,
                "avg_watch_seconds": 95,
                "likes": 30_000,
                "comments": 2_300,
                "shares": 310,
                "new_followers": 220,
                "product_exposure_uv": 5_000,
                "product_click_uv": 900,
                "orders_created": 260,
                "orders_paid": 241,
                "paid_buyers_uv": 230,
                "gmv_fen": 1_234_500,
                "refunds_count": 3,
                "refund_amount_fen": 15_900,
                "live_started_at": T0 - 3_600_000,
                "live_ended_at": None,
            },
        ),
        "video_stats_snapshot": _env(
            "video_stats_snapshot",
            platform="wechat_channels",
            account_id="finder_abc",
            video_id="export/vid-1",
            revision="final",
            data={
                "plays": 5_400,
                "likes": 320,
                "shares": 41,
                "comments": 12,
                "clicks": None,
                "completion_rate_ppm": 431_250,
                "avg_play_ms": 23_500,
                "duration_ms": 58_000,
                "published_at": T0 - 86_400_000,
            },
        ),
        "order_event": _env(
            "order_event",
            platform="douyin",
            account_id="dy_open_1",
            room_id="7301",
            source="push",
            data={
                "order_id": "691234",
                "status": "refunded",
                "amount_fen": 3_990,
                "product_id": None,
                "quantity": 1,
                "refund_id": "as-7701",
                "buyer_id": "buyer-aa01",
            },
        ),
        "interaction_counts": _env(
            "interaction_counts",
            platform="douyin",
            account_id="dy_open_1",
            room_id="7301",
            source="push",
            data={"comments": 0, "likes": 57, "gifts": 0, "msg_ids": ["m-1", "m-2", "m-3"]},
        ),
        "judge_score": _env(
            "judge_score",
            **MANUAL,
            data={
                "judge_id": "judge-3",
                "round_id": "final",
                "criterion": "product_pitch",
                "points": "8.5",
                "max_points": "10",
            },
        ),
        "score_adjustment": _env(
            "score_adjustment",
            **MANUAL,
            data={
                "adjustment_id": "appeal-2020-004",
                "round_id": "final",
                "kind": "delta",
                "value": "-1.5",
                "component": None,
                "reason": "直播中出现商品虚假信息，扣 1.5 分",
                "approver": "组委会办公室",
            },
        ),
        "contestant_registered": _env(
            "contestant_registered",
            **MANUAL,
            data={
                "display_name": "冰城小李",
                "group_id": "open",
                "organisation": {"city": "harbin", "district": "songbei", "team": None},
            },
        ),
        "account_bound": _env(
            "account_bound",
            source="manual",
            revision="final",
            raw_ref=None,
            data={"replaces_account_id": None, "reason": None, "approver": None},
        ),
        "collector_heartbeat": _env(
            "collector_heartbeat",
            contestant_id=None,
            account_id=None,
            raw_ref=None,
            revision="final",
            data={
                "collector_id": "ks-poller-1",
                "rooms_polled": 48,
                "errors": 1,
                "lag_ms": 2_300,
                "last_ok_at": T0 - 1_000,
                "token_expires_at": T0 + 7_200_000,
                "quota_remaining": None,
            },
        ),
        "round_frozen": _env(
            "round_frozen",
            contestant_id=None,
            **MANUAL,
            data={
                "round_id": "final",
                "content_hash": "ab" * 32,
                "leaderboard_digest": "cd" * 32,
                "frozen_at": T0 + 7_200_000,
                "event_count": 18_344,
                "frozen_by": "operator-1",
                "sequence": 2,
                "previous_content_hash": "ef" * 32,
                "reason": "申诉 appeal-2020-004 支持，重新冻结",
            },
        ),
        "contestant_excluded": _env(
            "contestant_excluded",
            **MANUAL,
            data={
                "exclusion_id": "dq-2020-001",
                "round_id": "final",
                "excluded": True,
                "reason": "直播中提供产品虚假信息，取消决赛资格",
                "approver": "组委会办公室",
            },
        ),
        "tie_decided": _env(
            "tie_decided",
            contestant_id=None,
            **MANUAL,
            data={
                "decision_id": "tie-final-first",
                "round_id": "final",
                "group_id": "open",
                "list_id": "awards",
                "order": ["hrb-007", "hrb-001"],
                "reason": "评委会复议：现场表现更优者列前",
                "approver": "大赛裁判委员会",
            },
        ),
        "appeal_filed": _env(
            "appeal_filed",
            **MANUAL,
            data={
                "appeal_id": "appeal-2020-004",
                "round_id": "final",
                "filed_by": "冰城小李",
                "claim": "订单数据漏计 12 笔",
                "evidence_ref": "平台后台截图 2020-09-13.zip",
            },
        ),
        "appeal_decided": _env(
            "appeal_decided",
            **MANUAL,
            data={
                "appeal_id": "appeal-2020-004",
                "round_id": "final",
                "decision": "upheld",
                "reason": "核实平台官方数据，漏计属实",
                "approver": "组委会办公室",
                "adjustment_ids": ["appeal-2020-004-adj"],
            },
        ),
        # the union's copy of hrb-001's semi-final entry, registered for her (H3)
        "entry_registered": _env(
            "entry_registered",
            account_id="ks_harbin_union",
            video_id="v-union-0913",
            source="manual",
            revision="final",
            raw_ref=None,
            data={
                "round_id": "semi",
                "copy_of": "v-hrb001-entry",
                "withdrawn": False,
                "registered_by": "组委会办公室",
            },
        ),
        "live_slot_assigned": _env(
            "live_slot_assigned",
            **MANUAL,
            data={
                "round_id": "final",
                "start": T0 + 3_600_000,
                "end": T0 + 7_200_000,
                "reason": "决赛抽签：第 3 场",
            },
        ),
        "anomaly_detected": _env(
            "anomaly_detected",
            room_id="room-77",
            source="manual",
            revision="final",
            raw_ref=None,
            data={
                "detector": "online_spike",
                "anomaly_id": "online_spike.room-77.1600000000000",
                "severity": "warning",
                "summary": "在线人数 60 秒内由 300 升至 4,800（16 倍）/ online count 300 → 4,800 in 60 s (16×)",
                "window_start": T0 - 60_000,
                "window_end": T0,
                "evidence": [
                    {"name": "online_before", "value": 300, "text": None},
                    {"name": "online_after", "value": 4_800, "text": None},
                    {"name": "dt_ms", "value": 60_000, "text": None},
                ],
                "evidence_events": ["lms-0123456789abcdef0123456789abcdef"],
            },
        ),
    }
    for event in samples.values():
        event["event_id"] = event_id_for(event)
    return samples
