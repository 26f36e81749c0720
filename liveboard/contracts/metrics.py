"""The metric catalogue: every name a contest formula may score, and where its value comes from.

The rules engine receives per-contestant integer totals for the *base* metrics (the scorer derives them
from events as described here) and computes the *derived* ones itself, exactly. Contest files may only
name metrics listed here, or an inline ratio of them; `liveboard contest validate` rejects anything else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Unit = Literal["count", "fen", "ms", "seconds", "ppm", "ratio"]


@dataclass(frozen=True, slots=True)
class MetricDef:
    name: str
    unit: Unit
    label_zh: str
    label_en: str
    source: str  # how the scorer obtains the value from events (for base metrics)


def _base(name: str, unit: Unit, zh: str, en: str, source: str) -> MetricDef:
    return MetricDef(name, unit, zh, en, source)


_LIVE = "sum over the contestant's rooms in the round window of the winning live_metrics_snapshot's data."
_VIDEO = "sum over the contestant's contest videos of the winning video_stats_snapshot's data."
_LEDGER = "sales ledger over the contestant's orders paid in the round window: "

BASE_METRICS: dict[str, MetricDef] = {
    m.name: m
    for m in (
        _base("gmv_fen", "fen", "成交金额", "GMV (gross paid)", _LIVE + "gmv_fen"),
        _base("refund_amount_fen", "fen", "退款金额", "refunded amount", _LIVE + "refund_amount_fen"),
        _base("orders_paid", "count", "成交订单数（成交量）", "paid orders", _LIVE + "orders_paid"),
        _base("orders_created", "count", "下单数", "orders created", _LIVE + "orders_created"),
        _base("refunds_count", "count", "退款订单数", "refunded orders", _LIVE + "refunds_count"),
        _base("paid_buyers_uv", "count", "成交人数", "paying buyers", _LIVE + "paid_buyers_uv"),
        _base("viewers_pv", "count", "观看人次", "views (PV)", _LIVE + "viewers_pv"),
        _base("viewers_uv", "count", "观看人数", "unique viewers", _LIVE + "viewers_uv"),
        _base("peak_online", "count", "最高在线人数", "peak online", "max over rooms of peak_online"),
        _base("avg_online", "count", "平均在线人数", "average online", "mean over rooms of avg_online"),
        _base("avg_watch_seconds", "seconds", "观众停留时长", "average watch time", "viewer-weighted mean"),
        _base("likes", "count", "点赞数", "likes", _LIVE + "likes"),
        _base("comments", "count", "评论数", "comments", _LIVE + "comments"),
        _base("shares", "count", "分享数", "shares", _LIVE + "shares"),
        _base("new_followers", "count", "新增粉丝", "new followers", _LIVE + "new_followers"),
        _base("product_exposure_uv", "count", "商品曝光人数", "product exposure UV", _LIVE + "product_exposure_uv"),
        _base("product_click_uv", "count", "商品点击人数", "product click UV", _LIVE + "product_click_uv"),
        _base("video_plays", "count", "视频播放量", "video plays", _VIDEO + "plays"),
        _base("video_likes", "count", "视频点赞数", "video likes", _VIDEO + "likes"),
        _base(
            "video_likes_24h",
            "count",
            "发布 24 小时后点赞数",
            "video likes 24 h after publishing",
            "per video, likes of the newest snapshot with observed_at ≤ published_at + 24 h; summed",
        ),
        _base("video_shares", "count", "视频转发量", "video shares", _VIDEO + "shares"),
        _base("video_comments", "count", "视频评论数", "video comments", _VIDEO + "comments"),
        _base("video_clicks", "count", "视频点击量", "video clicks", _VIDEO + "clicks"),
        _base(
            "video_completion_rate_ppm",
            "ppm",
            "视频完播率",
            "video completion rate",
            "the contest video's completion_rate_ppm (one entry video per contestant)",
        ),
        _base(
            "video_avg_play_ms",
            "ms",
            "视频平均播放时长",
            "video average play time",
            "the contest video's avg_play_ms (one entry video per contestant)",
        ),
        # ---- the sales ledger (services/scoring/ledger.py): folded from order_event, orders placed in the
        # round by their payment time, refunds counted until the contest's after-sales cut-off
        _base("ledger_orders_paid", "count", "成交订单数（订单明细）", "paid orders (ledger)", _LEDGER + "paid orders"),
        _base("ledger_gmv_fen", "fen", "成交金额（订单明细）", "paid GMV (ledger)", _LEDGER + "paid amounts"),
        _base(
            "ledger_refund_fen",
            "fen",
            "退款金额（订单明细）",
            "refunded amount (ledger)",
            _LEDGER + "refunds, each refund id once, capped at the order's paid amount",
        ),
        _base(
            "ledger_net_gmv_fen",
            "fen",
            "净成交金额（订单明细，扣除退款）",
            "net GMV (ledger)",
            _LEDGER + "paid amounts minus refunds",
        ),
        _base(
            "ledger_net_orders",
            "count",
            "净成交订单数（订单明细，全额退款不计）",
            "net orders (ledger; fully refunded orders excluded)",
            _LEDGER + "paid orders not refunded in full",
        ),
        _base(
            "ledger_buyers",
            "count",
            "成交人数（订单明细）",
            "paying buyers (ledger)",
            _LEDGER + "distinct buyer ids of paid orders; missing unless every paid order has one",
        ),
    )
}

# ---- where sales come from (contest file ``sales:``; docs/scoring.md, "Sales: ledger or snapshot")
SalesSource = Literal["ledger", "snapshot"]
SALES_SOURCES: tuple[str, ...] = ("ledger", "snapshot")
# The sales metrics a contest may take from the ledger instead of the live-room snapshots, and the ledger
# figure that replaces each. ``refunds_count`` becomes the orders refunded in full, so that
# ``net_orders`` = ``orders_paid`` − ``refunds_count`` is the ledger's net orders.
SALES_METRICS: dict[str, str] = {
    "gmv_fen": "ledger_gmv_fen",
    "refund_amount_fen": "ledger_refund_fen",
    "orders_paid": "ledger_orders_paid",
    "refunds_count": "ledger_fully_refunded",
    "paid_buyers_uv": "ledger_buyers",
}
# Default source per platform in a contest that declares ``sales:``: the ledger where the platform gives
# order-level data (Douyin 抖店 order and after-sale lists, Kuaishou shop pushes, WeChat Channels order and
# after-sale details); anything else from snapshots. A contest without ``sales:`` scores snapshots.
SALES_DEFAULT_SOURCE: dict[str, SalesSource] = {"douyin": "ledger", "kuaishou": "ledger", "wechat_channels": "ledger"}


@dataclass(frozen=True, slots=True)
class DerivedDef:
    name: str
    label_zh: str
    label_en: str
    # value = numerator - subtract  (difference), or sum(numerator) / sum(denominator)  (ratio)
    numerator: tuple[str, ...]
    denominator: tuple[str, ...] = ()
    subtract: tuple[str, ...] = ()

    @property
    def unit(self) -> Unit:
        return "ratio" if self.denominator else BASE_METRICS[self.numerator[0]].unit


DERIVED_METRICS: dict[str, DerivedDef] = {
    d.name: d
    for d in (
        # "退货产品不计提成" (Jiangle): sales net of refunds
        DerivedDef(
            "net_gmv_fen", "净成交金额（扣除退款）", "GMV net of refunds", ("gmv_fen",), (), ("refund_amount_fen",)
        ),
        DerivedDef(
            "net_orders",
            "净成交订单（扣除退款）",
            "paid orders net of refunds",
            ("orders_paid",),
            (),
            ("refunds_count",),
        ),
        DerivedDef(
            "conversion_rate", "成交转化率", "conversion (buyers / viewers)", ("paid_buyers_uv",), ("viewers_uv",)
        ),
        DerivedDef(
            "interaction_rate",
            "互动率",
            "interaction rate ((likes+comments+shares) / views)",
            ("likes", "comments", "shares"),
            ("viewers_pv",),
        ),
        DerivedDef(
            "follow_rate", "转粉率", "follow rate (new followers / viewers)", ("new_followers",), ("viewers_uv",)
        ),
    )
}

ALL_METRICS: frozenset[str] = frozenset(BASE_METRICS) | frozenset(DERIVED_METRICS)


def label(name: str) -> str:
    if name in BASE_METRICS:
        m = BASE_METRICS[name]
        return f"{m.label_zh} / {m.label_en}"
    if name in DERIVED_METRICS:
        d = DERIVED_METRICS[name]
        return f"{d.label_zh} / {d.label_en}"
    return name
