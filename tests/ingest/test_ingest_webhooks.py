"""Webhook receivers against the real broker: handshakes, forged signatures, replays, unknown accounts,
invalid payloads. Pushes are built with the simulators' signers, then tampered with where needed."""

from __future__ import annotations

import aiohttp
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.simulator.scenario import MINUTE, ScenarioConfig
from tests.ingest.harness import dead_letters, events, raws, running

pytestmark = pytest.mark.engines

CONFIG = ScenarioConfig(seed=21, rooms=3, minutes=10, revision_after_min=3, refund_tail_min=3)


async def metric(session: aiohttp.ClientSession, url: str, name: str, **labels: str) -> float:
    text = await (await session.get(url + "/metrics")).text()
    total = 0.0
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


async def test_handshakes_and_forged_signatures_follow_each_platform(stack) -> None:
    cfg = ScenarioConfig(**{**CONFIG.__dict__, "contest_id": "wh-forged"})
    async with running(stack, config=cfg, speed=10) as run:
        url = run.collector.url
        wx, dy, ks = (run.sim.sims[p] for p in ("wechat_channels", "douyin", "kuaishou"))
        sig = "liveboard_ingest_signature_failures_total"
        async with aiohttp.ClientSession() as s:
            before = await metric(s, url, sig)
            # WeChat URL check: the right signature echoes echostr, a wrong one is refused
            from liveboard.platforms.signing import wechat_url_signature

            token = wx.creds["push"]["token"]
            good = wechat_url_signature(token, "1714036504", "1514711492")
            r = await s.get(
                url + "/webhooks/wechat",
                params={"signature": good, "timestamp": "1714036504", "nonce": "1514711492", "echostr": "e123"},
            )
            assert r.status == 200 and await r.text() == "e123"
            r = await s.get(
                url + "/webhooks/wechat",
                params={"signature": "0" * 40, "timestamp": "1714036504", "nonce": "1514711492", "echostr": "e123"},
            )
            assert r.status == 401
            # WeChat message push with a tampered msg_signature
            order = next(o for o in run.sim.scenario.orders.values() if o.platform == "wechat_channels")
            path, headers, body = wx.sign_push(wx.message(order, "channels_ec_order_new", order.created_at))
            r = await s.post(url + path.replace("msg_signature=", "msg_signature=0"), data=body, headers=headers)
            assert r.status == 401
            # Douyin URL verification, then a forged event and a forged live push
            path, headers, body = dy.verify_webhook_request(12345)
            r = await s.post(url + path, data=body, headers=headers)
            assert await r.json() == {"challenge": 12345}
            headers["X-Douyin-Signature"] = "f" * 40
            assert (await s.post(url + path, data=body, headers=headers)).status == 401
            room = run.sim.scenario.rooms_of("douyin")[0]
            path, headers, body = dy.live_push(room.room_id, "live_comment", room.interactions[:2])
            r = await s.post(url + path, data=body + b" ", headers=headers)
            assert r.status == 401
            # Kuaishou answers a bad kwaisign with result 11 and HTTP 200
            ko = next(o for o in run.sim.scenario.orders.values() if o.platform == "kuaishou")
            path, headers, body = ks.sign_push(ks.order_message(ko, "created", ko.created_at))
            headers["kwaisign"] = "0" * 32
            r = await s.post(url + path, data=body, headers=headers)
            assert r.status == 200 and (await r.json())["result"] == 11
            after = await metric(s, url, sig)
        assert after - before == 5  # wechat GET + POST, douyin webhook + live, kuaishou
        await run.collector.idle()
        await run.collector.stop()
        pushed = [e for e in await events(run.settings) if e.source == "push"]
        assert pushed == []
        assert [r for r in await raws(run.settings) if r["source"] == "push"] == []


async def test_replayed_pushes_yield_one_event_each(stack) -> None:
    cfg = ScenarioConfig(**{**CONFIG.__dict__, "contest_id": "wh-replay"})
    async with running(stack, config=cfg, speed=10) as run:
        sc, url = run.sim.scenario, run.collector.url
        run.sim.clock.advance(8 * MINUTE)
        now = run.sim.clock.now_ms()
        wx, dy, ks = (run.sim.sims[p] for p in ("wechat_channels", "douyin", "kuaishou"))
        wo = next(o for o in sc.orders.values() if o.platform == "wechat_channels" and o.paid_at and o.paid_at < now)
        ko = next(o for o in sc.orders.values() if o.platform == "kuaishou" and o.paid_at and o.paid_at < now)
        droom = sc.rooms_of("douyin")[0]
        likes = [m for m in droom.interactions if m.msg_type == "live_like" and m.ts < now][:5]
        await run.collector.collectors["douyin"].poll_rooms(droom.account_id)  # the room is known
        dup = "liveboard_ingest_duplicates_dropped_total"
        async with aiohttp.ClientSession() as s:
            before = await metric(s, url, dup)
            for _ in range(3):
                # WeChat re-signs (new nonce, new AES random prefix): same message, different body
                path, headers, body = wx.sign_push(wx.message(wo, "channels_ec_order_pay", wo.paid_at))
                assert await (await s.post(url + path, data=body, headers=headers)).text() == "success"
                path, headers, body = ks.sign_push(ks.order_message(ko, "paid", ko.paid_at))
                assert (await (await s.post(url + path, data=body, headers=headers)).json())["result"] == 1
                path, headers, body = dy.live_push(droom.room_id, "live_like", likes)
                assert (await s.post(url + path, data=body, headers=headers)).status == 200
            after = await metric(s, url, dup)
        assert after - before == 2 + 2 + 2 * len(likes)
        await run.collector.idle()
        await run.collector.stop()
        # (the WeChat order may also have been picked up by the order-list reconciliation poll; either
        # way it is recorded once)
        evts = await events(run.settings)
        paid = [e for e in evts if e.type == "order_event" and e.data.status == "paid"]
        paid = [e for e in paid if e.data.order_id in (wo.order_id, ko.order_id)]
        assert sorted(e.data.order_id for e in paid) == sorted([wo.order_id, ko.order_id])
        assert {e.data.amount_fen for e in paid if e.data.order_id == wo.order_id} == {wo.amount_fen}
        inter = [e for e in evts if e.type == "interaction_counts"]
        assert len(inter) == 1 and inter[0].data.likes == sum(m.like_num for m in likes)


async def test_unknown_accounts_are_rejected_and_counted(stack) -> None:
    cfg = ScenarioConfig(**{**CONFIG.__dict__, "contest_id": "wh-unknown"})
    async with running(stack, config=cfg, speed=10) as run:
        url = run.collector.url
        wx, ks = run.sim.sims["wechat_channels"], run.sim.sims["kuaishou"]
        ko = next(o for o in run.sim.scenario.orders.values() if o.platform == "kuaishou")
        wo = next(o for o in run.sim.scenario.orders.values() if o.platform == "wechat_channels")
        rejected = "liveboard_ingest_pushes_rejected_total"
        async with aiohttp.ClientSession() as s:
            before = await metric(s, url, rejected, reason="unknown_account")
            msg = ks.order_message(ko, "created", ko.created_at)
            msg["userId"] = "3xnotregistered"
            path, headers, body = ks.sign_push(msg)
            assert (await (await s.post(url + path, data=body, headers=headers)).json())["result"] == 1
            wmsg = wx.message(wo, "channels_ec_order_new", wo.created_at)
            wmsg["ToUserName"] = "gh_somebodyelse"
            path, headers, body = wx.sign_push(wmsg)
            assert await (await s.post(url + path, data=body, headers=headers)).text() == "success"
            after = await metric(s, url, rejected, reason="unknown_account")
        assert after - before == 2
        await run.collector.idle()
        await run.collector.stop()
        assert [e for e in await events(run.settings) if e.source == "push"] == []


async def test_invalid_payloads_are_dead_lettered_and_the_collector_carries_on(stack) -> None:
    cfg = ScenarioConfig(**{**CONFIG.__dict__, "contest_id": "wh-dlq"})
    async with running(stack, config=cfg, speed=10) as run:
        url = run.collector.url
        ks = run.sim.sims["kuaishou"]
        orders = [o for o in run.sim.scenario.orders.values() if o.platform == "kuaishou"][:2]
        async with aiohttp.ClientSession() as s:
            bad = ks.order_message(orders[0], "created", orders[0].created_at)
            bad["info"] = '{"oid": 1, "totalFee": -5'  # truncated JSON string
            path, headers, body = ks.sign_push(bad)
            assert (await (await s.post(url + path, data=body, headers=headers)).json())["result"] == 1
            worse = ks.order_message(orders[0], "paid", orders[0].created_at)
            worse["info"] = orjson.dumps({"oid": 1, "totalFee": -5, "updateTime": 1_767_225_600_000}).decode()
            path, headers, body = ks.sign_push(worse)
            assert (await (await s.post(url + path, data=body, headers=headers)).json())["result"] == 1
            good = ks.order_message(orders[1], "created", orders[1].created_at)
            path, headers, body = ks.sign_push(good)
            assert (await (await s.post(url + path, data=body, headers=headers)).json())["result"] == 1
        await run.collector.idle()
        await run.collector.stop()
        dlq = await dead_letters(run.settings)
        assert len(dlq) == 2
        assert all(d["platform"] == "kuaishou" and d["source"] == "ingest.kuaishou.webhook" for d in dlq)
        assert any("info" in d["reason"] for d in dlq) and any("negative" in d["reason"] for d in dlq)
        assert all(orjson.loads(d["body"])["taskId"] for d in dlq) and all(d["received_at"] > 0 for d in dlq)
        evts = [e for e in await events(run.settings) if e.type == "order_event"]
        assert [e.data.order_id for e in evts] == [orders[1].order_id]
