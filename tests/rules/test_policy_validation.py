"""The validator on tie and missing-data policies, and the shipped seed files under the new rules."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from field_builders import make_contest, metric

from liveboard.contracts.contest_validate import Problem, check_contest_file, check_contest_text
from liveboard.paths import contests_dir

AWARDS = [{"id": "first", "name": "一等奖", "count": 1}]


def _text(**round_extra: Any) -> str:
    round_extra.setdefault("field", {"min": 5})
    contest = make_contest(metric("total", "gmv_fen", {"method": "raw"}), **round_extra)
    data = contest.model_dump(mode="json", exclude_defaults=True)
    data["stages"][0]["rounds"][0]["window"] = {
        "start": "2024-01-01T00:00:00+08:00",
        "end": "2024-02-01T00:00:00+08:00",
    }
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


def _check(text: str) -> tuple[bool, list[str], list[str]]:
    warnings: list[Problem] = []
    contest, problems = check_contest_text(text, warnings)
    return contest is not None, [p.message for p in problems], [w.message for w in warnings]


def test_a_round_with_awards_and_no_tie_policy_is_valid_with_a_warning():
    ok, problems, warnings = _check(_text(awards=AWARDS))
    assert ok and problems == []
    assert len(warnings) == 1 and warnings[0].startswith("no tie policy")
    ok, _, warnings = _check(_text(awards=AWARDS, ties={"policy": "share"}))
    assert ok and warnings == []
    ok, _, warnings = _check(_text(awards=AWARDS, tie_break=["gmv_fen"]))  # the shorthand declares tie_break
    assert ok and warnings == []


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"tie_break": ["gmv_fen"], "ties": {"policy": "share"}}, "give either tie_break (shorthand) or ties"),
        ({"ties": {"policy": "tie_break"}}, "the tie_break policy needs keys"),
        ({"ties": {"policy": "share", "keys": ["gmv_fen"]}}, "keys only apply to the tie_break policy"),
        ({"ties": {"policy": "share", "then": "decide"}}, "then only applies to the tie_break policy"),
        ({"ties": {"policy": "tie_break", "keys": ["nope"]}}, "'nope' is not a component or a metric"),
    ],
)
def test_tie_policy_problems(extra, message):
    ok, problems, _ = _check(_text(awards=AWARDS, **extra))
    assert not ok and any(message in p for p in problems), problems


@pytest.mark.parametrize("name", ["harbin-2020", "hubei-2021", "jiangle-2022", "shaoyang-2023"])
def test_seed_contests_validate_and_declare_every_policy(name):
    warnings: list[Problem] = []
    contest, problems = check_contest_file(contests_dir() / f"{name}.yaml", warnings)
    assert contest is not None and problems == []
    assert warnings == []  # ties and the missing-data rule of partly delivered metrics are declared
    for rnd in contest.rounds():
        if rnd.awards or rnd.advancement:
            assert contest.ties_for(rnd) is not None
        assert all(rule.ties is not None for rule in rnd.collective if rule.awards)
