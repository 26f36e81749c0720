"""Operators' endpoints for decisions on results: 取消资格 and its reversal, tie decisions, appeals (filed
within the stage's window, then decided), and the freeze chain (history, verification).

Every decision is an event on lb.events.v1 built by ``liveboard.contracts.decisions`` (the same builders the
scorer's ``liveboard results`` CLI uses), produced and recorded in ``board_outbox`` like an adjustment, and
audited (who, when, what, from where). A decision on a frozen round freezes it again: the board runs the
scorer's freeze command (``LIVEBOARD_BOARD_FREEZE_COMMAND``) with ``--after`` the new events, and the scorer
makes freeze n+1, chained to freeze n; the answer says how that went. Verification runs the scorer's
``liveboard results verify`` (a service never imports another service).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from liveboard.contracts import EventValidationError, parse_event
from liveboard.contracts.decisions import (
    appeal_decision_events,
    appeal_filed_event,
    appeal_window,
    case_id,
    exclusion_event,
    tie_event,
    window_problem,
)
from services.board.auth import requires
from services.board.context import BoardContext, ctx
from services.board.errors import ApiError, bad_request, json_response
from services.board.inputs import ident, json_body, query_ident, req_ident, signed_decimal, text
from services.board.recording import (
    QUERY,
    actor,
    audit,
    check_contestant,
    contest_round,
    formula_components,
    posted_round,
    publish,
    reason_approver,
    run_scorer,
    scorer_argv,
)

DECISION_TYPES = ("contestant_excluded", "tie_decided", "appeal_filed", "appeal_decided")


async def _archived(c: BoardContext, contest_id: str, types: tuple[str, ...]) -> list[Any]:
    """Decision events of a contest, oldest first: those in the archive (what the scorer has taken) and those
    the board produced a moment ago that the scorer has not archived yet (``board_outbox``)."""
    res = await c.ch.query(
        "SELECT payload FROM events_archive FINAL WHERE contest_id = {c:String} AND type IN {t:Array(String)} "
        "UNION ALL SELECT payload FROM board_outbox WHERE contest_id = {c:String} AND type IN {t:Array(String)}",
        parameters={"c": contest_id, "t": list(types)},
    )
    seen: dict[str, Any] = {}
    for row in res.result_rows:
        ev = parse_event(row[0])
        seen.setdefault(ev.event_id, ev)
    return sorted(seen.values(), key=lambda e: (e.observed_at, e.event_id))


def _event(build: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """What a builder of ``liveboard.contracts.decisions`` returns; 400 naming the field an invalid event has."""
    try:
        return build(*args, **kwargs)
    except EventValidationError as exc:
        field = exc.problems[0][0].removeprefix("data.") if exc.problems else "body"
        raise bad_request(field or "body", str(exc)) from None


# ------------------------------------------------------------------------------------------ listing


@requires("operator")
async def list_decisions(request: web.Request) -> web.Response:
    """Exclusions (in force or reversed), tie decisions and appeals of a contest, from the archive."""
    c = ctx(request)
    contest_id = query_ident(request, "contest")
    assert contest_id is not None
    contest, _ = contest_round(c, contest_id, None, fields=QUERY)
    exclusions: dict[tuple[str, str], dict[str, Any]] = {}
    ties: dict[tuple[str, str], dict[str, Any]] = {}
    appeals: dict[str, dict[str, Any]] = {}
    for ev in await _archived(c, contest_id, DECISION_TYPES):
        d = ev.data
        base = {"event_id": ev.event_id, "at": ev.observed_at}
        if ev.type == "contestant_excluded":
            exclusions[(ev.contestant_id, d.exclusion_id)] = {
                **base,
                "contestant_id": ev.contestant_id,
                "exclusion_id": d.exclusion_id,
                "round_id": d.round_id,
                "excluded": d.excluded,
                "reason": d.reason,
                "approver": d.approver,
            }
        elif ev.type == "tie_decided":
            ties[(d.round_id, d.decision_id)] = {**base, **d.model_dump()}
        else:  # an appeal: filed, then decided
            case = appeals.setdefault(d.appeal_id, {})
            case.update(appeal_id=d.appeal_id, contestant_id=ev.contestant_id, round_id=d.round_id)
            if ev.type == "appeal_filed":
                case.update(
                    filed_at=ev.observed_at, filed_by=d.filed_by, claim=d.claim, evidence_ref=d.evidence_ref,
                    decision=case.get("decision"),
                )  # fmt: skip
            else:
                case.update(
                    decision=d.decision, decided_at=ev.observed_at, decision_reason=d.reason, approver=d.approver,
                    adjustment_ids=list(d.adjustment_ids),
                )  # fmt: skip
    windows = {}
    for r in contest.rounds():
        w = appeal_window(contest, r.id)
        windows[r.id] = None if w is None else {"opens_ms": w[0], "closes_ms": w[1], "hours": w[2]}
    return json_response(
        {
            "contest_id": contest_id,
            "exclusions": list(exclusions.values()),
            "tie_decisions": list(ties.values()),
            "appeals": list(appeals.values()),
            "appeal_windows": windows,
        }
    )


# --------------------------------------------------------------------------------------- exclusion


@requires("operator")
async def record_exclusion(request: web.Request) -> web.Response:
    """取消资格 (``excluded: true``) or its reversal (``false``, same ``exclusion_id``) as an event."""
    c = ctx(request)
    body = await json_body(request)
    contest_id = req_ident(body.get("contest_id"), "contest_id")
    contestant_id = req_ident(body.get("contestant_id"), "contestant_id")
    round_id = ident(body.get("round_id"), "round_id", required=False)
    contest, rnd = contest_round(c, contest_id, round_id)
    check_contestant(contest, rnd, contestant_id)
    excluded = body.get("excluded", True)
    if not isinstance(excluded, bool):
        raise bad_request("excluded", "must be true (取消资格) or false (恢复资格)")
    reason, approver = reason_approver(body)
    exclusion_id = ident(body.get("exclusion_id"), "exclusion_id", required=False)
    at = c.writer.clock()
    if exclusion_id is None:
        if not excluded:
            raise bad_request("exclusion_id", "name the exclusion to reverse")
        exclusion_id = case_id("dq")
    if not excluded:
        prior = [
            e
            for e in await _archived(c, contest_id, ("contestant_excluded",))
            if e.contestant_id == contestant_id and e.data.exclusion_id == exclusion_id
        ]
        if not prior:
            raise ApiError(
                404, "not_found", f"exclusion_id: no exclusion {exclusion_id} of {contestant_id}", field="exclusion_id"
            )
        round_id = prior[-1].data.round_id  # a reversal has the scope of what it reverses
        at = max(at, prior[-1].observed_at + 1)
    event = _event(
        exclusion_event, contest_id, contestant_id, at, exclusion_id=exclusion_id, round_id=round_id,
        excluded=excluded, reason=reason, approver=approver,
    )  # fmt: skip
    rounds = [round_id] if round_id else [r.id for r in contest.rounds()]
    out = await publish(
        request, c, [event], action="exclusion" if excluded else "reinstatement", contest_id=contest_id,
        round_id=round_id or "", target=f"{round_id or '*'}/{contestant_id}",
        detail={"exclusion_id": exclusion_id, "excluded": excluded, "reason": reason, "approver": approver},
        rounds=rounds,
    )  # fmt: skip
    return json_response({"exclusion_id": exclusion_id, **out}, status=201)


# ------------------------------------------------------------------------------------ tie decisions


@requires("operator")
async def record_tie_decision(request: web.Request) -> web.Response:
    """The order of a tie the contest leaves to a decision (tie policy ``decide``): 待定 until this."""
    c = ctx(request)
    body, contest_id, round_id, _, contest, rnd = await posted_round(request)
    group_id = req_ident(body.get("group_id"), "group_id")
    list_id = ident(body.get("list_id"), "list_id", required=False) or "awards"
    order_raw = body.get("order")
    if not isinstance(order_raw, list) or len(order_raw) < 2:
        raise bad_request("order", "must list at least two tied ids, best first")
    order = [req_ident(x, f"order[{i}]") for i, x in enumerate(order_raw)]
    if len(set(order)) != len(order):
        raise bad_request("order", "ids must be unique")
    if list_id == "awards":
        if group_id not in contest.round_groups(rnd):
            raise bad_request("group_id", f"round {round_id} ranks groups {', '.join(contest.round_groups(rnd))}")
        for i, cid in enumerate(order):
            p = contest.contestant(cid)
            if p is None or p.group != group_id:
                raise bad_request(f"order[{i}]", f"no contestant {cid!r} in group {group_id} of contest {contest_id}")
    reason, approver = reason_approver(body)
    decision_id = ident(body.get("decision_id"), "decision_id", required=False)
    decision_id = decision_id or f"tie-{round_id}-{group_id}-{list_id}"
    event = _event(
        tie_event, contest_id, c.writer.clock(), decision_id=decision_id, round_id=round_id, group_id=group_id,
        list_id=list_id, order=order, reason=reason, approver=approver,
    )  # fmt: skip
    out = await publish(
        request, c, [event], action="tie_decision", contest_id=contest_id, round_id=round_id,
        target=f"{round_id}/{group_id}/{list_id}",
        detail={"decision_id": decision_id, "order": order, "reason": reason, "approver": approver},
        rounds=[round_id],
    )  # fmt: skip
    return json_response({"decision_id": decision_id, **out}, status=201)


# ------------------------------------------------------------------------------------------ appeals


def _filed_at(body: dict[str, Any], now: int) -> int:
    raw = body.get("filed_at_ms")
    if raw is None:
        return now
    if isinstance(raw, bool) or not isinstance(raw, int) or raw <= 0:
        raise bad_request("filed_at_ms", "must be UTC ms (when the appeal was received)")
    if raw > now + 60_000:
        raise bad_request("filed_at_ms", "an appeal cannot be filed in the future")
    return raw


@requires("operator")
async def file_appeal(request: web.Request) -> web.Response:
    """申诉: who, what, evidence; refused (409 ``appeal_window``) outside the stage's appeal window."""
    c = ctx(request)
    body, contest_id, round_id, contestant_id, contest, _ = await posted_round(request, contestant=True)
    filed_by = text(body.get("filed_by"), "filed_by", max_len=200)
    claim = text(body.get("claim"), "claim", max_len=2000)
    evidence = text(body.get("evidence_ref"), "evidence_ref", max_len=2000, required=False)
    at = _filed_at(body, c.writer.clock())
    problem = window_problem(contest, round_id, at)
    if problem is not None:
        await audit(
            request,
            "appeal_filed",
            outcome="refused",
            contest_id=contest_id,
            target=f"{round_id}/{contestant_id}",
            detail={"reason": problem},
        )
        raise ApiError(409, "appeal_window", problem, field="filed_at_ms")
    assert filed_by is not None and claim is not None
    appeal_id = ident(body.get("appeal_id"), "appeal_id", required=False) or case_id("appeal")
    event = _event(
        appeal_filed_event, contest_id, contestant_id, at, appeal_id=appeal_id, round_id=round_id,
        filed_by=filed_by, claim=claim, evidence_ref=evidence,
    )  # fmt: skip
    out = await publish(
        request, c, [event], action="appeal_filed", contest_id=contest_id, round_id=round_id,
        target=f"{round_id}/{contestant_id}", detail={"appeal_id": appeal_id, "filed_by": filed_by, "claim": claim},
        rounds=[],
    )  # fmt: skip
    return json_response({"appeal_id": appeal_id, **out}, status=201)


@requires("operator")
async def decide_appeal(request: web.Request) -> web.Response:
    """The decision on an appeal, with its remedy (an adjustment) when upheld; on a frozen round, a new freeze."""
    c = ctx(request)
    appeal_id = req_ident(request.match_info["appeal_id"], "appeal_id")
    body = await json_body(request)
    contest_id = req_ident(body.get("contest_id"), "contest_id")
    contest, _ = contest_round(c, contest_id, None)
    decision = body.get("decision")
    if decision not in ("upheld", "partly_upheld", "rejected"):
        raise bad_request("decision", 'must be "upheld", "partly_upheld" or "rejected"')
    reason, approver = reason_approver(body)
    linked_raw = body.get("adjustment_ids") or []
    if not isinstance(linked_raw, list):
        raise bad_request("adjustment_ids", "must be a list of adjustment ids")
    linked = [req_ident(x, "adjustment_ids") for x in linked_raw]
    filed = [e for e in await _archived(c, contest_id, ("appeal_filed",)) if e.data.appeal_id == appeal_id]
    if not filed:
        raise ApiError(404, "not_found", f"appeal_id: no appeal {appeal_id} filed in {contest_id}", field="appeal_id")
    f = filed[-1]
    round_id = f.data.round_id
    rnd = contest.round(round_id)
    remedy = body.get("remedy")
    remedy_ = None
    if remedy is not None:
        if decision == "rejected":
            raise bad_request("remedy", "a rejected appeal has no remedy")
        if not isinstance(remedy, dict):
            raise bad_request("remedy", 'must be {"kind": "delta"|"override", "value": "…", "component": null}')
        kind = remedy.get("kind")
        if kind not in ("delta", "override"):
            raise bad_request("remedy.kind", 'must be "delta" or "override"')
        value = signed_decimal(remedy.get("value"), "remedy.value")
        component = ident(remedy.get("component"), "remedy.component", required=False)
        if component is not None:
            ids = formula_components(contest, rnd, f.contestant_id)
            if component not in ids:
                raise bad_request("remedy.component", f"not a component of round {round_id} ({', '.join(sorted(ids))})")
        remedy_ = (kind, value, component)
    events, linked = _event(
        appeal_decision_events, contest_id, f, c.writer.clock(), decision=decision, reason=reason,
        approver=approver, adjustment_ids=linked, remedy=remedy_,
    )  # fmt: skip
    out = await publish(
        request, c, events, action="appeal_decided", contest_id=contest_id, round_id=round_id,
        target=f"{round_id}/{f.contestant_id}",
        detail={"appeal_id": appeal_id, "decision": decision, "reason": reason, "approver": approver,
                "adjustment_ids": linked},
        rounds=[round_id],
    )  # fmt: skip
    return json_response({"appeal_id": appeal_id, "round_id": round_id, **out}, status=201)


# -------------------------------------------------------------------------------------- freeze chain


@requires("operator")
async def freeze_history(request: web.Request) -> web.Response:
    """Every freeze of a round: hashes and links, what changed per contestant, and why."""
    c = ctx(request)
    contest_id = query_ident(request, "contest")
    round_id = query_ident(request, "round")
    assert contest_id is not None and round_id is not None
    contest_round(c, contest_id, round_id, fields=QUERY)
    res = await c.ch.query(
        "SELECT sequence, frozen_at, frozen_by, reason, content_hash, previous_content_hash, leaderboard_digest, "
        "event_count, event_id, changes, decisions FROM frozen_round_history FINAL "
        "WHERE contest_id = {c:String} AND round_id = {r:String} ORDER BY sequence",
        parameters={"c": contest_id, "r": round_id},
    )
    freezes = []
    for r in res.named_results():
        r["changes"] = orjson.loads(r["changes"]) if r["changes"] else []
        r["decisions"] = orjson.loads(r["decisions"]) if r["decisions"] else []
        r["previous_content_hash"] = r["previous_content_hash"] or None
        r["reason"] = r["reason"] or None
        freezes.append(r)
    return json_response({"contest_id": contest_id, "round_id": round_id, "freezes": freezes})


@requires("operator")
async def verify_freezes(request: web.Request) -> web.Response:
    """Recompute the round's freeze chain through the scorer's ``liveboard results verify``."""
    c = ctx(request)
    _, contest_id, round_id, _, _, _ = await posted_round(request)
    argv = scorer_argv(c, contest_id, round_id, actor(request).username)
    # the same installation's `liveboard`, its `results verify` command
    argv = [argv[0], "results", "verify", contest_id, round_id, "--json"]
    status, out, code = await run_scorer(c, argv)
    report: Any = None
    start = out.find("{")
    if start >= 0:
        try:
            report = orjson.loads(out[start:])
        except orjson.JSONDecodeError:
            report = None
    await audit(
        request,
        "verify_freezes",
        outcome="ok" if code in (0, 1) else status,
        contest_id=contest_id,
        target=round_id,
        detail={"verifies": report.get("verifies") if isinstance(report, dict) else None, "exit_code": code},
    )
    if not isinstance(report, dict):
        raise ApiError(502, "verify_failed", f"the scorer's verify command failed: {out[-500:]}")
    return json_response(report)


# ------------------------------------------------------------------------------------ route table


def routes() -> list[tuple[str, str, Any, str]]:
    """(method, path, handler, operation id) of these endpoints, for api_v1's route table."""
    return [
        ("GET", "/api/v1/ops/decisions", list_decisions, "opsListDecisions"),
        ("POST", "/api/v1/ops/exclusions", record_exclusion, "opsRecordExclusion"),
        ("POST", "/api/v1/ops/tie-decisions", record_tie_decision, "opsRecordTieDecision"),
        ("POST", "/api/v1/ops/appeals", file_appeal, "opsFileAppeal"),
        ("POST", "/api/v1/ops/appeals/{appeal_id}/decision", decide_appeal, "opsDecideAppeal"),
        ("GET", "/api/v1/ops/freeze-history", freeze_history, "opsFreezeHistory"),
        ("POST", "/api/v1/ops/freeze-verify", verify_freezes, "opsVerifyFreezes"),
    ]


def openapi_paths() -> dict[str, Any]:
    """The OpenAPI entries of these endpoints (services/board/openapi.py merges them)."""
    from services.board.openapi import _CSRF, _ID, _SESSION, _body, _err, _json, _op, _p, _q

    text_ = {"type": "string", "minLength": 1, "maxLength": 2000}
    who = {"type": "string", "minLength": 1, "maxLength": 200}
    refreeze = "; on a frozen round the scorer freezes it again (freeze n+1, chained): see `refreeze`"

    def get(op_id: str, summary: str, answer: str, *params: dict[str, Any]) -> dict[str, Any]:
        responses = {"200": _json(answer), **_err(400, 401, 403, 404)}
        return {"get": _op(op_id, summary, _SESSION, parameters=list(params), responses=responses)}

    def post(
        op_id: str, summary: str, required: list[str], properties: dict[str, Any], codes: tuple[int, ...] = (),
        answer: str = "event produced", status: str = "201", parameters: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        kw: dict[str, Any] = {"parameters": parameters} if parameters else {}
        kw["requestBody"] = _body({"type": "object", "required": required, "properties": properties})
        kw["responses"] = {status: _json(answer), **_err(400, 401, 403, 404, *codes)}
        return {"post": _op(op_id, summary, _CSRF, **kw)}

    return {
        "/api/v1/ops/decisions": get(
            "opsListDecisions",
            "Exclusions (取消资格), tie decisions and appeals of a contest, with each stage's appeal window",
            "decisions",
            _q("contest", "contest id", required=True),
        ),
        "/api/v1/ops/exclusions": post(
            "opsRecordExclusion",
            "取消资格 (excluded true) of a contestant in a round (or the whole contest: round_id null), or its "
            "reversal (excluded false, the same exclusion_id)" + refreeze,
            ["contest_id", "contestant_id", "reason", "approver"],
            {
                "contest_id": _ID,
                "contestant_id": _ID,
                "round_id": {"type": ["string", "null"]},
                "excluded": {"type": "boolean", "default": True},
                "exclusion_id": _ID,
                "reason": text_,
                "approver": who,
            },
        ),
        "/api/v1/ops/tie-decisions": post(
            "opsRecordTieDecision",
            "The order of a tie under the `decide` policy (待定 until recorded)" + refreeze,
            ["contest_id", "round_id", "group_id", "order", "reason", "approver"],
            {
                "contest_id": _ID,
                "round_id": _ID,
                "group_id": _ID,
                "list_id": {**_ID, "default": "awards"},
                "order": {"type": "array", "items": _ID, "minItems": 2, "uniqueItems": True},
                "decision_id": _ID,
                "reason": text_,
                "approver": who,
            },
        ),
        "/api/v1/ops/appeals": post(
            "opsFileAppeal",
            "File an appeal (申诉): who, what, evidence; 409 appeal_window outside the stage's window",
            ["contest_id", "round_id", "contestant_id", "filed_by", "claim"],
            {
                "contest_id": _ID,
                "round_id": _ID,
                "contestant_id": _ID,
                "appeal_id": _ID,
                "filed_by": who,
                "claim": text_,
                "evidence_ref": {"type": ["string", "null"], "maxLength": 2000},
                "filed_at_ms": {"type": "integer", "description": "when received (UTC ms), default now"},
            },
            (409,),
        ),
        "/api/v1/ops/appeals/{appeal_id}/decision": post(
            "opsDecideAppeal",
            "Decide an appeal; an upheld one may carry its remedy (a score adjustment)" + refreeze,
            ["contest_id", "decision", "reason", "approver"],
            {
                "contest_id": _ID,
                "decision": {"enum": ["upheld", "partly_upheld", "rejected"]},
                "reason": text_,
                "approver": who,
                "remedy": {
                    "type": ["object", "null"],
                    "properties": {
                        "kind": {"enum": ["delta", "override"]},
                        "value": {"type": "string"},
                        "component": {"type": ["string", "null"]},
                    },
                },
                "adjustment_ids": {"type": "array", "items": _ID},
            },
            answer="events produced",
            parameters=[_p("appeal_id")],
        ),
        "/api/v1/ops/freeze-history": get(
            "opsFreezeHistory",
            "Every freeze of a round: hashes, links, what changed per contestant and why",
            "freezes",
            _q("contest", "contest id", required=True),
            _q("round", "round id", required=True),
        ),
        "/api/v1/ops/freeze-verify": post(
            "opsVerifyFreezes",
            "Recompute a round's freeze chain from its events and check every hash and link",
            ["contest_id", "round_id"],
            {"contest_id": _ID, "round_id": _ID},
            (502,),
            answer="verification report",
            status="200",
        ),
    }
