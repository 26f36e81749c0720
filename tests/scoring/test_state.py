"""The fold rules (state.py) and recompute, without engines: order, duplicates, supersession, rounds."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from services.scoring.contests import plan_for
from services.scoring.recompute import Recomputer, Versions
from services.scoring.state import ContestState
from tests.scoring import factory as f
from tests.scoring.contests import HOUR, T0, make_contest
from tests.scoring.support import expected, stream_scenario


def _state(tmp_path: Path, cid: str = "st", n: int = 6, **kw: object) -> ContestState:
    _path, contest = make_contest(tmp_path, cid, n, **kw)
    return ContestState(plan_for(contest))


def _score(st: ContestState, round_id: str = "r1"):  # type: ignore[no-untyped-def]
    st.active_rounds.add(round_id)
    return Recomputer(st, Versions(), 10).compute(round_id, {})


def _snap(cid: str, t: int, gmv: int, **kw: object):  # type: ignore[no-untyped-def]
    kw.setdefault("account_id", f"acct-{cid}")
    return f.live_snapshot("st", cid, t, gmv_fen=gmv, orders_paid=gmv // 100, **kw)


def test_any_order_with_duplicates_gives_the_same_digest(tmp_path: Path) -> None:
    path, _ = make_contest(tmp_path, "perm", 12)
    sc = stream_scenario("perm", 12, 6, seed=3)
    want, _rows = expected(path, sc.events)
    rnd = random.Random(11)
    for _ in range(5):
        events = sc.events + rnd.sample(sc.events, len(sc.events) // 3)  # a third delivered twice
        rnd.shuffle(events)
        st = ContestState(plan_for(make_contest(tmp_path, "perm", 12)[1]))
        for e in events:
            st.apply(e)
        assert _score(st).digest == want


def test_late_older_snapshot_never_overwrites_and_a_decrease_is_a_recorded_revision(tmp_path: Path) -> None:
    st = _state(tmp_path)
    t = T0 + HOUR
    st.apply(_snap("c0000", t, 5_000))
    st.apply(_snap("c0000", t + 2000, 9_000))
    st.apply(_snap("c0000", t + 1000, 7_000))  # late and older: ignored
    assert st.inputs_for("r1", "c0000").inputs.metrics["gmv_fen"] == 9_000
    assert st.revisions == []
    st.apply(_snap("c0000", t + 3000, 8_000))  # newer but lower: used, and recorded
    assert st.inputs_for("r1", "c0000").inputs.metrics["gmv_fen"] == 8_000
    assert [(r.metric, r.old_value, r.new_value) for r in st.revisions if r.metric == "gmv_fen"] == [
        ("gmv_fen", 9_000, 8_000)
    ]


def test_final_figures_supersede_provisional_even_when_older_and_lower(tmp_path: Path) -> None:
    st = _state(tmp_path)
    t = T0 + HOUR
    st.apply(_snap("c0001", t + 5000, 10_000))
    st.apply(_snap("c0001", t, 6_000, revision="final"))
    st.apply(_snap("c0001", t + 9000, 12_000))  # a provisional after the final one does not replace it
    ri = st.inputs_for("r1", "c0001")
    assert ri.inputs.metrics["gmv_fen"] == 6_000
    assert ri.evidence["rooms"][0]["revision"] == "final"


def test_rooms_are_summed_and_a_room_counts_in_the_round_it_started_in(tmp_path: Path) -> None:
    st = _state(tmp_path, hours=2)
    start = T0 + HOUR
    st.apply(_snap("c0002", start, 1_000, room_id="a", live_started_at=start))
    st.apply(_snap("c0002", start, 2_000, room_id="b", live_started_at=start))
    # the platform's next-day figures for room a, observed after the window: still round r1
    st.apply(_snap("c0002", T0 + 26 * HOUR, 800, room_id="a", live_started_at=start, revision="final"))
    # a room that started after the window is in no round
    st.apply(_snap("c0002", T0 + 3 * HOUR, 5_000, room_id="c", live_started_at=T0 + 3 * HOUR))
    assert st.inputs_for("r1", "c0002").inputs.metrics["gmv_fen"] == 2_800


def test_refund_after_the_stream_lowers_net_sales_and_moves_the_ranking(tmp_path: Path) -> None:
    st = _state(tmp_path, n=3, groups=1)
    start = T0 + HOUR
    st.apply(_snap("c0000", start + 1000, 10_000, live_started_at=start))
    st.apply(_snap("c0001", start + 1000, 9_000, live_started_at=start))
    first = _score(st)
    assert [r[3] for r in sorted(first.leaderboard_rows, key=lambda r: r[6])][:2] == ["c0000", "c0001"]
    # after the stream: c0000 refunds 3,000 分 (final figures, next day) and an order refund arrives
    st.apply(_snap("c0000", T0 + 30 * HOUR, 10_000, live_started_at=start, refund_amount_fen=3_000, revision="final"))
    st.apply(f.order("st", "c0000", start + 500, order_id="o1", status="paid", amount_fen=3_000))
    st.apply(f.order("st", "c0000", T0 + 30 * HOUR, order_id="o1", status="refunded", amount_fen=3_000))
    ri = st.inputs_for("r1", "c0000")
    assert ri.facts["net_gmv_fen"] == 7_000
    orders = dict(ri.evidence["orders"])
    assert orders.pop("platforms")["douyin"]["refunded_orders"][0]["order_id"] == "o1"
    assert orders == {
        "paid": 1,
        "paid_fen": 3_000,
        "refunded": 1,
        "refund_fen": 3_000,
        "net_fen": 0,
        "net_orders": 0,
        "buyers": None,
        "status_events": 2,
    }
    second = Recomputer(st, Versions(), 10).compute("r1", {})
    assert [r[3] for r in sorted(second.leaderboard_rows, key=lambda r: r[6])][:2] == ["c0001", "c0000"]


def test_judge_corrections_and_adjustment_withdrawal(tmp_path: Path) -> None:
    st = _state(tmp_path, n=3, groups=1)
    kw = {"round_id": "r1", "judge_id": "j1", "criterion": "pitch", "max_points": "10"}
    st.apply(f.judge_score("st", "c0000", T0 + 2000, points="9", **kw))
    st.apply(f.judge_score("st", "c0000", T0 + 1000, points="3", **kw))  # older: superseded
    st.apply(f.adjustment("st", "c0000", T0 + 3000, round_id="r1", adjustment_id="a1", value="-5"))
    o = _score(st)
    row = next(r for r in o.leaderboard_rows if r[3] == "c0000")
    # sales 0 (no data), orders 100 × 20 % (everyone equal: full points), judges 9/10 → 90 × 20 %, − 5
    assert row[9] == "33.000000000000"
    assert (row[11], row[12]) == ("20.000000000000", "18.000000000000")  # data part, judges part
    st.apply(f.adjustment("st", "c0000", T0 + 4000, round_id="r1", adjustment_id="a1", value="0"))  # withdrawn
    o = Recomputer(st, Versions(), 10).compute("r1", {})
    row = next(r for r in o.leaderboard_rows if r[3] == "c0000")
    assert row[9] == "38.000000000000"


def test_unbound_account_does_not_count_and_locked_contests_refuse_rebinding(tmp_path: Path) -> None:
    st = _state(tmp_path, n=3, groups=1, accounts_locked=True)
    t = T0 + HOUR
    st.apply(_snap("c0000", t, 4_000, account_id="someone-else", room_id="x"))
    ri = st.inputs_for("r1", "c0000")
    assert "gmv_fen" not in ri.inputs.metrics
    assert ri.evidence["rooms"][0]["counted"] is False
    st.apply(f.account_bound("st", "c0000", T0, platform="douyin", account_id="someone-else"))
    ri = st.inputs_for("r1", "c0000")
    assert "gmv_fen" not in ri.inputs.metrics  # locked: the binding is refused
    assert ri.evidence["rejected_bindings"][0]["reason"].startswith("accounts are locked")


def test_rebinding_moves_data_from_its_time_on(tmp_path: Path) -> None:
    st = _state(tmp_path, n=3, groups=1)
    t = T0 + HOUR
    st.apply(
        f.account_bound("st", "c0001", t, platform="douyin", account_id="new-acct", replaces_account_id="acct-c0001")
    )
    st.apply(_snap("c0001", t - 1000, 1_000, account_id="acct-c0001", room_id="old", live_started_at=t - 1000))
    st.apply(_snap("c0001", t + 1000, 2_000, account_id="new-acct", room_id="new", live_started_at=t + 1000))
    st.apply(_snap("c0001", t + 2000, 9_999, account_id="acct-c0001", room_id="late", live_started_at=t + 2000))
    assert st.inputs_for("r1", "c0001").inputs.metrics["gmv_fen"] == 3_000


def test_registration_event_moves_a_contestant_and_the_old_row_is_deleted(tmp_path: Path) -> None:
    st = _state(tmp_path, n=6, groups=2)
    rc = Recomputer(st, Versions(), 10)
    st.active_rounds.add("r1")
    first = rc.compute("r1", {})
    assert {(r[2], r[3]) for r in first.leaderboard_rows} >= {("g1", "c0000")}
    st.apply(f.registration("st", "c0000", T0, group_id="g2", display_name="改名"))
    second = rc.compute("r1", {})
    assert ("g1", "c0000") in second.deletes
    moved = next(r for r in second.leaderboard_rows if r[3] == "c0000")
    assert (moved[2], moved[7]) == ("g2", "改名")


def test_unchanged_rows_are_not_written_again(tmp_path: Path) -> None:
    st = _state(tmp_path, n=6, groups=1)
    rc = Recomputer(st, Versions(), 10)
    for i in range(6):
        st.apply(_snap(f"c{i:04d}", T0 + HOUR, 1000 * (i + 1)))
    st.active_rounds.add("r1")
    assert len(rc.compute("r1", {}).leaderboard_rows) == 6
    st.apply(_snap("c0002", T0 + HOUR, 3000))  # a duplicate: nothing changes
    again = rc.compute("r1", {})
    assert again.leaderboard_rows == [] and again.update["changed"] == []


@pytest.mark.parametrize("entrants_from_frozen", [False, True])
def test_second_round_ranks_the_first_rounds_advancing_contestants(tmp_path: Path, entrants_from_frozen: bool) -> None:
    st = _state(tmp_path, n=6, groups=1, second_round=True)
    for i in range(6):
        st.apply(_snap(f"c{i:04d}", T0 + HOUR, 1000 * (i + 1)))
        st.apply(_snap(f"c{i:04d}", T0 + 25 * HOUR, 500 * (6 - i), room_id=f"final-{i}"))
    rc = Recomputer(st, Versions(), 10)
    out = {o.round_id: o for o in (rc.mark(st.active_rounds) or rc.run({}))}
    assert {r[3] for r in out["r2"].leaderboard_rows} == {"c0005", "c0004"}  # advancement: top 2
    assert out["r2"].update["groups"][0]["top"][0]["contestant_id"] == "c0004"
