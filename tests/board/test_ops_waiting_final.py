"""The operators' health report lists the rooms waiting for their platform's final figures (issue 14.3):
ended (the newest snapshot carries ``live_ended_at``) and no ``final`` snapshot archived yet."""

from __future__ import annotations

import orjson
import pytest

from liveboard.clickhouse.client import get_async_client
from services.board.ops_monitor import rooms_waiting_final
from tests.support import unique

pytestmark = pytest.mark.engines


def row(contest: str, room: str, at: int, revision: str, ended_at: int | None) -> list:
    eid = f"{contest}-{room}-{at}-{revision}"
    payload = {"event_id": eid, "type": "live_metrics_snapshot", "data": {"gmv_fen": 100, "live_ended_at": ended_at}}
    return [eid, "live_metrics_snapshot", contest, f"c-{room}", "douyin", f"dy-{room}", room, "", at, at, "poll",
            revision, orjson.dumps(payload).decode(), 0, 0]  # fmt: skip


async def test_rooms_waiting_for_final_figures(stack) -> None:
    contest, other = unique("wf"), unique("wf")
    t = 1_800_000_000_000
    rows = [
        # ended, only provisional figures: waiting (its first snapshot was still live)
        row(contest, "r-wait", t, "provisional", None),
        row(contest, "r-wait", t + 60_000, "provisional", t + 30_000),
        # ended and final: not waiting
        row(contest, "r-done", t, "provisional", t + 10_000),
        row(contest, "r-done", t + 90_000, "final", t + 10_000),
        # still live: not waiting
        row(contest, "r-live", t + 60_000, "provisional", None),
        # another contest's ended room
        row(other, "r-else", t + 60_000, "provisional", t + 20_000),
    ]
    ch = await get_async_client(stack)
    try:
        await ch.insert("events_archive", rows)
        now = t + 600_000
        got = await rooms_waiting_final(ch, contest, now)
        assert [(r["room_id"], r["ended_at"], r["waiting_ms"], r["snapshots"]) for r in got] == [
            ("r-wait", t + 30_000, 570_000, 2)
        ]
        assert got[0]["contestant_id"] == "c-r-wait" and got[0]["platform"] == "douyin"
        every = {(r["contest_id"], r["room_id"]) for r in await rooms_waiting_final(ch, None, now)}
        assert {(contest, "r-wait"), (other, "r-else")} <= every
        assert (contest, "r-done") not in every and (contest, "r-live") not in every
    finally:
        await ch.close()
