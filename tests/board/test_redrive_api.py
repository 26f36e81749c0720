"""The operators' console re-drives dead letters (issue 14.5): operators only, CSRF-checked, bad selections
refused naming the field, a dry run sends nothing, a re-drive puts one request per re-drivable dead letter
on lb.redrive.v1, skips the rest saying why, and is recorded and audited (who, the selection, how many)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from liveboard.kafka.catalog import REDRIVE
from tests.board.conftest import JUDGE_PASSWORD, OPERATOR_PASSWORD, Board, Client
from tests.ingest.harness import consume
from tests.support import unique

pytestmark = pytest.mark.engines

PATH = "/api/v1/ops/dead-letters/redrive"
COLUMNS = ["dlq_id", "received_at", "source", "platform", "reason", "body", "kafka_partition", "kafka_offset"]


async def test_console_redrive_is_for_operators_checked_dry_run_then_sent_and_audited(board: Board) -> None:
    reason = unique("cause")
    at = 1_767_312_000_000
    ids = [unique("dl"), unique("dl")]
    board.ch.insert(
        "dead_letters",
        [
            [ids[0], at, "ingest.kuaishou.webhook", "kuaishou", f"no_secret: {reason}", "Q0lQSEVS", 0, 0],
            [ids[1], at + 5, "ingest.douyin.live_push", "douyin", f"JSONDecodeError: {reason}", "[", 0, 1],
        ],
        column_names=COLUMNS,
        settings={"async_insert": 0},
    )
    judge, ops = Client(board.url), Client(board.url)
    try:
        assert (await judge.login(board.judge, JUDGE_PASSWORD))[0] == 200
        assert (await ops.login(board.operator, OPERATOR_PASSWORD))[0] == 200
        sel = {"reason": reason.upper(), "since_ms": at, "until_ms": at + 10}
        status, err = await judge.call("POST", PATH, {**sel, "dry_run": True})
        assert status == 403
        status, err = await ops.call("POST", PATH, sel, csrf=False)
        assert status == 403 and err["error"]["code"] == "csrf"
        for bad, field in (
            ({"platform": "tiktok"}, "platform"),
            ({}, "body"),
            ({"reason": reason, "since_ms": at, "until_ms": at}, "until_ms"),
            ({"reason": reason, "since_ms": -1}, "since_ms"),
            ({"reason": reason, "limit": 0}, "limit"),
            ({"reason": reason, "dry_run": "yes"}, "dry_run"),
            ({"reason": reason, "contest_id": "x"}, "contest_id"),
        ):
            status, err = await ops.call("POST", PATH, bad)
            assert status == 400 and err["error"]["field"] == field, (bad, err)

        status, dry = await ops.call("POST", PATH, {**sel, "dry_run": True})
        assert status == 200, dry
        assert (dry["selected"], dry["redrivable"], dry["dry_run"]) == (2, 1, True) and "request_id" not in dry
        assert dry["skipped"]["ingest.douyin.live_push"]["count"] == 1
        assert [s["dlq_id"] for s in dry["sample"]] == [ids[0]]

        status, out = await ops.call("POST", PATH, sel)
        assert status == 202, out
        assert (out["selected"], out["sent"]) == (2, 1)
        sent = [orjson.loads(r.value) for r in await consume(board.settings, REDRIVE, idle_s=0.5)]
        mine = [d for d in sent if d["dlq_id"] in ids]
        assert [(d["dlq_id"], d["request_id"], d["requested_by"], d["body"]) for d in mine] == [
            (ids[0], out["request_id"], board.operator, "Q0lQSEVS")
        ]  # one request: the dry run sent nothing, the live push was skipped

        status, audit = await ops.call("GET", "/api/v1/ops/audit?action=redrive_dead_letters")
        assert status == 200
        entry = next(e for e in audit["entries"] if e["target"] == out["request_id"])
        assert entry["actor"] == board.operator
        assert entry["detail"] == {
            "selection": {**sel, "limit": 1000},
            "selected": 2,
            "sent": 1,
            "skipped": {"ingest.douyin.live_push": 1},
        }
        status, hist = await ops.call("GET", "/api/v1/ops/redrives?limit=500")
        assert status == 200
        row = next(r for r in hist["redrives"] if r["request_id"] == out["request_id"])
        assert (row["requested_by"], row["via"], row["selected"], row["sent"]) == (board.operator, "console", 2, 1)
    finally:
        await judge.close()
        await ops.close()


@pytest.mark.browser
async def test_console_page_previews_and_redrives_from_the_dead_letters_card(board: Board, browser: Any) -> None:
    reason = unique("page-cause")
    at = 1_767_398_400_000  # 2026-01-03 08:00 Beijing time
    dlq_id = unique("dl")
    board.ch.insert(
        "dead_letters",
        [[dlq_id, at + 1000, "ingest.douyin.webhook", "douyin", f"KeyError: {reason}", '{"event":"x"}', 0, 0]],
        column_names=COLUMNS,
        settings={"async_insert": 0},
    )
    page = await browser.new_page(viewport={"width": 1600, "height": 1200}, bypass_csp=True)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("dialog", lambda d: asyncio.ensure_future(d.accept()))
    try:
        await page.goto(f"{board.url}/operator?contest={board.contest_id}&lang=en")
        await page.fill("#login input[name=username]", board.operator)
        await page.fill("#login input[name=password]", OPERATOR_PASSWORD)
        await page.click("#login button[type=submit]")
        await page.wait_for_selector("#redrive-form")
        assert await page.text_content("#redrive-form h3") == "Re-drive dead letters"
        await page.select_option("#r-platform", "douyin")
        await page.fill("#r-reason", reason)
        await page.fill("#r-since", "2026-01-03T08:00:00")  # Beijing time: the dead letter is 1 s later
        await page.fill("#r-until", "2026-01-03T08:00:02")
        await page.click("#r-preview")
        await page.wait_for_function("document.querySelector('#r-result').textContent.includes('Would re-drive')")
        assert "Would re-drive: 1 / 1 selected" in (await page.text_content("#r-result") or "")
        await page.click("#r-send")
        await page.wait_for_function("document.querySelector('#r-result').textContent.includes('Re-driven')")
        text = await page.text_content("#r-result") or ""
        assert "Re-driven (" in text and "1 / 1 selected" in text
        assert not errors, errors
    finally:
        await page.close()
    sent = [orjson.loads(r.value) for r in await consume(board.settings, REDRIVE, idle_s=0.5)]
    assert [(d["dlq_id"], d["requested_by"]) for d in sent if d["dlq_id"] == dlq_id] == [(dlq_id, board.operator)]
