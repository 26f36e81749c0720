"""A room's final figures are the platform's revised figures, even when the poll at the platform's
documented revision time races the revision (issue 14: "final" decided by elapsed time only kept the
provisional GMV for ever).

The simulator publishes its revision a little later than documented (``revision_late_ms``), so the poll at
``final_after_s`` still reads the live figures: 4 s late, the next poll (10 s later) sees the revision and the
figures settle one poll after; 15 s late, two polls agree on the live figures before the revision lands, and
the revision must then come through as a late correction of the final figures.
"""

from __future__ import annotations

import pytest

from services.simulator.scenario import ScenarioConfig
from tests.ingest.check import FIELDS, by_room
from tests.ingest.harness import events, run_to_end, running

pytestmark = pytest.mark.engines


def figures(data: object, truth: dict) -> dict[str, tuple[object, object]]:
    """Field → (collected, true) for every field the platform reports, where they differ."""
    out = {}
    for field, tf in FIELDS.items():
        got = getattr(data, field)
        if got is not None and got != truth[tf]:
            out[field] = (got, truth[tf])
    return out


@pytest.mark.timeout(120)
@pytest.mark.parametrize("late_ms", [4_000, 15_000])
async def test_final_figures_equal_the_platforms_truth_when_the_final_poll_races_the_revision(
    stack, late_ms: int
) -> None:
    config = ScenarioConfig(
        seed=5,
        rooms=3,
        minutes=4,
        revision_after_min=2,
        refund_tail_min=1,
        revision_late_ms=late_ms,
        contest_id=f"final-race-{late_ms // 1000}",
    )
    ingest = {
        "final_after_s": 2 * 60,  # the documented revision delay, exactly
        "poll_interval_s": 10,
        "finished_poll_interval_s": 60,
        "final_corrections_s": 600,
    }
    async with running(stack, config=config, speed=30, ingest=ingest) as run:
        # long enough for a correction: first final ~10 s after the revision time, then a look 60 s later
        # and its confirmation 10 s after that
        await run_to_end(run, extra_sim_ms=120_000)
        truth = run.truth
        rooms = by_room(await events(run.settings))

    assert {t["platform"] for t in truth["rooms"].values()} == {"wechat_channels", "douyin", "kuaishou"}
    for room_id, t in truth["rooms"].items():
        finals = sorted((e for e in rooms[room_id] if e.revision == "final"), key=lambda e: e.observed_at)
        assert finals, f"{t['platform']} {room_id}: no final figures"
        assert t["final"]["gmv_fen"] != t["provisional"]["gmv_fen"]  # the revision is visible
        # the newest final figures (what scoring keeps) are the platform's revised ones
        assert figures(finals[-1].data, t["final"]) == {}, (t["platform"], room_id)
        assert finals[-1].observed_at >= t["revision_at"]
        # and nothing else was ever called final than the live figures or the revised ones
        for e in finals:
            assert e.data.gmv_fen in (t["provisional"]["gmv_fen"], t["final"]["gmv_fen"]), (room_id, e.data)
        if late_ms < 10_000:
            # the revision lands between the first two polls after the documented time: the figures
            # settle on the revised values, and the live ones are never called final
            assert len(finals) == 1, (t["platform"], room_id, [e.data.gmv_fen for e in finals])
