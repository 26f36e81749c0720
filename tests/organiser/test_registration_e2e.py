"""End to end: a 报名表 (the downloaded template, filled in with openpyxl) is imported → contestant_registered
and account_bound on the real event log → the running collector starts polling the new accounts in the
simulator (no restart, no contest-file edit) → the scorer's fold ranks exactly the registered contestants.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import pytest
import yaml

from liveboard.contracts.contest_validate import load_contest
from liveboard.organiser.registrations import Current, plan_registrations, template
from liveboard.organiser.store import send_events
from services.ingest.app import Collector
from services.ingest.config import load_platforms
from services.ingest.registry import Registry
from services.scoring.contests import plan_for
from services.scoring.recompute import Recomputer, Versions
from services.scoring.state import ContestState
from services.simulator.clock import SimClock
from services.simulator.contest import contest_doc
from services.simulator.runner import Simulation
from services.simulator.scenario import MINUTE, ScenarioConfig
from tests.ingest.harness import events, ingest_settings, topic_settings
from tests.organiser.sheets import fill_template
from tests.scoring.support import poll_until

pytestmark = pytest.mark.engines

PLATFORM_COLUMN = {"douyin": 4, "kuaishou": 5, "wechat_channels": 6}  # template: 编号 姓名 组别 抖音 快手 视频号


async def test_imported_registrations_are_collected_and_scored_without_restart(stack, tmp_path) -> None:
    cfg = ScenarioConfig(seed=5, rooms=4, minutes=6, revision_after_min=2, refund_tail_min=2, contest_id="regimp")
    settings = await topic_settings(stack)
    clock = SimClock(cfg.start_ms - MINUTE, 30)
    sim = Simulation(cfg, clock=clock)
    await sim.start()
    doc = contest_doc(sim.scenario)
    doc["contestants"] = []  # nobody in the file: the sheet registers them
    path = tmp_path / "regimp.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    contest = load_contest(path)
    rnd = contest.rounds()[0]
    registry = Registry(clock.now_ms)
    registry.add_contest(contest.id, (rnd.window.start, rnd.window.end), [])
    collector = Collector(
        settings,
        ingest_settings(final_after_s=3 * 60),
        load_platforms(sim.platform_config()),
        registry,
        clock=clock,
        port=0,
        follow_account_bound=True,
    )
    await collector.start()
    sim.attach(collector.url)
    try:
        # the template's columns for this contest: 选手编号, 姓名*, then one account column per platform
        tpl = template(contest)
        registered = sim.scenario.contestants[:3]  # the fourth is not on the sheet
        rows = []
        for c in registered:
            row: list[object] = [c.contestant_id, f"主播{c.contestant_id}", None, None, None, None]
            row[PLATFORM_COLUMN[c.platform] - 1] = c.account_id
            rows.append(row)
        sheet = fill_template(tpl, rows)
        plan = plan_registrations(
            sheet, "报名表.xlsx", contest, Current.build(contest, []), actor="op", now_ms=clock.now_ms()
        )
        assert plan.ok, [p.text() for p in plan.problems]
        assert plan.counts()["added"] == 3
        assert [e.type for e in plan.events] == ["contestant_registered", "account_bound"] * 3
        await send_events(settings, plan.events)

        # the collector follows the log: the sheet's accounts become collected, the fourth never
        assert await poll_until(lambda: all(registry.lookup(c.platform, c.account_id) for c in registered), 60)
        outsider = sim.scenario.contestants[3]
        assert registry.lookup(outsider.platform, outsider.account_id) == []

        end = sim.scenario.end_ms + 3 * MINUTE + 30_000
        await sim.push_loop(until_ms=end)
        await clock.sleep_until(end)
        await collector.idle()
    finally:
        await collector.stop()
        await sim.stop()

    log = await events(settings)
    snaps = [e for e in log if e.type == "live_metrics_snapshot"]
    assert {e.contestant_id for e in snaps} == {c.contestant_id for c in registered}

    # the same sheet again: the log already has it, so nothing changes and nothing is sent
    again = plan_registrations(sheet, "报名表.xlsx", contest, Current.build(contest, log), actor="op", now_ms=1)
    assert again.ok and again.events == [] and again.counts()["unchanged"] == 3
    # and its event ids do not depend on when it is imported (the same facts, the same ids)
    fresh = plan_registrations(sheet, "x.xlsx", contest, Current.build(contest, []), actor="other", now_ms=2)
    assert [e.event_id for e in fresh.events] == [e.event_id for e in plan.events]

    # the scorer's fold of the log: the three registered contestants, ranked by GMV (min-max, 100 points)
    state = ContestState(plan_for(contest))
    for e in log:
        state.apply(e)
    outcome = Recomputer(state, Versions(), 10).compute(rnd.id, {})
    result = outcome.scores[0].result
    rows_out = result.groups[0].rows
    assert {r.contestant_id for r in rows_out} == {c.contestant_id for c in registered}
    gmv: dict[str, int] = {}
    for cid in gmv_owners(snaps):
        best = max((e for e in snaps if e.contestant_id == cid), key=lambda e: (e.revision == "final", e.observed_at))
        gmv[cid] = best.data.gmv_fen
    lo, hi = min(gmv.values()), max(gmv.values())
    assert hi > lo
    for r in rows_out:
        expected = (Decimal(gmv[r.contestant_id] - lo) * 100 / Decimal(hi - lo)).quantize(
            Decimal("0.01"), ROUND_HALF_UP
        )
        assert r.total.quantize(Decimal("0.01"), ROUND_HALF_UP) == expected
    assert rows_out[0].contestant_id == max(gmv, key=lambda k: gmv[k])
    assert state.display_name(registered[0].contestant_id) == f"主播{registered[0].contestant_id}"


def gmv_owners(snaps: list) -> list[str]:
    return sorted({e.contestant_id for e in snaps})
