"""Operators' endpoints: ingestion health, dead letters, judge credentials, items and stage, appeal
adjustments, round freezes and the audit log. Every write is audited (who, when, what, from where).

Freezing: the scorer owns ``round_frozen`` (it alone can compute the content hash and leaderboard digest),
and services never import each other, so the board runs the scorer's CLI,
``liveboard score freeze CONTEST ROUND`` (``LIVEBOARD_BOARD_FREEZE_COMMAND``), and records the request and
its outcome in ``board_freeze_requests``. When that command is not installed the request stays recorded as
``pending`` for the scorer's operator to run by hand; the console shows it until ``frozen_rounds`` has the
round.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

from aiohttp import web

from liveboard.contracts import EventValidationError
from liveboard.contracts.decisions import adjustment_event, case_id
from services.board import alerts, queries
from services.board.auth import User, generate_password, hash_password, requires
from services.board.clock import stamp_ms
from services.board.context import BoardContext, ctx
from services.board.errors import ApiError, bad_request, json_response, not_found
from services.board.inputs import ident, json_body, query_ident, query_int, req_ident, signed_decimal, text, username
from services.board.recording import (
    QUERY,
    actor,
    audit,
    check_contestant,
    contest_round,
    formula_components,
    freeze_round,
    posted_round,
    publish,
    reason_approver,
)

# ------------------------------------------------------------------------------------------- health


@requires("operator")
async def health(request: web.Request) -> web.Response:
    contest_id = query_ident(request, "contest", required=False)
    c = ctx(request)
    report = await c.monitor.report(contest_id)
    # names instead of raw ids, alert keys, acknowledgements and mutes (services/board/alerts.py)
    names = alerts.contestant_names(c.contests.all())
    return json_response(await alerts.annotate(c.ch, report, names, time.time_ns() // 1_000_000))


@requires("operator")
async def dead_letters(request: web.Request) -> web.Response:
    limit = query_int(request, "limit", 100, 1, 1000)
    since = query_int(request, "since_ms", 0, 0, 2**62)
    return json_response({"dead_letters": await queries.dead_letters(ctx(request).ch, limit, since)})


# ------------------------------------------------------------------------------------------- users


@requires("operator")
async def list_users(request: web.Request) -> web.Response:
    users = await ctx(request).users.list()
    return json_response({"users": [u.public() for u in users]})


@requires("operator")
async def issue_judge(request: web.Request) -> web.Response:
    """Issue (or re-issue) a judge's credential; the password is shown once, in this answer only."""
    c = ctx(request)
    body = await json_body(request)
    contest_id = req_ident(body.get("contest_id"), "contest_id")
    contest, _ = contest_round(c, contest_id, None)
    judge_id = req_ident(body.get("judge_id"), "judge_id")
    groups_raw = body.get("groups") or []
    if not isinstance(groups_raw, list):
        raise bad_request("groups", "must be a list of group ids")
    known = {g.id for g in contest.groups}
    groups = []
    for i, g in enumerate(groups_raw):
        gid = req_ident(g, f"groups[{i}]")
        if gid not in known:
            raise bad_request(
                f"groups[{i}]", f"contest {contest_id} has no group {gid!r} (groups: {', '.join(sorted(known))})"
            )
        groups.append(gid)
    name = username(body.get("username") or f"{contest_id}.{judge_id}")
    display_name = text(body.get("display_name"), "display_name", max_len=100, required=False) or judge_id
    existing = await c.users.get(name, fresh=True)
    if existing is not None and existing.role != "judge":
        raise ApiError(409, "conflict", f"username: {name} is an operator's username", field="username")
    password = generate_password()
    hashed = await asyncio.to_thread(hash_password, password)
    user = await c.users.put(
        User(
            name,
            "judge",
            contest_id,
            judge_id,
            tuple(groups),
            display_name,
            hashed,
            False,
            existing.version if existing else 0,
        ),
        changed_by=actor(request).username,
    )
    await audit(
        request,
        "issue_judge" if existing is None else "reissue_judge",
        contest_id=contest_id,
        target=name,
        detail={"judge_id": judge_id, "groups": groups, "display_name": display_name},
    )
    return json_response({"user": user.public(), "password": password}, status=201)


@requires("operator")
async def disable_user(request: web.Request) -> web.Response:
    c = ctx(request)
    name = username(request.match_info["username"])
    user = await c.users.get(name, fresh=True)
    if user is None:
        raise not_found(f"username: no user {name!r}", "username")
    if name == actor(request).username:
        raise ApiError(409, "conflict", "username: an operator cannot disable their own credential", field="username")
    stored = await c.users.put(
        User(
            user.username,
            user.role,
            user.contest_id,
            user.judge_id,
            user.groups,
            user.display_name,
            user.password_hash,
            True,
            user.version,
        ),
        changed_by=actor(request).username,
    )
    await audit(request, "disable_user", contest_id=user.contest_id, target=name)
    return json_response({"user": stored.public()})


# -------------------------------------------------------------------------------- items and stage


@requires("operator")
async def rounds(request: web.Request) -> web.Response:
    c = ctx(request)
    contest_id = query_ident(request, "contest")
    assert contest_id is not None
    contest, _ = contest_round(c, contest_id, None, fields=QUERY)
    frozen = await queries.frozen_rounds(c.ch, contest.id)
    requests_ = await queries.freeze_requests(c.ch, contest.id)
    out = []
    for r in contest.rounds():
        states = await queries.item_states(c.ch, contest.id, r.id)
        stage = await queries.on_stage(c.ch, contest.id, r.id)
        groups = contest.round_groups(r)
        out.append(
            {
                "id": r.id,
                "name": r.name,
                "window": {"start_ms": r.window.start, "end_ms": r.window.end},
                "groups": groups,
                "frozen": frozen.get(r.id),
                "freeze_requests": [q for q in requests_ if q["round_id"] == r.id],
                "on_stage": stage["contestant_id"] if stage else None,
                "items": [
                    {
                        "contestant_id": p.id,
                        "display_name": p.name,
                        "group_id": p.group,
                        "state": states.get(p.id, {}).get("state", "open"),
                        "changed_by": states.get(p.id, {}).get("changed_by"),
                    }
                    for p in contest.contestants
                    if p.group in groups
                ],
            }
        )
    return json_response({"contest_id": contest.id, "name": contest.name, "rounds": out})


async def _insert_versioned(c: BoardContext, table: str, row: dict[str, Any]) -> None:
    await c.ch.insert(table, [list(row.values())], column_names=list(row), settings={"async_insert": 0})


def _version() -> int:
    # Versions of replacing tables: distinct across workers too, so two writes never tie (clock.py).
    return stamp_ms()


@requires("operator")
async def set_item(request: web.Request) -> web.Response:
    c = ctx(request)
    body = await json_body(request)
    contest_id = req_ident(body.get("contest_id"), "contest_id")
    round_id = req_ident(body.get("round_id"), "round_id")
    contestant_id = req_ident(body.get("contestant_id"), "contestant_id")
    state = body.get("state")
    if state not in ("open", "closed"):
        raise bad_request("state", 'must be "open" or "closed"')
    contest, rnd = contest_round(c, contest_id, round_id)
    check_contestant(contest, rnd, contestant_id)
    v = _version()
    await _insert_versioned(
        c,
        "board_items",
        {
            "contest_id": contest_id,
            "round_id": round_id,
            "contestant_id": contestant_id,
            "state": state,
            "version": v,
            "changed_by": actor(request).username,
            "changed_at": v,
        },
    )
    await audit(request, "item_" + state, contest_id=contest_id, target=f"{round_id}/{contestant_id}")
    return json_response(
        {"contest_id": contest_id, "round_id": round_id, "contestant_id": contestant_id, "state": state}
    )


@requires("operator")
async def set_stage(request: web.Request) -> web.Response:
    c = ctx(request)
    body = await json_body(request)
    contest_id = req_ident(body.get("contest_id"), "contest_id")
    round_id = req_ident(body.get("round_id"), "round_id")
    contestant_id = ident(body.get("contestant_id"), "contestant_id", required=False)
    contest, rnd = contest_round(c, contest_id, round_id)
    if contestant_id:
        check_contestant(contest, rnd, contestant_id)
    v = _version()
    await _insert_versioned(
        c,
        "board_stage",
        {
            "contest_id": contest_id,
            "round_id": round_id,
            "contestant_id": contestant_id or "",
            "version": v,
            "changed_by": actor(request).username,
            "changed_at": v,
        },
    )
    await audit(request, "stage", contest_id=contest_id, target=f"{round_id}/{contestant_id or ''}")
    return json_response({"contest_id": contest_id, "round_id": round_id, "on_stage": contestant_id})


# -------------------------------------------------------------------------------------- adjustments


@requires("operator")
async def list_adjustments(request: web.Request) -> web.Response:
    contest_id = query_ident(request, "contest", required=False)
    rows = await queries.outbox_events(ctx(request).ch, contest_id, "score_adjustment")
    return json_response({"adjustments": rows})


@requires("operator")
async def record_adjustment(request: web.Request) -> web.Response:
    """An appeal decision (申诉处理) as a ``score_adjustment`` event, with its reason and approver."""
    c = ctx(request)
    body, contest_id, round_id, contestant_id, contest, rnd = await posted_round(request, contestant=True)
    kind = body.get("kind")
    if kind not in ("delta", "override"):
        raise bad_request("kind", 'must be "delta" (add/subtract) or "override" (replace)')
    value = signed_decimal(body.get("value"), "value")
    if kind == "override" and value.startswith("-"):
        raise bad_request("value", "an override cannot be negative")
    component = ident(body.get("component"), "component", required=False)
    if component is not None:
        ids = formula_components(contest, rnd, contestant_id)
        if component not in ids:
            raise bad_request("component", f"not a component of round {round_id}'s formula ({', '.join(sorted(ids))})")
    reason, approver = reason_approver(body)
    adjustment_id = ident(body.get("adjustment_id"), "adjustment_id", required=False) or case_id("adj")
    try:
        event = adjustment_event(
            contest_id, contestant_id, c.writer.clock(), adjustment_id=adjustment_id, round_id=round_id, kind=kind,
            value=value, component=component, reason=reason, approver=approver,
        )  # fmt: skip
    except EventValidationError as exc:
        raise bad_request("body", str(exc)) from None
    if await queries.frozen_round(c.ch, contest_id, round_id):
        raise ApiError(
            409,
            "round_frozen",
            f"round {round_id} is frozen: a change now is the remedy of an appeal — file it "
            "(POST /api/v1/ops/appeals) and decide it with this adjustment as its remedy "
            "(POST /api/v1/ops/appeals/{appeal_id}/decision), which freezes the round again",
            field="round_id",
        )
    out = await publish(
        request, c, [event], action="score_adjustment", contest_id=contest_id, round_id=round_id,
        target=f"{round_id}/{contestant_id}",
        detail={"adjustment_id": adjustment_id, "kind": kind, "value": value, "component": component,
                "reason": reason, "approver": approver},
    )  # fmt: skip
    return json_response({"adjustment_id": adjustment_id, "event": event.model_dump(), **out["sent"][0]}, status=201)


# ------------------------------------------------------------------------------------------ freeze


@requires("operator")
async def freeze(request: web.Request) -> web.Response:
    c = ctx(request)
    _, contest_id, round_id, _, _, _ = await posted_round(request)
    by = actor(request).username
    already = await queries.frozen_round(c.ch, contest_id, round_id)
    if already:
        raise ApiError(
            409, "round_frozen", f"round {round_id} is already frozen", field="round_id", extra={"frozen": already}
        )
    request_id = secrets.token_hex(6)
    at = int(time.time() * 1000)

    async def record(status: str, detail: str) -> None:
        await _insert_versioned(
            c,
            "board_freeze_requests",
            {
                "contest_id": contest_id,
                "round_id": round_id,
                "request_id": request_id,
                "requested_at": at,
                "requested_by": by,
                "status": status,
                "detail": detail[-2000:],
                "version": _version(),
            },
        )

    await record("requested", "")
    status, detail, code, how = await freeze_round(c, contest_id, round_id, by)
    await record(status, detail)
    await audit(
        request,
        "freeze",
        outcome=status,
        contest_id=contest_id,
        target=round_id,
        detail={"request_id": request_id, **how, "exit_code": code, "output": detail[-500:]},
    )
    http = {"done": 200, "pending": 202}.get(status, 502)
    return json_response(
        {
            "request_id": request_id,
            "status": status,
            "detail": detail[-2000:],
            "frozen": await queries.frozen_round(c.ch, contest_id, round_id),
        },
        status=http,
    )


# ------------------------------------------------------------------------------------------- audit


@requires("operator")
async def audit_log(request: web.Request) -> web.Response:
    limit = query_int(request, "limit", 200, 1, 2000)
    action = request.query.get("action") or None
    if action is not None:
        ident(action, "action")
    return json_response({"entries": await ctx(request).audit.recent(limit, action)})


# ----------------------------------------------------------------------------- dead-letter re-drive
# Issue 14.5. The board never talks to the collector directly: liveboard/redrive.py selects the dead letters
# from ClickHouse and puts one request per dead letter on lb.redrive.v1, which the collector consumes and
# re-posts to its own push receiver (services/ingest/redrive.py). Recorded in ingest_redrives and audited.

_REDRIVE_FIELDS = ("platform", "reason", "source", "since_ms", "until_ms", "limit", "dry_run")


def _ms(body: dict[str, Any], field: str, default: int | None) -> int | None:
    value = body.get(field)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**62:
        raise bad_request(field, "must be a time in UTC ms (an integer ≥ 0)")
    return value


@requires("operator")
async def redrive_dead_letters(request: web.Request) -> web.Response:
    """Re-drive the selected dead letters (or, with ``dry_run``, say what would go). 200 for a dry run,
    202 once the requests are on lb.redrive.v1 (the collector takes them from there)."""
    from liveboard import redrive as rd

    c = ctx(request)
    body = await json_body(request)
    unknown = sorted(set(body) - set(_REDRIVE_FIELDS))
    if unknown:
        raise bad_request(unknown[0], f"unknown field (fields: {', '.join(_REDRIVE_FIELDS)})")
    platform = body.get("platform") or None
    if platform is not None and platform not in rd.PLATFORMS:
        raise bad_request("platform", f"must be one of {', '.join(rd.PLATFORMS)}")
    reason = text(body.get("reason"), "reason", max_len=500, required=False)
    source = ident(body.get("source"), "source", required=False)
    since = _ms(body, "since_ms", 0)
    until = _ms(body, "until_ms", None)
    limit = body.get("limit", 1000)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= rd.MAX_SELECTION:
        raise bad_request("limit", f"must be an integer from 1 to {rd.MAX_SELECTION}")
    dry_run = body.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise bad_request("dry_run", "must be true or false")
    if until is not None and until <= (since or 0):
        raise bad_request("until_ms", "must be after since_ms")
    if not (platform or reason or source or since or until is not None):
        raise bad_request("body", "give at least one of platform, reason, source, since_ms, until_ms")
    sel = rd.Selection(
        platform=platform, reason=reason, source=source, since_ms=since or 0, until_ms=until, limit=limit
    )
    by = actor(request).username
    out = await rd.redrive(c.settings, c.ch, sel, requested_by=by, via="console", dry_run=dry_run)
    if dry_run:
        return json_response(out)
    await audit(
        request,
        "redrive_dead_letters",
        target=out["request_id"],
        detail={
            "selection": out["selection"],
            "selected": out["selected"],
            "sent": out["sent"],
            "skipped": {k: v["count"] for k, v in out["skipped"].items()},
        },
    )
    return json_response(out, status=202)


@requires("operator")
async def redrives(request: web.Request) -> web.Response:
    """Past re-drives, newest first (who, when, the selection, how many)."""
    from liveboard import redrive as rd

    limit = query_int(request, "limit", 50, 1, 500)
    return json_response({"redrives": await rd.history(ctx(request).ch, limit)})
