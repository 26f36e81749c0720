"""Operators' reconciliation view (对账): where a contestant's sales ledger (order events) and the platform's
own totals (live-room snapshots) differ beyond the contest's tolerance, from ``ledger_reconciliation``
(written by the scorer; docs/scoring.md, "Reconciliation"), with the orders that explain it where known.

``GET /api/v1/ops/reconciliation?contest=…[&round=…][&all=1]``: open mismatches (``all=1``: every compared
contestant-platform, cleared ones included), newest state per (round, contestant, platform).
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web
from clickhouse_connect.driver.asyncclient import AsyncClient

from liveboard.contracts.tables import RECONCILE_COLUMNS
from services.board.auth import requires
from services.board.context import ctx
from services.board.errors import json_response
from services.board.inputs import query_ident, query_int
from services.board.recording import QUERY, contest_round

# what the panel shows of a row: everything but the contest (in the request) and the version (FINAL picks it)
COLUMNS = tuple(c for c in RECONCILE_COLUMNS if c not in ("contest_id", "version"))


async def reconciliation_rows(
    ch: AsyncClient, contest_id: str, round_id: str | None, include_cleared: bool, limit: int
) -> list[dict[str, Any]]:
    where = "contest_id = {c:String}"
    if round_id:
        where += " AND round_id = {r:String}"
    if not include_cleared:
        where += " AND mismatch = 1"
    res = await ch.query(
        f"SELECT {', '.join(COLUMNS)} FROM ledger_reconciliation FINAL WHERE {where} "
        "ORDER BY mismatch DESC, abs(gmv_diff_fen) DESC, round_id, contestant_id, platform LIMIT {n:UInt32}",
        parameters={"c": contest_id, "r": round_id or "", "n": limit},
    )
    rows = []
    for r in res.named_results():
        r = dict(r)
        r["mismatch"] = bool(r["mismatch"])
        r["reasons"] = list(r["reasons"])
        r["orders"] = orjson.loads(r["orders"] or "{}")
        rows.append(r)
    return rows


@requires("operator")
async def reconciliation(request: web.Request) -> web.Response:
    c = ctx(request)
    contest_id = query_ident(request, "contest")
    round_id = query_ident(request, "round", required=False)
    include_cleared = request.query.get("all") in ("1", "true")
    limit = query_int(request, "limit", 500, 1, 5000)
    contest, _ = contest_round(c, contest_id, None, fields=QUERY)
    names = {p.id: p.name for p in contest.contestants}
    rows = await reconciliation_rows(c.ch, contest_id, round_id, include_cleared, limit)
    for r in rows:
        r["display_name"] = names.get(r["contestant_id"], r["contestant_id"])
    return json_response(
        {
            "contest_id": contest_id,
            "round_id": round_id,
            "open": sum(1 for r in rows if r["mismatch"]),
            "rows": rows,
        }
    )
