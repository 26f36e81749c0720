"""Freezing by request (issue 13): a request on lb.freeze_requests.v1 that the scorer acts on and answers in
ClickHouse (freeze_answers) — done with the freeze's document, or refused with the reason — and a request
for a contest this scorer does not score left unanswered. Real broker, ClickHouse and scorer process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from aiokafka import TopicPartition

from deploy.embedded.processes import free_port
from liveboard.clickhouse.client import get_async_client
from liveboard.freeze_requests import FreezeRequest, new_request, wait_answer
from liveboard.kafka.catalog import FREEZE_REQUESTS
from liveboard.kafka.clients import make_consumer, make_producer
from liveboard.settings import Settings
from tests.scoring.contests import make_contest
from tests.scoring.support import (
    ScorerProc,
    expected,
    leaderboard,
    poll_until,
    produce,
    scalar,
    start_scorer,
    stream_scenario,
    wait_digest,
    wait_healthy,
)
from tests.support import unique

pytestmark = pytest.mark.engines

CID = unique("frq")
APP_ID = unique("scorer-frq")


@pytest.fixture(scope="module")
def contest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_contest(tmp_path_factory.mktemp("frq-contests"), CID, 8)[0]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def scorer(stack: Settings, contest: Path, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ScorerProc]:
    log = tmp_path_factory.mktemp("frq-scorer") / "scorer.log"
    # in the consumer group (ASSIGNMENT=group): the other tests use the default explicit assignment
    sp = start_scorer(stack, [contest], APP_ID, log, free_port(), LIVEBOARD_SCORER_ASSIGNMENT="group")
    try:
        await wait_healthy(sp)
        yield sp
    finally:
        sp.stop()


async def _end_offset(settings: Settings) -> int:
    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    try:
        tp = TopicPartition(settings.topic(FREEZE_REQUESTS), 0)
        return (await consumer.end_offsets([tp]))[tp]
    finally:
        await consumer.stop()


async def _send(settings: Settings, req: FreezeRequest) -> None:
    producer = make_producer(settings, linger_ms=0)
    await producer.start()
    try:
        await producer.send_and_wait(settings.topic(FREEZE_REQUESTS), req.encode(), key=req.key)
    finally:
        await producer.stop()


async def _answer(settings: Settings, request_id: str, timeout_s: float) -> dict | None:
    ch = await get_async_client(settings)
    try:
        return await wait_answer(ch, request_id, timeout_s)
    finally:
        await ch.close()


async def test_a_freeze_request_is_acted_on_and_answered(stack: Settings, scorer: ScorerProc, contest: Path) -> None:
    sc = stream_scenario(CID, 8, 3, seed=21)
    want, rows = expected(contest, sc.events)
    await produce(stack, sc.events)
    assert await wait_digest(stack, CID, want, 60, scorer.proc) == want, scorer.tail()
    archived = "SELECT count() FROM events_archive FINAL WHERE contest_id = {c:String}"
    assert await poll_until(lambda: scalar(stack, archived, c=CID) == len(sc.unique()), 30)
    # requests other tests of the session left on the topic before ours: this scorer passes them over too
    base = await _end_offset(stack)

    # a round the contest does not have: refused, saying which rounds it has; nothing frozen
    bad = new_request(CID, "r9", "运营甲")
    await _send(stack, bad)
    got = await _answer(stack, bad.request_id, 60)
    assert got is not None, scorer.tail()
    assert got["status"] == "refused" and "no round 'r9'" in got["message"] and "r1" in got["message"], got
    assert got["result"] is None and got["requested_by"] == "运营甲"

    # a contest this scorer does not score: left to the scorer that does (no answer from this one)
    other = new_request(unique("not-mine"), "r1", "运营甲")
    await _send(stack, other)

    req = new_request(CID, "r1", "公证员")
    await _send(stack, req)
    got = await _answer(stack, req.request_id, 90)
    assert got is not None, scorer.tail()
    assert got["status"] == "done", got
    doc = got["result"]
    assert doc["leaderboard_digest"] == want and doc["event_count"] == len(sc.unique())
    assert doc["frozen_by"] == "公证员" and not doc["already_frozen"]
    assert f"frozen {CID}/r1 by 公证员" in got["message"] and want in got["message"]
    frozen = "SELECT leaderboard_digest FROM frozen_rounds FINAL WHERE contest_id = {c:String} AND round_id = 'r1'"
    assert scalar(stack, frozen, c=CID) == want

    # the scorer shows the frozen result (flagged), the same rows
    def all_frozen() -> bool:
        board = leaderboard(stack, CID)
        return bool(board) and all(r["frozen"] for r in board)

    assert await poll_until(all_frozen, 30), scorer.tail()
    assert [{k: v for k, v in r.items() if k != "frozen"} for r in leaderboard(stack, CID)] == rows

    # asked again: nothing new to freeze, the freeze is re-announced (the same content hash)
    again = new_request(CID, "r1", "公证员")
    await _send(stack, again)
    got2 = await _answer(stack, again.request_id, 60)
    assert got2 is not None and got2["status"] == "done", got2
    assert got2["result"]["already_frozen"] and got2["result"]["content_hash"] == doc["content_hash"]

    # every request is committed once answered or passed over (the one for another contest too): our 4 records
    consumer = make_consumer(stack, group_id=APP_ID)
    await consumer.start()
    try:
        tp = TopicPartition(stack.topic(FREEZE_REQUESTS), 0)

        async def committed() -> int:
            return await consumer.committed(tp) or 0

        for _ in range(100):
            if await committed() == base + 4:
                break
            await asyncio.sleep(0.2)
        assert await committed() == base + 4
    finally:
        await consumer.stop()
    assert await _answer(stack, other.request_id, 0.1) is None


async def test_a_request_sent_while_no_scorer_runs_is_answered_when_one_starts(stack: Settings, tmp_path: Path) -> None:
    cid = unique("frq-late")
    path, _ = make_contest(tmp_path, cid, 8)
    sc = stream_scenario(cid, 8, 2, seed=5)
    want, _rows = expected(path, sc.events)
    await produce(stack, sc.events)
    req = new_request(cid, "r1", "运营乙", wait_s=30)
    await _send(stack, req)
    assert await _answer(stack, req.request_id, 0.5) is None  # nobody to answer yet: the board says pending

    # a slow record flush: the request is read long before the backlog before it is archived
    slow = {"LIVEBOARD_SCORER_FLUSH_INTERVAL_MS": "3000"}
    sp = start_scorer(stack, [path], unique("scorer-frq-late"), tmp_path / "late.log", free_port(), **slow)
    try:
        await wait_healthy(sp)
        got = await _answer(stack, req.request_id, 90)
        assert got is not None, sp.tail()
        # the freeze waited until the log as it was when asked was archived: every event of the round is in it
        assert got["status"] == "done", got
        assert got["result"]["event_count"] == len(sc.unique()) and got["result"]["leaderboard_digest"] == want
    finally:
        sp.stop()
