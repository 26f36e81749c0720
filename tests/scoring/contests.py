"""Small contest files for the scorer's tests and benchmarks, written with the contest models' shape.

``write_contest`` puts a YAML file (JSON is YAML) in a folder and returns it; ``load_contest`` validates it
exactly as the scorer will.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from liveboard.contracts.contest import Contest
from liveboard.contracts.contest_validate import load_contest

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z: round r1 starts here
HOUR = 3_600_000


def contest_doc(
    contest_id: str,
    n: int = 10,
    *,
    groups: int = 2,
    start: int = T0,
    hours: int = 24,
    second_round: bool = False,
    accounts_locked: bool = False,
    register_in_file: bool = True,
    sales: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A contest of ``n`` contestants over ``groups`` groups, one round ``r1`` of ``hours`` from ``start``:
    60 % net GMV (ratio to the best), 20 % paid orders (min–max), 20 % judges (one criterion, scaled to 100)."""
    group_ids = [f"g{i + 1}" for i in range(groups)]
    contestants = [
        {
            "id": f"c{i:04d}",
            "name": f"选手{i:04d}",
            "group": group_ids[i % groups],
            "organisation": {"city": "city1", "district": f"d{i % 3 + 1}"},
            "accounts": {"douyin": f"acct-c{i:04d}"},
        }
        for i in range(n)
    ]
    formula = {
        "id": "total",
        "name": "总分",
        "kind": "weighted",
        "components": [
            {
                "id": "sales",
                "name": "净销售额",
                "weight": 60,
                "kind": "metric",
                "metric": "net_gmv_fen",
                "normalise": {"method": "ratio_to_best", "points": 100},
            },
            {
                "id": "orders",
                "name": "成交订单",
                "weight": 20,
                "kind": "metric",
                "metric": "orders_paid",
                "normalise": {"method": "min_max", "points": 100},
            },
            {
                "id": "jury",
                "name": "评委",
                "weight": 20,
                "kind": "judges",
                "criteria": [{"id": "pitch", "name": "讲解", "max_points": 10}],
                "scale_to": 100,
                # most test fields have no judges' sheets: 0 points, not held (the default "hold" would
                # keep every row provisional: no award, no advancement)
                "missing": "zero",
            },
        ],
    }
    rounds: list[dict[str, Any]] = [
        {
            "id": "r1",
            "name": "初赛",
            "window": {"start": start, "end": start + hours * HOUR},
            "scoring": formula,
            "tie_break": ["sales"],
            "awards": [{"id": "first", "name": "一等奖", "count": 1}, {"id": "second", "name": "二等奖", "count": 2}],
            "advancement": {"top": 2, "per": "group"},
        }
    ]
    if second_round:
        rounds.append(
            {
                "id": "r2",
                "name": "决赛",
                "window": {"start": start + hours * HOUR, "end": start + 2 * hours * HOUR},
                "entrants": {"from_round": "r1"},
                "scoring": formula,
                "awards": [{"id": "gold", "name": "金奖", "count": 1}],
            }
        )
    return {
        "schema_version": 1,
        "id": contest_id,
        "name": f"测试赛 {contest_id}",
        "notice": "tests",
        "organiser": "测试主办方",
        "platforms": ["douyin"],
        "accounts_locked": accounts_locked,
        "organisations": [
            {"id": "city1", "name": "测试市", "level": "city"},
            *({"id": f"d{i}", "name": f"区{i}", "level": "district", "parent": "city1"} for i in (1, 2, 3)),
        ],
        "groups": [{"id": g, "name": f"组{g}"} for g in group_ids],
        "contestants": contestants if register_in_file else [],
        "stages": [{"id": "s1", "name": "比赛", "rounds": rounds}],
        **({"sales": sales} if sales is not None else {}),
    }


def write_contest(folder: Path, doc: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{doc['id']}.yaml"
    path.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    return path


def make_contest(folder: Path, contest_id: str, n: int = 10, **kw: Any) -> tuple[Path, Contest]:
    path = write_contest(folder, contest_doc(contest_id, n, **kw))
    return path, load_contest(path)
