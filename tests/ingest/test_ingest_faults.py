"""Every fault the simulators can inject, against the real broker: the collector survives, and the
canonical events still match the ground truth (nothing that polling can recover is lost, nothing is
counted twice)."""

from __future__ import annotations

import aiohttp
import pytest
from prometheus_client import generate_latest

from services.ingest.metrics import REGISTRY
from services.simulator.faults import Fault
from services.simulator.scenario import ScenarioConfig
from tests.ingest import check
from tests.ingest.harness import dead_letters, events, run_to_end, running
from tests.ingest.test_ingest_webhooks import metric

pytestmark = pytest.mark.engines

ALL = {"wechat_channels", "douyin", "kuaishou"}


@pytest.mark.timeout(150)
async def test_api_faults_429_5xx_timeouts_token_expiry_quota_garbage_and_string_blocks(stack) -> None:
    api = {
        Fault.RATE_LIMIT: 0.04,
        Fault.SERVER_ERROR: 0.04,
        Fault.TIMEOUT: 0.01,
        Fault.TOKEN_EXPIRED: 0.03,
        Fault.QUOTA: 0.02,
        Fault.MALFORMED_JSON: 0.03,
    }
    rates = {p: dict(api) for p in ALL}
    rates["wechat_channels"][Fault.STRING_BLOCKS] = 0.5
    config = ScenarioConfig(
        seed=12, rooms=6, minutes=10, revision_after_min=3, refund_tail_min=3, contest_id="faults-api"
    )
    # short token lifetimes: tokens also expire and rotate naturally during the contest
    sim_options = {p: {"token_lifetime_s": 240} for p in ALL}
    async with running(stack, config=config, speed=60, fault_rates=rates, sim_options=sim_options) as run:
        await run_to_end(run, extra_sim_ms=60_000)
        injected = {p: dict(s.faults.injected) for p, s in run.sim.sims.items()}
        kinds = {k.split(":")[0] for inj in injected.values() for k in inj}
        assert {f.value for f in (*api, Fault.STRING_BLOCKS)} <= kinds, kinds
        truth = run.truth
        evts = await events(run.settings)
        problems = check.check_live_metrics(evts, truth, ALL)
        problems += check.check_orders(evts, truth, "wechat_channels")
        problems += check.check_orders(evts, truth, "kuaishou")
        problems += check.check_orders(evts, truth, "douyin")
        problems += check.check_interactions(evts, truth, exact=True)
        assert not problems, "\n".join(problems[:30])
        dlq = await dead_letters(run.settings)
        assert dlq and all("JSON" in d["reason"] for d in dlq)
    # the collector counted what it went through (its registry outlives the collector in this process)
    text = generate_latest(REGISTRY).decode()
    for kind in ("http_429", "http_5xx", "timeout", "malformed", "token_invalid", "quota"):
        assert f'kind="{kind}"' in text, kind
    assert 'liveboard_ingest_token_refreshes_total{platform="wechat_channels",reason="rejected"}' in text


@pytest.mark.timeout(150)
async def test_push_faults_duplicates_reordering_and_losses(stack) -> None:
    push = {Fault.DUPLICATE_PUSH: 0.15, Fault.OUT_OF_ORDER_PUSH: 0.15, Fault.LOST_PUSH: 0.1}
    rates = {p: dict(push) for p in ALL}
    config = ScenarioConfig(
        seed=13, rooms=6, minutes=10, revision_after_min=3, refund_tail_min=3, contest_id="faults-push"
    )
    async with running(stack, config=config, speed=60, fault_rates=rates) as run:
        url = run.collector.url
        for sim in run.sim.sims.values():  # one-shots on top of the rates, so every kind surely happens
            for fault in push:
                sim.faults.inject(fault, 3)
        async with aiohttp.ClientSession() as s:
            dup_before = await metric(s, url, "liveboard_ingest_duplicates_dropped_total")
        await run.sim.push_loop(until_ms=run.sim.scenario.end_ms)  # deliver while the collector runs
        async with aiohttp.ClientSession() as s:
            dup_after = await metric(s, url, "liveboard_ingest_duplicates_dropped_total")
        await run_to_end(run)
        stats = run.sim.push_stats()
        for p in ALL:
            assert stats[p].get("lost", 0) > 0 and stats[p].get("duplicated", 0) > 0, (p, stats[p])
            assert stats[p].get("reordered", 0) > 0, (p, stats[p])
        assert dup_after > dup_before
        truth = run.truth
        evts = await events(run.settings)
        problems = check.check_live_metrics(evts, truth, ALL)  # polling reconciles every room's totals
        # WeChat: the order-list reconciliation recovers lost pushes, so the lifecycle is complete
        problems += check.check_orders(evts, truth, "wechat_channels", complete=True)
        # Kuaishou: no order list to poll, so a lost push stays lost; nothing is double-counted
        problems += check.check_orders(evts, truth, "kuaishou", complete=False)
        problems += check.check_interactions(evts, truth, exact=False)
        assert not problems, "\n".join(problems[:30])
        got = check.order_facts([e for e in evts if e.platform == "kuaishou"])
        want = check.truth_facts(truth, "kuaishou")
        assert len(want) - len(got) <= stats["kuaishou"]["lost"]
