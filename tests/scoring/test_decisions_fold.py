"""The fold of decisions on results (no engines): exclusions per contestant and scope, reversals, tie
decisions per round, appeals; and what the rules engine makes of them, by hand-computed expectations."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from liveboard.contracts.contest_validate import load_contest
from liveboard.contracts.decisions import (
    appeal_decided_event,
    appeal_filed_event,
    exclusion_event,
    tie_event,
    window_problem,
)
from services.scoring.contests import plan_for
from services.scoring.freeze import amending_events, result_changes
from services.scoring.recompute import Recomputer, Versions
from services.scoring.state import ContestState
from tests.scoring.decisions_support import HOUR, decisions_contest, sales, write

START = 1_767_225_600_000  # 2026-01-01T00:00Z


def _state(tmp_path: Path, window_hours: int = 48) -> ContestState:
    doc = decisions_contest("dq-fold", start=START, window_hours=window_hours)
    st = ContestState(plan_for(load_contest(write(tmp_path, doc))))
    for ev in sales("dq-fold", START):
        st.apply(ev)
    return st


def _standing(st: ContestState) -> dict[str, tuple]:
    result = Recomputer(st, Versions(), 10).score("r1", {})[0]
    return {
        r.contestant_id: (
            r.rank,
            str(r.total.quantize(Decimal("0.01"))),
            r.award,
            r.status,
            r.pending,
        )
        for g in result.groups
        for r in g.rows
    }


def _excl(at: int, excluded: bool, round_id: str | None = "r1", xid: str = "dq-1") -> object:
    return exclusion_event(
        "dq-fold",
        "c0",
        at,
        exclusion_id=xid,
        round_id=round_id,
        excluded=excluded,
        reason="虚假宣传",
        approver="组委会",
    )


def test_exclusion_is_in_force_until_reversed_whatever_the_order(tmp_path: Path) -> None:
    st = _state(tmp_path)
    before = _standing(st)
    assert before == {
        "c0": (1, "100.00", "first", "ranked", False),
        "c1": (2, "50.00", "second", "ranked", False),
        "c2": (3, "25.00", None, "ranked", True),  # 并列第3名 across the one third prize: 待定
        "c3": (3, "25.00", None, "ranked", True),
    }
    on, off = _excl(START + 5 * HOUR, True), _excl(START + 6 * HOUR, False)
    assert st.apply(on) == frozenset({"r1"})
    x = st.exclusion_for("c0", "r1")
    assert x is not None and (x.exclusion_id, x.scope, x.reason, x.approver) == ("dq-1", "round", "虚假宣传", "组委会")
    ev = st.inputs_for("r1", "c0").evidence["exclusion"]
    assert (ev["event_id"], ev["reason"], ev["scope"]) == (on.event_id, "虚假宣传", "round")
    # c0 held the field's best: without it c1 is the best (100), c2 and c3 get 50 and tie across the second prize
    after = _standing(st)
    assert after["c0"][0] is None and after["c0"][3] == "excluded" and after["c0"][2] is None
    assert after["c1"] == (1, "100.00", "first", "ranked", False)
    assert after["c2"] == (2, "50.00", None, "ranked", True) and after["c3"] == (2, "50.00", None, "ranked", True)
    st.apply(off)
    assert st.exclusion_for("c0", "r1") is None and _standing(st) == before
    # the reversal arriving first changes nothing: the later event wins
    st2 = _state(tmp_path)
    st2.apply(off)
    st2.apply(on)
    assert st2.exclusion_for("c0", "r1") is None and _standing(st2) == before


def test_contest_wide_exclusion_applies_to_every_round(tmp_path: Path) -> None:
    st = _state(tmp_path)
    assert st.apply(_excl(START + 5 * HOUR, True, round_id=None, xid="dq-all")) == frozenset({"r1"})
    x = st.exclusion_for("c0", "r1")
    assert x is not None and x.scope == "contest"


def test_a_decide_tie_is_pending_until_the_decision(tmp_path: Path) -> None:
    st = _state(tmp_path)
    ev = tie_event(
        "dq-fold",
        START + 5 * HOUR,
        decision_id="tie-r1-third",
        round_id="r1",
        group_id="g1",
        list_id="awards",
        order=["c3", "c2"],
        reason="评委会复议",
        approver="裁判委员会",
    )
    assert st.apply(ev) == frozenset({"r1"})
    (d,) = st.tie_decisions_for("r1")
    assert d.order == ("c3", "c2") and d.list_id == "awards" and d.event_id == ev.event_id
    s = _standing(st)
    assert s["c3"][2] == "third" and not s["c3"][4]
    assert s["c2"][2] is None and not s["c2"][4]
    assert s["c0"][:3] == (1, "100.00", "first") and s["c1"][:3] == (2, "50.00", "second")


def test_appeal_window_and_which_decisions_amend_a_freeze(tmp_path: Path) -> None:
    st = _state(tmp_path, window_hours=48)
    contest = st.plan.contest
    end = START + HOUR
    assert window_problem(contest, "r1", end + HOUR) is None
    late = window_problem(contest, "r1", end + 49 * HOUR)
    assert late is not None and "48 h" in late and "after the window closed" in late
    early = window_problem(contest, "r1", end - 1)
    assert early is not None and "before the window opens" in early

    def filed(aid: str, at: int) -> object:
        return appeal_filed_event(
            "dq-fold", "c1", at, appeal_id=aid, round_id="r1", filed_by="c1", claim="漏计订单", evidence_ref=None
        )

    def decided(aid: str, at: int, decision: str, adj: list[str]) -> object:
        return appeal_decided_event(
            "dq-fold",
            "c1",
            at,
            appeal_id=aid,
            round_id="r1",
            decision=decision,
            reason="核实",
            approver="组委会",
            adjustment_ids=adj,
        )

    from liveboard.contracts.decisions import adjustment_event

    def adj(aid: str) -> object:
        return adjustment_event(
            "dq-fold",
            "c1",
            end + 3 * HOUR,
            adjustment_id=aid,
            round_id="r1",
            kind="delta",
            value="5",
            component=None,
            reason="申诉",
            approver="组委会",
        )

    # rejected appeal: recorded, but nothing to re-freeze
    evs = [filed("a1", end + HOUR), decided("a1", end + 2 * HOUR, "rejected", [])]
    add, effective = amending_events(evs, st.plan, "r1", set())
    assert [e.event_id for e in add] == [e.event_id for e in evs] and not effective
    # upheld within the window with its adjustment: re-freeze, adjustment included
    evs = [filed("a2", end + HOUR), decided("a2", end + 3 * HOUR, "upheld", ["a2-adj"]), adj("a2-adj"), adj("other")]
    add, effective = amending_events(evs, st.plan, "r1", set())
    assert effective and {e.event_id for e in add} == {e.event_id for e in evs[:3]}
    # upheld but filed after the window: its adjustment does not enter a freeze
    evs = [filed("a3", end + 50 * HOUR), decided("a3", end + 51 * HOUR, "upheld", ["a3-adj"]), adj("a3-adj")]
    add, effective = amending_events(evs, st.plan, "r1", set())
    assert not effective and evs[2].event_id not in {e.event_id for e in add}
    # already covered by the freeze in force: nothing
    evs = [_excl(end + HOUR, True)]
    assert amending_events(evs, st.plan, "r1", {evs[0].event_id}) == ([], False)
    assert amending_events(evs, st.plan, "r1", set())[1] is True


def test_result_changes_name_old_and_new_place_total_award() -> None:
    before = {
        "leaderboard": [
            {"contestant_id": "a", "group_id": "g", "rank": 1, "total": "1", "total_display": "1", "award_id": "first"},
            {"contestant_id": "b", "group_id": "g", "rank": 2, "total": "0", "total_display": "0", "award_id": ""},
        ]
    }
    after = {
        "leaderboard": [
            {"contestant_id": "a", "group_id": "g", "rank": 2, "total": "1", "total_display": "1", "award_id": ""},
            {"contestant_id": "b", "group_id": "g", "rank": 1, "total": "2", "total_display": "2", "award_id": "first"},
        ]
    }
    ch = result_changes(before, after)
    assert [c["contestant_id"] for c in ch] == ["a", "b"]
    assert ch[0]["before"]["rank"] == 1 and ch[0]["after"]["rank"] == 2 and ch[1]["after"]["award_id"] == "first"
    assert result_changes(before, before) == []


def test_harbin_declares_its_appeal_windows_and_validate_shows_them() -> None:
    from click.testing import CliRunner

    from liveboard.contracts.decisions import appeal_window
    from services.scoring.contest_cli import contest

    path = Path(__file__).resolve().parents[2] / "contests" / "harbin-2020.yaml"
    c = load_contest(path)
    opens, closes, hours = appeal_window(c, "final")  # type: ignore[misc]
    assert hours == 72 and opens == c.round("final").window.end and closes - opens == 72 * HOUR
    out = CliRunner().invoke(contest, ["validate", str(path)])
    assert out.exit_code == 0, out.output
    assert "申诉期 appeals (决赛冲刺阶段): 72 h after the stage ends, until 2020-09-30 00:00 (UTC+8)" in out.output
