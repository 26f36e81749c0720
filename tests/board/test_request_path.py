"""The leaderboard read path's shortcuts on the real stack: ETag/304 for pollers, a request never waiting
for ClickHouse because the snapshot is due a refresh, and the contest list encoded once per change."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import orjson
import pytest

from services.board.scores_feed import ALL_GROUPS
from tests.board import fixtures
from tests.board.conftest import Board
from tests.support import unique

pytestmark = pytest.mark.engines


async def test_a_poller_gets_304_until_the_leaderboard_changes(board: Board) -> None:
    # A contest of its own, so no other test moves it (its file in the board's folder: unknown ids are 404).
    contest = unique("etag").replace("-", "")[:20]
    fixtures.write_contest(board.board.contests_dir, contest, *board.window)
    board.ctx.contests.reload()
    fixtures.insert_leaderboard(board.ch, contest, "final", "g1", {"a01": "3.5", "a02": "2.5"}, 1)
    url = f"{board.url}/api/v1/contests/{contest}/rounds/final/leaderboard?group=g1&limit=5"
    async with aiohttp.ClientSession() as http:
        async with http.get(url) as r:
            assert r.status == 200
            etag = r.headers["ETag"]
            first = orjson.loads(await r.read())
        assert [x["contestant_id"] for x in first["rows"]] == ["a01", "a02"]
        async with http.get(url, headers={"If-None-Match": etag}) as r:
            assert r.status == 304 and await r.read() == b""
        async with http.get(url.replace("limit=5", "limit=1"), headers={"If-None-Match": etag}) as r:
            assert r.status == 200  # another row limit is another document
            assert len(orjson.loads(await r.read())["rows"]) == 1
        fixtures.insert_leaderboard(board.ch, contest, "final", "g1", {"a01": "1.5", "a02": "2.5"}, 2)
        await board.ctx.hub.refresh((contest, "final"))  # what a message on lb.scores.v1 triggers
        async with http.get(url, headers={"If-None-Match": etag}) as r:
            assert r.status == 200 and r.headers["ETag"] != etag
            assert [x["contestant_id"] for x in orjson.loads(await r.read())["rows"]] == ["a02", "a01"]


async def test_a_snapshot_due_a_refresh_is_answered_at_once_and_replaced_in_the_background(board: Board) -> None:
    hub = board.ctx.hub
    contest = unique("swr").replace("-", "")[:20]
    key = (contest, "final")
    fixtures.insert_leaderboard(board.ch, contest, "final", "g1", {"a01": "3.5"}, 1)
    snap = await hub.snapshot(contest, "final", ALL_GROUPS)  # first read: waits for ClickHouse
    assert snap.doc["version"] == 1
    fixtures.insert_leaderboard(board.ch, contest, "final", "g1", {"a01": "4.5"}, 2)  # no message sent
    # Make the cached read one refresh period old (but not three): the next request must not wait.
    hub.rounds[key].read_at = time.monotonic() - board.board.refresh_interval_s - 1
    snap = await hub.snapshot(contest, "final", ALL_GROUPS)
    assert snap.doc["version"] == 1  # the cached one, at once
    assert key in hub._background  # and one read started behind it
    again = await hub.snapshot(contest, "final", ALL_GROUPS)
    assert again.doc["version"] == 1 and len([k for k in hub._background if k == key]) == 1
    for _ in range(100):
        if hub.rounds[key].groups[ALL_GROUPS].doc["version"] == 2:
            break
        await asyncio.sleep(0.05)
    assert (await hub.snapshot(contest, "final", ALL_GROUPS)).doc["version"] == 2
    # Three periods old (reads failing or stuck): the request waits for a read rather than show it.
    fixtures.insert_leaderboard(board.ch, contest, "final", "g1", {"a01": "5.5"}, 3)
    hub.rounds[key].read_at = time.monotonic() - 3 * board.board.refresh_interval_s - 1
    assert (await hub.snapshot(contest, "final", ALL_GROUPS)).doc["version"] == 3


async def test_the_contest_list_is_encoded_once_per_change(board: Board) -> None:
    from services.board import api_v1

    async with aiohttp.ClientSession() as http:
        async with http.get(board.url + "/api/v1/contests") as r:
            body = await r.read()
        assert board.contest_id in {c["id"] for c in orjson.loads(body)["contests"]}
        cached = api_v1._contests_encoded
        async with http.get(board.url + "/api/v1/contests") as r:
            assert await r.read() == body
        assert api_v1._contests_encoded is cached  # not re-encoded
        # A changed contest file means new contest objects: the list follows.
        path = board.board.contests_dir / f"{board.contest_id}.yaml"
        text = path.read_text(encoding="utf-8")
        other = unique("lbx").replace("-", "")[:20]
        (board.board.contests_dir / f"{other}.yaml").write_text(text.replace(board.contest_id, other), "utf-8")
        try:
            board.ctx.contests.reload()
            async with http.get(board.url + "/api/v1/contests") as r:
                ids = {c["id"] for c in orjson.loads(await r.read())["contests"]}
            assert {board.contest_id, other} <= ids
        finally:
            (board.board.contests_dir / f"{other}.yaml").unlink()
            board.ctx.contests.reload()
