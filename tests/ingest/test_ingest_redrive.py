"""Dead letters re-driven once the cause is fixed (issue 14.5), on the real broker and ClickHouse.

The cause: the Kuaishou app's MsgSecret was not configured, so the platform's encrypted order pushes were
refused and dead-lettered (reason ``no_secret``). The operator configures it, restarts the collector and
re-drives the dead letters: each order step comes out exactly once, a second re-drive adds nothing, and
both re-drives are recorded (who, what selection, how many); a dry run sends nothing."""

from __future__ import annotations

import asyncio
import base64
import copy

import aiohttp
import orjson
import pytest
from aiokafka import TopicPartition

from liveboard import redrive as rd
from liveboard.clickhouse.client import get_async_client, get_client
from liveboard.kafka.catalog import DLQ, REDRIVE
from liveboard.kafka.clients import make_consumer
from liveboard.platforms import signing
from services.ingest.app import Collector
from services.ingest.config import load_platforms
from services.ingest.registry import Registry
from services.scoring.rows import dead_letter_row
from services.simulator.clock import SimClock
from services.simulator.contest import contest_doc
from services.simulator.runner import Simulation
from services.simulator.scenario import MINUTE, ScenarioConfig
from tests.clickhouse_rows import insert_dead_letters
from tests.ingest.harness import consume, events, ingest_settings, raws, topic_settings
from tests.support import unique

pytestmark = pytest.mark.engines

CONFIG = ScenarioConfig(
    seed=29,
    rooms=3,
    minutes=10,
    revision_after_min=3,
    refund_tail_min=3,
    contest_id="redrive-ks",
    platforms=("kuaishou",),
)


async def _wait(cond, what: str, timeout_s: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not cond():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def _collector(settings, sim, registry, platforms: dict, *, redrive: bool, platform: str = "kuaishou") -> Collector:  # type: ignore[no-untyped-def]
    return Collector(
        settings,
        ingest_settings(),
        load_platforms(platforms),
        registry,
        clock=sim.clock,
        enabled=[platform],
        port=0,
        follow_account_bound=False,
        redrive=redrive,
    )


@pytest.mark.timeout(180)
async def test_dead_letters_redriven_after_the_cause_is_fixed_yield_their_events_once(stack) -> None:
    settings = await topic_settings(stack)
    cfg = ScenarioConfig(**{**CONFIG.__dict__})
    clock = SimClock(cfg.start_ms + 8 * MINUTE, 10)
    sim = Simulation(cfg, clock=clock)
    await sim.start()
    sc = sim.scenario
    registry = Registry(clock.now_ms)
    doc = contest_doc(sc)
    window = doc["stages"][0]["rounds"][0]["window"]
    registry.add_contest(
        cfg.contest_id,
        (window["start"], window["end"]),
        [(c.contestant_id, c.platform, c.account_id) for c in sc.contestants],
    )
    ks = sim.sims["kuaishou"]
    now = clock.now_ms()
    order = next(o for o in sc.orders.values() if o.platform == "kuaishou" and o.paid_at and o.paid_at < now)
    by = unique("operator")
    ch = await get_async_client(settings)
    try:
        # 1. no MsgSecret configured: the platform's encrypted pushes are refused and dead-lettered
        without = copy.deepcopy(sim.platform_config())
        without["kuaishou"].pop("msg_secret")
        a = _collector(settings, sim, registry, without, redrive=False)
        await a.start()
        t0 = clock.now_ms()
        try:
            async with aiohttp.ClientSession() as s:
                for status, ts in (("created", order.created_at), ("paid", order.paid_at)):
                    path, headers, body = ks.sign_push(ks.order_message(order, status, ts))
                    answer = await (await s.post(a.url + path, data=body, headers=headers)).json()
                    assert answer["result"] == 11 and "no_secret" in answer["errorMsg"]
        finally:
            await a.stop()
        t1 = clock.now_ms() + 1
        # the scorer archives lb.dlq.v1 into dead_letters: the same rows, as it would write them
        dlq = await consume(settings, DLQ)
        assert len(dlq) == 2
        _archive_dead_letters(settings, dlq)
        sel = rd.Selection(platform="kuaishou", reason="NO_SECRET", since_ms=t0, until_ms=t1)

        # 2. the cause fixed (MsgSecret configured), the collector restarted
        b = _collector(settings, sim, registry, sim.platform_config(), redrive=True)
        await b.start()
        try:
            dry = await rd.redrive(settings, ch, sel, requested_by=by, via="test", dry_run=True)
            assert dry["selected"] == 2 and dry["redrivable"] == 2 and dry["skipped"] == {} and "request_id" not in dry
            assert await consume(settings, REDRIVE, idle_s=0.5) == []  # a dry run sends nothing
            first = await rd.redrive(settings, ch, sel, requested_by=by, via="test", dry_run=False)
            assert first["sent"] == 2
            await _wait(lambda: b.redriver.processed == 2, "the first re-drive")
            await b.idle()
            second = await rd.redrive(settings, ch, sel, requested_by=by, via="test", dry_run=False)
            assert second["sent"] == 2 and second["request_id"] != first["request_id"]
            await _wait(lambda: b.redriver.processed == 4, "the second re-drive")
            await b.idle()
        finally:
            await b.stop()
        # the collector's progress is committed: a restarted collector does not re-drive these again
        probe = make_consumer(settings, group_id=b.redriver.group_id)
        await probe.start()
        try:
            assert await probe.committed(TopicPartition(settings.topic(REDRIVE), 0)) == 4
        finally:
            await probe.stop()
        steps = [e for e in await events(settings) if e.type == "order_event" and e.data.order_id == order.order_id]
        assert sorted(e.data.status for e in steps) == ["created", "paid"]
        assert {e.data.amount_fen for e in steps} == {order.amount_fen}
        # both re-drives recorded: who, the selection, how many
        rows = [r for r in await rd.history(ch, 500) if r["requested_by"] == by]
        assert sorted(r["request_id"] for r in rows) == sorted([first["request_id"], second["request_id"]])
        assert all(r["selected"] == 2 and r["sent"] == 2 and r["via"] == "test" for r in rows)
        assert all(
            r["selection"]
            == {"platform": "kuaishou", "reason": "NO_SECRET", "since_ms": t0, "until_ms": t1, "limit": 1000}
            for r in rows
        )
        assert len(await consume(settings, REDRIVE, idle_s=0.5)) == 4
    finally:
        await ch.close()
        await sim.stop()


async def test_redrive_cli_selects_dry_runs_sends_and_records(stack) -> None:
    from click.testing import CliRunner

    from liveboard.settings import reload_settings
    from services.ingest.cli import ingest as cli

    reload_settings()
    reason = unique("MsgSecret-missing")
    at = 1_767_225_600_000
    sync = get_client(stack)
    try:
        insert_dead_letters(
            sync,
            [
                [unique("dl"), at, "ingest.kuaishou.webhook", "kuaishou", f"no_secret: {reason}", "QUJD", 0, 0],
                [unique("dl"), at + 1, "ingest.douyin.live_push", "douyin", f"bad JSON: {reason}", "[", 0, 1],
                [unique("dl"), at + 2, "ingest.kuaishou.webhook", "kuaishou", f"other: {reason}", "x", 0, 2],
            ],
        )
    finally:
        sync.close()
    runner = CliRunner()

    async def run(*args: str):  # type: ignore[no-untyped-def]
        return await asyncio.to_thread(runner.invoke, cli, ["redrive", *args])

    res = await run("--platform", "tiktok")
    assert res.exit_code == 2 and "platform" in res.output
    res = await run("--since", "yesterday")
    assert res.exit_code == 2 and "--since" in res.output
    # everything with the reason text, before at + 2: the Kuaishou push goes, the Douyin live push is skipped
    window = ["--reason", reason, "--since", str(at), "--until", str(at + 2)]
    res = await run(*window, "--dry-run", "--json")
    assert res.exit_code == 0, res.output
    dry = orjson.loads(res.output)
    assert (dry["selected"], dry["redrivable"], dry["dry_run"]) == (2, 1, True)
    assert dry["skipped"]["ingest.douyin.live_push"]["count"] == 1 and "request_id" not in dry
    by = unique("cli-operator")
    res = await run(*window, "--by", by)
    assert res.exit_code == 0, res.output
    assert "sent 1 of 2" in res.output and "skipped 1 from ingest.douyin.live_push" in res.output
    ch = await get_async_client(stack)
    try:
        rows = [r for r in await rd.history(ch, 500) if r["requested_by"] == by]
    finally:
        await ch.close()
    assert len(rows) == 1 and (rows[0]["selected"], rows[0]["sent"], rows[0]["via"]) == (2, 1, "cli")
    assert rows[0]["selection"] == {"reason": reason, "since_ms": at, "until_ms": at + 2, "limit": 1000}
    sent = [orjson.loads(r.value) for r in await consume(stack, REDRIVE, idle_s=0.5)]
    mine = [d for d in sent if d["request_id"] == rows[0]["request_id"]]
    assert [(d["source"], d["body"], d["requested_by"]) for d in mine] == [("ingest.kuaishou.webhook", "QUJD", by)]


def _archive_dead_letters(settings, records) -> None:  # type: ignore[no-untyped-def]
    """What the scorer does with lb.dlq.v1: the same rows in dead_letters."""
    sync = get_client(settings)
    try:
        insert_dead_letters(sync, [dead_letter_row(r.value, r.partition, r.offset) for r in records])
    finally:
        sync.close()


@pytest.mark.timeout(180)
async def test_wechat_push_dead_lettered_under_a_wrong_aes_key_is_redriven_once_the_key_is_fixed(stack) -> None:
    settings = await topic_settings(stack)
    cfg = ScenarioConfig(**{**CONFIG.__dict__, "contest_id": "redrive-wx", "platforms": ("wechat_channels",)})
    clock = SimClock(cfg.start_ms + 8 * MINUTE, 10)
    sim = Simulation(cfg, clock=clock)
    await sim.start()
    sc = sim.scenario
    registry = Registry(clock.now_ms)
    window = contest_doc(sc)["stages"][0]["rounds"][0]["window"]
    registry.add_contest(
        cfg.contest_id,
        (window["start"], window["end"]),
        [(c.contestant_id, c.platform, c.account_id) for c in sc.contestants],
    )
    wx = sim.sims["wechat_channels"]
    order = next(o for o in sc.orders.values() if o.paid_at and o.paid_at < clock.now_ms())
    wrong = copy.deepcopy(sim.platform_config())
    wrong["wechat_channels"]["push"]["encoding_aes_key"] = base64.b64encode(b"k" * 32).decode().rstrip("=")
    ch = await get_async_client(settings)
    try:
        a = _collector(settings, sim, registry, wrong, redrive=False, platform="wechat_channels")
        await a.start()
        t0 = clock.now_ms()
        try:
            path, headers, body = wx.sign_push(wx.message(order, "channels_ec_order_pay", order.paid_at))
            async with aiohttp.ClientSession() as s:
                r = await s.post(a.url + path, data=body, headers=headers)
                assert r.status == 200 and await r.text() == "success"  # signed: acknowledged, kept
        finally:
            await a.stop()
        dlq = await consume(settings, DLQ)
        assert [d["reason"].split(":")[0] for d in map(lambda r: orjson.loads(r.value), dlq)] == ["undecodable message"]
        _archive_dead_letters(settings, dlq)
        sel = rd.Selection(platform="wechat_channels", reason="undecodable", since_ms=t0, until_ms=clock.now_ms() + 1)
        b = _collector(settings, sim, registry, sim.platform_config(), redrive=True, platform="wechat_channels")
        await b.start()
        try:
            for n in (1, 2):
                assert (await rd.redrive(settings, ch, sel, requested_by="t", via="test", dry_run=False))["sent"] == 1
                await _wait(lambda n=n: b.redriver.processed == n, f"re-drive {n}")
                await b.idle()
        finally:
            await b.stop()
        # the push went the live path once: archived decrypted once, its order fetched (amount from the detail)
        pushed = [r for r in await raws(settings) if r["source"] == "push" and r["endpoint"] == "message_push"]
        assert len(pushed) == 1 and orjson.loads(pushed[0]["body"])["Event"] == "channels_ec_order_pay"
        paid = [
            e
            for e in await events(settings)
            if e.type == "order_event" and e.data.order_id == order.order_id and e.data.status == "paid"
        ]
        assert paid and {e.data.amount_fen for e in paid} == {order.amount_fen}
        assert len({e.event_id for e in paid}) == 1
    finally:
        await ch.close()
        await sim.stop()


def test_redrive_deliveries_are_signed_as_the_platforms_sign() -> None:
    """The re-posts verify under each receiver's own check (so they take the live path)."""
    from types import SimpleNamespace

    from services.ingest import auth
    from services.ingest.redrive import Unsupported, douyin_post, kuaishou_post, wechat_post

    msg_secret = base64.b64encode(b"0123456789abcdef").decode()
    ks = SimpleNamespace(secret="app-secret", msg_secret=msg_secret)
    plain = orjson.dumps({"event": "kwaishop_order_paid", "createTime": 1})
    path, headers, body = kuaishou_post(ks, plain)  # a plaintext 电商 message goes out encrypted again
    assert path == "/webhooks/kuaishou" and headers["Content-Type"] == "text/plain"
    assert signing.kuaishou_msg_decrypt(msg_secret, body) == plain
    assert headers["kwaisign"] == signing.kuaishou_kwaisign(body, "app-secret")
    assert headers[auth.REDRIVE_HEADER] == auth.redrive_mac("app-secret", body)
    assert auth.redrive_mac("other-secret", body) != headers[auth.REDRIVE_HEADER]
    with pytest.raises(Unsupported, match="MsgSecret"):
        kuaishou_post(SimpleNamespace(secret="s", msg_secret=None), plain)

    wx = SimpleNamespace(token="tok")
    outer = orjson.dumps({"ToUserName": "gh_1", "Encrypt": "QUJD"})
    path, headers, body = wechat_post(wx, outer, 1_767_225_600_000)
    q = dict(p.split("=", 1) for p in path.split("?", 1)[1].split("&"))
    assert q["timestamp"] == "1767225600" and body == outer
    assert q["msg_signature"] == signing.wechat_msg_signature("tok", q["timestamp"], q["nonce"], "QUJD")
    with pytest.raises(Unsupported, match="never authenticated"):
        wechat_post(wx, b'{"ToUserName":"gh_1"}', 0)

    dy = SimpleNamespace(client_secret="cs")
    path, headers, body = douyin_post(dy, b'{"event":"create_video"}', "d1")
    assert headers["X-Douyin-Signature"] == signing.douyin_webhook_signature("cs", body)
    assert headers["Msg-Id"] == "redrive-d1" and headers["Content-Type"] == "application/json"


def test_plan_counts_what_goes_and_says_why_the_rest_is_skipped() -> None:
    def row(i: int, source: str, size: int = 10, reason: str = "r") -> dict:
        return {
            "dlq_id": f"d{i}",
            "received_at": i,
            "source": source,
            "platform": "kuaishou",
            "reason": reason,
            "size": size,
        }

    rows = [
        row(1, "ingest.kuaishou.webhook", reason="no_secret: x"),
        row(2, "ingest.kuaishou.webhook", reason="no_secret: x"),
        row(3, "ingest.kuaishou.webhook", size=rd.MAX_BODY_BYTES + 1),
        row(4, "ingest.douyin.live_push"),
        row(5, "ingest.kuaishou.room_stats"),
        row(6, "scoring"),
    ]
    p = rd.plan(rows)
    assert (p["selected"], p["redrivable"]) == (6, 2)
    assert p["by_reason"] == {"kuaishou: no_secret: x": 2}
    assert {k: v["count"] for k, v in p["skipped"].items()} == {
        "ingest.kuaishou.webhook": 1,
        "ingest.douyin.live_push": 1,
        "ingest.kuaishou.room_stats": 1,
        "scoring": 1,
    }
    assert "4 MiB" in p["skipped"]["ingest.kuaishou.webhook"]["why"]
    assert "next poll" in p["skipped"]["ingest.kuaishou.room_stats"]["why"]
    # bodies are fetched and sent in bounded chunks
    many = [row(i, "ingest.kuaishou.webhook", size=5 << 20) for i in range(7)]
    assert [len(c) for c in rd._chunks(many)] == [3, 3, 1]
    with pytest.raises(ValueError, match="until_ms"):
        rd.Selection(since_ms=10, until_ms=10)
    with pytest.raises(ValueError, match="platform"):
        rd.Selection(platform="tiktok")
