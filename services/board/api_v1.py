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
from services.board.audit import client_addr
from services.board.auth import PRE_COOKIE, SESSION_COOKIE, Handler, public, requires, verify_in_thread
from services.board.contests import find_round
from services.board.context import ctx
from services.board.errors import ApiError, json_response, not_found
from services.board.inputs import ident, json_body, query_ident, query_int, text, username
from services.board.reqkeys import SESSION, USER
from services.board.scores_feed import ALL_GROUPS
from services.board.sse import stream_leaderboard


def display(handler: Handler) -> Handler:
    """A read-only display endpoint: public, or behind the display token when one is configured."""
    handler.__lb_display__ = True  # type: ignore[attr-defined]
    return public(handler)


def check_display_token(request: web.Request) -> None:
    c = ctx(request)
    token = c.board.display_token
    if token is None:
        return
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie and c.signer.verify(cookie) is not None:
        return  # a logged-in judge or operator may read what the screens show
    given = request.query.get("token") or request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not given or not hmac.compare_digest(given.encode(), token.get_secret_value().encode()):
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


def _round_and_group(request: web.Request, contest_id: str, round_id: str, group: str | None) -> None:
    c = ctx(request).contests.get(contest_id)
    if c is None:
        # A contest without a file can still be displayed from the leaderboard table alone.
        return
    rnd = find_round(c, round_id)
    if rnd is None:
        raise not_found(f"round_id: contest {contest_id} has no round {round_id!r}", "round_id")
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
    check_display_token(request)
    c = ctx(request)
    contest_id = query_ident(request, "contest")
    round_id = query_ident(request, "round")
    group = query_ident(request, "group", required=False) or ALL_GROUPS
    limit = query_int(request, "limit", c.board.screen_top_n, 1, 1000)
    assert contest_id is not None and round_id is not None
    _round_and_group(request, contest_id, round_id, group)
    if c.hub.client_count() >= c.board.sse_max_clients:
        raise ApiError(
            503, "too_many_streams", "the board serves its maximum number of streams", headers={"Retry-After": "5"}
        )
    return await stream_leaderboard(request, c.hub, contest_id, round_id, group, limit, c.board.sse_keepalive_s)


# ---------------------------------------------------------------------------------------- sessions


def _cookie_args(request: web.Request, max_age: int | None) -> dict[str, Any]:
    return {
        "httponly": True,
        "samesite": "Strict",
        "secure": ctx(request).board.cookie_secure,
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
    ip = client_addr(request, c.board.trust_proxy)
    wait = c.throttle.retry_after(ip, name)
    if c.shared_throttle is not None:
        wait = max(wait, await c.shared_throttle.retry_after(ip, name))
    if wait > 0:
        metrics.LOGINS.labels("throttled").inc()
        await c.audit.record(request, actor=name, role="", action="login", outcome="throttled")
        raise ApiError(
            429,
            "too_many_attempts",
            f"too many failed logins; try again in {int(wait) + 1} s",
            headers={"Retry-After": str(int(wait) + 1)},
        )
    user = await c.users.get(name, fresh=True)
    ok = await verify_in_thread(password, user.password_hash if user else None)
    if not ok or user is None or user.disabled:
        c.throttle.failed(ip, name)
        metrics.LOGINS.labels("failed").inc()
        await c.audit.record(request, actor=name, role="", action="login", outcome="failed")
        raise ApiError(401, "bad_credentials", "wrong username or password")
    c.throttle.succeeded(ip, name)
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
    from services.board import judge_api, ops_api, organiser_api, reconcile_api
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
