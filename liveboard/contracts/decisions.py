"""Decisions on results, shared by the scorer's CLI and the operators' console: appeal windows and the
events that record 取消资格, tie decisions and appeals (docs/scoring.md, "Exclusions, ties and appeals").

Both front ends build the same validated events here, so a decision recorded from the CLI and one recorded
from the console are the same fact with the same id recipe.
"""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from liveboard.contracts.contest import Contest
from liveboard.contracts.events import manual_event

HOUR_MS = 3_600_000
CST = timezone(timedelta(hours=8))


def case_id(prefix: str) -> str:
    """A new case id, ``{prefix}-YYYYMMDD-xxxxxx`` (``dq``, ``appeal``, ``adj``): the same recipe everywhere."""
    return f"{prefix}-{time.strftime('%Y%m%d')}-{secrets.token_hex(3)}"


def stage_of(contest: Contest, round_id: str) -> Any:
    for stage in contest.stages:
        if any(r.id == round_id for r in stage.rounds):
            return stage
    raise KeyError(round_id)


def tie_lists(contest: Contest, rnd: Any) -> dict[str, list[str]]:
    """The lists of ``rnd`` a tie decision can order, each with the group ids it is ranked in: ``awards`` per
    group, ``advancement`` (round-wide, when the round advances anyone) and each collective rule, under the
    round id. A decision naming anything else orders nothing."""
    lists = {"awards": contest.round_groups(rnd), **{r.id: [rnd.id] for r in rnd.collective}}
    if rnd.advancement is not None:
        lists["advancement"] = [rnd.id]
    return lists


def appeal_window(contest: Contest, round_id: str) -> tuple[int, int, int] | None:
    """(opens, closes, hours) in UTC ms of the appeal window of ``round_id``'s stage, or None when the contest
    file declares none (appeals are then not limited in time). Notice 000: 在每阶段赛事结束后提出申诉 — the
    window opens when the stage's last round ends."""
    stage = stage_of(contest, round_id)
    appeals = getattr(stage, "appeals", None)
    if appeals is None:
        return None
    opens = max(r.window.end for r in stage.rounds)
    return opens, opens + appeals.window_hours * HOUR_MS, appeals.window_hours


def _fmt(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).astimezone(CST).strftime("%Y-%m-%d %H:%M")


def window_problem(contest: Contest, round_id: str, filed_at: int) -> str | None:
    """Why an appeal filed at ``filed_at`` is outside its stage's window (None: in time), naming the window."""
    win = appeal_window(contest, round_id)
    if win is None:
        return None
    opens, closes, hours = win
    if opens <= filed_at < closes:
        return None
    when = "before the window opens" if filed_at < opens else "after the window closed"
    return (
        f"申诉期外 / outside the appeal window: round {round_id}'s stage takes appeals within {hours} h after it "
        f"ends, {_fmt(opens)} – {_fmt(closes)} (UTC+8); this one is filed {_fmt(filed_at)}, {when}"
    )


def exclusion_event(
    contest_id: str,
    contestant_id: str,
    at: int,
    *,
    exclusion_id: str,
    round_id: str | None,
    excluded: bool,
    reason: str,
    approver: str,
) -> Any:
    return manual_event(
        "contestant_excluded",
        contest_id,
        contestant_id,
        at,
        {
            "exclusion_id": exclusion_id,
            "round_id": round_id,
            "excluded": excluded,
            "reason": reason,
            "approver": approver,
        },
    )


def tie_event(
    contest_id: str,
    at: int,
    *,
    decision_id: str,
    round_id: str,
    group_id: str,
    list_id: str,
    order: list[str],
    reason: str,
    approver: str,
) -> Any:
    return manual_event(
        "tie_decided",
        contest_id,
        None,
        at,
        {
            "decision_id": decision_id,
            "round_id": round_id,
            "group_id": group_id,
            "list_id": list_id,
            "order": list(order),
            "reason": reason,
            "approver": approver,
        },
    )


def appeal_filed_event(
    contest_id: str,
    contestant_id: str,
    at: int,
    *,
    appeal_id: str,
    round_id: str,
    filed_by: str,
    claim: str,
    evidence_ref: str | None,
) -> Any:
    return manual_event(
        "appeal_filed",
        contest_id,
        contestant_id,
        at,
        {
            "appeal_id": appeal_id,
            "round_id": round_id,
            "filed_by": filed_by,
            "claim": claim,
            "evidence_ref": evidence_ref,
        },
    )


def appeal_decided_event(
    contest_id: str,
    contestant_id: str,
    at: int,
    *,
    appeal_id: str,
    round_id: str,
    decision: str,
    reason: str,
    approver: str,
    adjustment_ids: list[str],
) -> Any:
    return manual_event(
        "appeal_decided",
        contest_id,
        contestant_id,
        at,
        {
            "appeal_id": appeal_id,
            "round_id": round_id,
            "decision": decision,
            "reason": reason,
            "approver": approver,
            "adjustment_ids": list(adjustment_ids),
        },
    )


def adjustment_event(
    contest_id: str,
    contestant_id: str,
    at: int,
    *,
    adjustment_id: str,
    round_id: str,
    kind: str,
    value: str,
    component: str | None,
    reason: str,
    approver: str,
) -> Any:
    return manual_event(
        "score_adjustment",
        contest_id,
        contestant_id,
        at,
        {
            "adjustment_id": adjustment_id,
            "round_id": round_id,
            "kind": kind,
            "value": value,
            "component": component,
            "reason": reason,
            "approver": approver,
        },
    )


def appeal_decision_events(
    contest_id: str,
    filed: Any,
    now: int,
    *,
    decision: str,
    reason: str,
    approver: str,
    adjustment_ids: list[str],
    remedy: tuple[str, str, str | None] | None = None,
) -> tuple[list[Any], list[str]]:
    """The events deciding the appeal ``filed`` (its ``appeal_filed`` event), after it and no earlier than
    ``now``, and the adjustment ids the decision links: the remedy first, when it has one (``(kind, value,
    component)``: a score adjustment ``{appeal_id}-adj``), then the decision."""
    appeal_id, round_id, contestant_id = filed.data.appeal_id, filed.data.round_id, filed.contestant_id
    at = max(now, filed.observed_at + 1)
    events: list[Any] = []
    linked = list(adjustment_ids)
    if remedy is not None:
        kind, value, component = remedy
        adj_id = f"{appeal_id}-adj"
        adjustment = adjustment_event(
            contest_id, contestant_id, at, adjustment_id=adj_id, round_id=round_id, kind=kind, value=value,
            component=component, reason=f"申诉 {appeal_id}：{reason}", approver=approver,
        )  # fmt: skip
        events.append(adjustment)
        linked.append(adj_id)
    decided = appeal_decided_event(
        contest_id, contestant_id, at, appeal_id=appeal_id, round_id=round_id, decision=decision, reason=reason,
        approver=approver, adjustment_ids=linked,
    )  # fmt: skip
    return [*events, decided], linked
