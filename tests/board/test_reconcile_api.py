"""对账 on the operators' API: ledger_reconciliation rows as the scorer writes them (newest version per
contestant-platform wins; cleared rows are left out unless asked), operators only; and the contest list's
conversion definition per round."""

from __future__ import annotations

from typing import Any

import pytest

from tests.board import fixtures
from tests.board.conftest import JUDGE_PASSWORD, OPERATOR_PASSWORD, Board, Client

pytestmark = pytest.mark.engines


def _row(board: Board, cid: str, version: int, mismatch: int, gmv_diff: int, orders: str = "{}") -> list[Any]:
    ledger = 4_000
    return [
        board.contest_id, board.round_id, cid, "douyin", version, fixtures.now_ms(), mismatch,
        ["gmv_fen"] if mismatch else [], ledger, ledger - gmv_diff, gmv_diff, 1, 3 if mismatch else 1,
        -2 if mismatch else 0, 0, 0, 0, 100, 0, 0, 0, orders,
    ]  # fmt: skip


async def test_reconciliation_lists_open_mismatches_with_their_orders(board: Board) -> None:
    from liveboard.contracts.tables import RECONCILE_COLUMNS

    late = '{"late_refunds": [{"order_id": "o9", "refund_id": "r9", "amount_fen": 700, "observed_at": 1}]}'
    board.ch.insert(
        "ledger_reconciliation",
        [
            _row(board, "a01", 1, 1, -5_000, late),
            _row(board, "a02", 1, 1, -900),
            _row(board, "a02", 2, 0, 0),  # the figures met again: cleared
        ],
        column_names=list(RECONCILE_COLUMNS),
    )
    ops, judge = Client(board.url), Client(board.url)
    try:
        assert (await ops.login(board.operator, OPERATOR_PASSWORD))[0] == 200
        assert (await judge.login(board.judge, JUDGE_PASSWORD))[0] == 200
        status, _err = await judge.call("GET", f"/api/v1/ops/reconciliation?contest={board.contest_id}")
        assert status == 403
        status, doc = await ops.call("GET", f"/api/v1/ops/reconciliation?contest={board.contest_id}")
        assert status == 200, doc
        assert doc["open"] == 1
        (row,) = doc["rows"]
        assert (row["contestant_id"], row["platform"], row["mismatch"], row["gmv_diff_fen"]) == (
            "a01",
            "douyin",
            True,
            -5_000,
        )
        assert row["snapshot_gmv_fen"] == 9_000 and row["reasons"] == ["gmv_fen"]
        assert row["orders"]["late_refunds"][0]["order_id"] == "o9"
        status, doc = await ops.call("GET", f"/api/v1/ops/reconciliation?contest={board.contest_id}&all=1")
        assert status == 200 and {(r["contestant_id"], r["mismatch"]) for r in doc["rows"]} == {
            ("a01", True),
            ("a02", False),
        }
        status, err = await ops.call("GET", "/api/v1/ops/reconciliation")
        assert status == 400 and err["error"]["field"] == "contest"
    finally:
        await ops.close()
        await judge.close()


async def test_contest_list_gives_each_rounds_conversion(board: Board, client: Client) -> None:
    status, doc = await client.call("GET", "/api/v1/contests", csrf=False)
    assert status == 200
    c = next(c for c in doc["contests"] if c["id"] == board.contest_id)
    conv = c["rounds"][0]["conversion"]
    # the board's test contest scores no conversion: the default definition, by name
    assert conv["name"] == "成交转化率"
    assert (conv["numerator"], conv["denominator"]) == (["paid_buyers_uv"], ["viewers_uv"])
