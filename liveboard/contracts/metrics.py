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
_VIDEO = (
    "sum over the contestant's videos of the round (published inside its window; with entries: registered, its"
    " registered entries whenever published, as of the cut-off, copies per the copies rule) of the winning"
    " video_stats_snapshot's data."
)
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
            "per video, likes of the newest snapshot with observed_at ≤ published_at + 24 h; summed (with "
            "entries: registered, over the registered entries, a summed copy by its own publishing time)",
        ),
        _base("video_shares", "count", "视频转发量", "video shares", _VIDEO + "shares"),
        _base("video_comments", "count", "视频评论数", "video comments", _VIDEO + "comments"),
        _base("video_clicks", "count", "视频点击量", "video clicks", _VIDEO + "clicks"),
        _base(
            "video_completion_rate_ppm",
            "ppm",
            "视频完播率",
            "video completion rate",
            "the entry video's completion_rate_ppm (the most played work; with summed copies: play-weighted)",
        ),
        _base(
            "video_avg_play_ms",
            "ms",
            "视频平均播放时长",
            "video average play time",
            "the entry video's avg_play_ms (the most played work; with summed copies: play-weighted over them)",
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


# ------------------------------------------------------------------------------ platform catalogue

# Which platform can deliver which base metric, as Liveboard's collectors obtain it (docs/ingest.md, the
# normalisers in services/ingest/*/normalise.py, ../shared/reference/platform-apis.md):
#   "yes":     a field of the documented endpoint the collector reads;
#   "partial": only through some endpoints / API versions / authorisations, or from a MODELLED endpoint
#              shape (Kuaishou has no public real-time live endpoint): may be missing for some accounts;
#   absent:    the platform does not deliver it at all (the collector always sends null).
# `liveboard contest validate` refuses a formula that scores a metric one of the contest's platforms
# cannot deliver, unless the node names a substitute for that platform (``by_platform``); "partial" is a
# warning (say what a missing value means with ``missing:``).
Availability = Literal["yes", "partial"]

_LIVE_DOUYIN: dict[str, Availability] = {
    # 巨量千川 today_live stats (room_list / room detail)
    "gmv_fen": "yes",  # live_pay_order_gmv_alias (元)
    "orders_created": "yes",  # live_create_order_count_alias
    "orders_paid": "yes",  # created × live_pay_order_rate (today_live has no paid-order count)
    "viewers_pv": "yes",  # total_live_watch_cnt (观看人次)
    "comments": "yes",  # total_live_comment
    "shares": "yes",  # total_live_share_cnt
    "new_followers": "yes",  # total_live_follow_cnt
    "product_click_uv": "yes",  # live_click_product_count_alias
    # "Douyin buyers/UV only through some endpoints": fields beyond the documented list
    "viewers_uv": "partial",  # total_live_watch_ucnt
    "paid_buyers_uv": "partial",  # not in today_live (snapshot null): the 抖店 ledger's buyers (doudian_open_id)
    "peak_online": "partial",  # max_online_user_cnt
    "avg_watch_seconds": "partial",  # avg_watch_duration
    "likes": "partial",  # total_live_like_cnt
    "refunds_count": "partial",  # not in today_live (snapshot null): the 抖店 after-sales (ledger)
    "refund_amount_fen": "partial",  # not in today_live (snapshot null): the 抖店 after-sales (ledger)
    # short videos (open.douyin.com video data): plays, likes, shares, comments; no clicks, no completion
    # rate in any open API, average play duration not read by the collector
    "video_plays": "yes",
    "video_likes": "yes",
    "video_likes_24h": "yes",
    "video_shares": "yes",
    "video_comments": "partial",
}

_LIVE_KUAISHOU: dict[str, Availability] = {
    # documented 电商/fanstop stats: audienceNum, fansIncreaseNum, likeNum, shareNum, cartClickNum,
    # gmvData{t0Gmv, t0OrderCount}; Kuaishou reports no page views (观看人次, PV) at all
    "gmv_fen": "yes",
    "orders_paid": "yes",
    "viewers_uv": "yes",  # audienceNum
    "new_followers": "yes",  # fansIncreaseNum
    "likes": "yes",  # likeNum
    "shares": "yes",  # shareNum
    "product_click_uv": "yes",  # cartClickNum
    # modelled fields of the live-room stats endpoint
    "orders_created": "partial",
    "paid_buyers_uv": "partial",
    "peak_online": "partial",
    "avg_watch_seconds": "partial",
    "comments": "partial",
    "refunds_count": "partial",
    "refund_amount_fen": "partial",
    # photos (作品)
    "video_plays": "yes",
    "video_likes": "yes",
    "video_likes_24h": "yes",
    "video_shares": "yes",
    "video_comments": "partial",
    "video_clicks": "partial",
    "video_completion_rate_ppm": "partial",
    "video_avg_play_ms": "partial",
}

_LIVE_WECHAT: dict[str, Availability] = {
    # live_ec_data_summary
    "gmv_fen": "yes",  # total_gmv
    "orders_created": "yes",  # total_create_pv
    "orders_paid": "yes",  # total_pay_pv
    "paid_buyers_uv": "yes",  # total_pay_uv
    "viewers_uv": "yes",  # cumulative_audience_count
    "avg_watch_seconds": "yes",  # average_watch_seconds_per_audience
    "comments": "yes",  # new_comment_count
    "shares": "yes",  # share_live_audience_count
    "new_followers": "yes",  # new_follow_count
    "product_exposure_uv": "yes",  # total_exp_uv
    "product_click_uv": "yes",  # total_clk_uv
    "refunds_count": "yes",  # refund_pv
    "refund_amount_fen": "yes",  # refund_amount
    # live_dashboard_data (modelled block)
    "viewers_pv": "partial",
    "peak_online": "partial",
    "likes": "partial",
    # 视频号 feeds
    "video_plays": "yes",  # read_cnt
    "video_likes": "yes",
    "video_likes_24h": "yes",
    "video_shares": "yes",
    "video_comments": "partial",
    "video_clicks": "partial",
    "video_completion_rate_ppm": "partial",  # finish_rate
    "video_avg_play_ms": "partial",
}

PLATFORM_METRICS: dict[str, dict[str, Availability]] = {
    "douyin": _LIVE_DOUYIN,
    "kuaishou": _LIVE_KUAISHOU,
    "wechat_channels": _LIVE_WECHAT,
}


def base_parts(name: str) -> tuple[str, ...]:
    """The base metrics a metric name is computed from (itself for a base metric)."""
    if name in DERIVED_METRICS:
        d = DERIVED_METRICS[name]
        return (*d.numerator, *d.denominator, *d.subtract)
    return (name,)


def availability(platform: str, names: tuple[str, ...] | list[str]) -> Availability | None:
    """How ``platform`` delivers all of ``names`` (base or derived): the weakest of their parts; None when
    one of them is not delivered at all. An unknown platform delivers everything (nothing to check)."""
    table = PLATFORM_METRICS.get(platform)
    if table is None:
        return "yes"
    out: Availability = "yes"
    for name in names:
        for part in base_parts(name):
            a = table.get(part)
            if a is None:
                return None
            if a == "partial":
                out = "partial"
    return out
