"""The scorer's intake loop (services/scoring/intake.py) after the throughput pass: de-duplication inline,
the offsets token's ranges per chunk, one acknowledgement per partition for the direct intake, every
record for an intake whose records carry handles (faust). In process, no broker or ClickHouse."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson

from liveboard.settings import Settings
from services.scoring.batch import Record
from services.scoring.config import ScorerSettings
from services.scoring.contests import load_plans
from services.scoring.dedup import RecentIds
from services.scoring.processor import Scorer
from tests.scoring import factory as f
from tests.scoring.contests import T0, make_contest


def _scorer(tmp_path: Path, cid: str, dedup_capacity: int = 500_000) -> Scorer:
    path, _ = make_contest(tmp_path, cid, 12)
    cfg = ScorerSettings(contest_files=[path])
    sc = Scorer(Settings(_env_file=None), cfg, load_plans(cfg))  # type: ignore[call-arg]
    sc.dedup = RecentIds(dedup_capacity)  # the setting's floor is 1,000; a small memory shows the ageing
    sc.ready.set()
    return sc


def _snap(cid: str, who: str, k: int) -> bytes:
    return f.encode(f.live_snapshot(cid, who, T0 + 60_000 + 1000 * k, gmv_fen=100 * k, orders_paid=k))


def test_direct_intake_folds_dedups_dead_letters_and_acknowledges_the_highest_offset(tmp_path: Path) -> None:
    cid = "intake-fast"
    sc = _scorer(tmp_path, cid)
    a, b, c = _snap(cid, "c0000", 1), _snap(cid, "c0001", 1), _snap(cid, "c0002", 1)
    bad = b'{"type":"live_metrics_snapshot","contest_id":"intake-fast"}'
    p2 = [Record("t", 2, 10, a), Record("t", 2, 11, b), Record("t", 2, 12, a), Record("t", 2, 13, bad)]
    p2.append(Record("t", 2, 14, c))
    p4 = [Record("t", 4, 7, _snap(cid, "c0000", 2)), Record("t", 4, 8, _snap(cid, "c0001", 2))]

    async def run() -> None:
        await sc.handle_events("direct", p2)
        await sc.handle_events("direct", p4)

    asyncio.run(run())
    rows = sc.batch.rows
    # 7 records: one duplicate (offset 12) and one invalid (offset 13) are not archived
    assert [r[-1] for r in rows["events_archive"]] == [10, 11, 14, 7, 8]
    assert len(rows["contestant_series"]) == 5
    # the offsets token's ranges: first and last archived offset per partition
    assert sc.batch.ranges["events"] == {("t", 2): (10, 14), ("t", 4): (7, 8)}
    # one acknowledgement per partition and chunk, the highest offset read (the invalid and duplicate
    # records are read too: their offsets are committed with the rest)
    assert [(r.partition, r.offset) for r in sc.batch.acks["direct"]] == [(2, 14), (4, 8)]
    assert sc.positions == {2: 15, 4: 9}
    assert sc.processed == 7
    # the invalid record is dead-lettered with where it was and what was wrong
    assert len(sc.batch.dead_out) == 1
    reason = orjson.loads(sc.batch.dead_out[0][1])["reason"]
    assert reason.startswith("t[2]@13: ")
    assert "event_id" in reason and "data" in reason
    # folded: three contestants, c0000 at its second snapshot
    st = sc.states[cid]
    assert sorted(st.contestants) == ["c0000", "c0001", "c0002"]
    (room,) = st.contestants["c0000"].rooms.values()
    assert room.best.data.gmv_fen == 200


def test_records_with_handles_are_each_acknowledged(tmp_path: Path) -> None:
    cid = "intake-faust"
    sc = _scorer(tmp_path, cid)
    recs = [Record("t", 1, i, _snap(cid, f"c000{i}", 1), handle=object()) for i in range(3)]
    asyncio.run(sc.handle_events("events", recs))
    assert sc.batch.acks["events"] == recs


def test_inline_dedup_keeps_the_two_generations(tmp_path: Path) -> None:
    """capacity 4: an id is remembered for at least 2 later ids, then forgotten (RecentIds' contract)."""
    cid = "intake-dedup"
    sc = _scorer(tmp_path, cid, dedup_capacity=4)
    x, y, z, w = (_snap(cid, "c0000", k) for k in (1, 2, 3, 4))
    seq = [x, y, z, x, w, x]  # x duplicate at 3 (old generation); forgotten by 5 (two generations aged)
    asyncio.run(sc.handle_events("direct", [Record("t", 0, i, v) for i, v in enumerate(seq)]))
    assert [r[-1] for r in sc.batch.rows["events_archive"]] == [0, 1, 2, 4, 5]
