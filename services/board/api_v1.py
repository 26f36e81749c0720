"""``/api/v1``: the route table, the display endpoints (contests, leaderboards, the live stream) and
login/logout. Judges' and operators' endpoints are in judge_api.py and ops_api.py.

Every route is declared once in :data:`ROUTES` with the roles it needs; the auth middleware enforces them
and the OpenAPI document (openapi.py) is checked against the same table by the tests.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from liveboard.contracts.conversion import round_conversion
from services.board import metrics
from services.board.auth import PRE_COOKIE, SESSION_COOKIE, Handler, public, requires, verify_in_thread
from services.board.contests import find_round
from services.board.context import ctx
from services.board.errors import ApiError, json_response, not_found
from services.board.inputs import ident, json_body, query_ident, query_int, text, username
from services.board.reqkeys import SESSION, USER
from services.board.scores_feed import ALL_GROUPS
from services.board.sse import STREAM_GATE, stream_leaderboard


def display(handler: Handler) -> Handler:
    """A read-only display endpoint: public, or behind the display token when one is configured."""
    handler.__lb_display__ = True  # type: ignore[attr-defined]
    return public(handler)


def check_display_token(request: web.Request) -> bool:
    """May this caller read the display endpoints? True: as an authenticated screen (the display token, or
    a judge's/operator's live session: streams from the reserved capacity); False: anonymously (no token
    configured, or ``display_public``); refused with 401 otherwise."""
    c = ctx(request)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        session = c.signer.verify(cookie)
        if session is not None and not (c.revoked is not None and c.revoked.is_revoked(session.sid)):
            return True  # a logged-in judge or operator may read what the screens show
    token = c.board.display_token
    given = request.query.get("token") or request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if token is not None and given and hmac.compare_digest(given.encode(), token.get_secret_value().encode()):
        return True
    if token is None or c.board.display_public:
        return False
    raise ApiError(401, "display_token", "token: this display needs the board's display token (?token=…)")


# ------------------------------------------------------------------------------------------ display


def _contest_doc(c: Any) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "organiser": c.organiser,
        "platforms": list(c.platforms),
        "display_decimals": c.display_decimals,
        "groups": [{"id": g.id, "name": g.name} for g in c.groups],
        "rounds": [
            {
                "id": r.id,
                "name": r.name,
                "stage_id": s.id,
                "window": {"start_ms": r.window.start, "end_ms": r.window.end},
                "groups": c.round_groups(r),
                # the conversion figure this round scores, and its label (leaderboard conversion_ppm)
                "conversion": round_conversion(c, r).to_dict(),
            }
            for s in c.stages
            for r in s.rounds
        ],
    }


# The contest list changes only when a contest file does (the registry then holds new objects): encoded
# once per set of contest objects, not per request.
_contests_encoded: tuple[tuple[Any, ...], bytes] | None = None


def _contests_body(contests: list[Any]) -> bytes:
    global _contests_encoded
    hit = _contests_encoded
    if hit is not None and len(hit[0]) == len(contests) and all(a is b for a, b in zip(hit[0], contests, strict=True)):
        return hit[1]
    body = orjson.dumps({"contests": [_contest_doc(c) for c in contests]})
    _contests_encoded = (tuple(contests), body)  # holds the objects, so their identities stay unique
    return body


@display
async def list_contests(request: web.Request) -> web.Response:
    check_display_token(request)
    return web.Response(
        body=_contests_body(ctx(request).contests.all()),
        content_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


def _round_and_group(
    request: web.Request,
    contest_id: str,
    round_id: str,
    group: str | None,
    fields: tuple[str, str] = ("contest_id", "round_id"),
) -> None:
    # The board knows its contests from its contest folder: an id not there is a 404 here, before the
    # score feed reads (or caches, or re-reads) anything for it.
    c = ctx(request).contests.get(contest_id)
    if c is None:
        raise not_found(f"{fields[0]}: no contest {contest_id!r} on this board", fields[0])
    rnd = find_round(c, round_id)
    if rnd is None:
        raise not_found(f"{fields[1]}: contest {contest_id} has no round {round_id!r}", fields[1])
    if group and group not in c.round_groups(rnd):
        raise not_found(f"group: round {round_id} has no group {group!r}", "group")


@display
async def get_leaderboard(request: web.Request) -> web.Response:
    check_display_token(request)
    contest_id = request.match_info["contest_id"]
    round_id = request.match_info["round_id"]
    ident(contest_id, "contest_id")
    ident(round_id, "round_id")
    group = query_ident(request, "group", required=False) or ALL_GROUPS
    limit = query_int(request, "limit", 1000, 1, 10_000)
    _round_and_group(request, contest_id, round_id, group)
    snap = await ctx(request).hub.snapshot(contest_id, round_id, group)
    etag = snap.etag(limit)
    # A poller that sends back the ETag gets 304 until the leaderboard's content changes (no body, no
    # encoding); "no-cache" lets it keep the copy but makes it ask every time.
    headers = {"Cache-Control": "no-cache", "ETag": etag}
    if etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    return web.Response(body=snap.encoded(limit), content_type="application/json", headers=headers)


@display
async def stream(request: web.Request) -> web.StreamResponse:
    authenticated = check_display_token(request)
    c = ctx(request)
    contest_id = query_ident(request, "contest")
    round_id = query_ident(request, "round")
    group = query_ident(request, "group", required=False) or ALL_GROUPS
    limit = query_int(request, "limit", c.board.screen_top_n, 1, 1000)
    assert contest_id is not None and round_id is not None
    _round_and_group(request, contest_id, round_id, group, ("contest", "round"))
    # Limits per client and in total, with capacity kept for the screens (sse.StreamGate); the slot is
    # taken before anything is awaited and given back when the stream ends.
    gate = request.app[STREAM_GATE]
    addr = c.audit.addr(request)
    gate.admit(addr, authenticated)
    try:
        return await stream_leaderboard(request, c.hub, contest_id, round_id, group, limit, c.board.sse_keepalive_s)
    finally:
        gate.release(addr, authenticated)


# ---------------------------------------------------------------------------------------- sessions


def _cookie_args(request: web.Request, max_age: int | None) -> dict[str, Any]:
    return {
        "httponly": True,
        "samesite": "Strict",
        "secure": ctx(request).board.secure_cookies(),
        "path": "/",
        "max_age": max_age,
    }


@public
async def login_csrf(request: web.Request) -> web.Response:
    """A CSRF token for the login form, bound to an anonymous HttpOnly cookie."""
    c = ctx(request)
    pre = request.cookies.get(PRE_COOKIE)
    if not pre or len(pre) > 64:
        pre = secrets.token_urlsafe(16)
    resp = json_response({"csrf_token": c.signer.csrf_token("pre:" + pre)})
    resp.set_cookie(PRE_COOKIE, pre, **_cookie_args(request, 3600))
    return resp


@public
async def login(request: web.Request) -> web.Response:
    c = ctx(request)
    pre = request.cookies.get(PRE_COOKIE, "")
    if not pre or not c.signer.check_csrf("pre:" + pre, request.headers.get("X-CSRF-Token")):
        raise ApiError(
            403, "csrf", "X-CSRF-Token: missing or wrong (GET /api/v1/auth/csrf first)", field="X-CSRF-Token"
        )
    body = await json_body(request)
    name = username(body.get("username"))
    password = text(body.get("password"), "password", max_len=256)
    assert password is not None
    ip = c.audit.addr(request)
    # Reserve the attempt before anything is awaited: counted as failed until the password proves right, so
    # concurrent attempts cannot all pass the check (auth.LoginThrottle).
    wait, stamp = c.throttle.reserve(ip, name)
    if wait <= 0 and c.shared_throttle is not None:
        try:
            wait = await c.shared_throttle.retry_after(ip, name)
        except BaseException:
            c.throttle.release(ip, name, stamp)
            raise
        if wait > 0:
            c.throttle.release(ip, name, stamp)
    if wait > 0:
        metrics.LOGINS.labels("throttled").inc()
        await c.audit.record(request, actor=name, role="", action="login", outcome="throttled")
        raise ApiError(
            429,
            "too_many_attempts",
            f"too many failed logins; try again in {int(wait) + 1} s",
            headers={"Retry-After": str(int(wait) + 1)},
        )
    try:
        user = await c.users.get(name, fresh=True)
        ok = await verify_in_thread(password, user.password_hash if user else None)
    except BaseException:
        c.throttle.release(ip, name, stamp)  # not a failed password check (ClickHouse away, cancelled)
        raise
    if not ok or user is None or user.disabled:
        metrics.LOGINS.labels("failed").inc()  # already counted by the reservation
        await c.audit.record(request, actor=name, role="", action="login", outcome="failed")
        raise ApiError(401, "bad_credentials", "wrong username or password")
    c.throttle.succeeded(ip, name, stamp)
    token, session = c.signer.issue(user)
    metrics.LOGINS.labels("ok").inc()
    await c.audit.record(
        request, actor=user.username, role=user.role, action="login", contest_id=user.contest_id, target=session.sid
    )
    resp = json_response(
        {"user": user.public(), "csrf_token": c.signer.csrf_token(session.sid), "expires_at": session.exp_ms}
    )
    resp.set_cookie(SESSION_COOKIE, token, **_cookie_args(request, c.board.session_ttl_s))
    resp.del_cookie(PRE_COOKIE, path="/")
    return resp


@requires("judge", "operator")
async def logout(request: web.Request) -> web.Response:
    c = ctx(request)
    user = request[USER]
    if c.revoked is not None:  # the cookie stops working now, not only in this browser
        await c.revoked.revoke(request[SESSION], by=user.username)
    await c.audit.record(request, actor=user.username, role=user.role, action="logout", target=request[SESSION].sid)
    resp = json_response({"ok": True})
    resp.del_cookie(SESSION_COOKIE, path="/")
    return resp


@requires("judge", "operator")
async def session_info(request: web.Request) -> web.Response:
    c = ctx(request)
    s = request[SESSION]
    return json_response(
        {"user": request[USER].public(), "csrf_token": c.signer.csrf_token(s.sid), "expires_at": s.exp_ms}
    )


# ------------------------------------------------------------------------------------------- table


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    operation_id: str


def routes() -> list[Route]:
    import services.board.decisions_api as decisions_api
    from services.board import alerts, judge_api, judge_figures, ops_api, organiser_api, reconcile_api
    from services.board.openapi import openapi_json

    return [
        Route("GET", "/api/v1/openapi.json", openapi_json, "openapi"),
        Route("GET", "/api/v1/contests", list_contests, "listContests"),
        Route("GET", "/api/v1/contests/{contest_id}/rounds/{round_id}/leaderboard", get_leaderboard, "getLeaderboard"),
        Route("GET", "/api/v1/stream/leaderboard", stream, "streamLeaderboard"),
        Route("GET", "/api/v1/auth/csrf", login_csrf, "loginCsrf"),
        Route("POST", "/api/v1/auth/login", login, "login"),
        Route("POST", "/api/v1/auth/logout", logout, "logout"),
        Route("GET", "/api/v1/auth/session", session_info, "getSession"),
        Route("GET", "/api/v1/judge/contestants", judge_api.contestants, "judgeContestants"),
        Route("GET", "/api/v1/judge/series", judge_api.series, "judgeSeries"),
        Route("GET", "/api/v1/judge/scores", judge_api.get_scores, "judgeGetScores"),
        Route("POST", "/api/v1/judge/scores", judge_api.submit_scores, "judgeSubmitScores"),
        Route("GET", "/api/v1/ops/health", ops_api.health, "opsHealth"),
        Route("GET", "/api/v1/ops/dead-letters", ops_api.dead_letters, "opsDeadLetters"),
        Route("POST", "/api/v1/ops/alerts", alerts.act_on_alert, "opsAlertAction"),
        Route("GET", "/api/v1/ops/alerts/actions", alerts.alert_history, "opsAlertActions"),
        Route("GET", "/api/v1/anomalies", alerts.anomalies, "anomalies"),
        Route("GET", "/api/v1/judge/figures", judge_figures.figures, "judgeFigures"),
        Route("POST", "/api/v1/ops/dead-letters/redrive", ops_api.redrive_dead_letters, "opsRedriveDeadLetters"),
        Route("GET", "/api/v1/ops/redrives", ops_api.redrives, "opsRedrives"),
        Route("GET", "/api/v1/ops/users", ops_api.list_users, "opsListUsers"),
        Route("POST", "/api/v1/ops/judges", ops_api.issue_judge, "opsIssueJudge"),
        Route("POST", "/api/v1/ops/users/{username}/disable", ops_api.disable_user, "opsDisableUser"),
        Route("GET", "/api/v1/ops/rounds", ops_api.rounds, "opsRounds"),
        Route("POST", "/api/v1/ops/items", ops_api.set_item, "opsSetItem"),
        Route("POST", "/api/v1/ops/stage", ops_api.set_stage, "opsSetStage"),
        Route("POST", "/api/v1/ops/freeze", ops_api.freeze, "opsFreeze"),
        Route("GET", "/api/v1/ops/adjustments", ops_api.list_adjustments, "opsListAdjustments"),
        Route("POST", "/api/v1/ops/adjustments", ops_api.record_adjustment, "opsRecordAdjustment"),
        Route("GET", "/api/v1/ops/audit", ops_api.audit_log, "opsAudit"),
        *(Route(m, p, h, o) for m, p, h, o in decisions_api.routes()),  # 取消资格, ties, appeals, freeze chain
        *(Route(m, p, h, o) for m, p, h, o in organiser_api.routes()),  # 公示, exports, imports
        Route("GET", "/api/v1/ops/reconciliation", reconcile_api.reconciliation, "opsReconciliation"),
    ]
