"""Every offset the scorer commits is in ``events_archive`` (docs/scoring.md: "an offset is committed only
after its rows are in ClickHouse"), also when a record flush is cut short.

A flush is cut short by a timeout around it: the group intake's ``on_partitions_revoked`` gives it 10 s
(``asyncio.wait_for``), ``Scorer.stop`` 20 s; on a loaded machine or with ClickHouse slow, the archive
insert is still running then and is cancelled. The records of that batch are already in the recent-id
memory (they were folded), so when the consumer reads them again from the committed offset (the partitions
assigned back after the rebalance) they are dropped as duplicates, and their offsets are committed with the
next batch. The scorer used to drop the cut-short batch: the archive then had a hole below a committed
offset, for good (the in-memory state still held the events, so the live digest looked right until a
restart or a replay). In process against the real ClickHouse, the insert held at the dangerous point.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from liveboard.settings import Settings
from services.scoring.batch import Record
from services.scoring.config import ScorerSettings
from services.scoring.contests import load_plans
from services.scoring.processor import Scorer
from services.scoring.sink import ClickHouseSink
from tests.scoring import factory as f
from tests.scoring.contests import T0, make_contest
from tests.scoring.support import scalar
from tests.support import unique

pytestmark = pytest.mark.engines

TOPIC = "lb.events.v1"


def _records(cid: str, partition: int, offsets: range) -> list[Record]:
    out = []
    for o in offsets:
        who = f"c{(partition % 2) * 2 + o % 2:04d}"  # a contestant's events on one partition, as keyed
        ev = f.live_snapshot(cid, who, T0 + 60_000 + 1000 * o, gmv_fen=100 * o, orders_paid=o)
        out.append(Record(TOPIC, partition, o, f.encode(ev)))
    return out


def _archived(stack: Settings, cid: str) -> list[tuple[int, int]]:
    from tests.scoring.support import ch

    rows = (
        ch(stack)
        .query(
            "SELECT kafka_partition, kafka_offset FROM events_archive FINAL WHERE contest_id = {c:String} "
            "ORDER BY kafka_partition, kafka_offset",
            parameters={"c": cid},
        )
        .result_rows
    )
    return [(int(p), int(o)) for p, o in rows]


async def test_a_record_flush_cut_short_by_a_timeout_leaves_no_hole_below_the_committed_offsets(
    stack: Settings, tmp_path: Path
) -> None:
    cid = unique("arch")
    path, _ = make_contest(tmp_path, cid, 12)
    cfg = ScorerSettings(contest_files=[path], contests=[cid])
    sc = Scorer(stack, cfg, load_plans(cfg), ClickHouseSink(stack))
    sc.ready.set()  # no rebuild: the contest is new, its archive empty
    committed: dict[tuple[str, int], int] = {}

    async def commit(records: list[Record]) -> None:  # the direct intake's commit: the highest offset + 1
        for r in records:
            committed[(r.topic, r.partition)] = max(committed.get((r.topic, r.partition), 0), r.offset + 1)

    sc.register_acker("direct", commit)

    # the archive insert hangs (ClickHouse slow) until released; the other tables go through
    released = asyncio.Event()
    real_insert = sc.sink.insert

    async def slow_insert(table: str, rows: Any, token: str) -> None:
        if table == "events_archive":
            await released.wait()
        await real_insert(table, rows, token)

    sc.sink.insert = slow_insert  # type: ignore[method-assign]
    try:
        first = _records(cid, 0, range(0, 5)) + _records(cid, 3, range(0, 3))
        await sc.handle_events("direct", first)
        # what the rebalance listener does, with its timeout reached: the flush is cancelled mid-insert
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(sc.flush(final=True), timeout=0.3)
        assert committed == {}  # nothing acknowledged: the group's offsets are still 0
        assert _archived(stack, cid) == []

        # the partitions come back: the consumer reads again from the committed offsets (0), then new records
        await sc.handle_events("direct", _records(cid, 0, range(0, 8)) + _records(cid, 3, range(0, 4)))
        released.set()
        await sc.flush()
    finally:
        sc.sink.close()

    # every committed offset is archived, per (partition, offset), not only the count
    assert committed == {(TOPIC, 0): 8, (TOPIC, 3): 4}
    assert _archived(stack, cid) == [(0, o) for o in range(8)] + [(3, o) for o in range(4)]
    n = "SELECT uniqExact(event_id) FROM events_archive WHERE contest_id = {c:String}"
    assert scalar(stack, n, c=cid) == 12


async def test_a_board_flush_cut_short_is_written_by_the_next_board_flush(stack: Settings, tmp_path: Path) -> None:
    """The board's half of the same fault: a leaderboard write cancelled by a timeout around the flush used to
    drop the batch, and a recompute writes only the rows that changed, so those contestants' rows stayed
    missing (or stale) until they changed again."""
    from tests.scoring.support import leaderboard

    cid = unique("brd")
    path, _ = make_contest(tmp_path, cid, 12)
    cfg = ScorerSettings(contest_files=[path], contests=[cid])
    sc = Scorer(stack, cfg, load_plans(cfg), ClickHouseSink(stack))
    sc.ready.set()

    async def commit(records: list[Record]) -> None:
        return None

    sc.register_acker("direct", commit)
    released = asyncio.Event()
    real_insert = sc.sink.insert

    async def slow_insert(table: str, rows: Any, token: str) -> None:
        if table == "leaderboard":
            await released.wait()
        await real_insert(table, rows, token)

    sc.sink.insert = slow_insert  # type: ignore[method-assign]
    try:
        await sc.handle_events("direct", _records(cid, 0, range(0, 4)))
        await sc.flush_records()
        outcomes = [o for rc in sc.recomputers.values() for o in rc.run(dict(sc.positions))]
        assert outcomes, "the recompute made no version"
        for o in outcomes:
            sc._queue_outcome(o)
        queued = {k[3] for k in sc.board.leaderboard}
        assert {"c0000", "c0001"} <= queued
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(sc.flush_board(), timeout=0.3)
        assert leaderboard(stack, cid) == []
        released.set()
        await sc.flush_board()  # nothing new queued: only the cut-short batch can write these rows
    finally:
        sc.sink.close()

    rows = leaderboard(stack, cid)
    assert {r["contestant_id"] for r in rows} == queued, rows
    n = "SELECT count() FROM round_results FINAL WHERE contest_id = {c:String}"
    assert scalar(stack, n, c=cid) >= 1
