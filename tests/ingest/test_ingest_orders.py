"""Orders on every platform, end to end on the real broker, against the simulator's ground truth: per order
the paid amount and each refund's id and amount (partial refunds, several per order, refunds after the
stream, cancellations), buyer ids; 抖店 orders and after-sales polled with signed calls through faults;
Kuaishou 电商 pushes encrypted with the MsgSecret (forged, undecryptable and plaintext ones refused); WeChat
after-sale details; re-polling adds no event (deterministic ids)."""

from __future__ import annotations

import aiohttp
import orjson
import pytest

from liveboard.contracts.records import raw_id_of
from services.simulator.faults import Fault
from services.simulator.scenario import ScenarioConfig
from tests.ingest import check
from tests.ingest.harness import dead_letters, events, raws, running
from tests.ingest.test_ingest_webhooks import metric
from tests.scoring.support import poll_until

pytestmark = pytest.mark.engines


def _config(platform: str, contest_id: str, rooms: int = 4, seed: int = 31) -> ScenarioConfig:
    return ScenarioConfig(
        seed=seed,
        rooms=rooms,
        minutes=10,
        revision_after_min=3,
        refund_tail_min=3,
        platforms=(platform,),
        contest_id=contest_id,
        orders_scale=2.0,
    )


async def _run_through(run) -> None:  # type: ignore[no-untyped-def]
    """Every push delivered and simulated time past every refund and the final revision, collector idle."""
    sc = run.sim.scenario
    end = sc.end_ms + run.collector.ingest.final_after_s * 1000 + 60_000
    await run.sim.push_loop(until_ms=end)
    await run.sim.clock.sleep_until(end)
    await run.collector.idle()


def _truth_has_the_hard_cases(truth: dict, platform: str) -> None:
    orders = [o for o in truth["orders"].values() if o["platform"] == platform]
    assert any(len(o["refunds"]) >= 2 for o in orders), "no order refunded in two parts"
    assert any(sum(r["amount_fen"] for r in o["refunds"]) < o["amount_fen"] for o in orders if o["refunds"])
    assert any(any(s == "cancelled" for _, s in o["lifecycle"]) for o in orders), "no cancelled order"
    late = [
        r
        for o in orders
        for r in o["refunds"]
        if r["at"] > truth["rooms"][o["room_id"]]["end_ms"]  # refunded after the stream ended
    ]
    assert late, "no refund after the stream"


@pytest.mark.timeout(180)
async def test_douyin_shop_orders_and_after_sales_match_the_truth_through_faults_and_repoll_adds_nothing(
    stack,
) -> None:
    rates = {"douyin": {Fault.SERVER_ERROR: 0.05, Fault.TOKEN_EXPIRED: 0.05, Fault.QUOTA: 0.05}}
    config = _config("douyin", "orders-douyin")
    async with running(stack, config=config, speed=60, fault_rates=rates, ingest={"reconcile_interval_s": 30}) as run:
        sim = run.sim.sims["douyin"]
        sim.faults.inject(Fault.MALFORMED_JSON, 1, "aftersale_list")
        run.collector.collectors["douyin"].shop_page_size = 7  # several pages of orders and of after-sales
        await _run_through(run)
        truth = run.truth
        _truth_has_the_hard_cases(truth, "douyin")
        # the calls were the signed 抖店 ones, through the faults asked for
        assert sim.requests("order_search") and sim.requests("aftersale_list") and sim.requests("shop_token") >= 2
        assert sim.faults.total(Fault.TOKEN_EXPIRED) and sim.faults.total(Fault.MALFORMED_JSON) == 1
        assert any(len(o["refunds"]) for o in truth["orders"].values())
        per_shop = {}
        for o in truth["orders"].values():
            per_shop[o["account_id"]] = per_shop.get(o["account_id"], 0) + 1
        assert max(per_shop.values()) > 7 * 2  # the order list was paged

        # Re-polling the whole history produces nothing new (the collector remembers what it emitted) …
        dy = run.collector.collectors["douyin"]
        accounts = sorted({o["account_id"] for o in truth["orders"].values()})
        sim.faults.rates.clear()  # the re-polls below are called directly, without the scheduler's retries
        # The scheduler's own shop polls stop first: one in flight across the cursor reset below writes its
        # one-minute cursor back, and the test's re-poll of that shop then reads one minute, not the history.
        shop_jobs = [j for k, j in dy.scheduler.jobs.items() if k.startswith("shop:")]
        assert shop_jobs
        for j in shop_jobs:
            dy.scheduler.remove(j.key)
        assert await poll_until(lambda: not any(j.running for j in shop_jobs), 60)
        produced = "liveboard_ingest_events_total"
        async with aiohttp.ClientSession() as s:
            n0 = await metric(s, run.collector.url, produced, platform="douyin", type="order_event")
            dy.shop_cursor.clear()
            for acc in accounts:
                await dy.poll_shop(acc)
            await run.collector.idle()
            n1 = await metric(s, run.collector.url, produced, platform="douyin", type="order_event")
            # … and a collector that forgot (a restart) produces every fact again, under the same ids (below)
            dy.shop_cursor.clear()
            dy._shop_emitted = type(dy._shop_emitted)(10**9, 10**6)
            for acc in accounts:
                await dy.poll_shop(acc)
            await run.collector.idle()
            n2 = await metric(s, run.collector.url, produced, platform="douyin", type="order_event")
        facts = check.truth_facts(truth, "douyin")
        assert n0 >= len(facts) and n1 == n0 and n2 == n1 + len(facts)
        await run.collector.idle()
        await run.collector.stop()

        evts = await events(run.settings)
        problems = check.check_orders(evts, truth, "douyin")  # every fact under exactly one event id
        assert not problems, "\n".join(problems[:30])
        assert check.ledger(evts, "douyin") == check.truth_ledger(truth, "douyin")
        orders = [e for e in evts if e.type == "order_event"]
        assert len(orders) == 2 * len(facts)  # each fact twice (the forgetful re-poll) …
        assert len({e.event_id for e in orders}) == len(facts)  # … under one id
        assert all(e.source == "poll" and e.raw_ref is not None for e in orders)
        rooms = {o["room_id"] for o in truth["orders"].values()}
        assert all(e.room_id in rooms for e in orders)
        raw = {r["raw_id"] for r in await raws(run.settings)}
        assert all(e.raw_ref.raw_id in raw for e in orders)
        dlq = await dead_letters(run.settings)
        assert dlq and all(d["platform"] == "douyin" and "JSON" in d["reason"] for d in dlq)


@pytest.mark.timeout(180)
async def test_kuaishou_encrypted_pushes_match_the_truth_and_forged_or_undecryptable_ones_are_refused(
    stack,
) -> None:
    rates = {"kuaishou": {Fault.DUPLICATE_PUSH: 0.1, Fault.OUT_OF_ORDER_PUSH: 0.05}}
    async with running(stack, config=_config("kuaishou", "orders-kuaishou"), speed=60, fault_rates=rates) as run:
        ks = run.sim.sims["kuaishou"]
        url = run.collector.url
        sc = run.sim.scenario
        o = next(x for x in sc.orders.values() if x.paid_at is not None)
        failures = "liveboard_ingest_decrypt_failures_total"
        reasons = ("undecryptable", "plaintext", "no_secret")
        async with aiohttp.ClientSession() as s:
            # the counter is the process's: another test in this session may have counted before (redrive)
            before = {r: await metric(s, url, failures, reason=r) for r in reasons}
            # the platform's pushes are ciphertext: the body is no JSON
            path, headers, body = ks.sign_push(ks.order_message(o, "created", o.created_at))
            assert not body.startswith(b"{") and b"kwaishop" not in body
            # signed with the app secret but encrypted with another MsgSecret: refused, counted, dead-lettered
            wrong = "ZmVkY2JhMDk4NzY1NDMyMQ=="
            path, headers, body = ks.sign_push(ks.order_message(o, "paid", o.paid_at), msg_secret=wrong)
            answer = await (await s.post(url + path, data=body, headers=headers)).json()
            assert answer["result"] == 11 and "undecryptable" in answer["errorMsg"]
            # ciphertext that is not even base64 / block-aligned
            bad = b"AAAA" + body[4:-3]
            from liveboard.platforms.signing import kuaishou_kwaisign

            hdr = {**headers, "kwaisign": kuaishou_kwaisign(bad, ks.creds["app_secret"])}
            assert (await (await s.post(url + path, data=bad, headers=hdr)).json())["result"] == 11
            # a 电商 message in plaintext: the platform never sends one, so it is not taken
            path, headers, body = ks.sign_push(ks.order_message(o, "paid", o.paid_at), encrypt=False)
            answer = await (await s.post(url + path, data=body, headers=headers)).json()
            assert answer["result"] == 11 and "plaintext" in answer["errorMsg"]
            # forged: a wrong kwaisign over a well-encrypted body
            path, headers, body = ks.sign_push(ks.order_message(o, "paid", o.paid_at))
            headers["kwaisign"] = "0" * 32
            assert (await (await s.post(url + path, data=body, headers=headers)).json())["result"] == 11
            counted = {r: await metric(s, url, failures, reason=r) - before[r] for r in reasons}
        assert counted == {"undecryptable": 2, "plaintext": 1, "no_secret": 0}

        await _run_through(run)
        await run.collector.stop()
        truth = run.truth
        _truth_has_the_hard_cases(truth, "kuaishou")
        evts = await events(run.settings)
        problems = check.check_orders(evts, truth, "kuaishou")
        assert not problems, "\n".join(problems[:30])
        assert check.ledger(evts, "kuaishou") == check.truth_ledger(truth, "kuaishou")
        dlq = await dead_letters(run.settings)
        reasons = sorted(d["reason"].split(":")[0] for d in dlq)
        assert reasons == ["plaintext", "undecryptable", "undecryptable"], reasons
        assert all(d["source"] == "ingest.kuaishou.webhook" for d in dlq)
        # pushes are archived decrypted, and nothing of the refused ones was archived
        pushed = [r for r in await raws(run.settings) if r["source"] == "push"]
        assert pushed and all(r["meta"]["decrypted"] is True for r in pushed)
        assert all(orjson.loads(r["body"])["event"].startswith("kwaishop_") for r in pushed)
        # the secret never reaches a log line, a raw record or a dead letter
        secret = ks.creds["msg_secret"]
        assert all(secret not in orjson.dumps(x).decode() for x in (*dlq, *pushed))


@pytest.mark.timeout(180)
async def test_wechat_after_sale_details_give_each_refund_and_reconciliation_adds_nothing(stack) -> None:
    rates = {"wechat_channels": {Fault.LOST_PUSH: 0.2}}
    async with running(stack, config=_config("wechat_channels", "orders-wechat"), speed=60, fault_rates=rates) as run:
        await _run_through(run)
        truth = run.truth
        _truth_has_the_hard_cases(truth, "wechat_channels")
        # reconciliation over the whole history again: no new record
        wx = run.collector.collectors["wechat_channels"]
        produced = "liveboard_ingest_events_total"
        async with aiohttp.ClientSession() as s:
            n0 = await metric(s, run.collector.url, produced, platform="wechat_channels", type="order_event")
            wx.order_cursor.clear()
            for acc in sorted({o["account_id"] for o in truth["orders"].values()}):
                await wx.reconcile_orders(acc)
            await run.collector.idle()
            n1 = await metric(s, run.collector.url, produced, platform="wechat_channels", type="order_event")
        assert n1 == n0
        await run.collector.stop()
        evts = await events(run.settings)
        problems = check.check_orders(evts, truth, "wechat_channels")
        assert not problems, "\n".join(problems[:30])
        assert check.ledger(evts, "wechat_channels") == check.truth_ledger(truth, "wechat_channels")
        # the order refunded in two parts: two refund events, each with its after-sale id and amount
        oid, split = next((k, o) for k, o in truth["orders"].items() if len(o["refunds"]) > 1)
        refunds = sorted(
            (e.data.refund_id, e.data.amount_fen)
            for e in evts
            if e.type == "order_event" and e.data.status == "refunded" and e.data.order_id == oid
        )
        assert len(refunds) == 2
        assert refunds == sorted((r["refund_id"], r["amount_fen"]) for r in split["refunds"])
    assert run.sim.pushers["wechat_channels"].stats["lost"] > 0


@pytest.mark.timeout(180)
async def test_a_malformed_douyin_order_entry_is_dead_lettered_alone_and_its_page_still_counts(stack) -> None:
    """The shop cursor moves past a window once it is read, so a page refused whole would lose its good
    orders for ever: each bad entry goes to the dead letters on its own, the rest are produced."""
    # the scheduler's own shop polls are an hour of simulated time apart: only the call below runs meanwhile
    ingest = {"reconcile_interval_s": 3600}
    async with running(stack, config=_config("douyin", "orders-douyin-bad-entry"), speed=60, ingest=ingest) as run:
        await _run_through(run)
        dy = run.collector.collectors["douyin"]
        truth = run.truth
        account = sorted({o["account_id"] for o in truth["orders"].values()})[0]
        dy._shop_emitted = type(dy._shop_emitted)(10**9, 10**6)  # as after a restart: emit everything again
        param = {"update_time_start": 0, "update_time_end": 2**31, "page": 0, "size": 100, "order_by": "update_time"}
        doc, raw = await dy.dd_call(account, "order_search", "order.searchList", param)
        good = doc["data"]["shop_order_list"]
        assert good
        dead_before = len(await dead_letters(run.settings))
        entries = [good[0], "not an object", {"order_id": "broken"}, *good[1:]]
        await dy._publish_shop(account, "order_search", raw, entries, {"start": 0, "end": 2**31})
        await run.collector.idle()

        dlq = (await dead_letters(run.settings))[dead_before:]
        assert len(dlq) == 2 and all("list entry" in d["reason"] for d in dlq), dlq
        page = raw_id_of(raw)
        orders = [e for e in await events(run.settings) if e.type == "order_event" and e.raw_ref.raw_id == page]
        produced = {e.data.order_id for e in orders}
        want = {str(o.get("order_id")) for o in good}
        assert want <= produced, want - produced  # every good entry of the page was produced
