"""The scenario generator and the simulators' own behaviour (tokens, faults, envelopes)."""

from __future__ import annotations

import aiohttp
import orjson

from services.simulator.base import TokenStore
from services.simulator.clock import SimClock
from services.simulator.faults import Fault, FaultPlan
from services.simulator.runner import Simulation
from services.simulator.scenario import MINUTE, Scenario, ScenarioConfig


def test_same_seed_same_contest_other_seed_other_contest() -> None:
    a = Scenario(ScenarioConfig(seed=7, rooms=6, minutes=20)).truth()
    b = Scenario(ScenarioConfig(seed=7, rooms=6, minutes=20)).truth()
    c = Scenario(ScenarioConfig(seed=8, rooms=6, minutes=20)).truth()
    assert a == b
    assert a != c


def test_final_revision_is_lower_and_refunds_continue_after_the_stream() -> None:
    sc = Scenario(ScenarioConfig(seed=3, rooms=9, minutes=30))
    late_refunds = 0
    for room in sc.rooms.values():
        prov, final = room.stats(room.end_ms), room.stats(room.revision_at)
        assert final.gmv_fen < prov.gmv_fen  # fraud-filtered orders leave the final figure
        assert final.refund_fen >= prov.refund_fen
        assert prov.gmv_fen == sum(o.amount_fen for o in room.orders if o.paid_at is not None)
        late_refunds += sum(1 for o in room.orders if o.refund_at and o.refund_at > room.end_ms)
        assert {r.platform for r in sc.rooms.values()} == {"wechat_channels", "douyin", "kuaishou"}
    assert late_refunds > 0


def test_cumulative_series_never_decrease_during_the_stream() -> None:
    sc = Scenario(ScenarioConfig(seed=5, rooms=3, minutes=15))
    for room in sc.rooms.values():
        prev = None
        for t in range(room.start_ms, room.end_ms, 7_000):
            s = room.stats(t)
            if prev is not None:
                for f in ("watch_uv", "watch_pv", "likes", "comments", "pay_orders", "gmv_fen", "refund_fen"):
                    assert getattr(s, f) >= getattr(prev, f), f
            prev = s


def test_wechat_token_rotates_with_five_minute_overlap() -> None:
    clock = SimClock(1_767_225_600_000, speed=0)
    store = TokenStore(clock, lifetime_s=7200, overlap_s=300)
    t1, exp = store.issue("app")
    assert exp == 7200
    clock.advance((7200 - 301) * 1000)
    assert store.issue("app")[0] == t1  # same token until the overlap window
    clock.advance(2_000)
    t2, exp2 = store.issue("app")
    assert t2 != t1 and exp2 == 7200
    assert store.check(t1)[1] == "ok"  # the old one stays valid for the overlap
    clock.advance(300 * 1000)
    assert store.check(t1)[1] == "expired"
    assert store.check(t2)[1] == "ok"
    t3, _ = store.issue("app", force=True)
    assert store.check(t2)[1] == "invalid" and store.check(t3)[1] == "ok"


def test_fault_plan_one_shots_match_endpoints_and_are_counted() -> None:
    plan = FaultPlan()
    plan.inject(Fault.RATE_LIMIT, 2, endpoint="getlivedata")
    assert not plan.draw(Fault.RATE_LIMIT, "getlivelist")
    assert plan.draw(Fault.RATE_LIMIT, "getlivedata")
    assert plan.draw(Fault.RATE_LIMIT, "getlivedata")
    assert not plan.draw(Fault.RATE_LIMIT, "getlivedata")
    assert plan.total(Fault.RATE_LIMIT) == 2


async def test_wechat_simulator_string_blocks_token_errors_and_429() -> None:
    sim = Simulation(ScenarioConfig(seed=2, rooms=1, minutes=10, platforms=("wechat_channels",)), speed=0)
    await sim.start()
    sim.clock.advance(5 * MINUTE)
    try:
        cfg = sim.platform_config()["wechat_channels"]
        base = cfg["api_base"]
        acc = next(iter(cfg["accounts"].values()))
        wx = sim.sims["wechat_channels"]
        async with aiohttp.ClientSession() as s:
            tok_body = {"grant_type": "client_credential", "appid": acc["appid"], "secret": "wrong"}
            r = await (await s.post(base + "/cgi-bin/stable_token", json=tok_body)).json()
            assert r["errcode"] == 40125
            tok_body["secret"] = acc["secret"]
            tok = (await (await s.post(base + "/cgi-bin/stable_token", json=tok_body)).json())["access_token"]
            lives = await (await s.post(f"{base}/channels/livedashboard/getlivelist?access_token={tok}")).json()
            export_id = lives["live_items"][0]["export_id"]
            url = f"{base}/channels/livedashboard/getlivedata?access_token={tok}"
            wx.faults.inject(Fault.STRING_BLOCKS)
            doc = await (await s.post(url, json={"export_id": export_id})).json()
            assert isinstance(doc["live_ec_data_summary"], str)
            assert orjson.loads(doc["live_ec_data_summary"])["total_gmv"] >= 0
            wx.faults.inject(Fault.RATE_LIMIT, endpoint="getlivedata")
            resp = await s.post(url, json={"export_id": export_id})
            assert resp.status == 429 and resp.headers["Retry-After"] == "1"
            wx.faults.inject(Fault.TOKEN_EXPIRED, endpoint="getlivedata")
            assert (await (await s.post(url, json={"export_id": export_id})).json())["errcode"] == 40001
            # the revoked token stays dead; a new stable_token call hands out a fresh one
            assert (await (await s.post(url, json={"export_id": export_id})).json())["errcode"] == 40001
            tok2 = (await (await s.post(base + "/cgi-bin/stable_token", json=tok_body)).json())["access_token"]
            assert tok2 != tok
            wx.faults.inject(Fault.MALFORMED_JSON, endpoint="getlivedata")
            raw = await (await s.post(url.replace(tok, tok2), json={"export_id": export_id})).read()
            try:
                orjson.loads(raw)
                raise AssertionError("body should be truncated")
            except orjson.JSONDecodeError:
                pass
    finally:
        await sim.stop()
