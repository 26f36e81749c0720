"""Seen marks batched per pass of the event loop keep the push guarantees (issue 14, CPU per push).

The webhook workers no longer write one cross-process transaction per push: the de-dup reads of the
handlers that run in one pass of the event loop are one statement, and the seen marks of the pushes whose
records the broker acknowledged together are one transaction (services/ingest/shared.py ``lookup_seen``,
``mark_seen``). What must not change, checked here on the real broker with the real producer and the
shared SQLite file that the workers use:

* a push is remembered as handled only after the broker acknowledged its records: at the moment the
  producer's batch is acknowledged, none of its pushes is in the file yet;
* it is answered only after its mark is committed: when the handler returns, another process's connection
  to the file already sees it;
* de-duplication across processes: the same pushes offered to a second worker's state are duplicates;
* the batching is real: one read statement and one mark transaction per producer batch, not one per push.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from services.ingest import shared
from services.ingest.base import PlatformCollector
from services.ingest.clock import WallClock
from services.ingest.producer import Acks, EventProducer
from services.ingest.registry import Registry
from services.ingest.shared import SharedState
from tests.ingest.harness import ingest_settings, topic_settings

pytestmark = pytest.mark.engines

N = 24  # pushes offered at once


class _Collector(PlatformCollector):
    platform = "kuaishou"


def _marked(path: Path, keys: list[str]) -> int:
    """How many of ``keys`` another process sees as remembered (its own read-only connection)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        marks = ",".join("?" * len(keys))
        return db.execute(f"SELECT count(*) FROM seen WHERE key IN ({marks})", keys).fetchone()[0]
    finally:
        db.close()


async def test_pushes_acknowledged_together_are_marked_in_one_transaction_after_the_ack_and_before_the_answer(
    stack, tmp_path: Path
) -> None:
    settings = await topic_settings(stack)
    # a long linger: the N records go out in one batch per partition whatever the machine's speed (they are
    # all appended in the first passes of the loop, long before it expires)
    producer = EventProducer(settings, linger_ms=300)
    await producer.start()
    path = tmp_path / "state.sqlite3"
    state, other = SharedState(path), SharedState(path)  # two webhook workers' connections to the file
    clock = WallClock()
    ingest = ingest_settings()
    async with aiohttp.ClientSession() as session:
        c1 = _Collector(ingest, clock, producer, Registry(clock.now_ms), session)
        c1.use_shared(state)
        c2 = _Collector(ingest, clock, producer, Registry(clock.now_ms), session)
        c2.use_shared(other)
        keys = [f"task:t{i}" for i in range(N)]
        stored = [f"kuaishou.push|{k}" for k in keys]
        at_ack: list[int] = []  # pushes already in the file when a batch they wait for was acknowledged
        groups: dict[int, int] = {}  # producer batch future -> pushes waiting for it
        answered_marked: list[int] = []

        async def push(c: PlatformCollector, key: str) -> tuple[bool, web.Response]:
            fresh: list[bool] = []

            async def handler() -> web.Response:
                now = c.clock.now_ms()
                fresh.append(await c.first_seen(key, now))
                if fresh[0]:
                    await producer.archive_raw(
                        platform="kuaishou", account_id="acc", source="push", endpoint="webhook",
                        body=key.encode(), received_at=now,
                    )  # fmt: skip
                    acks = Acks.current()
                    assert acks is not None and len(acks.futures) == 1
                    fut = acks.futures[0]
                    if id(fut) not in groups:
                        groups[id(fut)] = 0
                        fut.add_done_callback(lambda _f: at_ack.append(_marked(path, stored)))
                    groups[id(fut)] += 1
                return web.Response(text="ok")

            resp = await c.answer_acked("webhook", handler)
            if fresh[0]:
                answered_marked.append(_marked(path, [f"kuaishou.push|{key}"]))
            return fresh[0], resp

        state.flushes.update(lookups=0, marks=0)
        first = await asyncio.gather(*(push(c1, k) for k in keys))
        assert all(new and r.status == 200 for new, r in first)
        # one producer batch for the raw topic's partition of key "kuaishou:acc": one ack, one read, one mark
        assert sum(groups.values()) == N
        assert len(groups) == 1
        assert at_ack == [0]  # acknowledged by the broker, not yet remembered
        assert answered_marked == [1] * N  # answered: already visible to another process
        assert state.flushes == {"lookups": 1, "marks": 1}
        assert _marked(path, stored) == N

        # the platform's retries reach the other worker: every one is a duplicate, nothing produced again
        other.flushes.update(lookups=0, marks=0)
        groups.clear()
        again = await asyncio.gather(*(push(c2, k) for k in keys))
        assert [new for new, _ in again] == [False] * N
        assert all(r.status == 200 for _, r in again)
        assert groups == {}
        assert other.flushes == {"lookups": 1, "marks": 0}
    await producer.stop()
    state.close()
    other.close()


async def test_a_failed_mark_fails_every_push_of_its_transaction_and_none_is_remembered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the transaction cannot commit, no handler of it may answer as if its push were remembered."""
    path = tmp_path / "state.sqlite3"
    state = SharedState(path)
    blocker = sqlite3.connect(str(path), isolation_level=None, timeout=0)
    blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock past the timeout
    monkeypatch.setattr(shared, "LOCK_TIMEOUT_S", 0.05)
    try:
        results = await asyncio.gather(
            *(state.mark_seen([f"k{i}"], 1_000, 60_000) for i in range(5)), return_exceptions=True
        )
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert [type(r) for r in results] == [sqlite3.OperationalError] * 5
    assert state.flushes["marks"] == 1
    assert await state.lookup_seen([f"k{i}" for i in range(5)], 1_000) == [False] * 5
    state.close()
