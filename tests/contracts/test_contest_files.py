"""The shipped contest files load, and schemas/contest.v1.json is the models' schema."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
import yaml

from liveboard.contracts.contest import contest_json_schema, iter_nodes, node_max
from liveboard.contracts.contest_validate import ContestYamlLoader, load_contest
from liveboard.contracts.schemas import contest_validator
from liveboard.paths import contests_dir

SHIPPED = sorted(p.name for p in contests_dir().glob("*.yaml"))


def test_all_four_seed_contests_are_shipped():
    assert {"harbin-2020.yaml", "jiangle-2022.yaml", "shaoyang-2023.yaml", "hubei-2021.yaml"} <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_file_is_valid_for_models_and_schema(name):
    path = contests_dir() / name
    contest = load_contest(path)
    assert f"{contest.id}.yaml" == name
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=ContestYamlLoader)
    assert list(contest_validator().iter_errors(data)) == []


def test_committed_contest_schema_is_generated_from_the_models():
    committed = json.loads((contests_dir().parent / "schemas" / "contest.v1.json").read_text(encoding="utf-8"))
    assert committed == json.loads(json.dumps(contest_json_schema())), (
        "regenerate schemas/contest.v1.json from liveboard.contracts.contest.contest_json_schema()"
    )


def test_harbin_final_is_30_quality_plus_70_data():
    contest = load_contest(contests_dir() / "harbin-2020.yaml")
    final = contest.round("final")
    root = final.scoring
    assert [(c.id, c.weight) for c in root.components] == [("quality", Decimal(30)), ("data", Decimal(70))]
    assert node_max(root) == 100
    assert [a.count for a in final.awards] == [1, 2, 7, "rest"]
    assert contest.round("semi").advancement.top == 40
    # times given as +08:00 are stored as UTC ms: 2020-09-26T00:00+08:00 = 2020-09-25T16:00Z
    assert final.window.start == 1_601_049_600_000


def test_shaoyang_short_video_is_judges_70_plus_system_30():
    contest = load_contest(contests_dir() / "shaoyang-2023.yaml")
    rnd = contest.round("city-final")
    for group in ("creative", "startup"):
        root = contest.formula_for(rnd, group)
        nodes = {n.id: n for n in iter_nodes(root)}
        assert [c.weight for c in root.components] == [60, 30, 10]
        assert node_max(nodes["showcase"]) == node_max(nodes["live"]) == node_max(nodes["video"]) == 100
        assert node_max(nodes["video_judges"]) == 70
        assert node_max(nodes["video_system"]) == 30
        assert len(nodes["showcase"].panel) == 7
