"""Properties that must hold for any field: order independence, bounds, monotonicity, exact sums."""

from __future__ import annotations

import random
from decimal import Decimal

from field_builders import explanation_adds_up, hubei_field, make_contest, metric
from hypothesis import given, settings
from hypothesis import strategies as st

from services.scoring.rules import AdjustmentInput, ContestantInputs, score_field
from services.scoring.rules.exact import SCALE

SETTINGS = settings(max_examples=60, deadline=None)
values = st.lists(st.integers(min_value=0, max_value=10**12), min_size=1, max_size=25)
NORMALISATIONS = [
    {"method": "min_max", "points": 10},
    {"method": "min_max", "points": "7.5", "when_equal": "zero"},
    {"method": "ratio_to_best", "points": 100},
    {"method": "rank", "points": 20, "step": "0.5"},
    {"method": "raw", "scale": "0.01"},
    {"method": "raw", "cap": 1000},
]


def _inputs(xs: list[int], name: str = "likes") -> dict[str, ContestantInputs]:
    return {f"c{i:03d}": ContestantInputs({name: x}, group_id="g") for i, x in enumerate(xs)}


@SETTINGS
@given(xs=values, normalise=st.sampled_from(NORMALISATIONS))
def test_single_metric_rule_never_ranks_a_larger_value_lower(xs, normalise):
    result = score_field(make_contest(metric("total", "likes", normalise)), "r", _inputs(xs))
    rank = {r.contestant_id: r.rank for r in result.group("g").rows}
    score = {r.contestant_id: r.total_pico for r in result.group("g").rows}
    for i, a in enumerate(xs):
        for j, b in enumerate(xs):
            if a > b:
                ci, cj = f"c{i:03d}", f"c{j:03d}"
                assert score[ci] >= score[cj]
                # only a cap can make two different values score the same; then contestant_id orders them
                if score[ci] != score[cj] or normalise.get("cap") is None:
                    assert rank[ci] < rank[cj]


@SETTINGS
@given(xs=values, points=st.sampled_from(["10", "0.5", "30", "99.999999"]))
def test_min_max_stays_within_zero_and_points(xs, points):
    result = score_field(
        make_contest(metric("total", "likes", {"method": "min_max", "points": points})), "r", _inputs(xs)
    )
    totals = {r.contestant_id: r.total for r in result.group("g").rows}
    assert all(Decimal(0) <= t <= Decimal(points) for t in totals.values())
    lo, hi = min(xs), max(xs)
    if lo != hi:
        assert totals[f"c{xs.index(lo):03d}"] == 0 and totals[f"c{xs.index(hi):03d}"] == Decimal(points)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(min_value=0, max_value=10**6), n=st.integers(min_value=1, max_value=60))
def test_order_of_inputs_changes_nothing_to_the_last_digit(hubei, seed, n):
    field = hubei_field(n, seed)
    items = list(field.items())
    random.Random(seed).shuffle(items)
    a = score_field(hubei, "full", field)
    b = score_field(hubei, "full", dict(items))
    assert a.digest() == b.digest()
    assert a.to_dict(explain=True) == b.to_dict(explain=True)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=10**6),
    delta=st.decimals(min_value=-50, max_value=50, places=2, allow_nan=False, allow_infinity=False),
)
def test_explanations_add_up_to_the_total_exactly(hubei, seed, delta):
    field = hubei_field(12, seed)
    first = sorted(field)[0]
    field[first] = ContestantInputs(
        field[first].metrics,
        adjustments=[
            AdjustmentInput("ap-1", "delta", delta, None),
            AdjustmentInput("ap-2", "delta", delta, "account"),
        ],
        group_id=field[first].group_id,
    )
    result = score_field(hubei, "full", field)
    for g in result.groups:
        for row in g.rows:
            e = g.explain(row.contestant_id)
            explanation_adds_up(e.formula)
            deltas = sum(Decimal(a["value"]) for a in e.total_adjustments) * SCALE
            assert e.total_pico == e.formula.value_pico + int(deltas) == row.total_pico


def test_digest_changes_when_any_value_changes(hubei):
    field = hubei_field(30, 3)
    base = score_field(hubei, "full", field).digest()
    cid = sorted(field)[5]
    metrics = dict(field[cid].metrics)
    metrics["video_shares"] += 1
    field[cid] = ContestantInputs(metrics, group_id=field[cid].group_id)
    assert score_field(hubei, "full", field).digest() != base
