"""Ties (并列) at every award boundary under each policy, at the advancement cut, and in collective lists.

Every field is scored with the raw metric ``likes`` (the total is the like count), so the places and
awards below are worked out by hand from the numbers. Places are standard competition ranks (1, 1, 3);
contestant ids never decide anything, which the renamed-field checks prove.
"""

from __future__ import annotations

from typing import Any

import pytest
from field_builders import make_contest, metric
from hypothesis import given, settings
from hypothesis import strategies as st

from liveboard.contracts.contest import Contest
from services.scoring.rules import ContestantInputs, OrgInput, RoundResult, TieDecisionInput, score_field

AWARDS = [
    {"id": "first", "name": "一等奖", "count": 1},
    {"id": "second", "name": "二等奖", "count": 2},
    {"id": "third", "name": "三等奖", "count": 1},
]  # places 1 | 2–3 | 4 | none from 5


def _contest(ties: dict[str, Any] | None, scoring: dict[str, Any] | None = None, **extra: Any) -> Contest:
    if ties is not None:
        extra["ties"] = ties
    extra.setdefault("awards", AWARDS)
    return make_contest(scoring or metric("total", "likes", {"method": "raw"}), **extra)


def _field(values: dict[str, int], **more: dict[str, int]) -> dict[str, ContestantInputs]:
    return {
        cid: ContestantInputs({"likes": v, **{k: m[cid] for k, m in more.items()}}, group_id="g")
        for cid, v in values.items()
    }


def _standing(result: RoundResult) -> list[tuple[str, int | None, str | None, bool, bool]]:
    return [(r.contestant_id, r.rank, r.award, r.tied, r.pending) for r in result.group("g").rows]


def _awards(result: RoundResult) -> dict[str, str | None]:
    return {r.contestant_id: r.award for r in result.group("g").rows}


# ------------------------------------------------------------------------------------------ share


@pytest.mark.parametrize(
    ("likes", "want"),
    [
        # first | second: two share place 1 and both receive 一等奖; place 2 is skipped, c (3rd) is second
        (
            {"a": 10, "b": 10, "c": 8, "d": 6, "e": 5},
            {"a": "first", "b": "first", "c": "second", "d": "third", "e": None},
        ),
        # second | third: c and d share place 3 (the last second place): both 二等奖; place 4 is skipped,
        # e at place 5 receives nothing (the third prize's only place was taken by the tie)
        (
            {"a": 10, "b": 9, "c": 8, "d": 8, "e": 5},
            {"a": "first", "b": "second", "c": "second", "d": "second", "e": None},
        ),
        # third | none: d and e share place 4: both receive 三等奖
        (
            {"a": 10, "b": 9, "c": 8, "d": 7, "e": 7},
            {"a": "first", "b": "second", "c": "second", "d": "third", "e": "third"},
        ),
    ],
)
def test_share_gives_every_tied_row_the_better_award(likes, want):
    result = score_field(_contest({"policy": "share"}), "r", _field(likes))
    assert _awards(result) == want
    tied = {r.contestant_id for r in result.group("g").rows if r.tied}
    assert tied == {cid for cid, v in likes.items() if list(likes.values()).count(v) > 1}
    assert not any(r.pending for r in result.group("g").rows)
    # the same field under other ids (the tied pair's id order reversed) gives the same awards
    rename = {"a": "z5", "b": "z4", "c": "z3", "d": "z2", "e": "z1"}
    renamed = score_field(_contest({"policy": "share"}), "r", _field({rename[k]: v for k, v in likes.items()}))
    assert {k: _awards(renamed)[rename[k]] for k in likes} == want


def test_share_places_are_competition_ranks_and_notes_say_tied():
    result = score_field(_contest({"policy": "share"}), "r", _field({"a": 10, "b": 10, "c": 8}))
    assert _standing(result) == [
        ("a", 1, "first", True, False),
        ("b", 1, "first", True, False),
        ("c", 3, "second", False, False),
    ]
    assert result.row("a").notes == ["并列第1名（与 b）/ tied for place 1"]
    row = result.to_dict()["groups"][0]["rows"][1]
    assert (row["place"], row["status"], row["tied"], row["pending"]) == (1, "ranked", True, False)


# -------------------------------------------------------------------------------------- tie_break


def test_tie_break_keys_separate_equal_totals():
    ties = {"policy": "tie_break", "keys": ["shares"], "then": "share"}
    result = score_field(_contest(ties), "r", _field({"a": 10, "b": 10, "c": 8}, shares={"a": 1, "b": 5, "c": 0}))
    # equal totals 10; shares 5 > 1: b is 1st (一等奖), a 2nd (二等奖), c 3rd (二等奖)
    assert _standing(result) == [
        ("b", 1, "first", False, False),
        ("a", 2, "second", False, False),
        ("c", 3, "second", False, False),
    ]
    assert result.row("a").notes == [
        "总分与 b 相同，按决胜项（shares）排名 / equal total, placed by the tie-break keys"
    ]


def test_tie_break_keys_that_cannot_separate_leave_a_tie_then_shared():
    ties = {"policy": "tie_break", "keys": ["shares"], "then": "share"}
    result = score_field(_contest(ties), "r", _field({"a": 10, "b": 10, "c": 8}, shares={"a": 3, "b": 3, "c": 9}))
    assert _standing(result) == [
        ("a", 1, "first", True, False),
        ("b", 1, "first", True, False),
        ("c", 3, "second", False, False),
    ]
    assert "决胜项无法区分" in result.row("b").notes[-1]


def test_tie_break_keys_that_cannot_separate_then_decide_is_pending():
    ties = {"policy": "tie_break", "keys": ["shares"], "then": "decide"}
    field = _field({"a": 10, "b": 10, "c": 8}, shares={"a": 3, "b": 3, "c": 9})
    result = score_field(_contest(ties), "r", field)
    assert _standing(result) == [
        ("a", 1, None, True, True),
        ("b", 1, None, True, True),
        ("c", 3, "second", False, False),
    ]


# ----------------------------------------------------------------------------------------- decide


def _decision(order: tuple[str, ...], list_id: str = "awards", group: str = "g", at: int = 1) -> TieDecisionInput:
    return TieDecisionInput(f"tie-{at}", group, list_id, order, "现场加赛一轮", "组委会主任", observed_at=at)


@pytest.mark.parametrize(
    ("likes", "tied", "without", "decided"),
    [
        # first | second: a and b tie at place 1 across the boundary: both pending, c (3rd) is second
        (
            {"a": 10, "b": 10, "c": 8, "d": 6},
            ("b", "a"),
            {"a": None, "b": None, "c": "second", "d": "third"},
            {"b": "first", "a": "second", "c": "second", "d": "third"},
        ),
        # second | third: c and d tie at place 3 (second's last place, third's place 4)
        (
            {"a": 10, "b": 9, "c": 8, "d": 8, "e": 5},
            ("d", "c"),
            {"a": "first", "b": "second", "c": None, "d": None, "e": None},
            {"a": "first", "b": "second", "d": "second", "c": "third", "e": None},
        ),
        # third | none: d and e tie at place 4, the only third place
        (
            {"a": 10, "b": 9, "c": 8, "d": 7, "e": 7},
            ("e", "d"),
            {"a": "first", "b": "second", "c": "second", "d": None, "e": None},
            {"a": "first", "b": "second", "c": "second", "e": "third", "d": None},
        ),
    ],
)
def test_decide_is_pending_until_a_decision_orders_the_tie(likes, tied, without, decided):
    contest = _contest({"policy": "decide"})
    result = score_field(contest, "r", _field(likes))
    assert _awards(result) == without
    assert {r.contestant_id for r in result.group("g").rows if r.pending} == set(tied)
    assert all(r.rank == min(result.row(t).rank for t in tied) for r in map(result.row, tied))
    assert result.row(tied[0]).notes[-1].startswith("待定：并列第")
    # a decision naming only one of the tied rows decides nothing
    partial = score_field(contest, "r", _field(likes), [_decision((*tied[:1], "zz"))])
    assert _awards(partial) == without
    done = score_field(contest, "r", _field(likes), [_decision(tied)])
    assert _awards(done) == decided
    first, second = done.row(tied[0]), done.row(tied[1])
    assert (second.rank - first.rank, first.tied, first.pending, second.pending) == (1, False, False, False)
    assert "按裁定 tie-1 排序（现场加赛一轮；批准：组委会主任）" in first.notes[-1]
    assert done.digest() != result.digest()
    # the latest decision wins
    later = score_field(contest, "r", _field(likes), [_decision(tied), _decision(tied[::-1], at=2)])
    assert later.row(tied[1]).rank < later.row(tied[0]).rank


def test_decide_tie_inside_one_award_is_not_pending():
    result = score_field(_contest({"policy": "decide"}), "r", _field({"a": 10, "b": 9, "c": 9, "d": 5}))
    # b and c share place 2, both inside 二等奖 (places 2–3): nothing to decide
    assert _standing(result) == [
        ("a", 1, "first", False, False),
        ("b", 2, "second", True, False),
        ("c", 2, "second", True, False),
        ("d", 4, "third", False, False),
    ]


def test_undeclared_policy_is_decide():
    result = score_field(_contest(None), "r", _field({"a": 10, "b": 10}))
    assert [(r.award, r.pending) for r in result.group("g").rows] == [(None, True), (None, True)]


# ------------------------------------------------------------------------------------- advancement


@pytest.mark.parametrize("policy", ["share", "decide"])
def test_tie_at_the_advancement_cut(policy):
    contest = _contest({"policy": policy}, awards=[], advancement={"top": 2})
    likes = {"a": 10, "b": 8, "c": 8, "d": 5}
    result = score_field(contest, "r", _field(likes))
    advancing = {r.contestant_id for r in result.group("g").rows if r.advances}
    if policy == "share":
        # b and c share place 2: both advance (three go forward), no pending row
        assert advancing == {"a", "b", "c"}
        assert not any(r.pending for r in result.group("g").rows)
    else:
        assert advancing == {"a"}
        assert {r.contestant_id for r in result.group("g").rows if r.pending} == {"b", "c"}
        assert "晋级名额线" in result.row("b").notes[-1]
        done = score_field(contest, "r", _field(likes), [_decision(("c", "b"))])
        assert {r.contestant_id for r in done.group("g").rows if r.advances} == {"a", "c"}


def test_round_wide_advancement_tie_across_groups():
    contest = _contest(
        {"policy": "decide"},
        awards=[],
        groups=[{"id": "g", "name": "一"}, {"id": "h", "name": "二"}],
        advancement={"top": 2, "per": "round"},
    )
    inputs = {
        "a": ContestantInputs({"likes": 10}, group_id="g"),
        "b": ContestantInputs({"likes": 7}, group_id="g"),
        "c": ContestantInputs({"likes": 7}, group_id="h"),
    }
    result = score_field(contest, "r", inputs)
    assert {r.contestant_id: (r.advances, r.pending) for g in result.groups for r in g.rows} == {
        "a": (True, False),
        "b": (False, True),
        "c": (False, True),
    }
    done = score_field(contest, "r", inputs, [_decision(("c", "b"), list_id="advancement", group="r")])
    assert sorted(r.contestant_id for g in done.groups for r in g.rows if r.advances) == ["a", "c"]
    assert "按裁定 tie-1 排序" in done.row("c").notes[-1]


# -------------------------------------------------------------------------------------- collective


def _collective_contest(ties: dict[str, Any]) -> Contest:
    scoring = {
        "id": "total",
        "name": "总分",
        "kind": "sum",
        "components": [
            metric("a", "likes", {"method": "raw"}),
            metric("b", "shares", {"method": "raw"}),
        ],
    }
    return make_contest(
        scoring,
        ties={"policy": "share"},
        organisations=[{"id": o, "name": o, "level": "district"} for o in ("X", "Y", "Z")],
        collective=[
            {
                "id": "org",
                "name": "组织奖",
                "level": "district",
                "aggregate": "sum",
                "ties": ties,
                "awards": [
                    {"id": "best", "name": "最佳组织奖", "count": 1},
                    {"id": "good", "name": "组织奖", "count": 1},
                ],
            }
        ],
    )


def _collective_field() -> dict[str, ContestantInputs]:
    # X: x1 60 + 40 = 100;  Y: y1 50 + 30 = 80, y2 0 + 20 = 20 → 100;  Z: z1 30 + 20 = 50
    members = {"x1": ("X", 60, 40), "y1": ("Y", 50, 30), "y2": ("Y", 0, 20), "z1": ("Z", 30, 20)}
    return {
        cid: ContestantInputs({"likes": a, "shares": b}, group_id="g", organisation=OrgInput(district=o))
        for cid, (o, a, b) in members.items()
    }


def test_collective_tie_shared():
    rows = score_field(_collective_contest({"policy": "share"}), "r", _collective_field()).collective[0].rows
    # X and Y share place 1 (100 each): both 最佳组织奖; place 2 is skipped, Z (3rd) receives nothing
    assert [(r.organisation_id, r.rank, r.award, r.tied) for r in rows] == [
        ("X", 1, "best", True),
        ("Y", 1, "best", True),
        ("Z", 3, None, False),
    ]


def test_collective_tie_decided():
    contest = _collective_contest({"policy": "decide"})
    rows = score_field(contest, "r", _collective_field()).collective[0].rows
    assert [(r.organisation_id, r.rank, r.award, r.pending) for r in rows] == [
        ("X", 1, None, True),
        ("Y", 1, None, True),
        ("Z", 3, None, False),
    ]
    decided = score_field(contest, "r", _collective_field(), [_decision(("Y", "X"), list_id="org", group="r")])
    assert [(r.organisation_id, r.rank, r.award, r.pending) for r in decided.collective[0].rows] == [
        ("Y", 1, "best", False),
        ("X", 2, "good", False),
        ("Z", 3, None, False),
    ]


def test_collective_tie_broken_by_a_component_sum():
    contest = _collective_contest({"policy": "tie_break", "keys": ["a"], "then": "share"})
    rows = score_field(contest, "r", _collective_field()).collective[0].rows
    # equal sums 100; component a summed over members: X 60 > Y 50 + 0
    assert [(r.organisation_id, r.rank, r.award, r.tied) for r in rows] == [
        ("X", 1, "best", False),
        ("Y", 2, "good", False),
        ("Z", 3, None, False),
    ]


@settings(max_examples=60, deadline=None)
@given(
    likes=st.lists(st.integers(min_value=0, max_value=6), min_size=1, max_size=12),
    policy=st.sampled_from(["share", "decide"]),
)
def test_equal_totals_always_get_the_same_place_award_and_advancement(likes, policy):
    contest = _contest({"policy": policy}, advancement={"top": 3})
    field = {f"c{i:02d}": v for i, v in enumerate(likes)}
    result = score_field(contest, "r", _field(field))
    by_value: dict[int, set] = {}
    for r in result.group("g").rows:
        by_value.setdefault(field[r.contestant_id], set()).add((r.rank, r.award, r.advances, r.pending))
        # competition rank: 1 + the number of strictly larger totals
        assert r.rank == 1 + sum(1 for v in likes if v > field[r.contestant_id])
    assert all(len(outcomes) == 1 for outcomes in by_value.values())
    # the same field in reverse id order: the same digest of places and awards per value
    reversed_ids = {f"c{len(likes) - 1 - i:02d}": v for i, v in enumerate(likes)}
    again = score_field(contest, "r", _field(reversed_ids))
    assert {reversed_ids[r.contestant_id]: (r.rank, r.award) for r in again.group("g").rows} == {
        field[r.contestant_id]: (r.rank, r.award) for r in result.group("g").rows
    }
