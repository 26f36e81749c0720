"""Decisions on results on the real engines: 取消资格 from the CLI and its reversal, a ``decide`` tie that is
待定 until decided, an appeal after a freeze giving a second freeze whose hash chain verifies (and a tampered
chain that does not), an appeal outside the window refused, and replay reproducing all of it.

The contest (tests/scoring/decisions_support.py): GMV 400 / 200 / 100 / 100 元 → 100, 50, 25, 25 points."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from deploy.embedded.processes import free_port
from liveboard.clickhouse.client import get_client
from liveboard.settings import Settings
from tests.scoring.decisions_support import HOUR, decisions_contest, sales, standing, write
from tests.scoring.support import REPO, ScorerProc, poll_until, produce, start_scorer, wait_healthy
from tests.support import settings_env, unique

pytestmark = pytest.mark.engines

CID = unique("dq")
OUT = unique("dqout")


@pytest.fixture(scope="module")
def contest_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("contests")
    return {
        "live": write(folder, decisions_contest(CID)),
        # a stage that ended long ago: its 48 h appeal window is closed
        "closed": write(folder, decisions_contest(OUT, start=1_767_225_600_000)),
    }


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def scorer(
    stack: Settings, contest_files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ScorerProc]:
    log = tmp_path_factory.mktemp("scorer") / "scorer.log"
    sp = start_scorer(stack, list(contest_files.values()), unique("scorer"), log, free_port())
    try:
        await wait_healthy(sp)
        yield sp
    finally:
        sp.stop()


def cli(stack: Settings, files: dict[str, Path], *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        **settings_env(stack),
        "LIVEBOARD_SCORER_CONTEST_FILES": json.dumps([str(p) for p in files.values()]),
    }
    return subprocess.run(
        [sys.executable, "-m", "liveboard", *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=180
    )


def rows(stack: Settings, contest_id: str) -> list[dict[str, Any]]:
    client = get_client(stack)
    try:
        return list(
            client.query(
                "SELECT contestant_id, rank, total_display, award_id, status, pending, frozen FROM leaderboard FINAL "
                "WHERE contest_id = {c:String} AND round_id = 'r1'",
                parameters={"c": contest_id},
            ).named_results()
        )
    finally:
        client.close()


async def until_standing(stack: Settings, want: dict[str, tuple], sp: ScorerProc, timeout_s: float = 60) -> None:
    got: dict[str, tuple] = {}

    def matches() -> bool:
        got.clear()
        got.update(standing(rows(stack, CID)))
        return all(got.get(c) == v for c, v in want.items())

    if not await poll_until(matches, timeout_s):
        raise AssertionError(f"leaderboard {got} is not {want}\n{sp.tail()}")


def _start(files: dict[str, Path]) -> int:
    doc = json.loads(files["live"].read_text())
    return doc["stages"][0]["rounds"][0]["window"]["start"]


ORIGINAL = {
    "c0": (1, "100.00", "first", "ranked", False),
    "c1": (2, "50.00", "second", "ranked", False),
    "c2": (3, "25.00", "", "ranked", True),  # 并列第3名 across the one third prize: 待定
    "c3": (3, "25.00", "", "ranked", True),
}


async def test_exclusion_tie_decision_appeal_freeze_chain_and_replay(
    stack: Settings, scorer: ScorerProc, contest_files: dict[str, Path]
) -> None:
    start = _start(contest_files)
    await produce(stack, sales(CID, start))
    await until_standing(stack, ORIGINAL, scorer)

    # 取消资格 of the contestant holding the field's best, from the CLI: c1 becomes the best
    out = cli(
        stack, contest_files, "results", "exclude", CID, "c0", "--round", "r1", "--reason", "直播中提供虚假产品信息",
        "--approver", "组委会办公室", "--exclusion-id", "dq-c0", "--json",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["exclusion_id"] == "dq-c0"
    await until_standing(
        stack,
        {
            "c0": (0, "100.00", "", "excluded", False),
            "c1": (1, "100.00", "first", "ranked", False),
            "c2": (2, "50.00", "", "ranked", True),
            "c3": (2, "50.00", "", "ranked", True),
        },
        scorer,
    )
    # reinstated: the original result again
    out = cli(
        stack, contest_files, "results", "reinstate", CID, "c0", "--reason", "复核：信息属实，恢复资格",
        "--approver", "组委会办公室",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    await until_standing(stack, ORIGINAL, scorer)

    # the tie at the third prize is decided: c3 before c2
    out = cli(
        stack, contest_files, "results", "decide-tie", CID, "r1", "--group", "g1", "--order", "c3,c2",
        "--reason", "评委会复议：现场表现", "--approver", "裁判委员会",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    await _until(lambda: _awards(stack) == {"c0": "first", "c1": "second", "c2": "", "c3": "third"}, scorer)
    assert not any(r["pending"] for r in rows(stack, CID))

    # freeze, then an appeal within the window: c1's orders were under-counted, +60 points
    frz = cli(stack, contest_files, "score", "freeze", CID, "r1", "--by", "公证员", "--json")
    assert frz.returncode == 0, frz.stderr
    first = json.loads(frz.stdout)
    assert first["sequence"] == 1 and first["previous_content_hash"] is None
    await _until(lambda: all(r["frozen"] for r in rows(stack, CID)), scorer)

    filed = cli(
        stack, contest_files, "results", "appeal", "file", CID, "c1", "--round", "r1", "--filed-by", "选手c1",
        "--claim", "订单漏计", "--evidence", "后台截图.zip", "--appeal-id", "ap-1", "--json",
    )  # fmt: skip
    assert filed.returncode == 0, filed.stderr
    dec = cli(
        stack, contest_files, "results", "appeal", "decide", CID, "ap-1", "--decision", "upheld", "--delta", "60",
        "--reason", "核实平台官方数据，漏计属实", "--approver", "组委会办公室", "--by", "公证员", "--json",
    )  # fmt: skip
    assert dec.returncode == 0, dec.stderr + dec.stdout
    (second,) = json.loads(dec.stdout)["freezes"]
    assert second["sequence"] == 2 and second["previous_content_hash"] == first["content_hash"]
    changed = {c["contestant_id"]: c for c in second["changes"]}
    assert set(changed) == {"c0", "c1"}
    assert (changed["c1"]["before"]["rank"], changed["c1"]["after"]["rank"]) == (2, 1)
    assert (changed["c1"]["before"]["total_display"], changed["c1"]["after"]["total_display"]) == ("50.00", "110.00")
    assert (changed["c1"]["before"]["award_id"], changed["c1"]["after"]["award_id"]) == ("second", "first")
    assert (changed["c0"]["after"]["rank"], changed["c0"]["after"]["award_id"]) == (2, "second")
    # the scorer shows the second freeze
    await _until(lambda: _awards(stack) == {"c0": "second", "c1": "first", "c2": "", "c3": "third"}, scorer)
    assert all(r["frozen"] for r in rows(stack, CID))

    hist = json.loads(cli(stack, contest_files, "results", "freeze-history", CID, "r1", "--json").stdout)
    assert [f["sequence"] for f in hist["freezes"]] == [1, 2]
    why = hist["freezes"][1]
    assert {d["type"] for d in why["decisions"]} == {"appeal_filed", "appeal_decided", "score_adjustment"}
    assert "ap-1" in why["reason"] and why["frozen_by"] == "公证员"

    text = cli(stack, contest_files, "results", "freeze-history", CID, "r1").stdout
    assert "冻结 freeze 2" in text and f"← previous {first['content_hash']}" in text
    assert "c1: 名次 2 → 1, 总分 50.00 → 110.00, 奖项 二等奖 → 一等奖" in text
    listing = json.loads(cli(stack, contest_files, "results", "appeals", CID, "--json").stdout)
    (case,) = listing["appeals"]
    assert (case["appeal_id"], case["decision"], case["adjustment_ids"]) == ("ap-1", "upheld", ["ap-1-adj"])
    assert listing["windows"]["r1"]["hours"] == 48
    assert "链完整 chain verifies" in cli(stack, contest_files, "results", "verify", CID, "r1").stdout

    ok = cli(stack, contest_files, "results", "verify", CID, "r1", "--json")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    report = json.loads(ok.stdout)
    assert report["verifies"] and [link["verifies"] for link in report["links"]] == [True, True]

    # replay: same live digest, both freezes reproduced
    rep = cli(stack, contest_files, "replay", "--contest", CID, "--json")
    assert rep.returncode == 0, rep.stdout + rep.stderr
    (r1,) = json.loads(rep.stdout)["rounds"]
    assert r1["matches_live"] and r1["frozen_reproduced"] and r1["freezes"] == 2

    # tampering with the recorded chain (the second freeze claims another predecessor) is found
    client = get_client(stack)
    try:
        cols = "contest_id, round_id, sequence, frozen_at, frozen_by, reason, content_hash, previous_content_hash, " \
            "leaderboard_digest, event_count, event_id, results, changes, decisions"  # fmt: skip
        orig = client.query(
            f"SELECT {cols} FROM frozen_round_history FINAL WHERE contest_id = {{c:String}} AND sequence = 2",
            parameters={"c": CID},
        ).result_rows[0]
        forged = list(orig)
        forged[7] = "0" * 64
        client.insert("frozen_round_history", [forged], column_names=[c.strip() for c in cols.split(",")])
        bad = cli(stack, contest_files, "results", "verify", CID, "r1", "--json")
        assert bad.returncode == 1
        links = json.loads(bad.stdout)["links"]
        assert links[0]["verifies"] and not links[1]["verifies"]
        assert not links[1]["checks"]["previous_link"] and not links[1]["checks"]["round_frozen_event"]
        client.insert("frozen_round_history", [list(orig)], column_names=[c.strip() for c in cols.split(",")])
        assert cli(stack, contest_files, "results", "verify", CID, "r1").returncode == 0

        # tampering with an archived input of the second freeze (the appeal's +60 made +70) is found too
        acols = [c for c in client.query("SELECT * FROM events_archive LIMIT 0").column_names]
        (row,) = client.query(
            "SELECT * FROM events_archive FINAL WHERE contest_id = {c:String} AND type = 'score_adjustment'",
            parameters={"c": CID},
        ).result_rows
        payload = acols.index("payload")
        forged = list(row)
        forged[payload] = row[payload].replace('"value":"60"', '"value":"70"')
        assert forged[payload] != row[payload]
        client.insert("events_archive", [forged], column_names=acols)
        bad = json.loads(cli(stack, contest_files, "results", "verify", CID, "r1", "--json").stdout)
        assert not bad["verifies"] and bad["links"][0]["verifies"]
        assert not bad["links"][1]["checks"]["content_hash"] and not bad["links"][1]["checks"]["leaderboard_digest"]
        client.insert("events_archive", [list(row)], column_names=acols)
        assert cli(stack, contest_files, "results", "verify", CID, "r1").returncode == 0
    finally:
        client.close()

    # a scorer starting afresh rebuilds the chain from the archive: the second freeze is the one in force
    log = scorer.log.parent / "restarted.log"
    since = int(time.time() * 1_000_000) - 1  # row versions are µs since the epoch
    again = start_scorer(
        stack, [contest_files["live"]], unique("scorer"), log, free_port(), LIVEBOARD_SCORER_CONTESTS=json.dumps([CID])
    )
    try:
        await wait_healthy(again)

        def frozen_digest() -> str | None:
            c2 = get_client(stack)
            try:
                got = c2.query(
                    "SELECT argMax(frozen_digest, version) FROM round_results WHERE contest_id = {c:String} "
                    "AND round_id = 'r1' AND version > {v:UInt64} HAVING count() > 0",
                    parameters={"c": CID, "v": since},
                ).result_rows
            finally:
                c2.close()
            return got[0][0] if got else None

        await _until(lambda: frozen_digest() == second_digest(stack), again)
        assert _awards(stack) == {"c0": "second", "c1": "first", "c2": "", "c3": "third"}
    finally:
        again.stop()


async def test_appeal_outside_the_window_is_refused_naming_it(
    stack: Settings, scorer: ScorerProc, contest_files: dict[str, Path]
) -> None:
    out = cli(
        stack, contest_files, "results", "appeal", "file", OUT, "c1", "--round", "r1", "--filed-by", "选手c1",
        "--claim", "评分不公",
    )  # fmt: skip
    assert out.returncode != 0
    assert "申诉期外" in out.stderr and "48 h" in out.stderr and "after the window closed" in out.stderr
    # filed (as recorded on paper) before the stage ended: also outside
    early = cli(
        stack, contest_files, "results", "appeal", "file", CID, "c1", "--round", "r1", "--filed-by", "选手c1",
        "--claim", "评分不公", "--filed-at", str(_start(contest_files) + HOUR // 2),
    )  # fmt: skip
    assert early.returncode != 0 and "before the window opens" in early.stderr


def second_digest(stack: Settings) -> str:
    client = get_client(stack)
    try:
        return client.query(
            "SELECT leaderboard_digest FROM frozen_round_history FINAL WHERE contest_id = {c:String} AND sequence = 2",
            parameters={"c": CID},
        ).result_rows[0][0]
    finally:
        client.close()


def _awards(stack: Settings) -> dict[str, str]:
    return {r["contestant_id"]: r["award_id"] for r in rows(stack, CID)}


async def _until(check: Any, sp: ScorerProc, timeout_s: float = 60) -> None:
    if not await poll_until(check, timeout_s):
        raise AssertionError(sp.tail())
