"""The big screens' collective ranking is computed from the leaderboard's totals (services/board/screen_data.py);
it must aggregate exactly as the rules engine does (services/scoring/rules/placing.py): same values for
sum, mean (half to even on pico-points), top_k_sum and top_k_mean, including negative and odd cases."""

from __future__ import annotations

import random

import pytest

from liveboard.contracts.contest import CollectiveRule
from services.board import screen_data
from services.scoring.rules import placing


@pytest.mark.parametrize("aggregate", ["sum", "mean", "top_k_sum", "top_k_mean"])
def test_aggregate_is_the_engines(aggregate: str) -> None:
    rng = random.Random(7)
    rule = CollectiveRule(id="r", name="r", level="district", aggregate=aggregate, k=3 if "top" in aggregate else None)
    for _ in range(500):
        values = [rng.randrange(-(10**14), 10**14) for _ in range(rng.randrange(1, 8))]
        assert screen_data._aggregate(rule.aggregate, rule.k, values) == placing._aggregate(rule, values)
    # a mean exactly half way: half to even, as the engine (5/2 → 2, 7/2 → 4)
    assert (
        screen_data._aggregate("mean", None, [2, 3])
        == placing._aggregate(rule.model_copy(update={"aggregate": "mean"}), [2, 3])
        == 2
    )
    assert screen_data._aggregate("mean", None, [3, 4]) == 4


def test_display_rounds_half_up_like_the_engine() -> None:
    from services.scoring.rules.exact import display

    for pico in (0, 1, 87_125_000_000_000, 87_124_999_999_999, 392_658_123_456_789, 5 * 10**9):
        for d in (0, 2, 3):
            assert screen_data._display(pico, d) == display(pico, d)


def test_contest_clock_maps_both_ways() -> None:
    clk = screen_data.parse_contest_clock("sim:1601049600000:20.0:1796170000.5")
    assert clk.to_dict() == {"kind": "sim", "wall_ms": 1796170000500, "contest_ms": 1601049600000, "speed": 20.0}
    # 10 s of wall time after the epoch is 200 s of contest time
    assert clk.to_wall_ms(1601049600000 + 200_000) == 1796170000500 + 10_000
    assert screen_data.parse_contest_clock("wall").to_wall_ms(123) == 123
    for bad in ("sim:1:2", "moon:1:2:3", "sim:1:0:3"):
        with pytest.raises(ValueError, match="contest_clock"):
            screen_data.parse_contest_clock(bad)
