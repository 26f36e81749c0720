"""The sales ledger on the real broker and ClickHouse: one scorer process, a contest that scores net sales
from orders (``sales: {platforms: {douyin: ledger}}``, refunds counted until 3 days after the round).

Hand-computed figures are asserted in the score, the leaderboard row, ``score explain`` and the
reconciliation table; the replayed digest equals the live one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from deploy.embedded.processes import free_port
from liveboard.settings import Settings
from tests.scoring import factory as f
from tests.scoring.contests import HOUR, T0, make_contest
from tests.scoring.support import (
    REPO,
    ScorerProc,
    expected,
    leaderboard,
    poll_until,
    produce,
    start_scorer,
    wait_digest,
    wait_healthy,
)
from tests.support import settings_env, unique

pytestmark = pytest.mark.engines

CID = unique("ledger")
CID_FROZEN = unique("ledger-frz")
DAY = 24 * HOUR
END = T0 + DAY  # round r1 is [T0, T0 + 24 h)
SALES = {
    "platforms": {"douyin": "ledger"},
    "after_sales": {"refunds_until_days_after_round": 3},
    "reconcile": {"tolerance_fen": 100, "tolerance_orders": 0},
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("contests")


@pytest.fixture(scope="module")
def contest(folder: Path) -> Path:
    return make_contest(folder, CID, 4, groups=1, sales=SALES)[0]


@pytest.fixture(scope="module")
def frozen_contest(folder: Path) -> Path:
    return make_contest(folder, CID_FROZEN, 4, groups=1, sales=SALES)[0]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def scorer(
    stack: Settings, contest: Path, frozen_contest: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ScorerProc]:
    log = tmp_path_factory.mktemp("scorer") / "scorer.log"
    sp = start_scorer(stack, [contest, frozen_contest], unique("scorer-ledger"), log, free_port())
    try:
        await wait_healthy(sp)
        yield sp
    finally:
        sp.stop()


def _cli(stack: Settings, contest: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **settings_env(stack), "LIVEBOARD_SCORER_CONTEST_FILES": json.dumps([str(contest)])}
    return subprocess.run(
        [sys.executable, "-m", "liveboard", *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=120
    )


def _o(cid: str, t: int, oid: str, status: str, amount: int, **kw: Any) -> Any:
    return f.order(CID, cid, t, order_id=oid, status=status, amount_fen=amount, **kw)


def _snap(cid: str, t: int, gmv: int, orders: int) -> Any:
    return f.live_snapshot(CID, cid, t, gmv_fen=gmv, orders_paid=orders, live_started_at=T0 + HOUR)


S = T0 + 2 * HOUR


def _reconciliation(stack: Settings) -> dict[tuple[str, str], dict[str, Any]]:
    from tests.scoring.support import ch

    client = ch(stack)
    try:
        res = client.query(
            "SELECT contestant_id, platform, mismatch, reasons, gmv_diff_fen, orders_diff, orders "
            "FROM ledger_reconciliation FINAL WHERE contest_id = {c:String}",
            parameters={"c": CID},
        )
        return {
            (r[0], r[1]): {"mismatch": r[2], "reasons": list(r[3]), "gmv": r[4], "orders": r[5], "doc": r[6]}
            for r in res.result_rows
        }
    finally:
        client.close()


def _gauge(text: str) -> float | None:
    for line in text.splitlines():
        if line.startswith("liveboard_scoring_reconcile_mismatches_contestants{") and f'contest="{CID}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return None


async def test_orders_drive_net_sales_refunds_held_late_and_reconciled(
    stack: Settings, scorer: ScorerProc, contest: Path
) -> None:
    # c0000 sells only through orders (no live-room snapshot at all)
    first = [
        _o("c0000", S, "o1", "created", 10_000),
        _o("c0000", S + 1, "o1", "paid", 10_000, buyer_id="b1"),
        _o("c0000", S + HOUR, "o1", "refunded", 3_000, refund_id="r-a"),  # two partial refunds of one order
        _o("c0000", S + 2 * HOUR, "o1", "refunded", 2_000, refund_id="r-b"),
        _o("c0000", S, "o2", "created", 9_000),  # never paid
        _o("c0000", S, "o3", "created", 4_000),
        _o("c0000", S + 60_000, "o3", "cancelled", 4_000),  # cancelled unpaid
        _o("c0000", S, "o4", "created", 2_000),
        _o("c0000", S + 10, "o4", "refunded", 500, refund_id="r-d"),  # before its payment arrives: held
        _o("c0000", END + 3 * DAY + 1, "o1", "refunded", 1_500, refund_id="r-late"),  # after the cut-off
        # c0001: the platform's own figures and the orders agree
        _snap("c0001", S + 5 * 60_000, 5_000, 2),
        _o("c0001", S, "x1", "paid", 3_000),
        _o("c0001", S + 1, "x2", "paid", 2_000),
        # c0002: the platform reports 9,000 分 in 3 orders, the ledger holds only 4,000 分 in 1: a mismatch
        _snap("c0002", S + 5 * 60_000, 9_000, 3),
        _o("c0002", S, "y1", "paid", 4_000),
    ]
    duplicate = _o("c0000", S + HOUR, "o1", "refunded", 3_000, refund_id="r-a")  # re-delivered
    want, rows = expected(contest, first)
    await produce(stack, [*first, duplicate])
    assert await wait_digest(stack, CID, want, 60, scorer.proc) == want, scorer.tail()
    board = {r["contestant_id"]: r for r in leaderboard(stack, CID)}
    assert board == {r["contestant_id"]: {**r, "frozen": 0} for r in rows}
    # c0000: paid 10,000, refunds 3,000 + 2,000 (the duplicate once, the late one not, o4's held) = net 5,000
    assert (board["c0000"]["gmv_fen"], board["c0000"]["net_gmv_fen"], board["c0000"]["paid_orders"]) == (
        10_000,
        5_000,
        1,
    )
    assert (board["c0001"]["net_gmv_fen"], board["c0002"]["net_gmv_fen"]) == (5_000, 4_000)

    async def recon(check: Any) -> dict[tuple[str, str], dict[str, Any]]:
        got: dict[tuple[str, str], dict[str, Any]] = {}

        def ok() -> bool:
            got.clear()
            got.update(_reconciliation(stack))
            return check(got)

        assert await poll_until(ok, 30), got
        return got

    got = await recon(lambda g: ("c0002", "douyin") in g and ("c0001", "douyin") in g)
    assert got[("c0002", "douyin")]["mismatch"] == 1
    assert got[("c0002", "douyin")]["reasons"] == ["gmv_fen", "orders_paid"]
    assert (got[("c0002", "douyin")]["gmv"], got[("c0002", "douyin")]["orders"]) == (-5_000, -2)
    assert got[("c0001", "douyin")]["mismatch"] == 0
    assert _gauge(scorer.metrics()) == 1.0

    # later: o4's payment arrives (the held refund now counts), a refund after the stream within the
    # after-sales window, and c0002's missing orders: the mismatch clears
    second = [
        _o("c0000", S + 20, "o4", "paid", 2_000, buyer_id="b2"),
        _o("c0000", END + 6 * HOUR, "o1", "refunded", 1_000, refund_id="r-c"),
        _o("c0002", S + 2, "y2", "paid", 2_500),
        _o("c0002", S + 3, "y3", "paid", 2_500),
    ]
    want2, rows2 = expected(contest, [*first, *second])
    assert want2 != want
    await produce(stack, second)
    assert await wait_digest(stack, CID, want2, 60, scorer.proc) == want2, scorer.tail()
    board = {r["contestant_id"]: r for r in leaderboard(stack, CID)}
    assert board == {r["contestant_id"]: {**r, "frozen": 0} for r in rows2}
    # c0000: paid 10,000 + 2,000; refunds 3,000 + 2,000 + 1,000 + 500 = 6,500; net 5,500 in 2 orders
    assert (board["c0000"]["gmv_fen"], board["c0000"]["net_gmv_fen"], board["c0000"]["paid_orders"]) == (
        12_000,
        5_500,
        2,
    )
    got = await recon(lambda g: g.get(("c0002", "douyin"), {}).get("mismatch") == 0)
    assert got[("c0002", "douyin")]["gmv"] == 0
    assert await poll_until(lambda: _gauge(scorer.metrics()) == 0.0, 30)

    # explain shows the same net figure as the score and the board, and the late refund, recorded not counted
    def explained() -> dict[str, Any] | None:
        out = _cli(stack, contest, "score", "explain", CID, "c0000", "--json")
        if out.returncode != 0:
            return None
        doc = json.loads(out.stdout)
        ok = doc["rounds"] and doc["rounds"][0]["score"]["facts"]["net_gmv_fen"] == 5_500
        return doc if ok else None

    doc = await poll_until(explained, 30, 0.5)
    assert doc, _cli(stack, contest, "score", "explain", CID, "c0000").stdout
    score = doc["rounds"][0]["score"]
    assert score["inputs"]["metrics"]["ledger_net_gmv_fen"] == 5_500
    assert score["inputs"]["metrics"]["gmv_fen"] - score["inputs"]["metrics"]["refund_amount_fen"] == 5_500
    orders = score["evidence"]["orders"]
    assert (orders["paid_fen"], orders["refund_fen"], orders["net_fen"], orders["buyers"]) == (12_000, 6_500, 5_500, 2)
    late = orders["platforms"]["douyin"]["late_refunds"]
    assert [(r["order_id"], r["refund_id"], r["amount_fen"]) for r in late] == [("o1", "r-late", 1_500)]
    text = _cli(stack, contest, "score", "explain", CID, "c0000").stdout
    assert "late refund douyin/o1/r-late: 1500 分" in text and "sales source gmv_fen: douyin: ledger" in text

    # replay rebuilds the same digest from the archive
    rep = _cli(stack, contest, "replay", "--contest", CID, "--json")
    assert rep.returncode == 0, rep.stdout + rep.stderr
    report = json.loads(rep.stdout)
    (r1,) = report["rounds"]
    assert r1["digest"] == r1["live_digest"] == want2
    # …and the same reconciliation state
    from tests.scoring.support import ch

    client = ch(stack)
    try:
        sql = "SELECT contestant_id, platform, mismatch, gmv_diff_fen FROM {db}.ledger_reconciliation FINAL "
        sql += "WHERE contest_id = {c:String} ORDER BY contestant_id, platform"
        live = client.query(sql.replace("{db}", stack.clickhouse_database), parameters={"c": CID}).result_rows
        replayed = client.query(sql.replace("{db}", report["database"]), parameters={"c": CID}).result_rows
    finally:
        client.close()
    assert replayed == live and [r[:3] for r in live] == [("c0001", "douyin", 0), ("c0002", "douyin", 0)]


async def test_refund_after_the_cut_off_leaves_a_frozen_result_and_is_reported(
    stack: Settings, scorer: ScorerProc, frozen_contest: Path
) -> None:
    from tests.scoring.support import scalar

    cid = CID_FROZEN

    def o(p: str, t: int, oid: str, status: str, amount: int, **kw: Any) -> Any:
        return f.order(cid, p, t, order_id=oid, status=status, amount_fen=amount, **kw)

    sales = [o("c0000", S, "o1", "paid", 10_000), o("c0001", S, "o2", "paid", 8_000)]
    want, rows = expected(frozen_contest, sales)
    await produce(stack, sales)
    assert await wait_digest(stack, cid, want, 60, scorer.proc) == want, scorer.tail()
    archived = "SELECT count() FROM events_archive FINAL WHERE contest_id = {c:String}"
    assert await poll_until(lambda: scalar(stack, archived, c=cid) == 2, 30)
    out = _cli(stack, frozen_contest, "score", "freeze", cid, "r1", "--by", "公证员", "--json")
    assert out.returncode == 0, out.stderr

    def frozen_board() -> list[dict[str, Any]] | None:
        board = leaderboard(stack, cid)
        return board if board and all(r["frozen"] for r in board) else None

    board = await poll_until(frozen_board, 30)
    assert board, scorer.tail()
    top = [(r["contestant_id"], r["rank"], r["net_gmv_fen"]) for r in sorted(board, key=lambda r: r["rank"])][:2]
    assert top == [("c0000", 1, 10_000), ("c0001", 2, 8_000)]
    assert board == [{**r, "frozen": 1} for r in rows]

    # a refund one instant after the after-sales cut-off (3 days after the round): recorded, not counted
    versions = "SELECT count() FROM round_results WHERE contest_id = {c:String} AND round_id = 'r1'"
    before = scalar(stack, versions, c=cid)
    late = o("c0000", END + 3 * DAY + 1, "o1", "refunded", 9_000, refund_id="r-late")
    assert expected(frozen_contest, [*sales, late])[0] == want  # the late refund moves nothing
    await produce(stack, [late])
    assert await poll_until(lambda: scalar(stack, archived, c=cid) == 3, 30)
    assert await poll_until(lambda: scalar(stack, versions, c=cid) > before, 30), scorer.tail()
    assert await wait_digest(stack, cid, want, 60, scorer.proc) == want
    differs = (
        "SELECT count() FROM pending_revisions FINAL WHERE contest_id = {c:String} AND round_id = 'r1' AND differs = 1"
    )
    assert scalar(stack, differs, c=cid) == 0
    assert leaderboard(stack, cid) == board

    # the same refund inside the after-sales window would have moved c0000 behind c0001: a pending revision
    # of the frozen round (shown beside the frozen result, which stays), whose explanation reports the late one
    in_time = o("c0000", END + DAY, "o1", "refunded", 9_000, refund_id="r-1")
    want2, _ = expected(frozen_contest, [*sales, late, in_time])
    assert want2 != want
    await produce(stack, [in_time])
    assert await wait_digest(stack, cid, want2, 60, scorer.proc) == want2, scorer.tail()
    assert await poll_until(lambda: scalar(stack, differs, c=cid) >= 1, 30)
    explanation = json.loads(
        scalar(
            stack,
            "SELECT explanation FROM pending_revisions FINAL WHERE contest_id = {c:String} "
            "AND contestant_id = 'c0000' AND differs = 1",
            c=cid,
        )
    )
    led = explanation["evidence"]["orders"]["platforms"]["douyin"]
    assert (led["refund_fen"], [r["refund_id"] for r in led["late_refunds"]]) == (9_000, ["r-late"])
    assert leaderboard(stack, cid) == board
