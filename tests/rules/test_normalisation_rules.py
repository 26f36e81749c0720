"""Each normalisation, judges' aggregation, adjustment and tie rule, on small fields computed by hand."""

from __future__ import annotations

from decimal import Decimal

import pytest
from field_builders import explanation_adds_up, make_contest, metric, order, totals

from liveboard.errors import ValidationError
from services.scoring.rules import AdjustmentInput, ContestantInputs, JudgeScoreInput, OrgInput, score_field
from services.scoring.rules.exact import SCALE, display, div_round


def _ci(metrics, judge_scores=(), adjustments=(), **kw) -> ContestantInputs:
    """Inputs for a contestant of the test contest's group "g" (test contestants are not registered)."""
    return ContestantInputs(metrics, judge_scores, adjustments, group_id=kw.pop("group_id", "g"), **kw)


def _field(name: str, values: dict[str, int]) -> dict[str, ContestantInputs]:
    return {cid: _ci({name: v}) for cid, v in values.items()}


def test_rank_points_half_a_point_per_place_ties_share_the_better_place():
    # the 2024 county contest: views 20 + likes 20 + orders 20 + sales 40, each by rank, −0.5 per place
    scoring = {
        "id": "total",
        "name": "总分",
        "kind": "sum",
        "components": [
            metric("views", "viewers_pv", {"method": "rank", "points": 20, "step": "0.5"}),
            metric("likes", "likes", {"method": "rank", "points": 20, "step": "0.5"}),
            metric("orders", "orders_paid", {"method": "rank", "points": 20, "step": "0.5"}),
            metric("sales", "gmv_fen", {"method": "rank", "points": 40, "step": "0.5"}),
        ],
    }
    contest = make_contest(scoring)
    inputs = {
        "a": _ci({"viewers_pv": 400, "likes": 10, "orders_paid": 5, "gmv_fen": 100}),
        "b": _ci({"viewers_pv": 300, "likes": 30, "orders_paid": 5, "gmv_fen": 300}),
        "c": _ci({"viewers_pv": 300, "likes": 20, "orders_paid": 5, "gmv_fen": 200}),
        "d": _ci({"viewers_pv": 100, "likes": 40, "orders_paid": 1, "gmv_fen": 400}),
    }
    result = score_field(contest, "r", inputs)
    # views: a 1st 20, b and c share 2nd 19.5, d 4th (not 3rd) 18.5
    # likes: d 20, b 19.5, c 19, a 18.5;  orders: a, b, c share 1st 20, d 4th 18.5
    # sales: d 40, b 39.5, c 39, a 38.5
    # a = 20 + 18.5 + 20 + 38.5 = 97;  b = 19.5 + 19.5 + 20 + 39.5 = 98.5
    # c = 19.5 + 19 + 20 + 39 = 97.5;  d = 18.5 + 20 + 18.5 + 40 = 97
    assert totals(result, "g") == {"b": "98.5", "c": "97.5", "a": "97", "d": "97"}
    assert order(result, "g") == ["b", "c", "a", "d"]  # a and d tie: listed by id, same place
    assert [(r.rank, r.tied) for r in result.group("g").rows] == [(1, False), (2, False), (3, True), (3, True)]
    assert result.explain("c").formula.children[0].inputs["place"] == 2


def test_rank_points_never_go_below_zero():
    contest = make_contest(metric("total", "likes", {"method": "rank", "points": 1, "step": "0.5"}))
    result = score_field(contest, "r", _field("likes", {"a": 3, "b": 2, "c": 1, "d": 0}))
    assert totals(result, "g") == {"a": "1", "b": "0.5", "c": "0", "d": "0"}


@pytest.mark.parametrize(("when_equal", "expected"), [("full", "10"), ("zero", "0")])
def test_min_max_when_everyone_is_equal(when_equal, expected):
    contest = make_contest(metric("total", "likes", {"method": "min_max", "points": 10, "when_equal": when_equal}))
    result = score_field(contest, "r", _field("likes", {"a": 7, "b": 7}))
    assert set(totals(result, "g").values()) == {expected}


def test_min_max_rounds_half_even_at_the_twelfth_place_and_displays_half_up():
    contest = make_contest(metric("total", "likes", {"method": "min_max", "points": 10}))
    result = score_field(contest, "r", _field("likes", {"a": 0, "b": 1, "c": 3}))
    # b = (1 − 0) × 10 / 3 = 3.333… → 3.333333333333 (12 places)
    assert result.row("b").total == Decimal("3.333333333333")
    assert display(result.row("b").total_pico) == "3.33"
    assert div_round(5, 2) == 2 and div_round(7, 2) == 4 and div_round(-5, 2) == -2  # half to even
    assert display(12_345 * SCALE // 1000) == "12.35"  # 12.345 displays half up


def test_ratio_to_best_and_raw_with_cap():
    contest = make_contest(
        {
            "id": "total",
            "name": "t",
            "kind": "sum",
            "components": [
                metric("best", "orders_paid", {"method": "ratio_to_best", "points": 50}),
                metric("raw", "new_followers", {"method": "raw", "scale": "0.1", "cap": 30}),
            ],
        }
    )
    inputs = {
        "a": _ci({"orders_paid": 40, "new_followers": 120}),  # 50, min(12, 30)
        "b": _ci({"orders_paid": 10, "new_followers": 500}),  # 12.5, capped 30
    }
    result = score_field(contest, "r", inputs)
    assert totals(result, "g") == {"a": "62", "b": "42.5"}


def test_ratio_to_best_when_nobody_sold_anything():
    contest = make_contest(metric("total", "orders_paid", {"method": "ratio_to_best", "points": 50}))
    result = score_field(contest, "r", _field("orders_paid", {"a": 0, "b": 0}))
    assert set(totals(result, "g").values()) == {"0"}


def test_net_gmv_can_go_negative_and_raw_keeps_it():
    contest = make_contest(metric("total", "net_gmv_fen", {"method": "raw", "scale": "0.01"}))
    inputs = {"a": _ci({"gmv_fen": 100, "refund_amount_fen": 350})}
    assert score_field(contest, "r", inputs).row("a").total == Decimal("-2.5")


def test_ratio_metric_with_zero_denominator_is_zero():
    node = metric("total", "conversion_rate", {"method": "ratio_to_best", "points": 100})
    result = score_field(
        make_contest(node),
        "r",
        {
            "a": _ci({"paid_buyers_uv": 5, "viewers_uv": 0}),
            "b": _ci({"paid_buyers_uv": 1, "viewers_uv": 4}),
        },
    )
    assert totals(result, "g") == {"b": "100", "a": "0"}


def _judges(drop: bool, min_judges: int = 1, panel: list[str] | None = None, scale_to: int | None = None):
    node = {
        "id": "total",
        "name": "评委",
        "kind": "judges",
        "drop_extremes": drop,
        "min_judges": min_judges,
        "criteria": [{"id": "c1", "name": "一", "max_points": 60}, {"id": "c2", "name": "二", "max_points": 40}],
    }
    if panel is not None:
        node["panel"] = panel
    if scale_to is not None:
        node["scale_to"] = scale_to
    return make_contest(node)


def _sheets(totals_by_judge: dict[str, int]) -> list[JudgeScoreInput]:
    out = []
    for judge, total in totals_by_judge.items():
        out += [
            JudgeScoreInput(judge, "c1", Decimal(total) * 6 / 10),
            JudgeScoreInput(judge, "c2", Decimal(total) * 4 / 10),
        ]
    return out


def test_judges_mean_with_and_without_dropping_highest_and_lowest():
    sheets = _sheets({"j1": 60, "j2": 70, "j3": 80, "j4": 90, "j5": 100})
    plain_mean = score_field(_judges(False), "r", {"a": _ci({}, sheets)})
    trimmed = score_field(_judges(True, 3), "r", {"a": _ci({}, sheets)})
    assert plain_mean.row("a").total == 80  # (60+70+80+90+100)/5
    sheets2 = _sheets({"j1": 10, "j2": 70, "j3": 80, "j4": 90, "j5": 100})
    assert score_field(_judges(True, 3), "r", {"a": _ci({}, sheets2)}).row("a").total == 80
    assert score_field(_judges(False), "r", {"a": _ci({}, sheets2)}).row("a").total == 70
    inputs = trimmed.explain("a").formula.inputs
    assert inputs["dropped"] == ["j1", "j5"] and inputs["used"] == ["j2", "j3", "j4"]


def test_judges_scale_to_and_incomplete_sheets():
    contest = _judges(False, 2, scale_to=30)
    sheets = _sheets({"j1": 80, "j2": 90})
    sheets.append(JudgeScoreInput("j3", "c1", Decimal(50)))  # j3 has not scored c2 yet
    result = score_field(contest, "r", {"a": _ci({}, sheets)})
    # mean of complete sheets (80, 90) = 85, × 30 / 100 = 25.5
    assert result.row("a").total == Decimal("25.5")
    assert result.explain("a").formula.inputs["incomplete"] == ["j3"]
    one = score_field(contest, "r", {"a": _ci({}, _sheets({"j1": 80}))})
    assert one.row("a").complete is False and one.row("a").total == 0


def test_bad_judge_scores_are_rejected_and_listed_not_used():
    contest = _judges(False, panel=["j1", "j2"])
    scores = [
        *_sheets({"j1": 80}),
        JudgeScoreInput("j2", "c1", Decimal("61")),  # above the criterion's 60
        JudgeScoreInput("j2", "c9", Decimal("1")),  # unknown criterion
        JudgeScoreInput("j7", "c1", Decimal("1")),  # not on the panel
        JudgeScoreInput("j2", "c2", Decimal("0.00000000000001")),  # finer than the engine's precision
    ]
    result = score_field(contest, "r", {"a": _ci({}, scores)})
    assert result.row("a").total == 80
    reasons = sorted(r.what for r in result.rejected)
    assert reasons == ["judge_score j2/c1", "judge_score j2/c2", "judge_score j2/c9", "judge_score j7/c1"]
    assert "outside 0..60" in next(r.reason for r in result.rejected if r.what == "judge_score j2/c1")
    with pytest.raises(TypeError):
        JudgeScoreInput("j1", "c1", 8.5)  # type: ignore[arg-type]


def test_adjustments_delta_override_and_latest_version():
    scoring = {
        "id": "total",
        "name": "t",
        "kind": "weighted",
        "components": [
            metric("a", "likes", {"method": "ratio_to_best", "points": 100}, weight=50),
            metric("b", "shares", {"method": "ratio_to_best", "points": 100}, weight=50),
        ],
    }
    contest = make_contest(scoring)
    adjustments = [
        AdjustmentInput("ap-1", "delta", Decimal("-1.5"), None, observed_at=1, reason="虚假宣传"),
        AdjustmentInput("ap-2", "override", Decimal("80"), "b", observed_at=2),
        AdjustmentInput("ap-2", "override", Decimal("60"), "b", observed_at=3),  # a later decision on ap-2
        AdjustmentInput("ap-3", "delta", Decimal("1"), "nope", observed_at=4),
    ]
    inputs = {
        "x": _ci({"likes": 10, "shares": 10}, adjustments=adjustments),
        "y": _ci({"likes": 5, "shares": 5}),
    }
    result = score_field(contest, "r", inputs)
    # x: a = 100; b overridden 100 → 60; total = 50%×100 + 50%×60 = 80, then −1.5 = 78.5
    assert result.row("x").total == Decimal("78.5")
    e = result.explain("x")
    assert e.formula.value == 80 and e.total_pico == e.formula.value_pico + Decimal("-1.5") * SCALE
    b = e.formula.children[1]
    assert b.computed_pico == 100 * SCALE and b.value == 60 and b.adjustments[0]["value"] == Decimal(60)
    explanation_adds_up(e.formula)
    assert [r.reason for r in result.rejected] == ["unknown component 'nope'"]


def test_tie_break_order_is_configurable_then_a_shared_place():
    scoring = {
        "id": "total",
        "name": "t",
        "kind": "weighted",
        "components": [
            metric("a", "likes", {"method": "ratio_to_best", "points": 100}, weight=50),
            metric("b", "shares", {"method": "ratio_to_best", "points": 100}, weight=50),
        ],
    }
    inputs = {
        "p": _ci({"likes": 10, "shares": 0, "gmv_fen": 1}),  # 50
        "q": _ci({"likes": 0, "shares": 10, "gmv_fen": 2}),  # 50
        "r": _ci({"likes": 0, "shares": 10, "gmv_fen": 2}),  # 50
    }
    by_b = score_field(make_contest(scoring, tie_break=["b"]), "r", inputs)
    assert order(by_b, "g") == ["q", "r", "p"]
    by_a = score_field(make_contest(scoring, tie_break=["a"]), "r", inputs)
    assert order(by_a, "g") == ["p", "q", "r"]
    by_metric = score_field(make_contest(scoring, tie_break=["gmv_fen"]), "r", inputs)
    assert order(by_metric, "g") == ["q", "r", "p"]
    # q and r are equal on the total and on gmv_fen: both tied for place 1 (listed by id), p is 3rd
    assert [(r.rank, r.tied) for r in by_metric.group("g").rows] == [(1, True), (1, True), (3, False)]


def test_awards_rest_and_advancement_across_groups():
    contest = make_contest(
        metric("total", "likes", {"method": "raw"}),
        groups=[{"id": "g", "name": "一"}, {"id": "h", "name": "二"}],
        awards=[{"id": "gold", "name": "金", "count": 1}, {"id": "merit", "name": "优", "count": "rest"}],
        advancement={"top": 3, "per": "round"},
    )
    inputs = {
        "a": _ci({"likes": 5}, group_id="g"),
        "b": _ci({"likes": 9}, group_id="g"),
        "c": _ci({"likes": 7}, group_id="h"),
        "d": _ci({"likes": 1}, group_id="h"),
        "e": _ci({"likes": 1}, group_id="zzz"),
    }
    result = score_field(contest, "r", inputs)
    assert [(r.contestant_id, r.award) for r in result.group("g").rows] == [("b", "gold"), ("a", "merit")]
    assert [(r.contestant_id, r.award) for r in result.group("h").rows] == [("c", "gold"), ("d", "merit")]
    assert sorted(r.contestant_id for g in result.groups for r in g.rows if r.advances) == ["a", "b", "c"]
    assert [(r.contestant_id, r.what) for r in result.rejected] == [("e", "contestant")]


def test_collective_top_k_mean_and_min_members():
    contest = make_contest(
        metric("total", "likes", {"method": "raw"}),
        organisations=[
            {"id": "x", "name": "X", "level": "district"},
            {"id": "y", "name": "Y", "level": "district"},
            {"id": "z", "name": "Z", "level": "district"},
        ],
        collective=[
            {
                "id": "c",
                "name": "集体",
                "level": "district",
                "aggregate": "top_k_mean",
                "k": 2,
                "min_members": 2,
                "awards": [{"id": "best", "name": "最佳", "count": 1}],
            }
        ],
    )
    likes = {"a": ("x", 10), "b": ("x", 7), "c": ("x", 1), "d": ("y", 9), "e": ("y", 9), "f": ("z", 50)}
    inputs = {cid: _ci({"likes": v}, organisation=OrgInput(district=o)) for cid, (o, v) in likes.items()}
    rows = score_field(contest, "r", inputs).collective[0].rows
    # x: best two 10 and 7 → 8.5; y: 9 and 9 → 9; z has one member (< 2): listed, not ranked
    assert [(r.rank, r.organisation_id, r.value, r.award) for r in rows] == [
        (1, "y", 9, "best"),
        (2, "x", Decimal("8.5"), None),
        (None, "z", 50, None),
    ]


def test_unknown_round_and_non_integer_metric():
    contest = make_contest(metric("total", "likes", {"method": "raw"}))
    with pytest.raises(ValidationError, match="round 'nope' is not in contest"):
        score_field(contest, "nope", {})
    result = score_field(contest, "r", {"a": _ci({"likes": 1.5})})  # type: ignore[dict-item]
    assert result.row("a").total == 0 and result.rejected[0].what == "metric likes"


def test_empty_field_scores_nothing():
    contest = make_contest(metric("total", "likes", {"method": "min_max", "points": 10}))
    result = score_field(contest, "r", {})
    assert result.group("g").rows == [] and len(result.digest()) == 64
