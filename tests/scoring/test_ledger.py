"""The sales ledger fold (services/scoring/ledger.py) and how the state scores it, without the stack.

Hand-computed figures: partial refunds add up, a refund before its payment is held, duplicates count
once, unpaid and cancelled orders do not count, the after-sales cut-off, sales sources and reconciliation.
Property: any permutation and duplication of the same events gives the same ledger.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from services.scoring.contests import plan_for
from services.scoring.ledger import LedgerOrder, fold_totals, order_figures
from services.scoring.state import ContestState
from tests.scoring import factory as f
from tests.scoring.contests import HOUR, T0, make_contest

CID = "led"
DAY = 24 * HOUR


def _state(tmp_path: Path, sales: dict[str, Any] | None = None) -> ContestState:
    _p, contest = make_contest(tmp_path, CID, 4, groups=1, sales=sales)
    return ContestState(plan_for(contest))


def _o(cid: str, t: int, oid: str, status: str, amount: int, **kw: Any) -> Any:
    return f.order(CID, cid, t, order_id=oid, status=status, amount_fen=amount, **kw)


def _snap(cid: str, t: int, gmv: int, orders: int, refunds: int = 0, **kw: Any) -> Any:
    return f.live_snapshot(
        CID, cid, t, gmv_fen=gmv, orders_paid=orders, refund_amount_fen=refunds, live_started_at=T0 + HOUR, **kw
    )


LEDGER = {"platforms": {"douyin": "ledger"}}
S = T0 + 2 * HOUR  # inside round r1 (T0 … T0 + 24 h)


# ------------------------------------------------------------------------------------ the fold itself


def _fold(events: list[Any], cutoff: int | None = None) -> dict[str, Any]:
    orders: dict[tuple[str, str], LedgerOrder] = {}
    for ev in events:
        d = ev.data
        o = orders.setdefault((ev.platform, d.order_id), LedgerOrder(ev.platform, ev.account_id, d.order_id))
        o.apply(d.status, (0 if ev.revision == "provisional" else 1, ev.observed_at, ev.event_id), d.amount_fen,
                d.refund_id, d.buyer_id)  # fmt: skip
    totals = fold_totals(list(orders.values()), lambda t: T0 <= t < T0 + DAY, cutoff)
    return {p: t.summary() for p, t in totals.items()}


def test_two_partial_refunds_of_one_order_add_up() -> None:
    events = [
        _o("c0", S, "o1", "created", 10_000),
        _o("c0", S + 1, "o1", "paid", 10_000, buyer_id="b1"),
        _o("c0", S + HOUR, "o1", "refunded", 3_000, refund_id="r-a"),
        _o("c0", S + 2 * HOUR, "o1", "refunded", 2_000, refund_id="r-b"),
    ]
    dy = _fold(events)["douyin"]
    assert (dy["orders_paid"], dy["gmv_fen"], dy["refund_fen"], dy["net_gmv_fen"]) == (1, 10_000, 5_000, 5_000)
    assert dy["net_orders"] == 1 and dy["fully_refunded"] == 0 and dy["buyers"] == 1
    assert [r["refund_id"] for r in dy["refunded_orders"][0]["refunds"]] == ["r-a", "r-b"]


def test_full_refund_in_two_parts_removes_the_net_order_and_refunds_are_capped() -> None:
    events = [
        _o("c0", S, "o1", "paid", 4_000),
        _o("c0", S + 10, "o1", "refunded", 1_000, refund_id="r1"),
        _o("c0", S + 20, "o1", "refunded", 3_000, refund_id="r2"),
        _o("c0", S, "o2", "paid", 1_000),
        _o("c0", S + 30, "o2", "refunded", 1_500, refund_id="r3"),  # more than paid: capped, reported
    ]
    dy = _fold(events)["douyin"]
    assert (dy["orders_paid"], dy["gmv_fen"], dy["refund_fen"], dy["net_orders"]) == (2, 5_000, 5_000, 0)
    assert dy["buyers"] is None  # the platform gave no buyer ids
    assert dy["over_refunds"] == [{"order_id": "o2", "paid_fen": 1_000, "excess_fen": 500}]


def test_duplicate_refund_counts_once_and_a_later_version_replaces_it() -> None:
    refund = _o("c0", S + 10, "o1", "refunded", 1_000, refund_id="r1")
    again = _o("c0", S + 10, "o1", "refunded", 1_000, refund_id="r1")  # re-delivered: same event id
    assert refund.event_id == again.event_id
    final = _o("c0", S + 20, "o1", "refunded", 800, refund_id="r1", revision="final")  # the platform's final
    dy = _fold([_o("c0", S, "o1", "paid", 5_000), refund, again])["douyin"]
    assert dy["refund_fen"] == 1_000
    dy = _fold([_o("c0", S, "o1", "paid", 5_000), refund, final, again])["douyin"]
    assert dy["refund_fen"] == 800


def test_refund_before_pay_is_held_then_counted() -> None:
    early = [_o("c0", S, "o1", "created", 2_000), _o("c0", S + 5, "o1", "refunded", 500, refund_id="r1")]
    held = _fold(early)["douyin"]
    assert held["orders_paid"] == 0 and held["refund_fen"] == 0
    assert held["held_refunds"] == [{"order_id": "o1", "refund_id": "r1", "amount_fen": 500, "observed_at": S + 5}]
    dy = _fold([*early, _o("c0", S + 1, "o1", "paid", 2_000)])["douyin"]
    assert (dy["orders_paid"], dy["gmv_fen"], dy["refund_fen"]) == (1, 2_000, 500)
    assert "held_refunds" not in dy


def test_unpaid_and_cancelled_orders_do_not_count() -> None:
    events = [
        _o("c0", S, "o1", "created", 9_000),  # never paid
        _o("c0", S, "o2", "created", 7_000),
        _o("c0", S + 60_000, "o2", "cancelled", 7_000),  # cancelled before payment
        _o("c0", S, "o3", "paid", 3_000),
        _o("c0", S + 60_000, "o3", "cancelled", 3_000),  # cancelled after payment: refunded in full
        _o("c0", S, "o4", "paid", 1_000),
    ]
    dy = _fold(events)["douyin"]
    assert (dy["orders_paid"], dy["gmv_fen"], dy["refund_fen"], dy["net_gmv_fen"], dy["net_orders"]) == (
        2,
        4_000,
        3_000,
        1_000,
        1,
    )


def test_refund_after_the_cut_off_is_recorded_not_counted() -> None:
    cutoff = T0 + DAY + 7 * DAY
    events = [
        _o("c0", S, "o1", "paid", 5_000),
        _o("c0", cutoff, "o1", "refunded", 1_000, refund_id="in-time"),  # on the cut-off: counts
        _o("c0", cutoff + 1, "o1", "refunded", 2_000, refund_id="late"),
    ]
    dy = _fold(events, cutoff)["douyin"]
    assert dy["refund_fen"] == 1_000
    assert [(r["refund_id"], r["amount_fen"]) for r in dy["late_refunds"]] == [("late", 2_000)]
    assert _fold(events)["douyin"]["refund_fen"] == 3_000  # no cut-off: all count


_EVENTS = [
    _o("c0", S, "o1", "created", 10_000),
    _o("c0", S + 1, "o1", "paid", 10_000, buyer_id="b1"),
    _o("c0", S + 2, "o1", "refunded", 3_000, refund_id="r1"),
    _o("c0", S + 3, "o1", "refunded", 2_000, refund_id="r2"),
    _o("c0", S + 4, "o1", "refunded", 2_500, refund_id="r2", revision="final"),
    _o("c0", S + 5, "o2", "refunded", 700, refund_id="r3"),  # before its payment
    _o("c0", S + 6, "o2", "paid", 700, buyer_id="b2"),
    _o("c0", S + 7, "o3", "created", 100),
    _o("c0", S + 8, "o3", "cancelled", 100),
    _o("c0", S + 9, "o4", "paid", 300, buyer_id="b1"),
    _o("c0", S + 10, "o4", "paid", 300, buyer_id="b1", revision="final"),
    _o("c0", S + 8 * DAY, "o4", "refunded", 300, refund_id="r4"),  # after the cut-off below
]


@settings(max_examples=200, deadline=None)
@given(st.permutations(list(range(len(_EVENTS)))), st.lists(st.integers(0, len(_EVENTS) - 1), max_size=8))
def test_any_permutation_and_duplication_gives_the_same_ledger(order: list[int], dups: list[int]) -> None:
    cutoff = T0 + DAY + 7 * DAY
    want = {
        "orders_paid": 3,
        "gmv_fen": 11_000,
        "refund_fen": 6_200,
        "net_gmv_fen": 4_800,
        "net_orders": 2,
        "fully_refunded": 1,
        "buyers": 2,
    }
    events = [_EVENTS[i] for i in order]
    for k, i in enumerate(dups):  # duplicates anywhere
        events.insert((k * 7) % (len(events) + 1), _EVENTS[i])
    got = _fold(events, cutoff)["douyin"]
    assert {k: got[k] for k in want} == want
    assert got == _fold(_EVENTS, cutoff)["douyin"]


def test_order_figures_none_until_paid() -> None:
    o = LedgerOrder("douyin", "a", "o1")
    o.apply("refunded", (0, S, "e1"), 100, "r1", None)
    assert order_figures(o, None) is None
    o.apply("paid", (0, S - 1, "e2"), 100, None, None)
    f_ = order_figures(o, None)
    assert f_ is not None and f_.fully_refunded and f_.refund_fen == 100


# ---------------------------------------------------------------------- the state: sources and facts


def test_orders_only_contestant_scores_net_sales_from_the_ledger(tmp_path: Path) -> None:
    st_ = _state(tmp_path, LEDGER)
    for ev in [
        _o("c0000", S, "o1", "paid", 3_990),
        _o("c0000", S + 1, "o2", "paid", 2_000),
        _o("c0000", S + 2, "o2", "refunded", 2_000, refund_id="r1"),
        _o("c0000", S + 3, "o3", "paid", 2_000),
    ]:
        st_.apply(ev)
    ri = st_.inputs_for("r1", "c0000")
    m = ri.inputs.metrics
    assert (m["gmv_fen"], m["refund_amount_fen"], m["orders_paid"], m["refunds_count"]) == (7_990, 2_000, 3, 1)
    assert (m["ledger_net_gmv_fen"], m["ledger_net_orders"]) == (5_990, 2)
    assert ri.facts["net_gmv_fen"] == 5_990 and ri.facts["paid_orders"] == 3
    assert ri.evidence["orders"]["net_fen"] == 5_990
    assert ri.evidence["sales_sources"]["gmv_fen"] == {"douyin": "ledger"}


def test_without_a_sales_block_snapshots_are_scored_and_the_ledger_is_evidence(tmp_path: Path) -> None:
    st_ = _state(tmp_path)
    st_.apply(_snap("c0000", S, 10_000, 5))
    st_.apply(_o("c0000", S, "o1", "paid", 4_000))
    ri = st_.inputs_for("r1", "c0000")
    assert ri.inputs.metrics["gmv_fen"] == 10_000 and ri.inputs.metrics["ledger_gmv_fen"] == 4_000
    assert "sales_sources" not in ri.evidence
    # …and compared: 6,000 分 and 4 orders apart
    rec = ri.evidence["reconciliation"]["douyin"]
    assert rec["mismatch"] and rec["reasons"] == ["gmv_fen", "orders_paid"]
    assert (rec["gmv_diff_fen"], rec["orders_diff"]) == (-6_000, -4)


def test_per_metric_source_and_reconciliation_clears_when_the_figures_meet(tmp_path: Path) -> None:
    sales = {"platforms": {"douyin": "snapshot"}, "metrics": {"refund_amount_fen": "ledger"}}
    st_ = _state(tmp_path, {**sales, "reconcile": {"tolerance_fen": 50, "tolerance_orders": 0}})
    st_.apply(_snap("c0000", S, 5_000, 2, refunds=0))
    st_.apply(_o("c0000", S, "o1", "paid", 3_000))
    st_.apply(_o("c0000", S, "o2", "paid", 2_000))
    st_.apply(_o("c0000", S + 5, "o2", "refunded", 500, refund_id="r1"))
    ri = st_.inputs_for("r1", "c0000")
    # gross from the snapshot, refunds from the ledger
    assert (ri.inputs.metrics["gmv_fen"], ri.inputs.metrics["refund_amount_fen"]) == (5_000, 500)
    assert ri.facts["net_gmv_fen"] == 4_500
    rec = ri.evidence["reconciliation"]["douyin"]
    assert rec["mismatch"] and rec["reasons"] == ["refund_amount_fen"]
    assert rec["orders"]["refunded_orders"][0]["order_id"] == "o2"
    # the platform's next figures include the refund (within the tolerance of 50 分): cleared
    st_.apply(_snap("c0000", S + 60_000, 5_000, 2, refunds=460))
    rec = st_.inputs_for("r1", "c0000").evidence["reconciliation"]["douyin"]
    assert not rec["mismatch"] and rec["refund_diff_fen"] == 40


def test_after_sales_cut_off_from_the_contest_file(tmp_path: Path) -> None:
    st_ = _state(tmp_path, {**LEDGER, "after_sales": {"refunds_until_days_after_round": 3}})
    end = T0 + DAY
    assert st_.refund_cutoff("r1") == end + 3 * DAY
    st_.apply(_o("c0000", S, "o1", "paid", 6_000))
    st_.apply(_o("c0000", end + 3 * DAY, "o1", "refunded", 1_000, refund_id="r1"))
    st_.apply(_o("c0000", end + 3 * DAY + 1, "o1", "refunded", 2_000, refund_id="r2"))
    ri = st_.inputs_for("r1", "c0000")
    assert ri.facts["net_gmv_fen"] == 5_000
    late = ri.evidence["orders"]["platforms"]["douyin"]["late_refunds"]
    assert [(r["refund_id"], r["amount_fen"]) for r in late] == [("r2", 2_000)]


def test_conversion_fact_is_the_rounds_own_definition(tmp_path: Path) -> None:
    st_ = _state(tmp_path)
    # the test contest scores no conversion: 成交转化率 = paying buyers ÷ unique viewers
    st_.apply(_snap("c0000", S, 10_000, 30, viewers_uv=1_000, paid_buyers_uv=20))
    ri = st_.inputs_for("r1", "c0000")
    assert st_.conversion("r1").label_zh.startswith("成交转化率")
    assert ri.facts["conversion_ppm"] == 20_000


def test_conversion_fact_follows_a_contest_that_scores_paid_orders_over_viewers(tmp_path: Path) -> None:
    from liveboard.contracts.contest_validate import load_contest
    from tests.scoring.contests import contest_doc, write_contest

    doc = contest_doc("conv", 4, groups=1)
    # Harbin's "下单转化率": paid orders ÷ unique viewers, as an inline ratio
    doc["stages"][0]["rounds"][0]["scoring"]["components"][1] = {
        "id": "conversion",
        "name": "下单转化率",
        "weight": 20,
        "kind": "metric",
        "metric": {"numerator": ["orders_paid"], "denominator": ["viewers_uv"]},
        "normalise": {"method": "min_max", "points": 100},
    }
    st_ = ContestState(plan_for(load_contest(write_contest(tmp_path, doc))))
    st_.apply(f.live_snapshot("conv", "c0000", S, gmv_fen=10_000, orders_paid=30, viewers_uv=1_000, paid_buyers_uv=20))
    assert st_.conversion("r1").name == "下单转化率"
    assert st_.conversion("r1").label_zh == "下单转化率（成交订单数（成交量）÷观看人数）"
    # 30 paid orders ÷ 1,000 viewers = 3 %, not the 2 % of paying buyers
    assert st_.inputs_for("r1", "c0000").facts["conversion_ppm"] == 30_000
