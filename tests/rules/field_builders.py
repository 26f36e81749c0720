"""Helpers that build contestants' inputs for the rules tests."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

from liveboard.contracts.contest import Contest, JudgesNode, iter_nodes
from liveboard.contracts.contest_validate import load_contest
from liveboard.paths import contests_dir
from services.scoring.rules import ContestantInputs, JudgeScoreInput, RoundResult
from services.scoring.rules.exact import plain


def seed_contest(name: str) -> Contest:
    return load_contest(contests_dir() / f"{name}.yaml")


def sheet(judge: str, node: JudgesNode, total: Decimal | int | str) -> list[JudgeScoreInput]:
    """One judge's complete sheet whose points add up to ``total``: each criterion gets its share of
    the node's full score (max × total / full), which is exact for the totals the tests use."""
    full = sum(c.max_points for c in node.criteria)
    total = Decimal(total)
    return [JudgeScoreInput(judge, c.id, c.max_points * total / full) for c in node.criteria]


def judges_node(contest: Contest, round_id: str, node_id: str, group: str | None = None) -> JudgesNode:
    rnd = contest.round(round_id)
    root = contest.formula_for(rnd, group) if group else rnd.scoring
    for n in iter_nodes(root):
        if n.id == node_id:
            assert isinstance(n, JudgesNode)
            return n
    raise KeyError(node_id)


def totals(result: RoundResult, group: str) -> dict[str, str]:
    return {r.contestant_id: plain(r.total) for r in result.group(group).rows}


def order(result: RoundResult, group: str) -> list[str]:
    return [r.contestant_id for r in result.group(group).rows]


HUBEI_METRICS = (
    "video_plays",
    "video_likes",
    "video_shares",
    "new_followers",
    "likes",
    "comments",
    "shares",
    "viewers_pv",
    "viewers_uv",
    "gmv_fen",
    "refund_amount_fen",
    "orders_paid",
    "refunds_count",
    "paid_buyers_uv",
)


def hubei_field(n: int, seed: int = 1) -> dict[str, ContestantInputs]:
    """``n`` contestants spread over Hubei's three groups with random but plausible totals."""
    rng = random.Random(seed)
    groups = ("trainees", "veterans", "families")
    out: dict[str, ContestantInputs] = {}
    for i in range(n):
        metrics: dict[str, Any] = {m: rng.randint(0, 50_000) for m in HUBEI_METRICS}
        metrics["gmv_fen"] = rng.randint(0, 50_000_000)
        metrics["refund_amount_fen"] = rng.randint(0, metrics["gmv_fen"] // 5)
        metrics["refunds_count"] = rng.randint(0, metrics["orders_paid"])
        out[f"gen-{i:05d}"] = ContestantInputs(metrics=metrics, group_id=groups[i % 3])
    return out


def make_contest(scoring: dict[str, Any], **round_extra: Any) -> Contest:
    """A one-round contest around ``scoring`` (a formula as it would be written in YAML)."""
    organisations = round_extra.pop("organisations", [])
    groups = round_extra.pop("groups", [{"id": "g", "name": "组"}])
    platforms = round_extra.pop("platforms", ["douyin"])
    contestants = round_extra.pop("contestants", [])
    data = {
        "schema_version": 1,
        "id": "test",
        "name": "测试赛",
        "notice": "test",
        "organiser": "测试",
        "platforms": platforms,
        "organisations": organisations,
        "groups": groups,
        "contestants": contestants,
        "stages": [
            {
                "id": "s",
                "name": "阶段",
                "rounds": [
                    {
                        "id": "r",
                        "name": "轮次",
                        "window": {"start": "2024-01-01T00:00:00+08:00", "end": "2024-02-01T00:00:00+08:00"},
                        "scoring": scoring,
                        **round_extra,
                    }
                ],
            }
        ],
    }
    return Contest.model_validate(data)


def metric(node_id: str, name: str, normalise: dict[str, Any], weight: Any = None) -> dict[str, Any]:
    node = {"id": node_id, "name": node_id, "kind": "metric", "metric": name, "normalise": normalise}
    if weight is not None:
        node["weight"] = weight
    return node


def explanation_adds_up(node: Any) -> None:
    """Every composite's children contributions sum to its computed value, exactly, all the way down."""
    if node.children:
        assert sum(c.contribution_pico for c in node.children) == node.computed_pico, node.id
        for c in node.children:
            explanation_adds_up(c)
    if not node.adjustments:
        assert node.value_pico == node.computed_pico
