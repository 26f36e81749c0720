"""Exclusion (取消资格), missing data under each policy, missing judges, and mixed-platform fields.

Every expectation is worked out by hand in the comments next to it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from field_builders import make_contest, metric, sheet, totals

from liveboard.contracts.contest import JudgesNode
from liveboard.contracts.contest_validate import check_contest_text
from services.scoring.rules import (
    AdjustmentInput,
    ContestantInputs,
    ExclusionInput,
    OrgInput,
    score_field,
)
from services.scoring.rules.exact import plain

EXCLUDED = ExclusionInput("ex-1", "round", "提供虚假资料", "组委会主任", observed_at=5)


def _two_part(likes_extra: dict[str, Any] | None = None, **round_extra: Any):
    """50 % likes (min–max, 100) + 50 % GMV (ratio to the best, 100)."""
    scoring = {
        "id": "total",
        "name": "总分",
        "kind": "weighted",
        "components": [
            {**metric("likes", "likes", {"method": "min_max", "points": 100}, weight=50), **(likes_extra or {})},
            metric("gmv", "gmv_fen", {"method": "ratio_to_best", "points": 100}, weight=50),
        ],
    }
    round_extra.setdefault("ties", {"policy": "share"})
    return make_contest(scoring, **round_extra)


# -------------------------------------------------------------------------------------------- exclusion


def test_an_excluded_contestant_who_held_the_maximum_leaves_the_bounds_awards_and_sums():
    contest = _two_part(
        awards=[{"id": "first", "name": "一等奖", "count": 1}, {"id": "merit", "name": "优秀奖", "count": "rest"}],
        advancement={"top": 2},
        organisations=[{"id": "X", "name": "X", "level": "district"}, {"id": "Y", "name": "Y", "level": "district"}],
        collective=[
            {
                "id": "org",
                "name": "组织奖",
                "level": "district",
                "aggregate": "sum",
                "ties": {"policy": "share"},
                "awards": [{"id": "best", "name": "最佳", "count": 1}],
            }
        ],
    )
    data = {"a": (100, 1000, "X"), "b": (60, 500, "X"), "c": (40, 250, "Y"), "d": (20, 100, "Y")}

    def field(excluded: bool) -> dict[str, ContestantInputs]:
        return {
            cid: ContestantInputs(
                {"likes": likes, "gmv_fen": gmv},
                group_id="g",
                organisation=OrgInput(district=org),
                excluded=EXCLUDED if excluded and cid == "a" else None,
            )
            for cid, (likes, gmv, org) in data.items()
        }

    before = score_field(contest, "r", field(False))
    # everyone: likes 20..100 → a 100, b 50, c 25, d 0; GMV best 1000 → a 100, b 50, c 25, d 10
    assert totals(before, "g") == {"a": "100", "b": "50", "c": "25", "d": "5"}
    result = score_field(contest, "r", field(True))
    # a excluded: likes bounds 20..60 → b (60−20)×100/40 = 100, c 50, d 0; GMV best 500 → b 100, c 50, d 20
    # b = 50 + 50 = 100; c = 25 + 25 = 50; d = 0 + 10 = 10
    # a's own values against those bounds, clamped: likes (100−20)×100/40 = 200 → 100, GMV 200 → 100
    assert totals(result, "g") == {"b": "100", "c": "50", "d": "10", "a": "100"}
    rows = result.group("g").rows
    assert [(r.contestant_id, r.rank, r.status, r.award, r.advances) for r in rows] == [
        ("b", 1, "ranked", "first", True),
        ("c", 2, "ranked", "merit", True),
        ("d", 3, "ranked", "merit", False),
        ("a", None, "excluded", None, False),
    ]
    assert result.row("a").notes == [
        "取消资格（本轮）：提供虚假资料（批准：组委会主任）/ excluded (round): 提供虚假资料"
    ]
    likes = result.explain("b").formula.children[0]
    assert (likes.inputs["field_min"], likes.inputs["field_max"]) == (20, 60)
    # collective sums leave a out: X = b 100 (a's 100 not added), Y = c 50 + d 10 = 60
    coll = result.collective[0].rows
    assert [(r.organisation_id, plain(r.value), r.members, r.award) for r in coll] == [
        ("X", "100", ["b"], "best"),
        ("Y", "60", ["c", "d"], None),
    ]
    d = result.to_dict()["groups"][0]["rows"][3]
    assert (d["contestant_id"], d["place"], d["status"]) == ("a", None, "excluded")
    assert result.explain("a").status == "excluded"


# ---------------------------------------------------------------------------------------------- missing


def _missing_field(adjustments: tuple[AdjustmentInput, ...] = ()) -> dict[str, ContestantInputs]:
    # c has GMV but no likes figure at all
    return {
        "a": ContestantInputs({"likes": 100, "gmv_fen": 100}, group_id="g"),
        "b": ContestantInputs({"likes": 50, "gmv_fen": 100}, group_id="g"),
        "c": ContestantInputs({"gmv_fen": 50}, group_id="g", adjustments=adjustments),
    }


AWARDS = [{"id": "first", "name": "一等奖", "count": 1}, {"id": "second", "name": "二等奖", "count": 2}]


@pytest.mark.parametrize(
    ("policy", "want", "status", "note"),
    [
        # zero: c's likes is a measured 0 and sets the minimum: a 100, b 50, c 0 → totals 100, 75, 25
        (
            "zero",
            {"a": "100", "b": "75", "c": "25"},
            "ranked",
            "数据缺失按0计：likes（likes）/ missing likes: counted as 0",
        ),
        # exclude_from_bounds: bounds over a and b (50..100): a 100, b 0; c 0 → totals 100, 50, 25
        (
            "exclude_from_bounds",
            {"a": "100", "b": "50", "c": "25"},
            "ranked",
            "数据缺失：likes记0分，不计入极值（likes）/ missing likes: 0 points, outside the bounds",
        ),
        # hold: the same numbers, but c is provisional: no award
        (
            "hold",
            {"a": "100", "b": "50", "c": "25"},
            "provisional",
            "待定：缺少数据 likes（likes），数据到达或裁定前不授奖、不晋级 / provisional: missing likes",
        ),
    ],
)
def test_a_contestant_missing_one_metric(policy, want, status, note):
    contest = _two_part({"missing": policy}, awards=AWARDS)
    result = score_field(contest, "r", _missing_field())
    assert totals(result, "g") == want
    c = result.row("c")
    assert (c.complete, c.status, c.notes) == (False, status, [note])
    assert c.award == (None if policy == "hold" else "second")
    assert result.row("a").complete and result.row("b").complete
    likes = result.explain("c").formula.children[0]
    assert likes.inputs["missing"] is True and likes.inputs["missing_policy"] == policy
    assert result.explain("c").notes == [note]


def test_an_override_decides_a_held_row():
    contest = _two_part({"missing": "hold"}, awards=AWARDS)
    override = AdjustmentInput("adj-1", "override", Decimal(80), component="likes", reason="官方数据补录")
    result = score_field(contest, "r", _missing_field((override,)))
    # c: likes overridden to 80 → 50 % × 80 + 50 % × 50 = 65: ranked 2nd, 二等奖; b 50 is 3rd, 二等奖
    assert totals(result, "g") == {"a": "100", "c": "65", "b": "50"}
    c = result.row("c")
    assert (c.status, c.rank, c.award, c.complete) == ("ranked", 2, "second", False)
    assert c.notes == ["缺少数据 likes（likes），已由调整 adj-1 裁定 / missing likes: decided by adj-1"]


def test_missing_judges_sheet_holds_the_row_unless_the_node_says_zero():
    jury = {
        "id": "jury",
        "name": "评委",
        "kind": "judges",
        "weight": 50,
        "min_judges": 2,
        "criteria": [{"id": "pitch", "name": "讲解", "max_points": 100}],
    }
    scoring = {
        "id": "total",
        "name": "总分",
        "kind": "weighted",
        "components": [jury, metric("gmv", "gmv_fen", {"method": "ratio_to_best", "points": 100}, weight=50)],
    }
    node = JudgesNode.model_validate(jury)
    inputs = {
        "a": ContestantInputs({"gmv_fen": 100}, [*sheet("j1", node, 80), *sheet("j2", node, 90)], group_id="g"),
        "b": ContestantInputs({"gmv_fen": 100}, sheet("j1", node, 100), group_id="g"),  # one sheet of two
    }
    held = score_field(make_contest(scoring, awards=AWARDS, ties={"policy": "share"}), "r", inputs)
    # a: 50 % × 85 + 50 % × 100 = 92.5; b: judges 0 (1 of 2 sheets) + 50 = 50, provisional
    assert totals(held, "g") == {"a": "92.5", "b": "50"}
    b = held.row("b")
    assert (b.status, b.award, b.complete) == ("provisional", None, False)
    assert b.notes == ["待定：评委完整评分表 1/2 份，评分未齐不授奖、不晋级 / provisional: 1 of 2 judges' sheets"]
    scoring["components"][0] = {**jury, "missing": "zero"}
    zero = score_field(make_contest(scoring, awards=AWARDS, ties={"policy": "share"}), "r", inputs)
    assert (zero.row("b").status, zero.row("b").award, zero.row("b").complete) == ("ranked", "second", False)


# ------------------------------------------------------------------------------------- mixed platforms

INTERACTION = {
    "id": "total",
    "name": "互动率",
    "kind": "metric",
    "metric": "interaction_rate",
    "normalise": {"method": "min_max", "points": 100},
}
KS_SUB = {"kuaishou": {"numerator": ["likes", "comments", "shares"], "denominator": ["viewers_uv"]}}


def _hubei_like_field() -> dict[str, ContestantInputs]:
    # Douyin reports page views; Kuaishou does not (no viewers_pv), only viewers (UV)
    return {
        # (30 + 10 + 10) / 1000 = 0.05
        "d1": ContestantInputs(
            {"likes": 30, "comments": 10, "shares": 10, "viewers_pv": 1000}, group_id="g", platform="douyin"
        ),
        # (10 + 5 + 5) / 1000 = 0.02
        "d2": ContestantInputs(
            {"likes": 10, "comments": 5, "shares": 5, "viewers_pv": 1000}, group_id="g", platform="douyin"
        ),
        # per viewer: (40 + 5 + 5) / 500 = 0.1
        "k1": ContestantInputs(
            {"likes": 40, "comments": 5, "shares": 5, "viewers_uv": 500}, group_id="g", platform="kuaishou"
        ),
        # (10 + 0 + 0) / 500 = 0.02
        "k2": ContestantInputs(
            {"likes": 10, "comments": 0, "shares": 0, "viewers_uv": 500}, group_id="g", platform="kuaishou"
        ),
    }


def test_mixed_douyin_kuaishou_field_with_a_substitute_metric():
    contest = make_contest({**INTERACTION, "by_platform": KS_SUB}, platforms=["douyin", "kuaishou"])
    result = score_field(contest, "r", _hubei_like_field())
    # one field 0.02..0.1: d1 (0.05 − 0.02) × 100 / 0.08 = 37.5; d2 0; k1 100; k2 0
    assert totals(result, "g") == {"k1": "100", "d1": "37.5", "d2": "0", "k2": "0"}
    assert all(r.complete for r in result.group("g").rows)
    k1 = result.explain("k1").formula.inputs
    assert k1["metric"] == "(likes + comments + shares) / (viewers_uv)"
    assert (k1["substitute_for"], k1["platform"], k1["value"]) == ("interaction_rate", "kuaishou", Decimal("0.1"))


def test_mixed_douyin_kuaishou_field_normalised_within_platform():
    node = {**INTERACTION, "by_platform": KS_SUB, "normalise_within": "platform"}
    result = score_field(make_contest(node, platforms=["douyin", "kuaishou"]), "r", _hubei_like_field())
    # Douyin 0.02..0.05: d1 100, d2 0; Kuaishou 0.02..0.1: k1 100, k2 0
    assert totals(result, "g") == {"d1": "100", "k1": "100", "d2": "0", "k2": "0"}
    e = result.explain("k2").formula.inputs
    assert (e["field_min"], e["field_max"], e["bounds_within"]) == (
        Decimal("0.02"),
        Decimal("0.1"),
        "platform kuaishou",
    )


def test_a_platform_that_cannot_deliver_the_metric_is_missing_without_a_substitute():
    # the validator refuses such a file (below); scored anyway, Kuaishou rows lack viewers_pv
    contest = make_contest({**INTERACTION, "missing": "exclude_from_bounds"}, platforms=["douyin", "kuaishou"])
    result = score_field(contest, "r", _hubei_like_field())
    # bounds over Douyin only (0.02..0.05): d1 100, d2 0; k1, k2 0 points and incomplete
    assert totals(result, "g") == {"d1": "100", "d2": "0", "k1": "0", "k2": "0"}
    assert result.row("k1").complete is False
    assert "viewers_pv（kuaishou 平台不提供 / not delivered by kuaishou）" in result.row("k1").notes[0]


def _file(node: dict[str, Any], platforms: list[str]) -> str:
    import yaml

    contest = make_contest(node, platforms=platforms)
    data = contest.model_dump(mode="json", exclude_defaults=True)
    data["stages"][0]["rounds"][0]["window"] = {
        "start": "2024-01-01T00:00:00+08:00",
        "end": "2024-02-01T00:00:00+08:00",
    }
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


def test_validator_refuses_a_metric_a_platform_cannot_deliver_unless_the_node_says_how():
    contest, problems = check_contest_text(_file(INTERACTION, ["douyin", "kuaishou"]))
    assert contest is None
    assert any("kuaishou cannot deliver interaction_rate" in p.message for p in problems)
    within_only = {**INTERACTION, "normalise_within": "platform"}
    assert check_contest_text(_file(within_only, ["douyin", "kuaishou"]))[0] is None
    ok, problems = check_contest_text(_file({**INTERACTION, "by_platform": KS_SUB}, ["douyin", "kuaishou"]))
    assert ok is not None, problems
    # douyin alone can deliver it
    assert check_contest_text(_file(INTERACTION, ["douyin"]))[0] is not None
    # a substitute must be in the metric's kind (a ratio for a ratio)
    bad = {**INTERACTION, "by_platform": {"kuaishou": "likes"}}
    _, problems = check_contest_text(_file(bad, ["douyin", "kuaishou"]))
    assert any("a substitute must be a ratio" in p.message for p in problems)
    # a substitute for a platform the contest does not use
    stray = {**INTERACTION, "by_platform": {"wechat_channels": "conversion_rate"}}
    _, problems = check_contest_text(_file(stray, ["douyin"]))
    assert any("is not one of the contest's" in p.message for p in problems)
