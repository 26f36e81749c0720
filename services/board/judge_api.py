"""Judges' endpoints: their contestants, the on-stage contestant's live series, and score entry.

A judge credential belongs to one contest, one judge id and a list of groups (tracks; empty = every
group). Every request is checked against it: a judge sees and scores only their own contest's
contestants of their groups, only the criteria of the contest file, within each criterion's maximum, only
while the item is open and the round not frozen. A submitted score is one ``judge_score`` event per
criterion on lb.events.v1; a correction is a new event (the latest ``observed_at`` counts).

Other judges' scores: ``LIVEBOARD_BOARD_JUDGE_SCORES_VISIBILITY`` = ``after_close`` (default: hidden until
an operator closes the item, then shown — Shaoyang "每个项目结束后立即公布成绩"), ``immediate`` or ``own_only``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from aiohttp import web

from liveboard.contracts import EventValidationError, manual_event
from liveboard.contracts.contest import Contest, Round
from services.board import queries
from services.board.auth import User, forbidden, requires
from services.board.contests import find_round, judge_criteria, judge_panels
from services.board.context import ctx
from services.board.errors import ApiError, bad_request, json_response, not_found
from services.board.inputs import decimal_points, json_body, query_ident, req_ident
from services.board.reqkeys import USER

MAX_POINTS_SERIES = 600


def _contest(request: web.Request, user: User) -> Contest:
    c = ctx(request).contests.get(user.contest_id)
    if c is None:
        raise not_found(f"contest {user.contest_id!r} of this credential has no contest file on the board")
    return c


def _judged_rounds(contest: Contest, user: User) -> list[Round]:
    out = []
    for r in contest.rounds():
        groups = [g for g in contest.round_groups(r) if not user.groups or g in user.groups]
        if any(judge_criteria(contest, r, g) for g in groups):
            out.append(r)
    return out


def _pick_round(request: web.Request, contest: Contest, user: User) -> Round:
    round_id = query_ident(request, "round", required=False)
    rounds = _judged_rounds(contest, user)
    if round_id:
        rnd = find_round(contest, round_id)
        if rnd is None or rnd not in rounds:
            raise not_found(f"round: no judged round {round_id!r} for this judge", "round")
        return rnd
    if not rounds:
        raise not_found("this contest has no round scored by judges")
    now = int(time.time() * 1000)
    current = [r for r in rounds if r.window.start <= now < r.window.end]
    if current:
        return current[0]
    started = [r for r in rounds if r.window.start <= now]
    return started[-1] if started else rounds[0]


def _contestant_group(contest: Contest, contestant_id: str) -> str | None:
    c = contest.contestant(contestant_id)
    return c.group if c else None


def _check_contestant(contest: Contest, rnd: Round, user: User, contestant_id: str, field: str) -> str:
    group = _contestant_group(contest, contestant_id)
    if group is None:
        raise not_found(f"{field}: no contestant {contestant_id!r} in contest {contest.id}", field)
    if group not in contest.round_groups(rnd):
        raise not_found(f"{field}: {contestant_id} is not in round {rnd.id}", field)
    if user.groups and group not in user.groups:
        raise forbidden(f"{field}: {contestant_id} is in group {group}, not one this judge scores")
    return group


@dataclass(frozen=True)
class ContestantQuery:
    """A judge's request about one contestant (``?contestant=``, optional ``?round=``), checked against the
    judge's credential: their contest, a round they judge, a contestant of a group they score."""

    user: User
    contest: Contest
    rnd: Round
    contestant_id: str
    group: str


def contestant_query(request: web.Request) -> ContestantQuery:
    user: User = request[USER]
    contest = _contest(request, user)
    rnd = _pick_round(request, contest, user)
    contestant_id = query_ident(request, "contestant")
    assert contestant_id is not None
    group = _check_contestant(contest, rnd, user, contestant_id, "contestant")
    return ContestantQuery(user, contest, rnd, contestant_id, group)


def _visible(board_visibility: str, closed: bool) -> bool:
    return board_visibility == "immediate" or (board_visibility == "after_close" and closed)


@requires("judge")
async def contestants(request: web.Request) -> web.Response:
    c = ctx(request)
    user: User = request[USER]
    contest = _contest(request, user)
    rnd = _pick_round(request, contest, user)
    states = await queries.item_states(c.ch, contest.id, rnd.id)
    stage = await queries.on_stage(c.ch, contest.id, rnd.id)
    frozen = await queries.frozen_round(c.ch, contest.id, rnd.id)
    groups = {g.id: g.name for g in contest.groups}
    people = []
    for p in contest.contestants:
        if p.group not in contest.round_groups(rnd) or (user.groups and p.group not in user.groups):
            continue
        people.append(
            {
                "contestant_id": p.id,
                "display_name": p.name,
                "group_id": p.group,
                "group_name": groups.get(p.group, p.group),
                "state": states.get(p.id, {}).get("state", "open"),
            }
        )
    return json_response(
        {
            "contest": {"id": contest.id, "name": contest.name},
            "judge": {"judge_id": user.judge_id, "display_name": user.display_name, "groups": list(user.groups)},
            "rounds": [
                {"id": r.id, "name": r.name, "window": {"start_ms": r.window.start, "end_ms": r.window.end}}
                for r in _judged_rounds(contest, user)
            ],
            "round_id": rnd.id,
            "frozen": frozen is not None,
            "on_stage": stage["contestant_id"] if stage else None,
            "contestants": people,
        }
    )


def _merge_rooms(points: list[queries.SeriesPoint]) -> list[dict[str, int]]:
    """One series over all the contestant's rooms: at each time, the sum of every room's latest values."""
    latest: dict[str, dict[str, int]] = {}
    merged: list[dict[str, int]] = []
    for p in points:
        latest[p.room_id] = p.values
        total = {m: sum(v[m] for v in latest.values()) for m in queries.SERIES_METRICS}
        if merged and merged[-1]["ts_ms"] == p.ts_ms:
            merged[-1] = {"ts_ms": p.ts_ms, **total}
        else:
            merged.append({"ts_ms": p.ts_ms, **total})
    if len(merged) > MAX_POINTS_SERIES:
        step = len(merged) / MAX_POINTS_SERIES
        merged = [merged[int(i * step)] for i in range(MAX_POINTS_SERIES - 1)] + [merged[-1]]
    return merged


def derived(p: dict[str, int]) -> dict[str, int | None]:
    """UV价值 (GMV per viewer, 分), GPM (GMV per 1,000 views, 分) and refund rate (ppm), in integers."""
    gmv, uv, pv = p["gmv_fen"], p["viewers_uv"], p["viewers_pv"]
    return {
        "uv_value_fen": (gmv * 2 + uv) // (2 * uv) if uv else None,  # rounded half up
        "gpm_fen": (gmv * 1000 * 2 + pv) // (2 * pv) if pv else None,
        "refund_rate_ppm": (p["refund_fen"] * 1_000_000 * 2 + gmv) // (2 * gmv) if gmv else None,
    }


@requires("judge")
async def series(request: web.Request) -> web.Response:
    c = ctx(request)
    q = contestant_query(request)
    contest, rnd, contestant_id = q.contest, q.rnd, q.contestant_id
    points = await queries.contestant_series(c.ch, contest.id, contestant_id, rnd.window.start, rnd.window.end)
    merged = [{**p, **derived(p)} for p in _merge_rooms(points)]
    latest = merged[-1] if merged else None
    funnel = (
        [
            {"step": "exposure", "value": latest["product_exposure_uv"]},
            {"step": "click", "value": latest["product_click_uv"]},
            {"step": "order", "value": latest["orders_created"]},
            {"step": "paid", "value": latest["orders_paid"]},
        ]
        if latest
        else []
    )
    return json_response(
        {
            "contest_id": contest.id,
            "round_id": rnd.id,
            "contestant_id": contestant_id,
            "rooms": sorted({p.room_id for p in points}),
            "points": merged,
            "latest": latest,
            "funnel": funnel,
        }
    )


def _criteria_doc(contest: Contest, rnd: Round, group: str) -> list[dict[str, Any]]:
    return [
        {"node_id": k.node_id, "id": k.id, "name": k.name, "max_points": str(k.max_points)}
        for k in judge_criteria(contest, rnd, group)
    ]


@requires("judge")
async def get_scores(request: web.Request) -> web.Response:
    c = ctx(request)
    q = contestant_query(request)
    user, contest, rnd, contestant_id, group = q.user, q.contest, q.rnd, q.contestant_id, q.group
    events = await queries.judge_score_events(c.ch, contest.id, rnd.id, contestant_id)
    current = queries.current_judge_scores(events)
    state = (await queries.item_states(c.ch, contest.id, rnd.id)).get(contestant_id, {}).get("state", "open")
    frozen = await queries.frozen_round(c.ch, contest.id, rnd.id)
    visible = _visible(c.board.judge_scores_visibility, state == "closed")
    mine = {
        k[2]: {"points": e["data"]["points"], "observed_at": e["observed_at"], "event_id": e["event_id"]}
        for k, e in current.items()
        if k[0] == user.judge_id
    }
    crit_names = {k.id: k.name for k in judge_criteria(contest, rnd, group)}  # the contest file's names
    history = sorted(
        (
            {
                "criterion": e["data"]["criterion"],
                "criterion_name": crit_names.get(e["data"]["criterion"], e["data"]["criterion"]),
                "points": e["data"]["points"],
                "observed_at": e["observed_at"],
                "event_id": e["event_id"],
            }
            for e in events
            if e["data"]["judge_id"] == user.judge_id
        ),
        key=lambda h: (h["observed_at"], h["event_id"]),
    )
    others = (
        [
            {
                "judge_id": k[0],
                "criterion": k[2],
                "criterion_name": crit_names.get(k[2], k[2]),
                "points": e["data"]["points"],
                "observed_at": e["observed_at"],
            }
            for k, e in sorted(current.items())
            if k[0] != user.judge_id
        ]
        if visible
        else None
    )
    return json_response(
        {
            "contest_id": contest.id,
            "round_id": rnd.id,
            "contestant_id": contestant_id,
            "judge_id": user.judge_id,
            "criteria": _criteria_doc(contest, rnd, group),
            "item_state": state,
            "frozen": frozen is not None,
            "visibility": c.board.judge_scores_visibility,
            "mine": mine,
            "history": history,
            "others_visible": visible,
            "others": others,
        }
    )


@requires("judge")
async def submit_scores(request: web.Request) -> web.Response:
    c = ctx(request)
    user: User = request[USER]
    contest = _contest(request, user)
    body = await json_body(request)
    round_id = req_ident(body.get("round_id"), "round_id")
    rnd = find_round(contest, round_id)
    if rnd is None:
        raise not_found(f"round_id: contest {contest.id} has no round {round_id!r}", "round_id")
    contestant_id = req_ident(body.get("contestant_id"), "contestant_id")
    group = _check_contestant(contest, rnd, user, contestant_id, "contestant_id")
    criteria = {k.id: k for k in judge_criteria(contest, rnd, group)}
    if not criteria:
        raise bad_request("round_id", f"round {round_id} has no judges' criteria for group {group}")
    panels = [p for p in judge_panels(contest, rnd, group) if p is not None]
    if panels and not any(user.judge_id in p for p in panels):
        raise forbidden(f"judge {user.judge_id} is not on the panel of round {round_id}")
    scores = body.get("scores")
    if not isinstance(scores, dict) or not scores:
        raise bad_request("scores", "must be an object {criterion_id: points} with at least one criterion")
    checked: list[tuple[str, str, Decimal]] = []
    for crit, points in scores.items():
        info = criteria.get(crit)
        if info is None:
            raise bad_request(f"scores.{crit}", f"not a criterion of this round (criteria: {', '.join(criteria)})")
        checked.append((crit, decimal_points(points, f"scores.{crit}", info.max_points), info.max_points))
    if await queries.frozen_round(c.ch, contest.id, rnd.id):
        raise ApiError(409, "round_frozen", f"round {rnd.id} is frozen; scores can no longer change", field="round_id")
    state = (await queries.item_states(c.ch, contest.id, rnd.id)).get(contestant_id, {}).get("state", "open")
    if state == "closed":
        await c.audit.record(
            request,
            actor=user.username,
            role="judge",
            action="judge_score",
            outcome="refused_closed",
            contest_id=contest.id,
            target=f"{rnd.id}/{contestant_id}",
            detail={"scores": scores},
        )
        raise ApiError(
            409,
            "item_closed",
            f"{contestant_id}: this item is closed; ask an operator to reopen it",
            field="contestant_id",
        )
    events = []
    try:
        for crit, points, maximum in checked:
            events.append(
                manual_event(
                    "judge_score",
                    contest.id,
                    contestant_id,
                    c.writer.clock(),
                    {
                        "judge_id": user.judge_id,
                        "round_id": rnd.id,
                        "criterion": crit,
                        "points": points,
                        "max_points": _plain(maximum),
                    },
                )
            )
    except EventValidationError as exc:
        raise bad_request("scores", str(exc)) from None
    sent = await c.writer.produce(events, actor=user.username, round_id=rnd.id)
    await c.audit.record(
        request,
        actor=user.username,
        role="judge",
        action="judge_score",
        contest_id=contest.id,
        target=f"{rnd.id}/{contestant_id}",
        detail={"judge_id": user.judge_id, "scores": {k: p for k, p, _ in checked}, "events": sent},
    )
    return json_response(
        {
            "events": [
                {**s, "criterion": crit, "points": points} for s, (crit, points, _) in zip(sent, checked, strict=True)
            ]
        },
        status=201,
    )


def _plain(d: Decimal) -> str:
    """A contest maximum as the event's decimal string: "15", "7.5" (never "1.5E+1")."""
    return format(d.normalize(), "f")
