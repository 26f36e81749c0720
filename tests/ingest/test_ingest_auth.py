"""Authenticate first (issue 14.2), against the real broker: unsigned and oversized bodies leave no trace,
signed pushes outside their freshness window are refused, a Douyin push replayed under a new ``Msg-Id`` is
absorbed, wrong content types are refused. Each refusal is counted in
``liveboard_ingest_push_refusals_total`` and answered in the platform's own format."""

from __future__ import annotations

import aiohttp
import orjson
import pytest

from liveboard.platforms import signing
from services.simulator.scenario import MINUTE, ScenarioConfig
from tests.ingest.harness import dead_letters, events, raws, running
from tests.ingest.test_ingest_webhooks import metric

pytestmark = pytest.mark.engines

CONFIG = ScenarioConfig(seed=23, rooms=3, minutes=10, revision_after_min=3, refund_tail_min=3)
REFUSALS = "liveboard_ingest_push_refusals_total"
DAY = 24 * 60 * MINUTE


def wechat_signed(wx, message: dict, ts_s: int, content_type: str = "application/json") -> tuple[str, dict, bytes]:
    """WeChat's secure-mode delivery, signed at ``ts_s`` (the simulator signs at its clock's now)."""
    push = wx.creds["push"]
    encrypt = signing.wechat_encrypt(push["encoding_aes_key"], push["appid"], orjson.dumps(message))
    body = orjson.dumps({"ToUserName": message["ToUserName"], "Encrypt": encrypt})
    ts, nonce = str(ts_s), "1514711492"
    sig = signing.wechat_msg_signature(push["token"], ts, nonce, encrypt)
    q = f"timestamp={ts}&nonce={nonce}&encrypt_type=aes&msg_signature={sig}"
    return f"/webhooks/wechat?{q}", {"Content-Type": content_type}, body


def douyin_live_signed(dy, room_id: str, msgs: list, ts_ms: int) -> tuple[str, dict, bytes]:
    path, headers, body = dy.live_push(room_id, "live_like", msgs)
    headers = {k: v for k, v in headers.items() if k not in ("x-signature",)}
    headers["x-timestamp"] = str(ts_ms)
    signed = {k: v for k, v in headers.items() if k != "content-type"}
    headers["x-signature"] = signing.douyin_live_signature(signed, body, dy.creds["live_push_secret"])
    return path, headers, body


async def _refusals(s: aiohttp.ClientSession, url: str, reasons: tuple[str, ...]) -> dict[tuple[str, str], float]:
    """The collector's refusal counters (the metrics registry is the process's: compare before/after)."""
    return {
        (p, reason): await metric(s, url, REFUSALS, platform=p, reason=reason)
        for p in ("wechat_channels", "douyin", "kuaishou")
        for reason in reasons
    }


async def _no_push_trace(run) -> None:
    await run.collector.idle()
    await run.collector.stop()
    assert [e for e in await events(run.settings) if e.source == "push"] == []
    assert [r for r in await raws(run.settings) if r["source"] == "push"] == []
    assert await dead_letters(run.settings) == []


async def test_unsigned_oversized_and_mistyped_bodies_leave_no_trace(stack) -> None:
    cfg = ScenarioConfig(**{**CONFIG.__dict__, "contest_id": "auth-unsigned"})
    async with running(stack, config=cfg, speed=10) as run:
        url = run.collector.url
        wx, dy = run.sim.sims["wechat_channels"], run.sim.sims["douyin"]
        big = b'{"ToUserName":"gh_x","Encrypt":"' + b"A" * (3 * 1024 * 1024) + b'"}'
        async with aiohttp.ClientSession() as s:
            before = await _refusals(s, url, ("bad_signature", "too_large", "content_type"))
            # unsigned, small: WeChat used to parse and dead-letter these before checking anything
            for body in (b"not json at all", b'{"ToUserName":"gh_x"}', b'{"ToUserName":"gh_x","Encrypt":"QUJD"}'):
                r = await s.post(
                    url + "/webhooks/wechat?timestamp=1&nonce=2&msg_signature=0",
                    data=body,
                    headers={"Content-Type": "application/json"},
                )
                assert r.status == 401 and await r.text() == "invalid signature"
            # unsigned, 3 MB (limit 1 MiB): refused on the declared length, on every endpoint
            for path, ctype in (
                ("/webhooks/wechat?timestamp=1&nonce=2&msg_signature=0", "application/json"),
                ("/webhooks/douyin", "application/json"),
                ("/webhooks/douyin/live", "application/json"),
                ("/webhooks/kuaishou", "text/plain"),
            ):
                r = await s.post(url + path, data=big, headers={"Content-Type": ctype})
                if "kuaishou" in path:
                    assert r.status == 200 and (await r.json())["result"] == 11
                else:
                    assert r.status == 413, (path, r.status)
                    if "douyin" in path:
                        assert (await r.json())["err_no"] == 413
            # signed correctly but with a content type the platform never sends
            order = next(o for o in run.sim.scenario.orders.values() if o.platform == "wechat_channels")
            now_s = run.sim.clock.now_ms() // 1000
            path, headers, body = wechat_signed(wx, wx.message(order, "channels_ec_order_new", 0), now_s, "text/xml")
            assert (await s.post(url + path, data=body, headers=headers)).status == 415
            path, headers, body = dy.verify_webhook_request(777)
            headers["Content-Type"] = "text/plain"
            r = await s.post(url + path, data=body, headers=headers)
            assert r.status == 415 and (await r.json())["err_no"] == 415
            room = run.sim.scenario.rooms_of("douyin")[0]
            path, headers, body = dy.live_push(room.room_id, "live_like", room.interactions[:1])
            headers["content-type"] = "application/x-www-form-urlencoded"
            assert (await s.post(url + path, data=body, headers=headers)).status == 415
            after = await _refusals(s, url, ("bad_signature", "too_large", "content_type"))
        counted = {k: after[k] - before[k] for k in after}
        assert counted == {
            ("wechat_channels", "bad_signature"): 3,
            ("wechat_channels", "too_large"): 1,
            ("wechat_channels", "content_type"): 1,
            ("douyin", "bad_signature"): 0,
            ("douyin", "too_large"): 2,
            ("douyin", "content_type"): 2,
            ("kuaishou", "bad_signature"): 0,
            ("kuaishou", "too_large"): 1,
            ("kuaishou", "content_type"): 0,
        }
        await _no_push_trace(run)


async def test_signed_pushes_a_week_old_are_refused_on_each_platform(stack) -> None:
    cfg = ScenarioConfig(**{**CONFIG.__dict__, "contest_id": "auth-stale"})
    async with running(stack, config=cfg, speed=10) as run:
        url, sc = run.collector.url, run.sim.scenario
        wx, dy, ks = (run.sim.sims[p] for p in ("wechat_channels", "douyin", "kuaishou"))
        now = run.sim.clock.now_ms()
        week_ago = now - 7 * DAY
        wo = next(o for o in sc.orders.values() if o.platform == "wechat_channels")
        ko = next(o for o in sc.orders.values() if o.platform == "kuaishou")
        droom = sc.rooms_of("douyin")[0]
        likes = [x for x in droom.interactions if x.msg_type == "live_like"][:3]
        video = next(v for v in sc.videos.values() if v.platform == "douyin")
        open_id = dy.creds["accounts"][video.account_id]["open_id"]
        async with aiohttp.ClientSession() as s:
            before = await _refusals(s, url, ("stale", "future"))
            # correctly signed, timestamp a week old
            path, headers, body = wechat_signed(wx, wx.message(wo, "channels_ec_order_new", week_ago), week_ago // 1000)
            r = await s.post(url + path, data=body, headers=headers)
            assert r.status == 401 and "stale" in await r.text()
            path, headers, body = ks.sign_push(ks.order_message(ko, "created", week_ago))
            answer = await (await s.post(url + path, data=body, headers=headers)).json()
            assert answer["result"] == 11 and "stale" in answer["errorMsg"]
            path, headers, body = douyin_live_signed(dy, droom.room_id, likes, week_ago)
            r = await s.post(url + path, data=body, headers=headers)
            assert r.status == 401 and "stale" in (await r.json())["err_msg"]
            content = {"item_id": video.video_id, "share_id": "s1", "create_time": week_ago // 1000}
            path, headers, body = dy.webhook("create_video", open_id, content, "old-1")
            assert (await s.post(url + path, data=body, headers=headers)).status == 401
            # an hour ahead of the collector's clock (tolerance 5 min): refused as well
            path, headers, body = douyin_live_signed(dy, droom.room_id, likes, now + 60 * MINUTE)
            r = await s.post(url + path, data=body, headers=headers)
            assert r.status == 401 and "future" in (await r.json())["err_msg"]
            after = await _refusals(s, url, ("stale", "future"))
        assert {k: after[k] - before[k] for k in after} == {
            ("wechat_channels", "stale"): 1,
            ("douyin", "stale"): 2,
            ("kuaishou", "stale"): 1,
            ("wechat_channels", "future"): 0,
            ("douyin", "future"): 1,
            ("kuaishou", "future"): 0,
        }
        await _no_push_trace(run)


async def test_douyin_push_replayed_with_new_msg_ids_is_absorbed(stack) -> None:
    cfg = ScenarioConfig(**{**CONFIG.__dict__, "contest_id": "auth-replay"})
    async with running(stack, config=cfg, speed=10) as run:
        url, sc = run.collector.url, run.sim.scenario
        dy = run.sim.sims["douyin"]
        video = next(v for v in sc.videos.values() if v.platform == "douyin")
        open_id = dy.creds["accounts"][video.account_id]["open_id"]
        now_s = run.sim.clock.now_ms() // 1000
        content = {"item_id": video.video_id, "share_id": "s1", "create_time": now_s}
        path, headers, body = dy.webhook("create_video", open_id, content, "first-id")
        dup = "liveboard_ingest_duplicates_dropped_total"
        async with aiohttp.ClientSession() as s:
            before = await metric(s, url, dup, platform="douyin")
            ok = {"platform": "douyin", "endpoint": "webhook", "outcome": "ok"}
            ok_before = await metric(s, url, "liveboard_ingest_pushes_total", **ok)
            r = await s.post(url + path, data=body, headers=headers)
            assert r.status == 200 and await r.json() == {"err_no": 0}
            for n in range(3):  # a captured push, replayed under fresh Msg-Ids (the header is not signed)
                r = await s.post(url + path, data=body, headers={**headers, "Msg-Id": f"replayed-{n}"})
                assert r.status == 200 and await r.json() == {"err_no": 0}
            after = await metric(s, url, dup, platform="douyin")
            ok_after = await metric(s, url, "liveboard_ingest_pushes_total", **ok)
        assert after - before == 3
        # taken once: the video poll it nudges (on the taken path only) is nudged once, not four times
        assert ok_after - ok_before == 1
        await run.collector.idle()
        await run.collector.stop()
        archived = [r for r in await raws(run.settings) if r["source"] == "push" and r["endpoint"] == "webhook"]
        assert len(archived) == 1 and archived[0]["meta"]["msg_id"] == "first-id"


def test_the_operators_console_lists_refusals_by_reason() -> None:
    """The board's health report reads the collector's /metrics: refusals show by platform and reason, a bad
    signature once (it is counted in signature_failures_total and push_refusals_total alike)."""
    from prometheus_client import generate_latest

    from services.board.ops_monitor import parse_ingest_metrics
    from services.ingest import auth
    from services.ingest import metrics as m

    def rejected() -> dict[tuple[str, str], int]:
        rows = parse_ingest_metrics(generate_latest(m.REGISTRY).decode())[2]
        return {(r["platform"], r["reason"]): r["count"] for r in rows}

    before = rejected()
    auth.refused("douyin", "live_push", "stale")
    auth.refused("douyin", "webhook", "stale")
    auth.refused("kuaishou", "webhook", "bad_signature")
    auth.refused("wechat_channels", "message_push", "too_large")
    after = rejected()
    changed = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
    assert changed == {("douyin", "stale"): 2, ("kuaishou", "bad_signature"): 1, ("wechat_channels", "too_large"): 1}
