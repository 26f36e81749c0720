"""Every kind of mistake in a contest file is reported, with its path and line, all in one run."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from liveboard.contracts.contest_validate import ContestValidationError, check_contest_text, load_contest

BASE: dict[str, Any] = {
    "schema_version": 1,
    "id": "demo",
    "name": "示例赛",
    "notice": "demo",
    "organiser": "组委会",
    "platforms": ["douyin", "kuaishou"],
    "organisations": [
        {"id": "city-a", "name": "甲市", "level": "city"},
        {"id": "dist-a1", "name": "甲一区", "level": "district", "parent": "city-a"},
        {"id": "city-b", "name": "乙市", "level": "city"},
    ],
    "groups": [{"id": "g1", "name": "一组", "quotas": {"city-a": 3}}, {"id": "g2", "name": "二组"}],
    "contestants": [
        {
            "id": f"c{i}",
            "name": f"选手{i}",
            "group": "g1" if i < 3 else "g2",
            "organisation": {"city": "city-a" if i < 3 else "city-b"},
            "accounts": {"douyin": f"dy{i}"},
        }
        for i in range(6)
    ],
    "stages": [
        {
            "id": "s1",
            "name": "初赛",
            "rounds": [
                {
                    "id": "r1",
                    "name": "初赛",
                    "window": {"start": "2024-03-01T00:00:00+08:00", "end": 1_711_900_800_000},
                    "scoring": {
                        "id": "total",
                        "name": "总分",
                        "kind": "weighted",
                        "components": [
                            {
                                "id": "judges",
                                "name": "评委",
                                "weight": 40,
                                "kind": "judges",
                                "min_judges": 3,
                                "drop_extremes": True,
                                "criteria": [{"id": "c1", "name": "表现", "max_points": 100}],
                            },
                            {
                                "id": "sales",
                                "name": "销售",
                                "weight": 60,
                                "kind": "metric",
                                "metric": "net_gmv_fen",
                                "normalise": {"method": "ratio_to_best", "points": 100},
                            },
                        ],
                    },
                    "tie_break": ["sales", "orders_paid"],
                    "awards": [
                        {"id": "first", "name": "一等奖", "count": 1},
                        {"id": "rest", "name": "优秀", "count": "rest"},
                    ],
                    "advancement": {"top": 2},
                },
            ],
        },
        {
            "id": "s2",
            "name": "决赛",
            "rounds": [
                {
                    "id": "r2",
                    "name": "决赛",
                    "window": {"start": "2024-04-01T00:00:00+08:00", "end": "2024-04-02T00:00:00+08:00"},
                    "entrants": {"from_round": "r1"},
                    "scoring": {
                        "id": "total",
                        "name": "总分",
                        "kind": "metric",
                        "metric": "orders_paid",
                        "normalise": {"method": "rank", "points": 20, "step": "0.5"},
                    },
                    "awards": [{"id": "first", "name": "一等奖", "count": 2}],
                    "collective": [
                        {
                            "id": "city",
                            "name": "城市奖",
                            "level": "city",
                            "aggregate": "top_k_sum",
                            "k": 2,
                            "awards": [{"id": "best", "name": "最佳", "count": 1}],
                        }
                    ],
                },
            ],
        },
    ],
}


def _check(data: dict[str, Any]) -> list[tuple[str, str]]:
    contest, problems = check_contest_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    assert (contest is None) == bool(problems)
    return [(p.path, p.message) for p in problems]


def test_the_base_file_is_valid():
    assert _check(BASE) == []


def _round(data: dict[str, Any], stage: int = 0) -> dict[str, Any]:
    return data["stages"][stage]["rounds"][0]


def test_unknown_metric():
    data = copy.deepcopy(BASE)
    _round(data)["scoring"]["components"][1]["metric"] = "gmv"
    assert _check(data) == [
        (
            "stages[0].rounds[0].scoring.components[1].metric",
            "unknown metric 'gmv' (see liveboard/contracts/metrics.py)",
        )
    ]


def test_unknown_metric_inside_a_ratio():
    data = copy.deepcopy(BASE)
    _round(data)["scoring"]["components"][1]["metric"] = {"numerator": ["orders_paid"], "denominator": ["fans"]}
    assert _check(data)[0][1] == "unknown metric 'fans' (see liveboard/contracts/metrics.py)"


def test_weights_not_summing_to_100():
    data = copy.deepcopy(BASE)
    _round(data)["scoring"]["components"][1]["weight"] = 50
    assert _check(data) == [("stages[0].rounds[0].scoring.components", "weights must sum to 100 %, got 40 + 50 = 90")]


def test_weighted_components_with_different_full_scores():
    data = copy.deepcopy(BASE)
    _round(data)["scoring"]["components"][1]["normalise"]["points"] = 70
    assert "must share one full score" in _check(data)[0][1]


def test_account_registered_twice():
    data = copy.deepcopy(BASE)
    data["contestants"][4]["accounts"] = {"douyin": "dy1"}
    assert _check(data) == [("contestants[4].accounts.douyin", "account douyin:dy1 is already registered to 'c1'")]


def test_a_sales_source_for_a_platform_the_contest_does_not_use():
    data = copy.deepcopy(BASE)
    data["sales"] = {"platforms": {"kuaishou": "ledger", "wechat_channels": "snapshot"}}
    assert _check(data) == [
        ("sales.platforms.wechat_channels", "'wechat_channels' is not one of the contest's platforms")
    ]


def test_single_account_contests_refuse_a_second_platform():
    data = copy.deepcopy(BASE)
    data["contestants"][0]["accounts"] = {"douyin": "dy0", "kuaishou": "ks0"}
    assert _check(data) == []
    data["single_account"] = True
    assert _check(data) == [("contestants[0].accounts", "2 accounts, but this contest allows one per contestant")]


def test_contestant_in_two_groups():
    data = copy.deepcopy(BASE)
    data["contestants"].append({**data["contestants"][0], "group": "g2", "accounts": {"kuaishou": "ks0"}})
    problems = _check(data)
    assert (
        "contestants[6].id",
        "contestant 'c0' is in two groups ('g1' and 'g2') (first at contestants[0])",
    ) in problems


def test_award_counts_larger_than_the_field():
    data = copy.deepcopy(BASE)
    _round(data)["awards"][0]["count"] = 4  # group g1 has 3 registered
    _round(data, 1)["awards"][0]["count"] = 3  # only 2 advance from r1
    assert _check(data) == [
        (
            "stages[0].rounds[0].awards",
            "4 fixed award places but the field of group 'g1' is 3 (registered contestants)",
        ),
        (
            "stages[0].rounds[0].awards",
            "4 fixed award places but the field of group 'g2' is 3 (registered contestants)",
        ),
        ("stages[1].rounds[0].awards", "3 fixed award places but the field of group 'g1' is 2 (top 2 of 'r1')"),
        ("stages[1].rounds[0].awards", "3 fixed award places but the field of group 'g2' is 2 (top 2 of 'r1')"),
    ]


def test_a_declared_field_replaces_the_sample_count():
    data = copy.deepcopy(BASE)
    _round(data)["awards"][0]["count"] = 10
    _round(data)["field"] = {"min": 90}
    assert _check(data) == []


def test_advancement_larger_than_the_field():
    data = copy.deepcopy(BASE)
    _round(data)["advancement"]["top"] = 5
    problems = _check(data)
    assert (
        "stages[0].rounds[0].advancement.top",
        "5 advance but the field of group 'g1' is 3 (registered contestants)",
    ) in problems


def test_time_windows_overlapping():
    data = copy.deepcopy(BASE)
    _round(data, 1)["window"]["start"] = "2024-03-31T12:00:00+08:00"
    assert _check(data) == [
        ("stages[1].rounds[0].window", "overlaps round 'r1' for group 'g1': a metric would count in both rounds"),
        ("stages[1].rounds[0].window", "overlaps round 'r1' for group 'g2': a metric would count in both rounds"),
    ]


def test_window_end_before_start_and_naive_time():
    data = copy.deepcopy(BASE)
    _round(data, 1)["window"]["end"] = "2024-03-31T00:00:00+08:00"
    assert ("stages[1].rounds[0].window", "start must be before end") in _check(data)
    _round(data, 1)["window"]["end"] = "2024-04-02T00:00:00"
    (path, message), *_ = _check(data)
    assert path == "stages[1].rounds[0].window.end" and "has no UTC offset" in message


def test_unknown_group_referenced():
    data = copy.deepcopy(BASE)
    data["contestants"][0]["group"] = "g9"
    _round(data)["groups"] = ["g1", "g7"]
    problems = _check(data)
    assert ("contestants[0].group", "unknown group 'g9'") in problems
    assert ("stages[0].rounds[0].groups[1]", "unknown group 'g7'") in problems


def test_unknown_organisation_and_quota_exceeded():
    data = copy.deepcopy(BASE)
    data["contestants"][1]["organisation"] = {"city": "city-x"}
    data["groups"][0]["quotas"] = {"city-a": 1, "city-z": 2}
    problems = _check(data)
    assert ("contestants[1].organisation.city", "unknown organisation 'city-x'") in problems
    assert ("groups[0].quotas.city-z", "unknown organisation 'city-z'") in problems
    assert ("groups[0].quotas.city-a", "2 contestants registered, quota is 1") in problems


def test_tie_break_rest_order_and_collective_rules():
    data = copy.deepcopy(BASE)
    _round(data)["tie_break"] = ["sales", "charisma"]
    _round(data)["awards"] = list(reversed(_round(data)["awards"]))
    _round(data, 1)["collective"][0]["k"] = None
    problems = _check(data)
    assert (
        "stages[0].rounds[0].tie_break[1]",
        "'charisma' is neither a component of this round nor a known metric",
    ) in problems
    assert (
        "stages[0].rounds[0].awards[0].count",
        '"rest" takes every remaining place, so it must be the last award',
    ) in problems
    assert ("stages[1].rounds[0].collective[0].k", "top_k_sum needs k") in problems


def test_judges_rules():
    data = copy.deepcopy(BASE)
    judges = _round(data)["scoring"]["components"][0]
    judges["min_judges"] = 2
    judges["criteria"].append({"id": "c1", "name": "重复", "max_points": 0})
    problems = _check(data)
    assert (
        "stages[0].rounds[0].scoring.components[0].min_judges",
        "dropping the highest and lowest needs at least 3 judges",
    ) in problems
    assert ("stages[0].rounds[0].scoring.components[0].criteria[1].max_points", "must be > 0") in problems
    assert any("criterion id (judge_score events name it) 'c1' is listed twice" in m for _, m in problems)


def test_entrants_from_a_later_or_unknown_round():
    data = copy.deepcopy(BASE)
    _round(data, 1)["entrants"]["from_round"] = "r3"
    assert ("stages[1].rounds[0].entrants.from_round", "unknown round 'r3'") in _check(data)


def test_structure_problems_are_listed_together_with_the_rest():
    data = copy.deepcopy(BASE)
    _round(data)["scoring"]["components"][1]["normalise"] = {"method": "min_max", "points": 7.5}
    data["contestants"][5]["accounts"] = {"douyin": "dy1"}
    data["contestants"][2]["shoe_size"] = 42
    problems = _check(data)
    assert (
        "stages[0].rounds[0].scoring.components[1].normalise.points",
        'write decimals as quoted strings, e.g. "7.5" (a YAML float is binary)',
    ) in problems
    assert ("contestants[2].shoe_size", "unknown key") in problems
    # the meaning of the rest is still checked, with paths into the original file
    assert ("contestants[5].accounts.douyin", "account douyin:dy1 is already registered to 'c1'") in problems


def test_bad_yaml_names_the_line():
    text = "schema_version: 1\nid: x\nname: [unclosed\nplatforms: [douyin]\n"
    contest, problems = check_contest_text(text)
    assert contest is None and len(problems) == 1
    assert problems[0].line == 4 and problems[0].message.startswith("bad YAML")


def test_duplicate_yaml_keys_are_reported_with_both_lines():
    text = yaml.safe_dump(BASE, allow_unicode=True, sort_keys=False).replace(
        "notice: demo\n", "notice: demo\nname: 又一个名字\n", 1
    )
    _, problems = check_contest_text(text)
    assert problems[0].path == "name" and problems[0].message.startswith("duplicate key (first at line 3)")
    assert problems[0].line == 5


def test_lines_point_into_the_file(tmp_path):
    text = yaml.safe_dump(BASE, allow_unicode=True, sort_keys=False).replace("metric: net_gmv_fen", "metric: gmv")
    path = tmp_path / "demo.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ContestValidationError) as info:
        load_contest(path)
    (problem,) = info.value.problems
    line = text.splitlines()[problem.line - 1]
    assert "metric: gmv" in line
    assert str(info.value).startswith(f"{path}:{problem.line}: stages[0].rounds[0].scoring.components[1].metric")


def test_empty_and_non_mapping_files():
    assert check_contest_text("")[1][0].message == "the file is empty"
    assert "must be a mapping" in check_contest_text("- a\n- b\n")[1][0].message
