"""The judges' console beside each KPI (issue 12): the figure as the round's rules score it, the field's median
and the contestant's rank on it; the room's interactions where the platform reports them; the funnel's
step-to-step percentages over the steps the platform reports.

The scored figures come from the scorer's leaderboard (the same rows the big screen shows, so a judge never
sees a different number under the same name): GMV, net GMV, paid orders, viewers, the round's own conversion
(``round_conversion``: e.g. Harbin's 下单转化率 = paid orders ÷ viewers), data score and total. The field is the
contestant's group in the round, without excluded contestants. The median of an even field is the lower middle
value (an observed figure, never an average of two).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from liveboard.contracts.conversion import round_conversion
from services.board.auth import requires
from services.board.context import ctx
from services.board.errors import json_response
from services.board.judge_api import contestant_query

FIGURES = ("gmv_fen", "net_gmv_fen", "paid_orders", "viewers", "conversion_ppm", "data_score", "total")
INTERACTIONS = ("likes", "comments", "shares", "new_followers")
FUNNEL = (("exposure", "product_exposure_uv"), ("click", "product_click_uv"), ("order", "orders_created"),
          ("paid", "orders_paid"))  # fmt: skip
PPM = 1_000_000


def _num(v: Any) -> Decimal | None:
    if v is None or v == "":
        return None
    try:
        return Decimal(str(v))
    except InvalidOperation:
        return None


def figure_stats(rows: list[dict[str, Any]], contestant_id: str, key: str) -> dict[str, Any]:
    """The contestant's figure, the field's median (lower middle) and her rank on it (1 = highest; equal
    figures share a rank)."""
    field = [(r["contestant_id"], _num(r.get(key))) for r in rows if r.get("status") != "excluded"]
    values = sorted(v for _, v in field if v is not None)
    mine = next((v for c, v in field if c == contestant_id), None)
    median = values[(len(values) - 1) // 2] if values else None
    rank = 1 + sum(1 for v in values if v > mine) if mine is not None else None

    def out(v: Decimal | None) -> Any:
        if v is None:
            return None
        return int(v) if key not in ("data_score", "total") else str(v)

    return {"key": key, "value": out(mine), "median": out(median), "rank": rank, "of": len(values)}


async def latest_room_figures(c: Any, contest_id: str, contestant_id: str, start: int, end: int) -> list[dict]:
    """Each room's newest snapshot in the window: interactions and funnel steps, null where not reported."""
    fields = [*INTERACTIONS, *(f for _, f in FUNNEL)]
    cols = ", ".join(
        f"argMax(JSONExtract(payload, 'data', '{f}', 'Nullable(Int64)'), (observed_at, revision)) AS {f}"
        for f in fields
    )
    res = await c.ch.query(
        f"SELECT platform, room_id, {cols} FROM events_archive WHERE type = 'live_metrics_snapshot' "
        "AND contest_id = {c:String} AND contestant_id = {p:String} AND observed_at >= {s:UInt64} "
        "AND observed_at < {e:UInt64} GROUP BY platform, room_id",
        parameters={"c": contest_id, "p": contestant_id, "s": start, "e": end},
    )
    return list(res.named_results())


def _sum(rooms: list[dict[str, Any]], f: str) -> int | None:
    vals = [r[f] for r in rooms if r.get(f) is not None]
    return sum(int(v) for v in vals) if vals else None


def funnel_steps(rooms: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The reported steps only (a platform without exposure figures shows no exposure step), each with its
    share of the step before it (ppm, rounded half up)."""
    steps = []
    for step, f in FUNNEL:
        v = _sum(rooms, f)
        if v is None:
            continue
        prev = steps[-1]["value"] if steps else None
        pct = (v * PPM * 2 + prev) // (2 * prev) if prev else None
        steps.append({"step": step, "value": v, "of_previous_ppm": pct})
    return steps


@requires("judge")
async def figures(request: web.Request) -> web.Response:
    c = ctx(request)
    q = contestant_query(request)
    contest, rnd, contestant_id, group = q.contest, q.rnd, q.contestant_id, q.group
    snap = await c.hub.snapshot(contest.id, rnd.id, group)
    rows = snap.doc.get("rows", [])
    me = next((r for r in rows if r["contestant_id"] == contestant_id), None)
    rooms = await latest_room_figures(c, contest.id, contestant_id, rnd.window.start, rnd.window.end)
    return json_response(
        {
            "contest_id": contest.id,
            "round_id": rnd.id,
            "group_id": group,
            "contestant_id": contestant_id,
            "conversion": round_conversion(contest, rnd).to_dict(),
            "rank": me["rank"] if me else None,
            "status": me.get("status") if me else None,
            "field": sum(1 for r in rows if r.get("status") != "excluded"),
            "figures": [figure_stats(rows, contestant_id, k) for k in FIGURES],
            "interactions": {k: _sum(rooms, k) for k in INTERACTIONS},
            "funnel": funnel_steps(rooms),
        }
    )
