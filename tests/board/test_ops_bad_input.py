"""Bad input on the operators' decisions, reconciliation and organiser routes answers a 4xx naming the field."""

from __future__ import annotations

import pytest

from tests.board.conftest import OPERATOR_PASSWORD, Board, Client

pytestmark = pytest.mark.engines


async def test_bad_input_names_the_field(board: Board) -> None:
    ops = Client(board.url)
    try:
        assert (await ops.login(board.operator, OPERATOR_PASSWORD))[0] == 200
        # adjustment_ids that is not a list: checked before the appeal is looked up
        body = {"contest_id": board.contest_id, "decision": "upheld", "reason": "r", "approver": "a"}
        for bad in (5, "adj-1", {"a": 1}):
            status, err = await ops.call("POST", "/api/v1/ops/appeals/nope/decision", {**body, "adjustment_ids": bad})
            assert status == 400 and err["error"]["field"] == "adjustment_ids", (bad, status, err)
        # an unknown contest is a 404, not an empty list of mismatches
        status, err = await ops.call("GET", "/api/v1/ops/reconciliation?contest=no-such-contest")
        assert status == 404 and err["error"]["field"] == "contest", (status, err)
        # a query string's contest and round are named as the query string names them
        status, err = await ops.call("GET", "/api/v1/ops/decisions?contest=no-such-contest")
        assert status == 404 and err["error"]["field"] == "contest", (status, err)
        status, err = await ops.call("GET", "/api/v1/ops/rounds?contest=no-such-contest")
        assert status == 404 and err["error"]["field"] == "contest", (status, err)
        status, err = await ops.call("GET", f"/api/v1/ops/freeze-history?contest={board.contest_id}&round=no-such")
        assert status == 404 and err["error"]["field"] == "round", (status, err)
        # a console entry: withdrawn must be a boolean, ids must be text
        entry = {"contest_id": board.contest_id, "contestant_id": "a01", "video_id": "v1"}
        status, err = await ops.call("POST", "/api/v1/ops/organiser/entry", {**entry, "withdrawn": "yes"})
        assert status == 400 and err["error"]["field"] == "withdrawn", (status, err)
        status, err = await ops.call("POST", "/api/v1/ops/organiser/entry", {**entry, "video_id": ["v1"]})
        assert status == 400 and err["error"]["field"] == "video_id", (status, err)
        status, err = await ops.call("POST", "/api/v1/ops/organiser/entry", {**entry, "contest_id": "no-such"})
        assert status == 404 and err["error"]["field"] == "contest_id", (status, err)
        for path, field in (("no-such/rounds/r1", "contest_id"), (f"{board.contest_id}/rounds/no-such", "round_id")):
            status, err = await ops.call("GET", f"/api/v1/contests/{path}/publication")
            assert status == 404 and err["error"]["field"] == field, (path, status, err)
    finally:
        await ops.close()
