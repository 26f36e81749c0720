"""The operators' console for decisions on results, on the real broker, ClickHouse and scorer: 取消资格
recorded through the API changes the leaderboard the screens read and reinstating restores it; a ``decide``
tie is 待定 until the console records the decision; an appeal outside the window is refused naming it; an
appeal decided after a freeze freezes the round again (chained), which the console shows and verifies.

The contest (tests/scoring/decisions_support.py): GMV 400 / 200 / 100 / 100 元 → 100, 50, 25, 25 points."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web

from deploy.embedded.processes import free_port
from liveboard.settings import Settings
from services.board.app import create_app
from services.board.auth import User, hash_password
from services.board.config import BoardSettings
from services.board.context import CTX, BoardContext
from tests.board.conftest import Client
from tests.scoring.decisions_support import HOUR, decisions_contest, sales, write
from tests.scoring.support import ScorerProc, produce, start_scorer, wait_healthy
from tests.support import unique

pytestmark = pytest.mark.engines

PASSWORD = "operator-secret-dq"


@dataclass
class Env:
    url: str
    contest_id: str
    start: int
    operator: str
    scorer: ScorerProc
    settings: Settings


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def env(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Env]:
    contest_id = unique("dqb").replace("-", "")[:20]
    folder = tmp_path_factory.mktemp("dq-contests")
    doc = decisions_contest(contest_id)
    path = write(folder, doc)
    saved = os.environ.get("LIVEBOARD_SCORER_CONTEST_FILES")
    os.environ["LIVEBOARD_SCORER_CONTEST_FILES"] = json.dumps([str(path)])  # the board's freeze commands
    log = tmp_path_factory.mktemp("dq-scorer") / "scorer.log"
    sp = start_scorer(stack, [path], unique("scorer"), log, free_port())
    cfg = BoardSettings(
        _env_file=None,  # type: ignore[call-arg]
        contests_dir=folder,
        session_key="test-session-key-" + "d" * 32,
        scorer_group_id=unique("scorer"),
        freeze_timeout_s=120.0,
    )
    app = create_app(stack, cfg)
    runner = web.AppRunner(app, shutdown_timeout=2)
    try:
        await wait_healthy(sp)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        c: BoardContext = app[CTX]
        await asyncio.wait_for(c.hub.consumer_ready.wait(), 30)
        ops = unique("ops")
        await c.users.put(User(ops, "operator", "", "", (), "运营", hash_password(PASSWORD)), changed_by="test")
        judge = f"{contest_id}.judge"
        await c.users.put(
            User(judge, "judge", contest_id, "j1", ("g1",), "评委", hash_password(PASSWORD)), changed_by="test"
        )
        start = doc["stages"][0]["rounds"][0]["window"]["start"]
        yield Env(f"http://127.0.0.1:{port}", contest_id, start, ops, sp, stack)
    finally:
        await runner.cleanup()
        sp.stop()
        if saved is None:
            os.environ.pop("LIVEBOARD_SCORER_CONTEST_FILES", None)
        else:
            os.environ["LIVEBOARD_SCORER_CONTEST_FILES"] = saved


@pytest_asyncio.fixture(loop_scope="session")
async def ops(env: Env) -> AsyncIterator[Client]:
    c = Client(env.url)
    status, _ = await c.login(env.operator, PASSWORD)
    assert status == 200
    yield c
    await c.close()


async def board_rows(c: Client, env: Env) -> dict[str, tuple[Any, ...]]:
    status, snap = await c.call("GET", f"/api/v1/contests/{env.contest_id}/rounds/r1/leaderboard")
    assert status == 200, snap
    return {
        r["contestant_id"]: (r["rank"], r["total_display"], r["award"], r["status"], r["pending"]) for r in snap["rows"]
    }


async def until(c: Client, env: Env, check: Any, timeout_s: float = 60) -> dict[str, tuple[Any, ...]]:
    deadline = asyncio.get_running_loop().time() + timeout_s
    rows: dict[str, tuple[Any, ...]] = {}
    while asyncio.get_running_loop().time() < deadline:
        rows = await board_rows(c, env)
        if check(rows):
            return rows
        await asyncio.sleep(0.3)
    raise AssertionError(f"board rows {rows}\n{env.scorer.tail()}")


ORIGINAL = {
    "c0": (1, "100.00", "一等奖", "ranked", False),
    "c1": (2, "50.00", "二等奖", "ranked", False),
    "c2": (3, "25.00", "", "ranked", True),  # 并列第3名 across the one third prize: 待定
    "c3": (3, "25.00", "", "ranked", True),
}


async def test_exclusion_from_the_console_and_reinstatement(env: Env, ops: Client) -> None:
    await produce_sales(env)
    await until(ops, env, lambda r: r == ORIGINAL)

    body = {
        "contest_id": env.contest_id,
        "contestant_id": "c0",
        "round_id": "r1",
        "reason": "直播中提供虚假产品信息",
        "approver": "组委会办公室",
        "exclusion_id": "dq-c0",
    }
    anon = Client(env.url)
    try:
        assert (await anon.call("POST", "/api/v1/ops/exclusions", body))[0] == 401
    finally:
        await anon.close()
    assert (await ops.call("POST", "/api/v1/ops/exclusions", body, csrf=False))[0] == 403
    judge = Client(env.url)
    try:
        assert (await judge.login(f"{env.contest_id}.judge", PASSWORD))[0] == 200
        status, err = await judge.call("POST", "/api/v1/ops/exclusions", body)
        assert status == 403 and "operator" in err["error"]["message"]  # a judge cannot disqualify
    finally:
        await judge.close()
    bad = await ops.call("POST", "/api/v1/ops/exclusions", {**body, "contestant_id": "nobody"})
    assert bad[0] == 404 and bad[1]["error"]["field"] == "contestant_id"
    status, res = await ops.call("POST", "/api/v1/ops/exclusions", body)
    assert status == 201, res
    assert res["exclusion_id"] == "dq-c0" and res["events"][0]["type"] == "contestant_excluded"
    # c0 held the best GMV: without it c1 is the best (100 points), c2 and c3 have 50 and tie at the second prize
    rows = await until(ops, env, lambda r: r.get("c0", (None,))[3] == "excluded")
    assert rows["c1"] == (1, "100.00", "一等奖", "ranked", False)
    assert rows["c2"] == rows["c3"] == (2, "50.00", "", "ranked", True)
    assert rows["c0"][2] == "" and list(rows)[-1] == "c0"  # listed last, no award

    status, res = await ops.call(
        "POST",
        "/api/v1/ops/exclusions",
        {**body, "excluded": False, "reason": "复核：信息属实，恢复资格"},
    )
    assert status == 201, res
    await until(ops, env, lambda r: r == ORIGINAL)

    status, listing = await ops.call("GET", f"/api/v1/ops/decisions?contest={env.contest_id}")
    assert status == 200
    (x,) = listing["exclusions"]
    assert (x["exclusion_id"], x["excluded"], x["approver"]) == ("dq-c0", False, "组委会办公室")
    status, audit = await ops.call("GET", "/api/v1/ops/audit?action=exclusion")
    assert audit["entries"][0]["detail"]["exclusion_id"] == "dq-c0"


async def test_tie_decision_appeal_window_and_refreeze_from_the_console(env: Env, ops: Client) -> None:
    await produce_sales(env)
    await until(ops, env, lambda r: r == ORIGINAL)
    status, res = await ops.call(
        "POST",
        "/api/v1/ops/tie-decisions",
        {
            "contest_id": env.contest_id,
            "round_id": "r1",
            "group_id": "g1",
            "order": ["c3", "c2"],
            "reason": "评委会复议：现场表现",
            "approver": "裁判委员会",
        },
    )
    assert status == 201, res
    rows = await until(ops, env, lambda r: r["c3"][2] == "三等奖")
    assert rows["c2"][2] == "" and not rows["c2"][4] and not rows["c3"][4]

    # an appeal recorded as filed before the stage ended is outside the window: refused, naming it
    status, err = await ops.call(
        "POST",
        "/api/v1/ops/appeals",
        {
            "contest_id": env.contest_id,
            "round_id": "r1",
            "contestant_id": "c1",
            "filed_by": "选手c1",
            "claim": "评分不公",
            "filed_at_ms": env.start + HOUR // 2,
        },
    )
    assert status == 409 and err["error"]["code"] == "appeal_window"
    assert "48 h" in err["error"]["message"] and "before the window opens" in err["error"]["message"]

    status, frz = await ops.call("POST", "/api/v1/ops/freeze", {"contest_id": env.contest_id, "round_id": "r1"})
    assert status == 200, frz
    status, filed = await ops.call(
        "POST",
        "/api/v1/ops/appeals",
        {
            "contest_id": env.contest_id,
            "round_id": "r1",
            "contestant_id": "c1",
            "filed_by": "选手c1",
            "claim": "订单漏计",
            "evidence_ref": "后台截图.zip",
            "appeal_id": "ap-b1",
        },
    )
    assert status == 201, filed
    status, dec = await ops.call(
        "POST",
        "/api/v1/ops/appeals/ap-b1/decision",
        {
            "contest_id": env.contest_id,
            "decision": "upheld",
            "reason": "核实平台官方数据，漏计属实",
            "approver": "组委会办公室",
            "remedy": {"kind": "delta", "value": "60", "component": None},
        },
    )
    assert status == 201, dec
    assert [r["status"] for r in dec["refreeze"]] == ["done"], dec["refreeze"]
    # c1: 50 + 60 = 110 points, first; c0 second
    rows = await until(ops, env, lambda r: r["c1"][2] == "一等奖")
    assert rows["c1"][:2] == (1, "110.00") and rows["c0"][:3] == (2, "100.00", "二等奖")

    status, hist = await ops.call("GET", f"/api/v1/ops/freeze-history?contest={env.contest_id}&round=r1")
    assert status == 200
    f1, f2 = hist["freezes"]
    assert (f1["sequence"], f2["sequence"]) == (1, 2) and f2["previous_content_hash"] == f1["content_hash"]
    changed = {c["contestant_id"]: c for c in f2["changes"]}
    assert changed["c1"]["before"]["rank"] == 2 and changed["c1"]["after"]["rank"] == 1
    assert {d["type"] for d in f2["decisions"]} == {"appeal_filed", "appeal_decided", "score_adjustment"}
    verify = {"contest_id": env.contest_id, "round_id": "r1"}
    status, report = await ops.call("POST", "/api/v1/ops/freeze-verify", verify)
    assert status == 200 and report["verifies"] is True, report


async def produce_sales(env: Env) -> None:
    await produce(env.settings, sales(env.contest_id, env.start))


@pytest.mark.browser
async def test_screen_marks_the_excluded_and_the_console_records_a_decision(
    env: Env, ops: Client, browser: Any
) -> None:
    """After the appeal above: c1 一等奖, c0 二等奖, c3 三等奖. 取消资格 of c3 from the console's form (the round
    is frozen: it is frozen a third time); the big screen lists c3 last, marked 取消资格."""
    await produce_sales(env)
    page = await browser.new_page(viewport={"width": 1600, "height": 1400}, bypass_csp=True)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        await page.goto(f"{env.url}/operator?contest={env.contest_id}")
        await page.fill("#login input[name=username]", env.operator)
        await page.fill("#login input[name=password]", PASSWORD)
        await page.click("#login button[type=submit]")
        form = page.locator("#decisions-forms form").first
        await form.locator("select[name=round_id]").wait_for()
        await form.locator("select[name=round_id]").select_option("r1")
        await form.locator("select[name=contestant_id]").select_option("c3")
        await form.locator("textarea[name=reason]").fill("直播中出现重大事故，中止参赛")
        await form.locator("input[name=approver]").fill("组委会办公室")
        await form.locator("button[type=submit]").click()
        await page.wait_for_selector("#decisions-forms .msg.ok", timeout=120_000)
        assert "r1: done" in (await page.text_content("#decisions-forms .msg.ok") or "")
        await page.wait_for_selector("#decisions-card td:has-text('直播中出现重大事故')", timeout=30_000)

        screen = await browser.new_page(viewport={"width": 1920, "height": 1080}, bypass_csp=True)
        try:
            await screen.goto(f"{env.url}/screen?contest={env.contest_id}&round=r1&group=g1")
            await screen.wait_for_function(
                "document.querySelector('[data-contestant=c3]')?.classList.contains('is-excluded')", timeout=60_000
            )
            assert await screen.text_content("[data-contestant=c3] .rk") == "取消资格"
            assert await screen.get_attribute("[data-contestant=c3]", "data-index") == "3"  # listed last
            assert await screen.text_content("[data-contestant=c1] .rk") == "1"
        finally:
            await screen.close()
        rows = await board_rows(ops, env)
        assert rows["c3"][3] == "excluded" and rows["c2"][2] == "三等奖"  # c2 alone at place 3 now
        status, hist = await ops.call("GET", f"/api/v1/ops/freeze-history?contest={env.contest_id}&round=r1")
        assert status == 200 and [f["sequence"] for f in hist["freezes"]] == [1, 2, 3]
        assert errors == []
    finally:
        await page.close()
