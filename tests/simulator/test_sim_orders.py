"""The order side of the simulators: refunds in the scenario, the 抖店 gateway's signing rules, and
Kuaishou's encrypted pushes."""

from __future__ import annotations

import aiohttp
import orjson

from liveboard.platforms import signing
from services.ingest.douyin import normalise as dn
from services.simulator.runner import Simulation
from services.simulator.scenario import MINUTE, Scenario, ScenarioConfig


def test_refunds_have_their_own_ids_amounts_and_times_and_add_up() -> None:
    sc = Scenario(ScenarioConfig(seed=3, rooms=9, minutes=30))
    refunded = [o for o in sc.orders.values() if o.refunds]
    assert refunded
    ids = [r.refund_id for o in refunded for r in o.refunds]
    assert len(ids) == len(set(ids))  # every refund its own id
    for o in refunded:
        assert o.paid_at is not None and all(r.at > o.paid_at for r in o.refunds)
        assert [r.at for r in o.refunds] == sorted(r.at for r in o.refunds)
        assert 0 < o.refund_fen <= o.amount_fen == o.unit_price_fen * o.quantity
        room = sc.rooms[o.room_id]
        assert all(r.at < room.revision_at for r in o.refunds)
        # the headline status is "refunded" only once everything came back
        assert (o.status_at(room.revision_at) == "refunded") == (o.refund_fen == o.amount_fen)
    split = [o for o in refunded if len(o.refunds) > 1]
    assert split and all(r.amount_fen == o.unit_price_fen for o in split for r in o.refunds)
    # the room's refund figure is every refund's amount, partial ones included
    for room in sc.rooms.values():
        assert room.stats(room.revision_at).refund_fen == sum(o.refund_fen for o in room.orders)


async def test_doudian_gateway_checks_sign_timestamp_and_sorted_params_and_lists_orders() -> None:
    cfg = ScenarioConfig(seed=2, rooms=2, minutes=10, platforms=("douyin",), refund_tail_min=3, revision_after_min=3)
    sim = Simulation(cfg, speed=0)
    await sim.start()
    sim.clock.advance(20 * MINUTE)
    try:
        creds = sim.platform_config()["douyin"]
        base = creds["shop_base"]
        key, secret = creds["shop_app_key"], creds["shop_app_secret"]
        account, acc = next(iter(creds["accounts"].items()))
        now_s = sim.clock.now_ms() // 1000

        async def call(s, method: str, param: dict, *, token: str | None = None, ts: int = now_s, **over: str):
            pj = signing.doudian_param_json(param)
            q = {"method": method, "app_key": key, "timestamp": str(ts), "v": "2", "sign_method": "md5"}
            q["sign"] = signing.doudian_sign(key, secret, method, pj, str(ts))
            if token:
                q["access_token"] = token
            q.update(over)
            r = await s.post(f"{base}/{method.replace('.', '/')}", params=q, data=pj.encode())
            return await r.json()

        async with aiohttp.ClientSession() as s:
            grant = {"code": "", "grant_type": "authorization_self", "shop_id": acc["shop_id"]}
            assert (await call(s, "token.create", grant, sign="0" * 32))["code"] == 40004
            assert (await call(s, "token.create", grant, ts=now_s - 601))["code"] == 40006
            assert (await call(s, "token.create", {**grant, "shop_id": "1"}))["code"] == 30005
            tok = await call(s, "token.create", grant)
            assert tok["code"] == 10000 and tok["data"]["shop_id"] == int(acc["shop_id"])
            token = tok["data"]["access_token"]
            window = {"update_time_start": now_s - 3600, "update_time_end": now_s, "page": 0, "size": 100}
            assert (await call(s, "order.searchList", window, token="bogus"))["code"] == 30001
            doc = await call(s, "order.searchList", window, token=token)
            assert doc["code"] == 10000
            mine = {o.order_id for o in sim.scenario.orders.values() if o.account_id == account}
            listed = {o["order_id"] for o in doc["data"]["shop_order_list"]}
            assert listed == mine and doc["data"]["total"] == len(mine)
            facts = [f for o in doc["data"]["shop_order_list"] for f in dn.shop_order_facts(o, account)]
            # another account's sales in the same shop would be left out
            assert dn.shop_order_facts(doc["data"]["shop_order_list"][0], "999") == []
            want = [
                (o.order_id, st)
                for o in sim.scenario.orders.values()
                if o.account_id == account
                for _, st in o.lifecycle()
                if st != "refunded"
            ]
            assert sorted((f.order_id, f.status) for f in facts) == sorted(want)
            aw = {"update_start_time": now_s - 3600, "update_end_time": now_s, "page": 0, "size": 100}
            items = (await call(s, "afterSale.List", aw, token=token))["data"]["items"]
            got = sorted((oid, f.refund_id, f.amount_fen) for oid, f in map(dn.aftersale_fact, items) if f)
            assert got == sorted(
                (o.order_id, r.refund_id, r.amount_fen)
                for o in sim.scenario.orders.values()
                if o.account_id == account
                for r in o.refunds
            )
    finally:
        await sim.stop()


def test_kuaishou_pushes_are_ciphertext_that_the_msg_secret_opens() -> None:
    sim = Simulation(ScenarioConfig(seed=2, rooms=3, minutes=10, platforms=("kuaishou",)), speed=0)
    ks = sim.sims["kuaishou"]
    o = next(x for x in sim.scenario.orders.values() if x.paid_at is not None)
    _, headers, body = ks.sign_push(ks.order_message(o, "paid", o.paid_at))
    assert headers["kwaisign"] == signing.kuaishou_kwaisign(body, ks.creds["app_secret"])
    msg = orjson.loads(signing.kuaishou_msg_decrypt(ks.creds["msg_secret"], body))
    assert msg["event"] == "kwaishop_order_paySuccess" and orjson.loads(msg["info"])["oid"] == int(o.order_id)
