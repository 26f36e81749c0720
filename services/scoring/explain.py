"""``liveboard score explain CONTEST CONTESTANT``: a score down to the events behind it.

From ClickHouse: the newest ``scores`` row per round (the formula tree with every input, weight, rule and
adjustment, and the evidence: which snapshot of which room counted, judges' sheets, orders), the
leaderboard row, and from the archive the exact event counts per type and source (how many, first and
last observation time, how many ``final``) — so every number traces to event ids in ``events_archive``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson

from liveboard.clickhouse.client import get_client
from liveboard.errors import LiveboardError
from liveboard.settings import Settings
from services.scoring.config import ScorerSettings

CST = timezone(timedelta(hours=8))


class ExplainError(LiveboardError):
    pass


def explain_contestant(
    settings: Settings, _cfg: ScorerSettings, contest_id: str, contestant_id: str, round_id: str | None
) -> dict[str, Any]:
    client = get_client(settings)
    try:
        p = {"c": contest_id, "p": contestant_id, "r": round_id or ""}
        round_filter = "AND round_id = {r:String}" if round_id else ""
        scores = client.query(
            "SELECT round_id, argMax(version, version), argMax(computed_at, version), argMax(rank, version), "
            "argMax(total, version), argMax(explanation, version), argMax(events_counted, version), "
            "argMax(last_event_ms, version), argMax(group_id, version) FROM scores "
            f"WHERE contest_id = {{c:String}} AND contestant_id = {{p:String}} {round_filter} GROUP BY round_id "
            "ORDER BY round_id",
            parameters=p,
        ).result_rows
        board = {
            r[0]: r[1:]
            for r in client.query(
                "SELECT round_id, rank, total_display, version, frozen, award FROM leaderboard FINAL "
                f"WHERE contest_id = {{c:String}} AND contestant_id = {{p:String}} {round_filter}",
                parameters=p,
            ).result_rows
        }
        pending = {
            r[0]: r[1:]
            for r in client.query(
                "SELECT round_id, frozen_rank, frozen_total, live_rank, live_total FROM pending_revisions FINAL "
                f"WHERE contest_id = {{c:String}} AND contestant_id = {{p:String}} AND differs = 1 {round_filter}",
                parameters=p,
            ).result_rows
        }
        counts = client.query(
            "SELECT type, platform, account_id, if(room_id != '', room_id, video_id) AS source_id, count(), "
            "min(observed_at), max(observed_at), countIf(revision = 'final'), max(ingested_at) "
            "FROM events_archive FINAL WHERE contest_id = {c:String} AND contestant_id = {p:String} "
            "GROUP BY type, platform, account_id, source_id ORDER BY type, platform, account_id, source_id",
            parameters=p,
        ).result_rows
    finally:
        client.close()
    if not scores and not counts:
        raise ExplainError(f"no scores and no archived events for {contestant_id} in contest {contest_id}")
    rounds = []
    for rid, version, computed_at, rank, total, explanation, events_counted, last_event_ms, group in scores:
        doc = orjson.loads(explanation)
        b = board.get(rid)
        rounds.append(
            {
                "round_id": rid,
                "group_id": group,
                "version": int(version),
                "computed_at": int(computed_at),
                "rank": int(rank),
                "total": total,
                "events_counted": int(events_counted),
                "last_event_ms": int(last_event_ms),
                "leaderboard": (
                    {"rank": b[0], "total_display": b[1], "version": int(b[2]), "frozen": bool(b[3]), "award": b[4]}
                    if b
                    else None
                ),
                "pending_revision": (
                    {"frozen_rank": pr[0], "frozen_total": pr[1], "live_rank": pr[2], "live_total": pr[3]}
                    if (pr := pending.get(rid))
                    else None
                ),
                "score": doc,
            }
        )
    archive = [
        {
            "type": t,
            "platform": plat,
            "account_id": acct,
            "source_id": src,
            "events": int(n),
            "first_observed_at": int(first),
            "last_observed_at": int(last),
            "final": int(final),
            "last_ingested_at": int(ing),
        }
        for t, plat, acct, src, n, first, last, final, ing in counts
    ]
    return {"contest_id": contest_id, "contestant_id": contestant_id, "rounds": rounds, "archive": archive}


def _t(ms: int | None) -> str:
    if not ms:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).astimezone(CST).strftime("%Y-%m-%d %H:%M:%S")


def _tree(node: dict[str, Any], indent: str) -> list[str]:
    weight = f" × {node['weight']}%" if node.get("weight") else ""
    head = (
        f"{indent}{node['name']} ({node['id']}): {node['value']}/{node['max_points']}{weight} → {node['contribution']}"
    )
    out = [head]
    if node.get("rule"):
        out.append(f"{indent}    rule: {node['rule']}")
    inputs = node.get("inputs") or {}
    if node["kind"] == "metric" and inputs:
        missing = " (missing → 0)" if inputs.get("missing") else ""
        out.append(
            f"{indent}    input: {inputs.get('metric')} = {inputs.get('value')}{missing}; "
            f"field min {inputs.get('field_min')} max {inputs.get('field_max')}; parts {inputs.get('parts')}"
        )
    if node["kind"] == "judges" and inputs:
        for judge, sheet in inputs.get("sheets", {}).items():
            out.append(f"{indent}    judge {judge}: {sheet.get('total')} {sheet.get('points')}")
        if inputs.get("dropped"):
            out.append(f"{indent}    dropped: {', '.join(inputs['dropped'])}")
    for a in node.get("adjustments") or []:
        out.append(f"{indent}    adjustment {a['adjustment_id']}: {a['kind']} {a['value']} ({a.get('reason', '')})")
    for child in node.get("children") or []:
        out.extend(_tree(child, indent + "  "))
    return out


def standing_lines(score: dict[str, Any], indent: str) -> list[str]:
    """Why a row is 取消资格, 待定 or 并列 (and what data it lacks), zh-CN first, from its score document."""
    status = score.get("status") or score.get("explanation", {}).get("status") or "ranked"
    flags = []
    if status == "excluded":
        flags.append("取消资格 excluded")
    elif status == "provisional":
        flags.append("待定（数据或评分未齐）provisional")
    if score.get("pending"):
        flags.append("待定（并列待裁定）pending tie decision")
    if score.get("tied"):
        flags.append("并列 tied")
    if score.get("complete") is False:
        flags.append("输入未齐 incomplete")
    out = [f"{indent}状态 standing: {' · '.join(flags)}"] if flags else []
    notes = score.get("notes")
    if notes is None:
        notes = score.get("explanation", {}).get("notes") or []
    out.extend(f"{indent}  说明 why: {n}" for n in notes)
    return out


def _slot_entry_lines(ev: dict[str, Any]) -> list[str]:
    """The live slot and the registered entries a round's figures came from (docs/scoring.md)."""
    out = []
    slot = ev.get("slot")
    if slot is not None:
        if slot.get("start") is None:
            out.append(f"  live slot: none — {slot.get('note', '')}")
        else:
            src = f"event {slot['event_id']}" if slot.get("source") == "event" else "contest file"
            why = f"; {slot['reason']}" if slot.get("reason") else ""
            out.append(
                f"  live slot {_t(slot['start'])} … {_t(slot['end'])} ({src}{why}): only live data inside it counts"
            )
            if slot.get("note"):
                out.append(f"    {slot['note']}")
            for r in slot.get("rooms", []):
                flag = f"; {r['note']}" if r.get("note") else ""
                out.append(
                    f"    room {r['room_id']}: snapshot {r['event_id']} observed {_t(r['observed_at'])}; "
                    f"{r['snapshots_before_slot']} before and {r['snapshots_after_slot']} after the slot not "
                    f"counted{flag}"
                )
    entries = ev.get("entries")
    if entries:
        cut = entries["cutoff"]
        when = (
            f"{cut['after_publish_hours']} h after publishing"
            if "after_publish_hours" in cut
            else f"before {_t(cut['before'])}"
        )
        out.append(f"  registered entries (copies: {entries['copies']}; each video as of {when}):")
        for v in entries["videos"]:
            copy = f" (copy of {v['copy_of']})" if v.get("copy_of") else ""
            reg = v["registration_event_id"] or "contest file"
            if v["counted"]:
                likes = f", likes at 24 h {v['likes_24h']['likes']}" if v.get("likes_24h") else ""
                status = (
                    f"counted: snapshot {v['event_id']} observed {_t(v['observed_at'])}, values {v['values']}{likes}"
                )
            else:
                status = f"NOT counted: {v.get('note')}"
            out.append(
                f"    video {v['platform']}/{v['account_id']}/{v['video_id']}{copy}: {status}; registered by "
                f"{v['registered_by']} ({reg})"
            )
        for u in entries.get("unregistered", []):
            out.append(
                f"    video {u['platform']}/{u['account_id']}/{u['video_id']}: NOT counted: "
                f"{entries.get('unregistered_note', '')}"
            )
    return out


def render(doc: dict[str, Any]) -> str:
    out = [f"{doc['contestant_id']} in {doc['contest_id']}"]
    for r in doc["rounds"]:
        s = r["score"]
        out.append("")
        out.append(
            f"■ round {r['round_id']} (group {r['group_id']}): rank {r['rank']}, total {s.get('total_display')} "
            f"({r['total']}), version {r['version']} at {_t(r['computed_at'])}, rule version {s.get('rule_version')}"
        )
        out.extend(standing_lines(s, "  "))
        if r["leaderboard"]:
            lb = r["leaderboard"]
            frozen = " (frozen)" if lb["frozen"] else ""
            out.append(f"  leaderboard: rank {lb['rank']} {lb['total_display']} {lb['award']}{frozen}")
        if r["pending_revision"]:
            pr = r["pending_revision"]
            out.append(
                f"  PENDING REVISION: frozen rank {pr['frozen_rank']} {pr['frozen_total']} → "
                f"with later events rank {pr['live_rank']} {pr['live_total']}"
            )
        out.append(f"  events counted: {r['events_counted']}, last event {_t(r['last_event_ms'])}")
        out.extend(_tree(s["explanation"]["formula"], "  "))
        for a in s["explanation"].get("total_adjustments") or []:
            out.append(f"  total adjustment {a['adjustment_id']}: {a['kind']} {a['value']} ({a.get('reason', '')})")
        for rej in s["explanation"].get("rejected") or []:
            out.append(f"  rejected {rej['what']}: {rej['reason']}")
        ev = s.get("evidence", {})
        for room in ev.get("rooms", []):
            used = "counted" if room["counted"] else f"NOT counted: {room.get('note')}"
            out.append(
                f"  room {room['platform']}/{room['account_id']}/{room['room_id']}: snapshot {room['event_id']} "
                f"({room['revision']}, observed {_t(room['observed_at'])}), {used}; values {room.get('values', {})}"
            )
        out.extend(_slot_entry_lines(ev))
        for video in ev.get("videos", []):
            out.append(
                f"  video {video['platform']}/{video['video_id']}: snapshot {video['event_id']} ({video['revision']}, "
                f"observed {_t(video['observed_at'])}), {'counted' if video['counted'] else 'NOT counted'}"
            )
        if "orders" in ev:
            o = ev["orders"]
            out.append(
                f"  orders: {o['paid']} paid {o['paid_fen']} 分, {o['refunded']} refunded {o['refund_fen']} 分, "
                f"net {o['net_fen']} 分 ({o['status_events']} status events)"
            )
            for plat, led in (o.get("platforms") or {}).items():
                for late in led.get("late_refunds", []):
                    out.append(
                        f"  late refund {plat}/{late['order_id']}/{late['refund_id']}: {late['amount_fen']} 分 at "
                        f"{_t(late['observed_at'])}, after the after-sales cut-off: recorded, not counted"
                    )
                for held in led.get("held_refunds", []):
                    out.append(
                        f"  held refund {plat}/{held['order_id']}/{held['refund_id']}: {held['amount_fen']} 分, "
                        "no payment seen yet: counted once the payment arrives"
                    )
        for metric, by_platform in (ev.get("sales_sources") or {}).items():
            srcs = ", ".join(f"{p}: {src}" for p, src in by_platform.items())
            out.append(f"  sales source {metric}: {srcs}")
        for plat, rec in (ev.get("reconciliation") or {}).items():
            state = "MISMATCH " + ", ".join(rec["reasons"]) if rec["mismatch"] else "matches"
            out.append(
                f"  reconciliation {plat}: {state}; ledger {rec['ledger_gmv_fen']} 分 / {rec['ledger_orders_paid']} "
                f"orders vs platform {rec['snapshot_gmv_fen']} 分 / {rec['snapshot_orders_paid']} orders "
                f"(tolerance {rec['tolerance_fen']} 分, {rec['tolerance_orders']} orders)"
            )
        for j in ev.get("judge_scores", []):
            out.append(f"  judge score {j['judge_id']}/{j['criterion']} = {j['points']} ({j['event_id']})")
        for a in ev.get("adjustments", []):
            out.append(f"  adjustment {a['adjustment_id']} ({a['event_id']})")
    out.append("")
    out.append("archived events (events_archive, de-duplicated):")
    for a in doc["archive"]:
        src = "/".join(x for x in (a["platform"], a["account_id"], a["source_id"]) if x) or "-"
        out.append(
            f"  {a['type']:<22} {src:<40} {a['events']:>7} events ({a['final']} final), "
            f"observed {_t(a['first_observed_at'])} … {_t(a['last_observed_at'])}"
        )
    return "\n".join(out)
