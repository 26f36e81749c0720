"""Issue 12, the consoles: a finished room is not stale (no 数据中断 alert once its stream ended), rooms and
alerts are named by their contestant, alerts are acknowledged / muted / unmuted with an audit row (who,
when, until; operators only, CSRF), judges' history names criteria as the contest file does, and a failed
login says why in Chinese. Against the real stack (and Chromium for the pages)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from clickhouse_connect.driver.client import Client as ChClient
from prometheus_client import Gauge

from liveboard.contracts import encode_event, make_event_id, parse_event
from liveboard.contracts.events import event_id_for
from tests.board import fixtures
from tests.board.conftest import JUDGE_PASSWORD, OPERATOR_PASSWORD, Board, Client
from tests.clickhouse_rows import insert_dead_letters, insert_live_snapshot

pytestmark = pytest.mark.engines


def insert_snapshot(
    ch: ChClient, contest_id: str, contestant_id: str, room_id: str, at_ms: int, ended_at: int | None
) -> None:
    """An archived live snapshot whose data says whether the stream ended (``live_ended_at``)."""
    insert_live_snapshot(ch, contest_id, contestant_id, room_id, at_ms, {"live_ended_at": ended_at})


async def _health(ops: Client, board: Board, want: Any, timeout_s: float = 10.0) -> dict[str, Any]:
    """The health report once ``want(report)`` holds (the report is cached for 0.2 s in these tests)."""
    deadline = time.monotonic() + timeout_s
    while True:
        status, h = await ops.call("GET", f"/api/v1/ops/health?contest={board.contest_id}")
        assert status == 200, h
        if want(h) or time.monotonic() > deadline:
            return h
        await asyncio.sleep(0.25)


def _alert(h: dict[str, Any], room: str, muted: bool = False) -> dict[str, Any] | None:
    rows = h["muted_alerts"] if muted else h["alerts"]
    return next((a for a in rows if a["kind"] == "stale_feed" and a.get("room_id") == room), None)


async def test_finished_room_is_not_stale_and_alerts_are_acknowledged_and_muted_with_audit(board: Board) -> None:
    now = fixtures.now_ms()
    old = now - 600_000  # 10 minutes silent, stale after 30 s here
    insert_snapshot(board.ch, board.contest_id, "a02", "room-c-live", old, None)
    insert_snapshot(board.ch, board.contest_id, "a04", "room-c-done", old - 60_000, None)
    insert_snapshot(board.ch, board.contest_id, "a04", "room-c-done", old, old - 5_000)
    ops = Client(board.url)
    judge = Client(board.url)
    try:
        await ops.login(board.operator, OPERATOR_PASSWORD)
        h = await _health(ops, board, lambda h: _alert(h, "room-c-live") is not None)
        feeds = {f["room_id"]: f for f in h["feeds"]}
        # the silent live room is stale, named by its contestant; the ended one is finished, with no alert
        live, done = feeds["room-c-live"], feeds["room-c-done"]
        assert live["stale"] is True and live["finished"] is False and live["display_name"] == "选手A02"
        assert done["stale"] is False and done["finished"] is True and done["ended_at"] == old - 5_000
        assert done["display_name"] == "选手A04"
        # the room waiting for its platform's final figures is named too (operator-final.js shows the name)
        waiting = {r["room_id"]: r for r in h["waiting_final"]}
        assert waiting["room-c-done"]["display_name"] == "选手A04"
        alert = _alert(h, "room-c-live")
        assert alert is not None and alert["display_name"] == "选手A02" and alert["platform"] == "douyin"
        assert alert["key"] == f"stale_feed|{board.contest_id}|douyin|room-c-live|a02|"
        assert _alert(h, "room-c-done") is None
        douyin = next(p for p in h["platforms"] if p["platform"] == "douyin")
        assert douyin["finished"] >= 1

        # the collector's own data ages (/metrics): the live room's stale_room alert is named by its
        # contestant; the finished room's is dropped
        age = Gauge("liveboard_ingest_data_age_seconds", "a", ["platform", "room_id"], registry=board.ingest.registry)
        try:
            age.labels("douyin", "room-c-live").set(600)
            age.labels("douyin", "room-c-done").set(600)

            def stale_rooms(h: dict[str, Any]) -> dict[str, dict[str, Any]]:
                return {a["room_id"]: a for a in h["alerts"] if a["kind"] == "stale_room"}

            h = await _health(ops, board, lambda h: "room-c-live" in stale_rooms(h))
            rooms = stale_rooms(h)
            assert rooms["room-c-live"]["display_name"] == "选手A02" and "room-c-done" not in rooms
        finally:
            board.ingest.registry.unregister(age)

        # acknowledge: stays listed, marked with who and when
        status, res = await ops.call("POST", "/api/v1/ops/alerts", {"key": alert["key"], "action": "ack"})
        assert status == 200 and res["by"] == board.operator, res
        h = await _health(ops, board, lambda h: (_alert(h, "room-c-live") or {}).get("acknowledged"))
        acked = _alert(h, "room-c-live")
        assert acked is not None and acked["acknowledged"]["by"] == board.operator
        # mute for 15 minutes: moves to muted_alerts with its end
        status, res = await ops.call(
            "POST", "/api/v1/ops/alerts", {"key": alert["key"], "action": "mute", "minutes": 15, "note": "已知断流"}
        )
        assert status == 200 and res["until_ms"] == res["at_ms"] + 15 * 60_000
        h = await _health(ops, board, lambda h: _alert(h, "room-c-live", muted=True) is not None)
        assert _alert(h, "room-c-live") is None
        muted = _alert(h, "room-c-live", muted=True)
        assert muted is not None and muted["muted"]["until_ms"] == res["until_ms"]
        assert muted["muted"]["note"] == "已知断流"
        # unmute: back in the list
        status, _ = await ops.call("POST", "/api/v1/ops/alerts", {"key": alert["key"], "action": "unmute"})
        assert status == 200
        h = await _health(ops, board, lambda h: _alert(h, "room-c-live") is not None)
        assert _alert(h, "room-c-live", muted=True) is None

        # bad input names the field; a judge may not; no CSRF token is refused
        status, err = await ops.call("POST", "/api/v1/ops/alerts", {"key": alert["key"], "action": "mute"})
        assert status == 400 and err["error"]["field"] == "minutes"
        status, err = await ops.call("POST", "/api/v1/ops/alerts", {"key": "nope", "action": "ack"})
        assert status == 400 and err["error"]["field"] == "key"
        status, _ = await ops.call("POST", "/api/v1/ops/alerts", {"key": alert["key"], "action": "ack"}, csrf=False)
        assert status == 403
        await judge.login(board.judge, JUDGE_PASSWORD)
        status, _ = await judge.call("POST", "/api/v1/ops/alerts", {"key": alert["key"], "action": "ack"})
        assert status == 403

        # each action is audited with who and until, and listed in the alert history
        status, log = await ops.call("GET", "/api/v1/ops/audit?limit=200")
        mine = [e for e in log["entries"] if e["target"] == alert["key"]]
        assert sorted(e["action"] for e in mine) == ["alert_ack", "alert_mute", "alert_unmute"]
        assert all(e["actor"] == board.operator for e in mine)
        mute_row = next(e for e in mine if e["action"] == "alert_mute")
        assert mute_row["detail"]["until_ms"] == res["until_ms"]
        status, hist = await ops.call("GET", f"/api/v1/ops/alerts/actions?contest={board.contest_id}")
        assert [a["action"] for a in hist["actions"] if a["alert_key"] == alert["key"]] == ["unmute", "mute", "ack"]
    finally:
        await ops.close()
        await judge.close()


async def test_judge_history_names_criteria_from_the_contest_file(board: Board) -> None:
    judge = Client(board.url)  # a03: the other tests' judge histories are a01's (test_pages) and a02's (test_api)
    try:
        await judge.login(board.judge, JUDGE_PASSWORD)
        status, doc = await judge.call("GET", f"/api/v1/judge/scores?round={board.round_id}&contestant=a03")
        assert status == 200, doc
        crit = doc["criteria"][0]
        status, res = await judge.call(
            "POST",
            "/api/v1/judge/scores",
            {"round_id": board.round_id, "contestant_id": "a03", "scores": {crit["id"]: "1"}},
        )
        assert status in (200, 201), res
        status, s = await judge.call("GET", f"/api/v1/judge/scores?round={board.round_id}&contestant=a03")
        assert status == 200
        names = {h["criterion"]: h["criterion_name"] for h in s["history"]}
        assert names[crit["id"]] == crit["name"] and crit["name"] != crit["id"]
    finally:
        await judge.close()


@pytest.mark.browser
async def test_failed_login_says_why_in_chinese(board: Board, browser: Any, artifacts: Path) -> None:
    page = await browser.new_page(viewport={"width": 1280, "height": 800}, bypass_csp=True)
    try:
        await page.goto(f"{board.url}/operator")
        # an unknown username (the operator's failures would count against the shared board's throttle)
        await page.fill("#login input[name=username]", "nobody-consoles")
        await page.fill("#login input[name=password]", "wrong-password")
        await page.click("#login button[type=submit]")
        await page.wait_for_function("document.querySelector('#login .msg').textContent.length > 0")
        msg = await page.text_content("#login .msg")
        assert msg == "登录失败：用户名或密码错误", msg
        # a judge's account on the operators' page: refused in Chinese, not the role id
        await page.fill("#login input[name=username]", board.judge)
        await page.fill("#login input[name=password]", JUDGE_PASSWORD)
        await page.click("#login button[type=submit]")
        await page.wait_for_function("document.querySelector('#login .msg').textContent.includes('无权')")
        assert await page.text_content("#login .msg") == "登录失败：此账号无权使用本页面"
        # English on ?lang=en
        await page.goto(f"{board.url}/operator?lang=en")
        # an unknown username (the operator's failures would count against the shared board's throttle)
        await page.fill("#login input[name=username]", "nobody-consoles")
        await page.fill("#login input[name=password]", "wrong-password")
        await page.click("#login button[type=submit]")
        await page.wait_for_function("document.querySelector('#login .msg').textContent.length > 0")
        assert await page.text_content("#login .msg") == "Login failed: Wrong username or password"
    finally:
        await page.close()


def insert_anomaly(ch: ChClient, contest_id: str, contestant_id: str, detector: str, at_ms: int) -> dict[str, Any]:
    """An anomaly_detected event in the archive, as the scorer's archive sink stores the detector's events."""
    doc: dict[str, Any] = {
        "event_id": "", "type": "anomaly_detected", "schema_version": 1, "contest_id": contest_id,
        "contestant_id": contestant_id, "platform": "douyin", "account_id": f"dy_{contestant_id}",
        "room_id": f"room-{contestant_id}", "video_id": None, "observed_at": at_ms, "ingested_at": at_ms,
        "source": "manual", "revision": "final", "raw_ref": None,
        "data": {
            "detector": detector, "anomaly_id": f"{detector}.room-{contestant_id}.{at_ms}", "severity": "critical",
            "summary": "在线人数 60 秒内由 300 升至 4,800 / online count 300 → 4,800 in 60 s",
            "window_start": at_ms - 60_000, "window_end": at_ms,
            "evidence": [{"name": "online_before", "value": 300, "text": None},
                         {"name": "online_after", "value": 4_800, "text": None}],
            "evidence_events": [],
        },
    }  # fmt: skip
    doc["event_id"] = event_id_for(doc)
    ev = parse_event(doc)
    row = [ev.event_id, ev.type, contest_id, contestant_id, "douyin", f"dy_{contestant_id}", f"room-{contestant_id}",
           "", at_ms, at_ms, "manual", "final", encode_event(ev).decode(), 0, 0]  # fmt: skip
    ch.insert("events_archive", [row], column_names=fixtures.ARCHIVE_COLUMNS, settings={"async_insert": 0})
    return doc


@pytest.mark.browser
async def test_anomalies_shown_to_operators_and_to_the_judges_of_the_group(
    board: Board, browser: Any, artifacts: Path
) -> None:
    now = fixtures.now_ms()
    a = insert_anomaly(board.ch, board.contest_id, "a03", "online_spike", now - 120_000)
    insert_anomaly(board.ch, board.contest_id, "b01", "online_spike", now - 60_000)  # group g2
    # the collector's heartbeat: last answer, token expiry, quota left (the platform row shows them)
    beat = {"last_ok_at": now - 4_000, "token_expires_at": now + 5_400_000, "quota_remaining": 1_200}
    insert_heartbeat(board.ch, board.contest_id, "douyin", now - 3_000, beat)
    insert_snapshot(board.ch, board.contest_id, "a01", "room-w-done", now - 90_000, now - 95_000)  # ended
    ops, judge = Client(board.url), Client(board.url)
    try:
        await ops.login(board.operator, OPERATOR_PASSWORD)
        status, res = await ops.call("GET", f"/api/v1/anomalies?contest={board.contest_id}")
        assert status == 200, res
        mine = [x for x in res["anomalies"] if x["event_id"] == a["event_id"]]
        assert len(mine) == 1 and mine[0]["display_name"] == "选手A03" and mine[0]["detector"] == "online_spike"
        assert {"name": "online_after", "value": 4_800, "text": None} in mine[0]["evidence"]
        assert any(x["contestant_id"] == "b01" for x in res["anomalies"])
        # the judge of g1 sees a03's and not b01's (g2); her own contest only
        await judge.login(board.judge, JUDGE_PASSWORD)
        status, res = await judge.call("GET", "/api/v1/anomalies")
        assert status == 200
        assert {x["contestant_id"] for x in res["anomalies"]} >= {"a03"}
        assert "b01" not in {x["contestant_id"] for x in res["anomalies"]}
        status, _ = await judge.call("GET", "/api/v1/anomalies?contest=other")
        assert status == 403
    finally:
        await ops.close()
        await judge.close()

    page = await browser.new_page(viewport={"width": 1600, "height": 1200}, bypass_csp=True)
    try:
        await page.goto(f"{board.url}/operator?contest={board.contest_id}")
        await page.fill("#login input[name=username]", board.operator)
        await page.fill("#login input[name=password]", OPERATOR_PASSWORD)
        await page.click("#login button[type=submit]")
        item = page.locator("#anomalies li.anomaly[data-contestant=a03]").first
        await item.wait_for(timeout=15_000)
        text = await item.text_content() or ""
        assert "在线人数异常飙升" in text and "选手A03 · 抖音" in text and "之后在线 4,800" in text, text
        assert await page.text_content("#anomalies-card h2") == "异常提示"
        # no raw ids or English words in the console's status cells and alerts
        cells = await page.locator(
            "#platforms td:first-child, #feeds td:nth-child(2), #alerts .badge"
        ).all_text_contents()
        assert not {"douyin", "kuaishou", "wechat_channels", "warning", "critical", "open"} & set(cells), cells
        quota = page.locator("#platforms tr[data-platform=douyin] .quota")
        await page.wait_for_function(
            "document.querySelector('#platforms tr[data-platform=douyin] .quota')?.textContent === '1,200'"
        )
        assert await quota.text_content() == "1,200"
        token = await page.text_content("#platforms tr[data-platform=douyin] .token") or ""
        assert "剩 01:30:0" in token, token
        waiting = page.locator("#waiting-final tr[data-room=room-w-done]")
        await waiting.wait_for(timeout=15_000)
        assert "选手A01" in (await waiting.text_content() or "") and "抖音" in (await waiting.text_content() or "")
        # the audit log names actions and outcomes in Chinese (the id stays in the tooltip)
        await page.wait_for_selector("#audit tbody tr")
        actions = await page.locator("#audit tbody td:nth-child(3)").all_text_contents()
        outcomes = await page.locator("#audit tbody td:nth-child(4)").all_text_contents()
        assert "登录" in actions and "login" not in actions and "ok" not in outcomes, (actions, outcomes)
        await page.screenshot(path=str(artifacts / "operator-console.png"), full_page=False)
        await page.screenshot(path=str(artifacts / "operator-console-full.png"), full_page=True)
    finally:
        await page.close()
    page = await browser.new_page(viewport={"width": 1600, "height": 1200}, bypass_csp=True)
    try:
        await page.goto(f"{board.url}/judge")
        await page.fill("#login input[name=username]", board.judge)
        await page.fill("#login input[name=password]", JUDGE_PASSWORD)
        await page.click("#login button[type=submit]")
        await page.click("#contestants li[data-contestant=a03]")
        item = page.locator("#judge-anomalies li.anomaly[data-contestant=a03]").first
        await item.wait_for(timeout=15_000)
        assert "在线人数异常飙升" in (await item.text_content() or "")
        await page.screenshot(path=str(artifacts / "judge-console.png"), full_page=False)
    finally:
        await page.close()


def insert_heartbeat(ch: ChClient, contest_id: str, platform: str, at_ms: int, data: dict[str, Any]) -> None:
    doc: dict[str, Any] = {
        "event_id": "", "type": "collector_heartbeat", "schema_version": 1, "contest_id": contest_id,
        "contestant_id": None, "platform": platform, "account_id": None, "room_id": None, "video_id": None,
        "observed_at": at_ms, "ingested_at": at_ms, "source": "poll", "revision": "final", "raw_ref": None,
        "data": {"collector_id": "ingest-1", "rooms_polled": 3, "errors": 0, "lag_ms": 0, **data},
    }  # fmt: skip
    doc["event_id"] = event_id_for(doc)
    ev = parse_event(doc)
    row = [ev.event_id, ev.type, contest_id, "", platform, "", "", "", at_ms, at_ms, "poll", "final",
           encode_event(ev).decode(), 0, 0]  # fmt: skip
    ch.insert("events_archive", [row], column_names=fixtures.ARCHIVE_COLUMNS, settings={"async_insert": 0})


async def test_platform_rows_show_last_answer_token_expiry_quota_and_dead_letters(board: Board) -> None:
    now = fixtures.now_ms()
    # an older heartbeat and the newest: the newest is shown
    insert_heartbeat(board.ch, board.contest_id, "kuaishou", now - 60_000, {"last_ok_at": now - 90_000})
    insert_heartbeat(
        board.ch,
        board.contest_id,
        "kuaishou",
        now - 5_000,
        {"last_ok_at": now - 7_000, "token_expires_at": now + 3_600_000, "quota_remaining": 42},
    )
    rows = [[f"dlq-ks-{now}-{i}", now - 1_000, "webhook", "kuaishou", "bad_signature", "{}", 0, 0] for i in range(2)]
    insert_dead_letters(board.ch, rows)
    ops = Client(board.url)
    try:
        await ops.login(board.operator, OPERATOR_PASSWORD)

        def ks(h: dict[str, Any]) -> dict[str, Any]:
            return next((p for p in h["platforms"] if p["platform"] == "kuaishou"), {})

        h = await _health(ops, board, lambda h: ks(h).get("quota_remaining") == 42 and ks(h).get("dead_letters") == 2)
        row = ks(h)
        assert row["last_ok_at"] == now - 7_000 and row["token_expires_at"] == now + 3_600_000
        assert row["heartbeat_at"] == now - 5_000 and row["quota_remaining"] == 42 and row["dead_letters"] == 2
    finally:
        await ops.close()


@pytest.mark.browser
async def test_judge_sees_scored_figures_with_median_and_rank_interactions_and_reported_funnel(
    board: Board, browser: Any, artifacts: Path
) -> None:
    # g2: b01 total 70 (rank 1), b02 total 40 (rank 2); the fixture's facts: GMV = total × 10,000 分,
    # paid orders 10 + rank, viewers 1,000 × rank, conversion 12,345 ppm for both
    fixtures.insert_leaderboard(board.ch, board.contest_id, "final", "g2", {"b01": "70", "b02": "40"}, 99)
    await board.ctx.hub.refresh((board.contest_id, "final"))
    try:
        await _judge_figures(board, browser, artifacts)
    finally:  # the board is the session's: leave g2's leaderboard as the other tests wrote it
        board.ch.command(
            "ALTER TABLE leaderboard DELETE WHERE contest_id = {c:String} AND group_id = 'g2' AND version = 99",
            parameters={"c": board.contest_id},
            settings={"mutations_sync": 2},
        )
        board.ctx.hub.rounds.pop((board.contest_id, "final"), None)  # the next look reads ClickHouse again


async def _judge_figures(board: Board, browser: Any, artifacts: Path) -> None:
    start = board.window[0]
    base = {"viewers_uv": 2_000, "orders_paid": 96, "gmv_fen": 400_000}
    insert_snapshot_data(board.ch, board.contest_id, "b02", "room-b02", start + 60_000, {**base, "likes": 100})
    insert_snapshot_data(
        board.ch, board.contest_id, "b02", "room-b02", start + 120_000,
        {**base, "likes": 500, "comments": 40, "shares": None, "new_followers": 7, "product_exposure_uv": None,
         "product_click_uv": 1_000, "orders_created": 120},
    )  # fmt: skip
    fixtures.insert_series(board.ch, board.contest_id, "b02", start + 60_000, 5)
    judge = Client(board.url)
    try:
        await judge.login(board.judge_g2, JUDGE_PASSWORD)
        status, d = await judge.call("GET", "/api/v1/judge/figures?round=final&contestant=b02")
        assert status == 200, d
        fig = {f["key"]: f for f in d["figures"]}
        assert d["rank"] == 2 and d["field"] == 2 and d["conversion"]["name"]
        assert (fig["gmv_fen"]["value"], fig["gmv_fen"]["median"], fig["gmv_fen"]["rank"]) == (400_000, 400_000, 2)
        assert (fig["paid_orders"]["value"], fig["paid_orders"]["median"], fig["paid_orders"]["rank"]) == (12, 11, 1)
        assert (fig["viewers"]["value"], fig["viewers"]["rank"], fig["viewers"]["of"]) == (2_000, 1, 2)
        assert (fig["conversion_ppm"]["value"], fig["conversion_ppm"]["rank"]) == (12_345, 1)  # a tie shares rank 1
        assert fig["total"]["value"] == "40" and fig["total"]["median"] == "40" and fig["total"]["rank"] == 2
        # the newest snapshot's interactions; shares not reported stays null
        assert d["interactions"] == {"likes": 500, "comments": 40, "shares": None, "new_followers": 7}
        # no exposure step (not reported); click → order 12.0 %, order → paid 80.0 %
        assert d["funnel"] == [
            {"step": "click", "value": 1_000, "of_previous_ppm": None},
            {"step": "order", "value": 120, "of_previous_ppm": 120_000},
            {"step": "paid", "value": 96, "of_previous_ppm": 800_000},
        ]
        status, _ = await judge.call("GET", "/api/v1/judge/figures?round=final&contestant=a01")  # g1: not hers
        assert status == 403
    finally:
        await judge.close()

    page = await browser.new_page(viewport={"width": 1600, "height": 1300}, bypass_csp=True)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        await page.goto(f"{board.url}/judge")
        await page.fill("#login input[name=username]", board.judge_g2)
        await page.fill("#login input[name=password]", JUDGE_PASSWORD)
        await page.click("#login button[type=submit]")
        await page.click("#contestants li[data-contestant=b02]")
        await page.wait_for_function("document.body.dataset.figuresFor === 'b02' && document.body.dataset.funnelSteps")
        assert await page.text_content("#figures tr[data-figure=gmv_fen] .value") == "4,000.00"
        assert await page.text_content("#figures tr[data-figure=gmv_fen] .rank") == "2 / 2"
        assert await page.text_content("#figures tr[data-figure=paid_orders] .median") == "11"
        assert await page.text_content("[data-interaction=shares] .v") == "平台未提供"
        assert await page.text_content("[data-interaction=likes] .v") == "500"
        assert await page.evaluate("document.body.dataset.funnelSteps") == "click,order,paid"
        assert int(await page.evaluate("document.body.dataset.minuteBars")) == 5
        assert "当前排名 2 / 2" in (await page.text_content("#figures-title") or "")
        await page.screenshot(path=str(artifacts / "judge-figures.png"), full_page=True)
        assert not errors, errors
    finally:
        await page.close()


def insert_snapshot_data(
    ch: ChClient, contest_id: str, contestant_id: str, room_id: str, at_ms: int, data: dict[str, Any]
) -> None:
    eid = make_event_id(
        "live_metrics_snapshot", contest_id, "douyin", f"dy_{contestant_id}", room_id, at_ms, "provisional"
    )
    payload = {"event_id": eid, "type": "live_metrics_snapshot", "data": data}
    row = [eid, "live_metrics_snapshot", contest_id, contestant_id, "douyin", f"dy_{contestant_id}", room_id, "",
           at_ms, at_ms, "poll", "provisional", orjson.dumps(payload).decode(), 0, 0]  # fmt: skip
    ch.insert("events_archive", [row], column_names=fixtures.ARCHIVE_COLUMNS, settings={"async_insert": 0})


@pytest.mark.browser
async def test_api_reference_renders_from_the_openapi_document_without_a_cdn(
    board: Board, browser: Any, artifacts: Path
) -> None:
    """/api/docs: Swagger UI from the board's own files under the board's CSP (no bypass), listing the
    operations of /api/v1/openapi.json; no request leaves the board."""
    page = await browser.new_page(viewport={"width": 1400, "height": 1000})
    problems: list[str] = []
    foreign: list[str] = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.on("request", lambda r: foreign.append(r.url) if not r.url.startswith(board.url) else None)
    try:
        resp = await page.goto(f"{board.url}/api/docs")
        assert resp is not None and resp.status == 200
        assert "script-src 'self'" in (resp.headers.get("content-security-policy") or "")
        await page.wait_for_selector(".opblock-summary-path", timeout=20_000)
        paths = set(await page.locator(".opblock-summary-path").all_text_contents())
        anon = Client(board.url)
        try:
            status, doc = await anon.call("GET", "/api/v1/openapi.json")
        finally:
            await anon.close()
        assert status == 200
        assert {p.replace("\u200b", "") for p in paths} == set(doc["paths"])
        assert "Liveboard" in (await page.text_content(".info .title") or "")
        await page.screenshot(path=str(artifacts / "api-docs.png"))
        assert not foreign, foreign
        assert not problems, problems
    finally:
        await page.close()
