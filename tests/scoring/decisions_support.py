"""A small contest for the decision tests (取消资格, tie decisions, appeals), with hand-computable results.

One group g1, four contestants, one metric: GMV, 100 points for the best, the others in proportion
(ratio to the best). Awards: one first, one second, one third; ties are decided by the organiser
(``decide``). The stage takes appeals for 48 h after its round ends.

GMV 400 / 200 / 100 / 100 元 → totals 100, 50, 25, 25: c0 一等奖, c1 二等奖, c2 and c3 tied at place 3 across
the third prize (one prize, two rows) → both 待定 until a tie decision.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson

from tests.scoring import factory as f

HOUR = 3_600_000
GMV = {"c0": 40_000, "c1": 20_000, "c2": 10_000, "c3": 10_000}


def decisions_contest(contest_id: str, *, start: int | None = None, window_hours: int = 48) -> dict[str, Any]:
    if start is None:
        now = time.time_ns() // 1_000_000
        start = now - 3 * HOUR - now % 1000  # the round ran 3 h to 2 h ago; the appeal window is open
    return {
        "schema_version": 1,
        "id": contest_id,
        "name": f"裁定测试 {contest_id}",
        "notice": "tests",
        "organiser": "测试主办方",
        "platforms": ["douyin"],
        "groups": [{"id": "g1", "name": "组1"}],
        "contestants": [{"id": c, "name": f"选手{c}", "group": "g1", "accounts": {"douyin": f"acct-{c}"}} for c in GMV],
        "stages": [
            {
                "id": "s1",
                "name": "决赛阶段",
                "appeals": {"window_hours": window_hours},
                "rounds": [
                    {
                        "id": "r1",
                        "name": "决赛",
                        "window": {"start": start, "end": start + HOUR},
                        "scoring": {
                            "id": "total",
                            "name": "总分",
                            "kind": "weighted",
                            "components": [
                                {
                                    "id": "sales",
                                    "name": "销售额",
                                    "weight": 100,
                                    "kind": "metric",
                                    "metric": "gmv_fen",
                                    "normalise": {"method": "ratio_to_best", "points": 100},
                                }
                            ],
                        },
                        "ties": {"policy": "decide"},
                        "awards": [
                            {"id": "first", "name": "一等奖", "count": 1},
                            {"id": "second", "name": "二等奖", "count": 1},
                            {"id": "third", "name": "三等奖", "count": 1},
                        ],
                    }
                ],
            }
        ],
    }


def write(folder: Path, doc: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{doc['id']}.yaml"
    path.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    return path


def sales(contest_id: str, start: int) -> list[Any]:
    return [
        f.live_snapshot(contest_id, c, start + 60_000, gmv_fen=gmv, orders_paid=1, live_started_at=start + 60_000)
        for c, gmv in GMV.items()
    ]


def standing(rows: list[dict[str, Any]]) -> dict[str, tuple[Any, ...]]:
    """contestant -> (place, total shown, award id, status, pending)."""
    return {
        r["contestant_id"]: (r["rank"], r["total_display"], r["award_id"], r["status"], bool(r["pending"]))
        for r in rows
    }
