"""The metric catalogue: which engine input comes from which snapshot field, and how several are combined.

A contestant's round inputs are projected from the snapshots that count for the round (their winning
snapshot per live room, per short video). Each base metric is declared once here — the snapshot field it
reads and the aggregation over the contestant's rooms (or videos) — and ``project`` applies the
catalogue; ``state.ContestState._build_inputs`` calls it instead of spelling out each metric. What is not a
plain aggregation of one field stays in the state's projection: the orders ledger, the entry video's rates
(one video chosen by plays), the 24-hour likes, the registered entries' works.

Aggregations, all exact on integers (the rules engine's inputs are integers):

- ``sum``: the sum of the values present;
- ``max``: the largest;
- ``mean``: the mean, rounded half up;
- ``weighted_mean``: weighted by another field (``weight``), rounded half up; rooms whose weight is absent
  or 0 are left out, and if no room has a weight, the plain mean.

With one room every aggregation is that room's value (the common case, taken without the arithmetic).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

Aggregation = Literal["sum", "max", "mean", "weighted_mean"]


@dataclass(frozen=True, slots=True)
class Metric:
    name: str  # the engine's base metric (contest files' formulas name it)
    field: str  # the snapshot's data field
    agg: Aggregation = "sum"
    weight: str | None = None  # weighted_mean: the field that weighs each value

    def __post_init__(self) -> None:
        if (self.agg == "weighted_mean") != (self.weight is not None):
            raise ValueError(f"{self.name}: a weight is given exactly for weighted_mean")


def div_half_up(n: int, d: int) -> int:
    """``n / d`` rounded half up, for n ≥ 0 and d > 0 (means and ratios of integer counters)."""
    return (2 * n + d) // (2 * d)


# live rooms (live_metrics_snapshot.data): counters summed over the contestant's rooms in the round
LIVE_METRICS: tuple[Metric, ...] = (
    Metric("gmv_fen", "gmv_fen"),
    Metric("refund_amount_fen", "refund_amount_fen"),
    Metric("orders_paid", "orders_paid"),
    Metric("orders_created", "orders_created"),
    Metric("refunds_count", "refunds_count"),
    Metric("paid_buyers_uv", "paid_buyers_uv"),
    Metric("viewers_pv", "viewers_pv"),
    Metric("viewers_uv", "viewers_uv"),
    Metric("likes", "likes"),
    Metric("comments", "comments"),
    Metric("shares", "shares"),
    Metric("new_followers", "new_followers"),
    Metric("product_exposure_uv", "product_exposure_uv"),
    Metric("product_click_uv", "product_click_uv"),
    Metric("peak_online", "peak_online", "max"),
    Metric("avg_online", "avg_online", "mean"),
    Metric("avg_watch_seconds", "avg_watch_seconds", "weighted_mean", weight="viewers_uv"),
)

# short videos (video_stats_snapshot.data): counters summed over the contestant's videos in the round
VIDEO_METRICS: tuple[Metric, ...] = (
    Metric("video_plays", "plays"),
    Metric("video_likes", "likes"),
    Metric("video_shares", "shares"),
    Metric("video_comments", "comments"),
    Metric("video_clicks", "clicks"),
)


def sums(catalogue: Sequence[Metric]) -> dict[str, str]:
    """metric -> field of the catalogue's summed metrics (evidence shows these per snapshot)."""
    return {m.name: m.field for m in catalogue if m.agg == "sum"}


def project(metrics: dict[str, int], catalogue: Sequence[Metric], datas: Sequence[Any]) -> None:
    """Put each catalogue metric, aggregated over the snapshots' ``datas``, into ``metrics`` (absent when no
    snapshot has a value)."""
    if not datas:
        return
    if len(datas) == 1:
        d = datas[0]
        for m in catalogue:
            v = getattr(d, m.field)
            if v is not None:
                metrics[m.name] = v
        return
    for m in catalogue:
        present = [(v, d) for d in datas if (v := getattr(d, m.field)) is not None]
        if not present:
            continue
        if m.agg == "sum":
            metrics[m.name] = sum(v for v, _ in present)
        elif m.agg == "max":
            metrics[m.name] = max(v for v, _ in present)
        elif m.agg == "mean":
            metrics[m.name] = div_half_up(sum(v for v, _ in present), len(present))
        else:  # weighted_mean
            weighted = [(v, w) for v, d in present if (w := getattr(d, m.weight)) is not None and w > 0]  # type: ignore[arg-type]
            if weighted:
                metrics[m.name] = div_half_up(sum(v * w for v, w in weighted), sum(w for _, w in weighted))
            else:
                metrics[m.name] = div_half_up(sum(v for v, _ in present), len(present))
