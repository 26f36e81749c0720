"""The operators' alerts as people read them: each alert named by its contestant (name + platform) instead of
raw ids, with a stable key, and acknowledged or muted by an operator (who, when, until; audited).

An alert's key is deterministic (kind, contest, platform, room or contestant), so an acknowledgement or a
mute follows the condition across refreshes and board workers. Acknowledged alerts stay in the list, marked;
muted ones move to ``muted`` until their mute ends (or an ``unmute``). Nothing here changes what the monitor
detects: the state lives in ``board_alert_acks`` (migration 0070) and every action in ``board_audit``.
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import Any

import orjson
from aiohttp import web
from clickhouse_connect.driver.asyncclient import AsyncClient

from liveboard.contracts.contest import Contest
from services.board.auth import forbidden, requires
from services.board.context import ctx
from services.board.errors import bad_request, json_response, not_found
from services.board.inputs import json_body, query_ident, text
from services.board.recording import actor, audit
from services.board.reqkeys import USER

log = logging.getLogger(__name__)

ACTIONS = ("ack", "mute", "unmute")
MAX_MUTE_MIN = 24 * 60
_KEY_PARTS = ("kind", "contest_id", "platform", "room_id", "contestant_id", "group_id")


def alert_key(alert: dict[str, Any]) -> str:
    """``kind|contest|platform|room|contestant|…``: the same condition gets the same key on every look."""
    return "|".join(str(alert.get(k) or "") for k in _KEY_PARTS)


def contestant_names(contests: list[Contest]) -> dict[tuple[str, str], str]:
    return {(c.id, p.id): p.name for c in contests for p in c.contestants}


def name_rows(rows: list[dict[str, Any]], names: dict[tuple[str, str], str], contest_id: str | None) -> None:
    """Add ``display_name`` (the contestant's name from the contest file, else her id) where a row has one."""
    for r in rows:
        cid = r.get("contestant_id")
        if cid:
            r["display_name"] = names.get((r.get("contest_id") or contest_id or "", cid), cid)


async def current_acks(ch: AsyncClient, keys: list[str]) -> dict[str, dict[str, Any]]:
    """The newest action per alert key."""
    if not keys:
        return {}
    try:
        res = await ch.query(
            "SELECT alert_key, argMax(tuple(action, actor, at_ms, until_ms, note), (at_ms, ack_id)) AS last "
            "FROM board_alert_acks WHERE alert_key IN {k:Array(String)} GROUP BY alert_key",
            parameters={"k": keys},
        )
    except Exception as exc:  # the console shows the alerts all the same, unacknowledged
        log.warning("alert acknowledgements: query failed", extra={"fields": {"error": repr(exc)}})
        return {}
    out = {}
    for key, (action, who, at_ms, until_ms, note) in res.result_rows:
        out[key] = {"action": action, "actor": who, "at_ms": int(at_ms), "until_ms": int(until_ms), "note": note}
    return out


async def annotate(
    ch: AsyncClient, report: dict[str, Any], names: dict[tuple[str, str], str], now: int
) -> dict[str, Any]:
    """A copy of the monitor's report with names, keys, acknowledgements and mutes applied."""
    out = dict(report)
    contest_id = report.get("contest_id")
    feeds = [dict(f) for f in report.get("feeds", [])]
    name_rows(feeds, names, contest_id)
    out["feeds"] = feeds
    waiting = [dict(r) for r in report.get("waiting_final", [])]
    name_rows(waiting, names, contest_id)
    out["waiting_final"] = waiting
    alerts = [dict(a) for a in report.get("alerts", [])]
    # a room the collector reports (stale_room) is named by the contestant whose feed it is
    by_room = {(f["platform"], f["room_id"]): f for f in feeds}
    for a in alerts:
        f = by_room.get((a.get("platform"), a.get("room_id")))
        if f is not None and not a.get("contestant_id"):
            a["contestant_id"], a["contest_id"] = f["contestant_id"], f["contest_id"]
    name_rows(alerts, names, contest_id)
    for a in alerts:
        a["key"] = alert_key(a)
    acks = await current_acks(ch, sorted({a["key"] for a in alerts}))
    active, muted = [], []
    for a in alerts:
        ack = acks.get(a["key"])
        if ack is not None and ack["action"] == "mute" and ack["until_ms"] > now:
            a["muted"] = {"by": ack["actor"], "at_ms": ack["at_ms"], "until_ms": ack["until_ms"], "note": ack["note"]}
            muted.append(a)
            continue
        if ack is not None and ack["action"] == "ack":
            a["acknowledged"] = {"by": ack["actor"], "at_ms": ack["at_ms"], "note": ack["note"]}
        active.append(a)
    out["alerts"] = active
    out["muted_alerts"] = muted
    return out


@requires("operator")
async def act_on_alert(request: web.Request) -> web.Response:
    """Acknowledge, mute (for ``minutes``) or unmute an alert by its key; audited with who, when and until."""
    c = ctx(request)
    body = await json_body(request)
    action = body.get("action")
    if action not in ACTIONS:
        raise bad_request("action", f"must be one of {', '.join(ACTIONS)}")
    key = text(body.get("key"), "key", max_len=500)
    assert key is not None
    if key.count("|") != len(_KEY_PARTS) - 1:
        raise bad_request("key", "not an alert key (take it from the alert's 'key' in /api/v1/ops/health)")
    note = text(body.get("note"), "note", max_len=500, required=False) or ""
    now = time.time_ns() // 1_000_000
    until = 0
    if action == "mute":
        minutes = body.get("minutes")
        if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= MAX_MUTE_MIN:
            raise bad_request("minutes", f"must be an integer from 1 to {MAX_MUTE_MIN}")
        until = now + minutes * 60_000
    contest_id = key.split("|")[1]
    by = actor(request).username
    row = [key, contest_id, action, by, now, until, note, secrets.token_hex(8)]
    await c.ch.insert(
        "board_alert_acks",
        [row],
        column_names=["alert_key", "contest_id", "action", "actor", "at_ms", "until_ms", "note", "ack_id"],
        settings={"async_insert": 0},
    )
    await audit(
        request,
        f"alert_{action}",
        contest_id=contest_id,
        target=key,
        detail={"until_ms": until or None, "note": note},
    )
    return json_response({"key": key, "action": action, "by": by, "at_ms": now, "until_ms": until or None})


@requires("operator")
async def alert_history(request: web.Request) -> web.Response:
    """Acknowledgements and mutes, newest first (optionally of one contest)."""
    c = ctx(request)
    contest_id = query_ident(request, "contest", required=False)
    where = "WHERE contest_id = {c:String}" if contest_id else ""
    res = await c.ch.query(
        f"SELECT alert_key, contest_id, action, actor, at_ms, until_ms, note FROM board_alert_acks {where} "
        "ORDER BY at_ms DESC, ack_id DESC LIMIT 200",
        parameters={"c": contest_id or ""},
    )
    rows = [{**r, "at_ms": int(r["at_ms"]), "until_ms": int(r["until_ms"]) or None} for r in res.named_results()]
    return json_response({"actions": rows})


# ------------------------------------------------------------------------------------ anomaly alerts


async def anomaly_rows(
    ch: AsyncClient, contest_id: str, contestant_id: str | None, limit: int = 200
) -> list[dict[str, Any]]:
    """The detector's ``anomaly_detected`` events from the archive, newest first (one per event id)."""
    where = "AND contestant_id = {p:String}" if contestant_id else ""
    res = await ch.query(
        "SELECT any(payload) FROM events_archive WHERE type = 'anomaly_detected' AND contest_id = {c:String} "
        f"{where} GROUP BY event_id ORDER BY max(observed_at) DESC LIMIT {{n:UInt32}}",
        parameters={"c": contest_id, "p": contestant_id or "", "n": limit},
    )
    out = []
    for (payload,) in res.result_rows:
        ev = orjson.loads(payload)
        out.append(
            {
                "event_id": ev["event_id"],
                "contestant_id": ev["contestant_id"],
                "platform": ev["platform"],
                "room_id": ev["room_id"],
                "observed_at": ev["observed_at"],
                **ev["data"],
            }
        )
    return out


@requires("operator", "judge")
async def anomalies(request: web.Request) -> web.Response:
    """Anomaly alerts with their evidence (advisory: they never change a score). Judges see those of their
    own contest and groups; operators any contest's."""
    c = ctx(request)
    user = request[USER]
    contest_id = query_ident(request, "contest", required=user.role != "judge")
    if user.role == "judge":
        if contest_id not in (None, user.contest_id):
            raise forbidden("contest: a judge sees the anomalies of the contest of the credential only")
        contest_id = user.contest_id
    assert contest_id is not None
    contest = c.contests.get(contest_id)
    if contest is None:
        raise not_found(f"contest: no contest {contest_id!r} on the board", "contest")
    contestant_id = query_ident(request, "contestant", required=False)
    rows = await anomaly_rows(c.ch, contest_id, contestant_id)
    people = {p.id: p for p in contest.contestants}
    if user.role == "judge" and user.groups:
        rows = [r for r in rows if r["contestant_id"] in people and people[r["contestant_id"]].group in user.groups]
    for r in rows:
        p = people.get(r["contestant_id"])
        r["display_name"] = p.name if p else r["contestant_id"]
    return json_response({"contest_id": contest_id, "anomalies": rows})
