"""Simulator → collector → real broker → canonical topic, per platform, compared with the ground truth."""

from __future__ import annotations

import pytest

from services.simulator.scenario import ScenarioConfig
from tests.ingest import check
from tests.ingest.harness import dead_letters, events, raws, run_to_end, running

pytestmark = pytest.mark.engines


@pytest.mark.timeout(120)
async def test_all_platforms_clean_run_matches_ground_truth(stack) -> None:
    config = ScenarioConfig(
        seed=11, rooms=6, minutes=10, revision_after_min=3, refund_tail_min=3, contest_id="e2e-clean"
    )
    async with running(stack, config=config, speed=60) as run:
        await run_to_end(run)
        truth = run.truth
        evts = await events(run.settings)
        problems = check.check_live_metrics(evts, truth, {"wechat_channels", "douyin", "kuaishou"})
        problems += check.check_orders(evts, truth, "wechat_channels")
        problems += check.check_orders(evts, truth, "kuaishou")
        problems += check.check_orders(evts, truth, "douyin")  # 抖店 order list + after-sales
        problems += check.check_interactions(evts, truth, exact=True)
        assert not problems, "\n".join(problems[:30])
        assert not await dead_letters(run.settings)
        raw = {r["raw_id"]: r for r in await raws(run.settings)}
        assert all(e.raw_ref is None or e.raw_ref.raw_id in raw for e in evts)
        types = {e.type for e in evts}
        assert {"live_metrics_snapshot", "order_event", "interaction_counts", "video_stats_snapshot"} <= types
