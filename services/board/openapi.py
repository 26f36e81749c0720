"""The OpenAPI 3.1 description of ``/api/v1``, served at ``/api/v1/openapi.json``.

Written by hand next to the handlers; tests/board/test_api.py checks that it lists exactly the routes of
``api_v1.routes()`` with the same operation ids and security, so the two cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from services.board.auth import public
from services.board.errors import json_response

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string", "description": "starts with the offending field, e.g. 'limit: …'"},
                "field": {"type": "string"},
            },
        }
    },
}
_ID = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]*$", "maxLength": 64}
_DEC = {"type": "string", "pattern": "^(0|[1-9][0-9]{0,5})(\\.[0-9]{1,4})?$", "examples": ["8.5"]}

_ROW = {
    "type": "object",
    "properties": {
        "rank": {"type": "integer"},
        "group_id": _ID,
        "contestant_id": _ID,
        "display_name": {"type": "string"},
        "organisation": {"type": "string"},
        "total": {"type": "string", "description": "exact decimal"},
        "total_display": {"type": "string"},
        "data_score": {"type": "string"},
        "judge_score": {"type": "string"},
        "gmv_fen": {"type": "integer", "description": "GMV in 分 (fen)"},
        "net_gmv_fen": {"type": "integer"},
        "paid_orders": {"type": "integer"},
        "viewers": {"type": "integer"},
        "conversion_ppm": {"type": "integer", "description": "parts per million"},
        "award": {"type": "string"},
        "advanced": {"type": "boolean"},
        "last_data_ms": {"type": "integer", "description": "UTC ms"},
        "last_ingested_ms": {"type": ["integer", "null"]},
        "last_arrival_ms": {"type": ["integer", "null"]},
        "stale": {"type": "boolean", "description": "no data arrived within stale_after_ms"},
        "status": {
            "enum": ["ranked", "excluded", "provisional"],
            "description": "excluded = 取消资格 (rank 0, listed last); provisional = held, no award",
        },
        "pending": {"type": "boolean", "description": "待定: a tie left to the organiser's decision"},
        "notes": {"type": "array", "items": {"type": "string"}, "description": "why (zh-CN first)"},
    },
}
_SNAPSHOT = {
    "type": "object",
    "required": ["contest_id", "round_id", "group_id", "version", "rows", "totals"],
    "properties": {
        "contest_id": _ID,
        "round_id": _ID,
        "group_id": {"type": "string", "description": "empty: every group of the round"},
        "contest_name": {"type": "string"},
        "round_name": {"type": "string"},
        "group_name": {"type": "string"},
        "window": {"type": ["object", "null"]},
        "version": {"type": "integer"},
        "computed_at": {"type": "integer"},
        "digest": {"type": "string"},
        "generated_at": {"type": "integer"},
        "server_now_ms": {"type": "integer"},
        "stale_after_ms": {"type": "integer"},
        "totals": {"type": "object"},
        "rows": {"type": "array", "items": {"$ref": "#/components/schemas/LeaderboardRow"}},
    },
}


def _q(name: str, desc: str, schema: dict[str, Any] | None = None, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "description": desc, "schema": schema or _ID}


def _p(name: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema or _ID}


def _json(desc: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"description": desc, "content": {"application/json": {"schema": schema or {"type": "object"}}}}


def _err(*codes: int) -> dict[str, Any]:
    text = {
        400: "invalid input (the message names the field)",
        401: "not logged in / wrong credentials / display token needed",
        403: "wrong role, or CSRF token missing",
        404: "no such contest, round, group or contestant",
        409: "conflict with the current state (item closed, round frozen)",
        413: "body too large",
        415: "not JSON",
        429: "too many failed logins, or too many streams from this client (Retry-After)",
        502: "the scorer refused the freeze (the detail says why) or its freeze command failed",
        503: "too many streams (the rest are kept for the screens' display token; Retry-After)",
    }
    return {str(c): _json(text[c], {"$ref": "#/components/schemas/Error"}) for c in codes}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


_SESSION = [{"session": []}]
_CSRF = [{"session": [], "csrf": []}]
_DISPLAY = [{}, {"displayToken": []}]


def _op(op_id: str, summary: str, security: list[dict[str, Any]] | None, **kw: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"operationId": op_id, "summary": summary}
    if security is not None:
        doc["security"] = security
    doc.update(kw)
    doc.setdefault("responses", {"200": _json("OK")})
    return doc


def document() -> dict[str, Any]:
    lb_params = [
        _q("group", "group (track) id; omitted: every group"),
        _q("limit", "rows (default all, up to 10000)", {"type": "integer", "minimum": 1, "maximum": 10000}),
        _q("token", "display token, when the board has one", {"type": "string"}),
    ]
    paths: dict[str, Any] = {
        "/api/v1/openapi.json": {"get": _op("openapi", "This document", [])},
        "/api/v1/contests": {
            "get": _op(
                "listContests",
                "Contests with rounds and groups",
                _DISPLAY,
                responses={"200": _json("contests"), **_err(401)},
            )
        },
        "/api/v1/contests/{contest_id}/rounds/{round_id}/leaderboard": {
            "get": _op(
                "getLeaderboard",
                "A round's leaderboard (one group or all), with field totals and stale markers. The answer "
                "carries an ETag (content and row limit); send it back in If-None-Match to get 304 while "
                "the leaderboard is unchanged.",
                _DISPLAY,
                parameters=[
                    _p("contest_id"),
                    _p("round_id"),
                    *lb_params,
                    {
                        "name": "If-None-Match",
                        "in": "header",
                        "required": False,
                        "description": "the ETag of the copy the client holds",
                        "schema": {"type": "string"},
                    },
                ],
                responses={
                    "200": _json("snapshot", {"$ref": "#/components/schemas/LeaderboardSnapshot"}),
                    "304": {"description": "unchanged since the ETag sent in If-None-Match"},
                    **_err(400, 401, 404),
                },
            )
        },
        "/api/v1/stream/leaderboard": {
            "get": _op(
                "streamLeaderboard",
                "Server-sent events: `snapshot` events carrying a full LeaderboardSnapshot (top `limit` rows), "
                "first on connect, then on every change. Reconnect with EventSource; no delta handling needed.",
                _DISPLAY,
                parameters=[
                    _q("contest", "contest id", required=True),
                    _q("round", "round id", required=True),
                    _q("group", "group id; omitted: every group"),
                    _q(
                        "limit",
                        "rows per snapshot (default LIVEBOARD_BOARD_SCREEN_TOP_N)",
                        {"type": "integer", "minimum": 1, "maximum": 1000},
                    ),
                    _q("token", "display token", {"type": "string"}),
                ],
                responses={
                    "200": {
                        "description": "event stream",
                        "content": {"text/event-stream": {"schema": {"type": "string"}}},
                    },
                    **_err(400, 401, 404, 429, 503),
                },
            )
        },
        "/api/v1/auth/csrf": {
            "get": _op("loginCsrf", "CSRF token for the login form (sets the anonymous lb_pre cookie)", [])
        },
        "/api/v1/auth/login": {
            "post": _op(
                "login",
                "Log in; sets the lb_session cookie (HttpOnly, SameSite=Strict). Needs X-CSRF-Token from /auth/csrf.",
                [{"csrf": []}],
                requestBody=_body(
                    {
                        "type": "object",
                        "required": ["username", "password"],
                        "properties": {"username": {"type": "string"}, "password": {"type": "string"}},
                    }
                ),
                responses={"200": _json("user and the session's CSRF token"), **_err(400, 401, 403, 429)},
            )
        },
        "/api/v1/auth/logout": {
            "post": _op("logout", "End the session (revoked)", _CSRF, responses={"200": _json("ok"), **_err(401, 403)})
        },
        "/api/v1/auth/session": {
            "get": _op(
                "getSession",
                "The logged-in user and the CSRF token for writes",
                _SESSION,
                responses={"200": _json("session"), **_err(401)},
            )
        },
        "/api/v1/judge/contestants": {
            "get": _op(
                "judgeContestants",
                "The judge's contestants in a round (default: the current one), item states and who is on stage",
                _SESSION,
                parameters=[_q("round", "round id")],
                responses={"200": _json("contestants"), **_err(400, 401, 403, 404)},
            )
        },
        "/api/v1/judge/series": {
            "get": _op(
                "judgeSeries",
                "A contestant's live series over the round (rooms summed): GMV, online, funnel, UV value, GPM, refunds",
                _SESSION,
                parameters=[_q("round", "round id"), _q("contestant", "contestant id", required=True)],
                responses={"200": _json("series"), **_err(400, 401, 403, 404)},
            )
        },
        "/api/v1/judge/scores": {
            "get": _op(
                "judgeGetScores",
                "Criteria with maxima, this judge's scores in force and history; other judges' scores when visible",
                _SESSION,
                parameters=[_q("round", "round id"), _q("contestant", "contestant id", required=True)],
                responses={"200": _json("scores"), **_err(400, 401, 403, 404)},
            ),
            "post": _op(
                "judgeSubmitScores",
                "Submit (or correct) scores: one judge_score event per criterion on lb.events.v1",
                _CSRF,
                requestBody=_body(
                    {
                        "type": "object",
                        "required": ["round_id", "contestant_id", "scores"],
                        "properties": {
                            "round_id": _ID,
                            "contestant_id": _ID,
                            "scores": {"type": "object", "additionalProperties": _DEC, "minProperties": 1},
                        },
                    }
                ),
                responses={
                    "201": _json("events produced (id, partition, offset)"),
                    **_err(400, 401, 403, 404, 409, 415),
                },
            ),
        },
        "/api/v1/ops/health": {
            "get": _op(
                "opsHealth",
                "Ingestion health: feeds and their age, ingest metrics per platform, dead letters, scorer lag, alerts, "
                "and the rooms waiting for their platform's final figures (waiting_final)",
                _SESSION,
                parameters=[_q("contest", "contest id (default: all)")],
                responses={"200": _json("health report"), **_err(401, 403)},
            )
        },
        "/api/v1/ops/alerts": {
            "post": _op(
                "opsAlertAction",
                "Acknowledge, mute (for minutes) or unmute an alert by its key from opsHealth; "
                "audited (who, when, until)",
                _CSRF,
                requestBody=_body(
                    {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["key", "action"],
                        "properties": {
                            "key": {"type": "string", "maxLength": 500},
                            "action": {"enum": ["ack", "mute", "unmute"]},
                            "minutes": {"type": "integer", "minimum": 1, "maximum": 1440},
                            "note": {"type": "string", "maxLength": 500},
                        },
                    }
                ),
                responses={"200": _json("the action recorded"), **_err(400, 401, 403, 415)},
            )
        },
        "/api/v1/judge/figures": {
            "get": _op(
                "judgeFigures",
                "Beside each KPI: the figure as the round's rules score it, the field's median and the contestant's "
                "rank on it; interactions where reported; the reported funnel steps with step-to-step shares",
                _SESSION,
                parameters=[
                    _q("round", "round id (default: the current)"),
                    _q("contestant", "contestant id", required=True),
                ],
                responses={"200": _json("figures"), **_err(400, 401, 403, 404)},
            )
        },
        "/api/v1/anomalies": {
            "get": _op(
                "anomalies",
                "Anomaly alerts (anomaly_detected) with their evidence, newest first; advisory, never scored. "
                "Judges: their contest and groups only",
                _SESSION,
                parameters=[
                    _q("contest", "contest id (operators: required; judges: their own)"),
                    _q("contestant", "one contestant's only"),
                ],
                responses={"200": _json("anomalies"), **_err(400, 401, 403, 404)},
            )
        },
        "/api/v1/ops/alerts/actions": {
            "get": _op(
                "opsAlertActions",
                "Acknowledgements and mutes of alerts, newest first",
                _SESSION,
                parameters=[_q("contest", "contest id (default: all)")],
                responses={"200": _json("alert actions"), **_err(400, 401, 403)},
            )
        },
        "/api/v1/ops/dead-letters": {
            "get": _op(
                "opsDeadLetters",
                "Recent dead letters with reasons",
                _SESSION,
                parameters=[
                    _q("limit", "rows", {"type": "integer", "minimum": 1, "maximum": 1000}),
                    _q("since_ms", "UTC ms", {"type": "integer", "minimum": 0}),
                ],
                responses={"200": _json("dead letters"), **_err(400, 401, 403)},
            )
        },
        "/api/v1/ops/dead-letters/redrive": {
            "post": _op(
                "opsRedriveDeadLetters",
                "Re-drive dead letters through the collector's push path once their cause is fixed (lb.redrive.v1; "
                "de-duplicated like a live push); dry_run answers what would go. Recorded and audited",
                _CSRF,
                requestBody=_body(
                    {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "platform": {"enum": ["wechat_channels", "douyin", "kuaishou"]},
                            "reason": {"type": "string", "maxLength": 500, "description": "substring, any case"},
                            "source": {"type": "string", "examples": ["ingest.kuaishou.webhook"]},
                            "since_ms": {"type": "integer", "minimum": 0, "description": "received at or after"},
                            "until_ms": {"type": "integer", "minimum": 0, "description": "received before"},
                            "limit": {"type": "integer", "minimum": 1, "maximum": 10000},
                            "dry_run": {"type": "boolean"},
                        },
                    }
                ),
                responses={
                    "200": _json("dry run: selected, redrivable, by_reason, skipped (why), sample"),
                    "202": _json("sent: the same plus request_id and sent"),
                    **_err(400, 401, 403, 415),
                },
            )
        },
        "/api/v1/ops/redrives": {
            "get": _op(
                "opsRedrives",
                "Past dead-letter re-drives, newest first: who, when, the selection, how many",
                _SESSION,
                parameters=[_q("limit", "rows", {"type": "integer", "minimum": 1, "maximum": 500})],
                responses={"200": _json("re-drives"), **_err(400, 401, 403)},
            )
        },
        "/api/v1/ops/users": {"get": _op("opsListUsers", "Judge and operator credentials (no hashes)", _SESSION)},
        "/api/v1/ops/judges": {
            "post": _op(
                "opsIssueJudge",
                "Issue or re-issue a judge credential; the generated password is in this answer only",
                _CSRF,
                requestBody=_body(
                    {
                        "type": "object",
                        "required": ["contest_id", "judge_id"],
                        "properties": {
                            "contest_id": _ID,
                            "judge_id": _ID,
                            "groups": {"type": "array", "items": _ID},
                            "username": {"type": "string"},
                            "display_name": {"type": "string"},
                        },
                    }
                ),
                responses={"201": _json("user and password"), **_err(400, 401, 403, 404, 409)},
            )
        },
        "/api/v1/ops/users/{username}/disable": {
            "post": _op(
                "opsDisableUser",
                "Disable a credential (its sessions end)",
                _CSRF,
                parameters=[_p("username", {"type": "string"})],
                responses={"200": _json("user"), **_err(401, 403, 404, 409)},
            )
        },
        "/api/v1/ops/rounds": {
            "get": _op(
                "opsRounds",
                "Rounds with item states, who is on stage, freeze status and requests",
                _SESSION,
                parameters=[_q("contest", "contest id", required=True)],
                responses={"200": _json("rounds"), **_err(400, 401, 403, 404)},
            )
        },
        "/api/v1/ops/items": {
            "post": _op(
                "opsSetItem",
                "Open or close a contestant's item in a round (closed: scores published, no more entry)",
                _CSRF,
                requestBody=_body(
                    {
                        "type": "object",
                        "required": ["contest_id", "round_id", "contestant_id", "state"],
                        "properties": {
                            "contest_id": _ID,
                            "round_id": _ID,
                            "contestant_id": _ID,
                            "state": {"enum": ["open", "closed"]},
                        },
                    }
                ),
                responses={"200": _json("state"), **_err(400, 401, 403, 404)},
            )
        },
        "/api/v1/ops/stage": {
            "post": _op(
                "opsSetStage",
                "Set who is on stage in a round (empty contestant_id: nobody)",
                _CSRF,
                requestBody=_body(
                    {
                        "type": "object",
                        "required": ["contest_id", "round_id"],
                        "properties": {
                            "contest_id": _ID,
                            "round_id": _ID,
                            "contestant_id": {"type": ["string", "null"]},
                        },
                    }
                ),
                responses={"200": _json("stage"), **_err(400, 401, 403, 404)},
            )
        },
        "/api/v1/ops/freeze": {
            "post": _op(
                "opsFreeze",
                "Freeze a round: a request the scorer acts on and answers (its CLI with FREEZE_VIA=command); "
                "202 when the scorer has not answered within the freeze timeout (the request stays queued)",
                _CSRF,
                requestBody=_body(
                    {
                        "type": "object",
                        "required": ["contest_id", "round_id"],
                        "properties": {"contest_id": _ID, "round_id": _ID},
                    }
                ),
                responses={
                    "200": _json("frozen"),
                    "202": _json("recorded, pending"),
                    **_err(400, 401, 403, 404, 409, 502),
                },
            )
        },
        "/api/v1/ops/adjustments": {
            "get": _op(
                "opsListAdjustments",
                "Adjustments recorded through the board",
                _SESSION,
                parameters=[_q("contest", "contest id")],
            ),
            "post": _op(
                "opsRecordAdjustment",
                "Record an appeal decision as a score_adjustment event",
                _CSRF,
                requestBody=_body(
                    {
                        "type": "object",
                        "required": ["contest_id", "round_id", "contestant_id", "kind", "value", "reason", "approver"],
                        "properties": {
                            "contest_id": _ID,
                            "round_id": _ID,
                            "contestant_id": _ID,
                            "adjustment_id": _ID,
                            "kind": {"enum": ["delta", "override"]},
                            "value": {"type": "string", "pattern": "^-?(0|[1-9][0-9]{0,11})(\\.[0-9]{1,4})?$"},
                            "component": {"type": ["string", "null"]},
                            "reason": {"type": "string", "maxLength": 2000},
                            "approver": {"type": "string", "maxLength": 200},
                        },
                    }
                ),
                responses={"201": _json("event produced"), **_err(400, 401, 403, 404, 409)},
            ),
        },
        "/api/v1/ops/audit": {
            "get": _op(
                "opsAudit",
                "The audit log, newest first",
                _SESSION,
                parameters=[
                    _q("limit", "rows", {"type": "integer", "minimum": 1, "maximum": 2000}),
                    _q("action", "only this action"),
                ],
            ),
        },
        "/api/v1/ops/reconciliation": {
            "get": _op(
                "opsReconciliation",
                "对账: where the sales ledger (orders) and the platform's own totals differ beyond the contest's "
                "tolerance, per round, contestant and platform, with the orders that explain it where known",
                _SESSION,
                parameters=[
                    _q("contest", "contest id", required=True),
                    _q("round", "only this round"),
                    _q("all", "1: cleared rows too", {"type": "string", "enum": ["0", "1"]}),
                    _q("limit", "rows", {"type": "integer", "minimum": 1, "maximum": 5000}),
                ],
                responses={"200": _json("reconciliation rows"), **_err(400, 401, 403)},
            )
        },
    }
    # the organiser's workflow (公示, exports, certificates, imports): services/board/organiser_api.py
    from services.board.organiser_api import openapi_paths

    paths.update(openapi_paths(_op, _q, _p, _err, _SESSION, _CSRF))
    # decisions on results (取消资格, tie decisions, appeals, the freeze chain): services/board/decisions_api.py
    from services.board.decisions_api import openapi_paths as decision_paths

    paths.update(decision_paths())
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Liveboard board API",
            "version": "1",
            "description": "Big screen, judges' and operators' consoles. Money in 分 (integer fen), time in UTC ms, "
            "ratios in ppm. Errors: {error: {code, message, field}}.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": {"Error": _ERROR, "LeaderboardRow": _ROW, "LeaderboardSnapshot": _SNAPSHOT},
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": "lb_session"},
                "csrf": {"type": "apiKey", "in": "header", "name": "X-CSRF-Token"},
                "displayToken": {"type": "apiKey", "in": "query", "name": "token"},
            },
        },
    }


_DOC: bytes | None = None


@public
async def openapi_json(request: web.Request) -> web.Response:
    return json_response(document())
