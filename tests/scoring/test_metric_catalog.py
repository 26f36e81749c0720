"""The metric catalogue: each aggregation on hand-computed figures, one room is its own value, absent
values are left out (and a metric no room has stays absent)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from services.scoring.metric_catalog import LIVE_METRICS, VIDEO_METRICS, Metric, project, sums


def room(**kw: int | None) -> SimpleNamespace:
    base = {m.field: None for m in LIVE_METRICS}
    return SimpleNamespace(**{**base, **kw})


def test_aggregations_over_several_rooms() -> None:
    rooms = [
        room(gmv_fen=100_00, peak_online=40, avg_online=10, avg_watch_seconds=30, viewers_uv=100),
        room(gmv_fen=250_50, peak_online=90, avg_online=15, avg_watch_seconds=61, viewers_uv=300),
        room(gmv_fen=None, peak_online=None, avg_online=None, avg_watch_seconds=None, viewers_uv=7),
    ]
    got: dict[str, int] = {}
    project(got, LIVE_METRICS, rooms)
    assert got["gmv_fen"] == 350_50  # sum of the present values
    assert got["peak_online"] == 90  # max
    assert got["avg_online"] == 13  # (10 + 15) / 2 = 12.5, half up
    # (30·100 + 61·300) / 400 = 53.25 → 53
    assert got["avg_watch_seconds"] == 53
    assert got["viewers_uv"] == 407
    assert "likes" not in got and "orders_paid" not in got  # no room has them


def test_weighted_mean_without_weights_is_the_plain_mean() -> None:
    got: dict[str, int] = {}
    project(got, LIVE_METRICS, [room(avg_watch_seconds=20, viewers_uv=0), room(avg_watch_seconds=25)])
    assert got["avg_watch_seconds"] == 23  # 22.5, half up


def test_one_room_is_its_own_value_and_no_rooms_nothing() -> None:
    got: dict[str, int] = {}
    project(got, LIVE_METRICS, [room(gmv_fen=7, avg_online=3, avg_watch_seconds=9, viewers_uv=0)])
    assert got == {"gmv_fen": 7, "avg_online": 3, "avg_watch_seconds": 9, "viewers_uv": 0}
    empty: dict[str, int] = {}
    project(empty, LIVE_METRICS, [])
    assert empty == {}


def test_videos_and_the_summed_fields() -> None:
    vids = [
        SimpleNamespace(plays=10, likes=2, shares=None, comments=1, clicks=0),
        SimpleNamespace(plays=5, likes=None, shares=None, comments=4, clicks=3),
    ]
    got: dict[str, int] = {}
    project(got, VIDEO_METRICS, vids)
    assert got == {"video_plays": 15, "video_likes": 2, "video_comments": 5, "video_clicks": 3}
    assert sums(VIDEO_METRICS)["video_plays"] == "plays" and "peak_online" not in sums(LIVE_METRICS)


def test_a_weight_belongs_to_weighted_mean_only() -> None:
    with pytest.raises(ValueError, match="weight"):
        Metric("x", "x", "sum", weight="viewers_uv")
    with pytest.raises(ValueError, match="weight"):
        Metric("x", "x", "weighted_mean")
