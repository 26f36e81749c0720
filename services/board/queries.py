"""Every ClickHouse read of the board, in one place, against the tables of the scoring migration (0020)
and the board's own (0040–0042). Parameters are always bound server-side, never formatted into SQL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from clickhouse_connect.driver.asyncclient import AsyncClient

from liveboard.contracts.tables import LEADERBOARD_READ_COLUMNS, SERIES_METRICS

# plus each row's standing (migration 0037): 取消资格 rows (status "excluded", rank 0) and 待定 ties on the screens
LEADERBOARD_COLUMNS = (*LEADERBOARD_READ_COLUMNS, "status", "pending", "notes")
# the big screens (issue 12) also mark 并列, 最终 (frozen rows) and the award (migration 0021)
LEADERBOARD_COLUMNS += ("tied", "frozen", "award_id")


async def leaderboard_rows(ch: AsyncClient, contest_id: str, round_id: str) -> list[dict[str, Any]]:
    res = await ch.query(
        f"SELECT {', '.join(LEADERBOARD_COLUMNS)} FROM leaderboard FINAL "
        "WHERE contest_id = {c:String} AND round_id = {r:String} ORDER BY group_id, rank, contestant_id",
        parameters={"c": contest_id, "r": round_id},
    )
    return list(res.named_results())


async def feed_freshness(ch: AsyncClient, contest_id: str) -> dict[str, tuple[int, int]]:
    """Per contestant: (newest observed_at, newest ingested_at) over all their feeds."""
    res = await ch.query(
        "SELECT contestant_id, max(last_observed_at), max(last_ingested_at) FROM feed_latest "
        "WHERE contest_id = {c:String} GROUP BY contestant_id",
        parameters={"c": contest_id},
    )
    return {r[0]: (int(r[1]), int(r[2])) for r in res.result_rows}


async def feeds(ch: AsyncClient, contest_id: str | None) -> list[dict[str, Any]]:
    """Every feed (contestant × platform × account × room) with its newest data and event count."""
    where = "WHERE contest_id = {c:String}" if contest_id else ""
    res = await ch.query(
        "SELECT contest_id, contestant_id, platform, account_id, room_id, max(last_observed_at) AS last_observed_at, "
        "max(last_ingested_at) AS last_ingested_at, uniqMerge(events) AS events FROM feed_latest "
        f"{where} GROUP BY contest_id, contestant_id, platform, account_id, room_id "
        "ORDER BY contest_id, platform, contestant_id, room_id",
        parameters={"c": contest_id or ""},
    )
    return list(res.named_results())


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    room_id: str
    ts_ms: int
    values: dict[str, int]




async def contestant_series(
    ch: AsyncClient, contest_id: str, contestant_id: str, start_ms: int, end_ms: int, limit: int = 20_000
) -> list[SeriesPoint]:
    res = await ch.query(
        f"SELECT room_id, ts_ms, {', '.join(SERIES_METRICS)} FROM contestant_series FINAL "
        "WHERE contest_id = {c:String} AND contestant_id = {p:String} AND ts_ms >= {s:UInt64} AND ts_ms < {e:UInt64} "
        "ORDER BY ts_ms, room_id LIMIT {n:UInt32}",
        parameters={"c": contest_id, "p": contestant_id, "s": start_ms, "e": end_ms, "n": limit},
    )
    return [
        SeriesPoint(r[0], int(r[1]), {m: int(v) for m, v in zip(SERIES_METRICS, r[2:], strict=True)})
        for r in res.result_rows
    ]


async def dead_letters(ch: AsyncClient, limit: int, since_ms: int = 0) -> list[dict[str, Any]]:
    res = await ch.query(
        "SELECT dlq_id, received_at, source, platform, reason, substring(body, 1, 500) AS body "
        "FROM dead_letters FINAL WHERE received_at >= {s:UInt64} ORDER BY received_at DESC LIMIT {n:UInt32}",
        parameters={"s": since_ms, "n": limit},
    )
    return list(res.named_results())


async def dead_letter_counts(ch: AsyncClient, since_ms: int) -> list[dict[str, Any]]:
    res = await ch.query(
        "SELECT platform, source, reason, count() AS n, max(received_at) AS last_at FROM dead_letters FINAL "
        "WHERE received_at >= {s:UInt64} GROUP BY platform, source, reason ORDER BY n DESC LIMIT 100",
        parameters={"s": since_ms},
    )
    return list(res.named_results())


async def frozen_round(ch: AsyncClient, contest_id: str, round_id: str) -> dict[str, Any] | None:
    res = await ch.query(
        "SELECT frozen_at, frozen_by, content_hash, leaderboard_digest, event_count FROM frozen_rounds FINAL "
        "WHERE contest_id = {c:String} AND round_id = {r:String}",
        parameters={"c": contest_id, "r": round_id},
    )
    rows = list(res.named_results())
    return rows[0] if rows else None


async def frozen_rounds(ch: AsyncClient, contest_id: str) -> dict[str, dict[str, Any]]:
    res = await ch.query(
        "SELECT round_id, frozen_at, frozen_by, content_hash, leaderboard_digest, event_count FROM frozen_rounds "
        "FINAL WHERE contest_id = {c:String}",
        parameters={"c": contest_id},
    )
    return {r["round_id"]: r for r in res.named_results()}


# ------------------------------------------------------------------------------------ judging state


async def item_states(ch: AsyncClient, contest_id: str, round_id: str) -> dict[str, dict[str, Any]]:
    res = await ch.query(
        "SELECT contestant_id, state, changed_by, changed_at FROM board_items FINAL "
        "WHERE contest_id = {c:String} AND round_id = {r:String}",
        parameters={"c": contest_id, "r": round_id},
    )
    return {r["contestant_id"]: r for r in res.named_results()}


async def on_stage(ch: AsyncClient, contest_id: str, round_id: str) -> dict[str, Any] | None:
    res = await ch.query(
        "SELECT contestant_id, changed_by, changed_at FROM board_stage FINAL "
        "WHERE contest_id = {c:String} AND round_id = {r:String}",
        parameters={"c": contest_id, "r": round_id},
    )
    rows = list(res.named_results())
    return rows[0] if rows and rows[0]["contestant_id"] else None


async def judge_score_events(
    ch: AsyncClient, contest_id: str, round_id: str, contestant_id: str | None
) -> list[dict[str, Any]]:
    """Judge-score events of a round (optionally one contestant), from the event archive (the scorer's copy
    of the log) and the board's outbox (what it produced and the archive may not hold yet), de-duplicated
    by event id. Returned as decoded events."""
    who = "AND contestant_id = {p:String}" if contestant_id else ""
    res = await ch.query(
        "SELECT event_id, any(payload) FROM ("
        f"  SELECT event_id, payload FROM events_archive WHERE contest_id = {{c:String}} AND type = 'judge_score' {who}"
        "   UNION ALL"
        "  SELECT event_id, payload FROM board_outbox WHERE contest_id = {c:String} AND type = 'judge_score' "
        f"    AND round_id = {{r:String}} {who}"
        ") GROUP BY event_id",
        parameters={"c": contest_id, "r": round_id, "p": contestant_id or ""},
    )
    out = []
    for _eid, payload in res.result_rows:
        ev = orjson.loads(payload)
        if ev.get("data", {}).get("round_id") == round_id:
            out.append(ev)
    return out


def current_judge_scores(events: list[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, Any]]:
    """The score in force per (judge, contestant, criterion): latest observed_at, ties by larger event id
    (docs/events.md, "Judge scores")."""
    best: dict[tuple[str, str, str], dict[str, Any]] = {}
    for ev in events:
        d = ev["data"]
        key = (d["judge_id"], ev["contestant_id"], d["criterion"])
        cur = best.get(key)
        if cur is None or (ev["observed_at"], ev["event_id"]) > (cur["observed_at"], cur["event_id"]):
            best[key] = ev
    return best


async def outbox_events(
    ch: AsyncClient, contest_id: str | None, event_type: str, limit: int = 200
) -> list[dict[str, Any]]:
    where = "AND contest_id = {c:String}" if contest_id else ""
    res = await ch.query(
        "SELECT event_id, actor, produced_at, payload, kafka_partition, kafka_offset FROM board_outbox FINAL "
        f"WHERE type = {{t:String}} {where} ORDER BY produced_at DESC LIMIT {{n:UInt32}}",
        parameters={"c": contest_id or "", "t": event_type, "n": limit},
    )
    out = []
    for r in res.named_results():
        r["event"] = orjson.loads(r.pop("payload"))
        out.append(r)
    return out


async def freeze_requests(ch: AsyncClient, contest_id: str) -> list[dict[str, Any]]:
    res = await ch.query(
        "SELECT round_id, request_id, requested_at, requested_by, status, detail FROM board_freeze_requests FINAL "
        "WHERE contest_id = {c:String} ORDER BY requested_at DESC LIMIT 50",
        parameters={"c": contest_id},
    )
    return list(res.named_results())
