"""Faults on the real engines: the scorer killed with SIGKILL mid-stream, ClickHouse stopped mid-stream.
Either way the leaderboard must end up equal to a clean run's, with no event lost or counted twice."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from deploy.embedded import clickhouse
from deploy.embedded.processes import free_port, wait_gone
from deploy.embedded.stack import Stack
from liveboard.clickhouse.migrate import migrate
from liveboard.kafka.catalog import ensure_topics
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
from tests.support import stack_settings, unique

pytestmark = pytest.mark.engines


def _chunks(items: list, n: int) -> list[list]:
    size = -(-len(items) // n)
    return [items[i : i + size] for i in range(0, len(items), size)]


def _events_read(sp: ScorerProc) -> float:
    """Events the scorer has read so far (every outcome), from its /metrics."""
    try:
        text = sp.metrics()
    except OSError:
        return 0.0
    return sum(
        float(line.split()[-1]) for line in text.splitlines() if line.startswith("liveboard_scoring_events_total{")
    )


def _processed(sp: ScorerProc) -> int:
    try:
        return int(sp.health()[1].get("processed") or 0)
    except OSError:
        return 0


def _archived(settings: Settings, cid: str) -> int:
    return scalar(settings, "SELECT uniqExact(event_id) FROM events_archive WHERE contest_id = {c:String}", c=cid)


async def test_kill_9_mid_stream_then_restart_equals_a_clean_run(stack: Settings, tmp_path: Path) -> None:
    cid = unique("k9")
    path, _ = make_contest(tmp_path, cid, 30)
    sc = stream_scenario(cid, 30, 20, seed=99)
    events = sorted(sc.events, key=lambda e: (e.observed_at, e.event_id))
    want, rows = expected(path, events)
    app_id = unique("scorer-k9")
    # a slow flush keeps processed-but-unwritten events in memory when the kill comes
    slow = {"LIVEBOARD_SCORER_FLUSH_INTERVAL_MS": "1500"}
    sp = start_scorer(stack, [path], app_id, tmp_path / "k9-1.log", free_port(), **slow)
    parts = _chunks(events, 4)
    try:
        await wait_healthy(sp)
        await produce(stack, parts[0] + parts[1])
        assert await poll_until(lambda: _archived(stack, cid) > 0, 30), sp.tail()
        read = _events_read(sp)
        sending = asyncio.create_task(produce(stack, parts[2]))
        # killed mid-stream: once the scorer reads on (its 1.5 s flush keeps what it read unwritten)
        assert await poll_until(lambda: _events_read(sp) > read, 30, 0.02), sp.tail()
        sp.kill9()
        await sending
        before_restart = _archived(stack, cid)
        await produce(stack, parts[3])
    finally:
        sp.stop()
    assert before_restart < len(sc.unique())

    t_spawn = time.monotonic()
    sp2 = start_scorer(stack, [path], app_id, tmp_path / "k9-2.log", free_port())
    try:
        # resume: from the restart to the first event read again (no group join: the dead member's session
        # need not expire first; it took 13-26 s in the consumer group on tansu)
        assert await poll_until(lambda: _processed(sp2) > 0, 60, 0.05), sp2.tail()
        resume_s = time.monotonic() - t_spawn
        print(f"kill -9 resume: {resume_s:.2f} s from restart to the first event read; load {os.getloadavg()}")
        assert "partitions assigned explicitly" in sp2.tail(100_000)
        await wait_healthy(sp2)
        assert await wait_digest(stack, cid, want, 90, sp2.proc) == want, sp2.tail()
        assert leaderboard(stack, cid) == [{**r, "frozen": 0} for r in rows]
        # the digest can be final before the last superseded snapshots are archived: wait for those too
        assert await poll_until(lambda: _archived(stack, cid) == len(sc.unique()), 30), _archived(stack, cid)
        assert scalar(stack, "SELECT count() FROM events_archive FINAL WHERE contest_id = {c:String}", c=cid) == len(
            sc.unique()
        )
        assert '"msg":"state rebuilt from the archive","events":0' not in sp2.tail(100_000)
    finally:
        sp2.stop()


async def test_clickhouse_stopped_mid_stream_loses_nothing(tmp_path: Path) -> None:
    settings = stack_settings(tmp_path / "private")
    st = Stack(settings)
    await asyncio.to_thread(st.up)  # its readiness probe runs its own event loop
    sp = None
    try:
        migrate(settings)
        assert (await ensure_topics(settings)).success
        cid = unique("chdown")
        path, _ = make_contest(tmp_path, cid, 20)
        sc = stream_scenario(cid, 20, 10, seed=4)
        events = sorted(sc.events, key=lambda e: (e.observed_at, e.event_id))
        first, second = events[: len(events) // 2], events[len(events) // 2 :]
        want1, _ = expected(path, first)
        want, rows = expected(path, events)
        sp = start_scorer(
            settings,
            [path],
            unique("scorer-ch"),
            tmp_path / "ch.log",
            free_port(),
            LIVEBOARD_SCORER_RETRY_CAP_S="1",
        )
        await wait_healthy(sp)
        await produce(settings, first)
        assert await wait_digest(settings, cid, want1, 60, sp.proc) == want1, sp.tail()

        def acked() -> float:
            return sum(
                float(line.split()[-1])
                for line in sp.metrics().splitlines()
                if line.startswith("liveboard_scoring_acked_offset{") and "lb.events.v1" in line
            )

        # The leaderboard has its own flush, ahead of the records' (archive, series) flush that acknowledges
        # them: wait until the first half is acknowledged too, so the check below is about the second half.
        assert await poll_until(lambda: acked() == len(first), 30), acked()

        # ClickHouse goes away; the stream goes on
        pid = int(st.ch_pidfile.read_text())
        assert clickhouse.stop_keepalive(st.ch_url)
        assert wait_gone(pid, 20)

        def position() -> float:
            try:
                text = sp.metrics()
            except OSError:
                return -1.0
            return sum(
                float(line.split()[-1])
                for line in text.splitlines()
                if line.startswith("liveboard_scoring_consumer_position_offset{") and "lb.events.v1" in line
            )

        def failing() -> bool:
            try:
                return sp.health()[1]["clickhouse_failing"] is True
            except OSError:
                return False

        await produce(settings, second)
        # the scorer reads the second half and finds ClickHouse failing (observed, not waited for blindly)
        assert await poll_until(lambda: position() == len(events) and failing(), 60), (position(), sp.health())
        assert acked() == len(first)  # nothing of the second half is acknowledged, so nothing is committed

        # ClickHouse is back: everything held is written, nothing twice
        st._spawn(
            clickhouse.command(st.ch_data, settings.host, settings.clickhouse_port),
            st.ch_dir / "clickhouse.log",
            st.ch_pidfile,
        )
        assert await poll_until(lambda: clickhouse.serving_path(st.ch_url) is not None, 30)
        assert await wait_digest(settings, cid, want, 90, sp.proc) == want, sp.tail()
        assert leaderboard(settings, cid) == [{**r, "frozen": 0} for r in rows]
        assert await poll_until(lambda: _archived(settings, cid) == len(sc.unique()), 30)
        assert scalar(settings, "SELECT count() FROM events_archive FINAL WHERE contest_id = {c:String}", c=cid) == len(
            sc.unique()
        )
        status, health = sp.health()
        assert status == 200 and health["clickhouse_failing"] is False
    finally:
        if sp is not None:
            sp.stop()
        await asyncio.to_thread(st.down)
