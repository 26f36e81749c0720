"""Faults against the staged topology (LIVEBOARD_SCORER_TOPOLOGY=staged, issue 13) on the real engines, with 1
and with 3 workers per stage: a fold worker and a ranking worker killed with SIGKILL under load, ClickHouse
stopped mid-stream, then ``liveboard replay`` (the CLI) of the same log. Every contest must end at the digest
and rows of the in-process reference, with nothing lost and nothing counted twice.

The 3 + 3 runs score three contests at once, chosen so that each lands on a partition of lb.scorer_inputs.v1
owned by a different ranking worker (one contest's one-round chain is one key): each of the three ranking
workers ranks real work, checked on its /metrics."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from deploy.embedded import clickhouse
from deploy.embedded.processes import wait_gone
from deploy.embedded.stack import Stack
from liveboard.clickhouse.migrate import migrate
from liveboard.kafka.catalog import ensure_topics
from liveboard.settings import Settings
from tests.scoring.contests import make_contest
from tests.scoring.support import (
    ScorerProc,
    ch,
    committed_total,
    expected,
    health_of,
    leaderboard,
    live_digest,
    metric_by,
    poll_until,
    produce,
    replay_cli,
    scalar,
    spread_contest_ids,
    staged_worker,
    stream_scenario,
    wait_digest,
    wait_ready,
)
from tests.support import stack_settings, unique

pytestmark = pytest.mark.engines

N = 12  # contestants per contest
SNAPSHOTS = 8  # per contestant (plus a judge's score and its correction)
ARCHIVED = "SELECT count() FROM events_archive FINAL WHERE contest_id = {c:String}"


class Topology:
    """``folds`` fold workers and ``ranks`` ranking workers of one app id scoring ``contests``."""

    def __init__(self, settings: Settings, tmp: Path, tag: str, contests: list[str], n: int, **env: str) -> None:
        self.settings, self.tmp, self.tag, self.n, self.env = settings, tmp, tag, n, env
        self.contests = contests
        self.paths = [make_contest(tmp, cid, N)[0] for cid in contests]
        self.path_of = dict(zip(contests, self.paths, strict=True))
        self.app_id = unique(f"sf-{tag}")
        self.starts = 0
        self.folds = [self.start("fold", i) for i in range(n)]
        self.ranks = [self.start("rank", i) for i in range(n)]

    def start(self, stage: str, i: int) -> ScorerProc:
        self.starts += 1
        log = self.tmp / f"{self.tag}-{stage}{i}-{self.starts}.log"
        return staged_worker(
            self.settings, self.paths, self.contests, self.app_id, log, stage, f"{i}/{self.n}", **self.env
        )

    def respawn(self, sp: ScorerProc) -> ScorerProc:
        """The same worker again (on another status port)."""
        for stage, procs in (("fold", self.folds), ("rank", self.ranks)):
            if sp in procs:
                i = procs.index(sp)
                procs[i] = self.start(stage, i)
                return procs[i]
        raise AssertionError(f"not a worker of {self.tag}: {sp.log}")

    @property
    def procs(self) -> list[ScorerProc]:
        return [*self.folds, *self.ranks]

    def tails(self) -> str:
        return "\n---\n".join(f"{sp.log.name}:\n{sp.tail(1500)}" for sp in self.procs)

    def stop(self) -> None:
        for sp in self.procs:
            sp.stop()


def _respawn(topos: list[Topology]) -> Any:
    return lambda sp: next(t for t in topos if sp in t.procs).respawn(sp)


def _scenario(contests: list[str], seed: int) -> dict[str, list[Any]]:
    return {
        cid: sorted(stream_scenario(cid, N, SNAPSHOTS, seed=seed + k).events, key=lambda e: (e.observed_at, e.event_id))
        for k, cid in enumerate(contests)
    }


def _in_time_order(events: dict[str, list[Any]]) -> list[Any]:
    return sorted((e for v in events.values() for e in v), key=lambda e: (e.observed_at, e.event_id))


def _thirds(items: list[Any]) -> list[list[Any]]:
    k = len(items) // 3
    return [items[:k], items[k : 2 * k], items[2 * k :]]


def _processed(sp: ScorerProc) -> int:
    return int(health_of(sp).get("processed") or 0)


def _applied(sp: ScorerProc) -> float:
    """Events of its own contests the fold worker has folded (not the other tests' events it passes over)."""
    return metric_by(sp, "liveboard_scoring_events_total", "outcome").get("applied", 0.0)


def _started_s(sp: ScorerProc, spawned_at: float) -> float:
    """From the spawn (wall clock) to the worker's first log line: interpreter, imports, contest files."""
    first = sp.log.read_text(errors="replace").splitlines()[0]
    return orjson.loads(first)["ts"] / 1000 - spawned_at


def _ranked(sp: ScorerProc) -> set[str]:
    """The contests this ranking worker has recomputed (``liveboard_scoring_field_contestants``)."""
    return {c for c, n in metric_by(sp, "liveboard_scoring_field_contestants", "contest").items() if n > 0}


async def _assert_results(settings: Settings, topo: Topology, events: dict[str, list[Any]]) -> None:
    """Every contest at the reference digest and rows, each event archived once (FINAL shows no duplicate)."""
    log: dict[str, list[tuple[int, int, str]]] | None = None
    for cid in topo.contests:
        want, rows = expected(topo.path_of[cid], events[cid])
        got = await wait_digest(settings, cid, want, 90)
        assert got == want, f"{topo.tag} {cid}: {got} != {want}\n{topo.tails()}"
        assert leaderboard(settings, cid) == [{**r, "frozen": 0} for r in rows], cid
        n = len({e.event_id for e in events[cid]})
        assert await poll_until(lambda cid=cid, n=n: scalar(settings, ARCHIVED, c=cid) == n, 30), (
            scalar(settings, ARCHIVED, c=cid),
            n,
        )
        uniq = "SELECT uniqExact(event_id) FROM events_archive WHERE contest_id = {c:String}"
        assert scalar(settings, uniq, c=cid) == n
        # per offset, not only the count: the event of every offset of the log is archived
        archived = {r[0] for r in ch(settings).query(_IDS, parameters={"c": cid}).result_rows}
        log = log if log is not None else await _log(settings)  # every event was produced before this
        assert {eid for _p, _o, eid in log.get(cid, [])} == {e.event_id for e in events[cid]}  # read whole
        missing = [(p, o) for p, o, eid in log.get(cid, []) if eid not in archived]
        assert not missing, f"{cid}: offsets of lb.events.v1 (partition, offset) not archived: {missing[:20]}"


_IDS = "SELECT DISTINCT event_id FROM events_archive WHERE contest_id = {c:String}"


async def _log(settings: Settings) -> dict[str, list[tuple[int, int, str]]]:
    """The test's own lb.events.v1, read whole: contest -> (partition, offset, event id) of each record."""
    from aiokafka import TopicPartition

    from liveboard.kafka.catalog import EVENTS
    from liveboard.kafka.clients import make_consumer

    topic = settings.topic(EVENTS)
    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    out: dict[str, list[tuple[int, int, str]]] = {}
    try:
        if not consumer.partitions_for_topic(topic):
            await consumer._client.force_metadata_update()
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = {tp: int(o) for tp, o in (await consumer.end_offsets(tps)).items()}
        deadline = time.monotonic() + 30
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end] and time.monotonic() < deadline:
            for tp, msgs in (await consumer.getmany(timeout_ms=200)).items():
                for r in msgs:
                    doc = orjson.loads(r.value)
                    out.setdefault(doc.get("contest_id", ""), []).append((tp.partition, r.offset, doc.get("event_id")))
    finally:
        await consumer.stop()
    return out


def _assert_every_part_counts(paths: dict[str, Path], events: dict[str, list[Any]], parts: list[list[Any]]) -> None:
    """Each part of the load changes every contest's digest: reaching the final one proves the last part
    (read while a worker was down or ClickHouse gone) was scored, and a lost part would show."""
    for cid, path in paths.items():
        digests = [expected(path, [e for part in parts[:k] for e in part if e.contest_id == cid])[0] for k in (1, 2, 3)]
        assert len(set(digests)) == 3, (cid, digests)
        assert digests[-1] == expected(path, events[cid])[0]


def _assert_ownership(topo: Topology) -> None:
    """Ranking worker j/n ranked its contests and none other; with 3, each ranked real work."""
    owned = [_ranked(sp) for sp in topo.ranks]
    if topo.n == 1:
        assert owned == [set(topo.contests)], owned
    else:
        assert owned == [{cid} for cid in topo.contests], owned


# ------------------------------------------------------------------------------------ kill -9 under load


async def test_kill_9_of_a_fold_and_a_ranking_worker_under_load_then_replay(stack: Settings, tmp_path: Path) -> None:
    # its own topics: the fold workers read lb.events.v1 from the start, and the session's log holds every
    # earlier test's events (a backlog that would make this test's duration depend on the suite's order)
    settings = stack.model_copy(update={"kafka_topic_prefix": f"{unique('sfk')}."})
    assert (await ensure_topics(settings)).success
    # a slow flush keeps folded-but-unacknowledged events in memory when a fold worker is killed
    slow = {"LIVEBOARD_SCORER_FLUSH_INTERVAL_MS": "1000"}
    one = Topology(settings, tmp_path, "k1", [unique("sfk1")], 1, **slow)
    three = Topology(settings, tmp_path, "k3", spread_contest_ids("sfk3", 3), 3, **slow)
    topos = [one, three]
    events = _scenario([*one.contests, *three.contests], seed=50)
    a, b, c = _thirds(_in_time_order(events))
    # the even contestants' last third goes with the second: the last third, sent while the ranking workers
    # are down, changes only the odd ones, so a restarted ranking worker has the even ones' inputs only from
    # its rebuild (replay of lb.scorer_inputs.v1 or its checkpoint): the fold workers send them no more
    b += [e for e in c if int(e.contestant_id[1:]) % 2 == 0]
    c = [e for e in c if int(e.contestant_id[1:]) % 2 == 1]
    _assert_every_part_counts(one.path_of | three.path_of, events, [a, b, c])
    resumes: list[str] = []
    try:
        await wait_ready([*one.procs, *three.procs], 120, _respawn(topos))
        await produce(settings, a)
        # moment 1: fold worker 1/3 and the only fold worker of 1 + 1, once each has read part of the load
        victims = [three.folds[1], one.folds[0]]
        assert await poll_until(lambda: all(_applied(sp) > 0 for sp in victims), 120, 0.02), three.tails()
        for sp in victims:
            sp.kill9()
        await produce(settings, b)  # read by nobody for their partitions until they are back
        t_spawn, wall = time.monotonic(), time.time()
        three.folds[1], one.folds[0] = three.start("fold", 1), one.start("fold", 0)
        await wait_ready([three.folds[1], one.folds[0]], 120, _respawn(topos))
        restarted = [three.folds[1], one.folds[0]]
        assert await poll_until(lambda: all(_processed(sp) > 0 for sp in restarted), 120, 0.05), three.tails()
        resumes.append(
            f"fold {time.monotonic() - t_spawn:.2f} s from the restart to the first event read "
            f"(process start {max(_started_s(sp, wall) for sp in restarted):.2f} s of it)"
        )

        # moment 2: ranking worker 2/3 and the only ranking worker of 1 + 1, once each has ranked part of the
        # load (a third of it is not even produced yet)
        r_victims = [three.ranks[2], one.ranks[0]]
        r_contests = [three.contests[2], one.contests[0]]
        assert await poll_until(lambda: all(live_digest(settings, cid) for cid in r_contests), 120), three.tails()
        for sp in r_victims:
            sp.kill9()
        await produce(settings, c)  # the fold workers send its inputs while the ranking workers are down
        t_spawn, wall = time.monotonic(), time.time()
        three.ranks[2], one.ranks[0] = three.start("rank", 2), one.start("rank", 0)
        await wait_ready([three.ranks[2], one.ranks[0]], 120, _respawn(topos))
        restarted = [three.ranks[2], one.ranks[0]]
        resumes.append(
            f"rank {time.monotonic() - t_spawn:.2f} s from the restart to ready, its inputs read again "
            f"(process start {max(_started_s(sp, wall) for sp in restarted):.2f} s of it)"
        )

        for topo in topos:
            await _assert_results(settings, topo, events)
            _assert_ownership(topo)
        print(f"staged kill -9 resume: {'; '.join(resumes)}; load {os.getloadavg()}")
    finally:
        for topo in topos:
            topo.stop()

    # the log replayed by the CLI, as a user would: the live digest again, for the contest of 1 + 1 and the
    # one of 3 + 3 whose ranking worker was killed (the others' live digests are the reference's, above)
    cids = [one.contests[0], three.contests[2]]
    paths = [*one.paths, *three.paths]
    reports = await asyncio.gather(*(replay_cli(settings, paths, cid) for cid in cids))
    for cid, rep in zip(cids, reports, strict=True):
        want, _rows = expected((one.path_of | three.path_of)[cid], events[cid])
        assert rep["events"] == len({e.event_id for e in events[cid]}), rep
        [rnd] = rep["rounds"]
        assert rnd["digest"] == rnd["live_digest"] == want, (cid, rep)
        assert rep["ok"] is True


# ------------------------------------------------------------------------------------ ClickHouse outage


async def test_clickhouse_stopped_mid_stream_loses_nothing_1_and_3_workers_per_stage(tmp_path: Path) -> None:
    """One outage, both topologies at once (each its own app id and contests). Deterministic for both stages:
    the ranking workers are paused (SIGSTOP) while the fold workers archive and send the second part, so
    that when ClickHouse is gone they have rows to write; the third part is read by the fold workers during
    the outage and can be neither archived nor committed."""
    settings = stack_settings(tmp_path / "private")
    st = Stack(settings)
    await asyncio.to_thread(st.up)  # its readiness probe runs its own event loop
    topos: list[Topology] = []
    paused: list[ScorerProc] = []
    try:
        migrate(settings)
        assert (await ensure_topics(settings)).success
        fast_retry = {"LIVEBOARD_SCORER_RETRY_CAP_S": "1"}
        one = Topology(settings, tmp_path, "o1", [unique("sfo1")], 1, **fast_retry)
        three = Topology(settings, tmp_path, "o3", spread_contest_ids("sfo3", 3), 3, **fast_retry)
        topos = [one, three]
        events = _scenario([*one.contests, *three.contests], seed=70)
        everything = _in_time_order(events)
        p1, p2, p3 = _thirds(everything)
        _assert_every_part_counts(one.path_of | three.path_of, events, [p1, p2, p3])
        await wait_ready([*one.procs, *three.procs], 120, _respawn(topos))

        # part 1 with ClickHouse up: scored, archived, committed
        await produce(settings, p1)
        for topo in topos:
            for cid in topo.contests:
                want1, _ = expected(topo.path_of[cid], [e for e in p1 if e.contest_id == cid])
                assert await wait_digest(settings, cid, want1, 60) == want1, topo.tails()

        async def committed(topo: Topology) -> int:
            return await committed_total(settings, f"{topo.app_id}-fold")

        # part 2 archived and sent on while the ranking workers are paused
        paused = [sp for topo in topos for sp in topo.ranks]
        for sp in paused:
            sp.proc.send_signal(signal.SIGSTOP)
        await produce(settings, p2)
        for topo in topos:
            n = len(p1) + len(p2)
            assert await poll_until(lambda topo=topo, n=n: _eq_async(committed(topo), n), 60), topo.tails()

        # ClickHouse goes away; the ranking workers go on and the stream goes on
        pid = int(st.ch_pidfile.read_text())
        assert clickhouse.stop_keepalive(st.ch_url)
        assert wait_gone(pid, 20)
        for sp in paused:
            sp.proc.send_signal(signal.SIGCONT)
        paused = []
        await produce(settings, p3)

        def failing(procs: list[ScorerProc]) -> list[bool]:
            return [health_of(sp).get("clickhouse_failing") is True for sp in procs]

        total = len(everything)
        for topo in topos:
            # every ranking worker has part 2's rows to write and cannot; the fold workers read part 3 and
            # cannot archive it (observed, not waited for blindly)
            assert await poll_until(
                lambda topo=topo: (
                    all(failing(topo.ranks))
                    and any(failing(topo.folds))
                    and sum(_processed(sp) for sp in topo.folds) == total
                ),
                60,
            ), ([health_of(sp) for sp in topo.procs], topo.tails())
            assert await committed(topo) == len(p1) + len(p2)  # nothing of part 3 is committed

        # ClickHouse is back: everything held is written, nothing twice
        st._spawn(
            clickhouse.command(st.ch_data, settings.host, settings.clickhouse_port),
            st.ch_dir / "clickhouse.log",
            st.ch_pidfile,
        )
        assert await poll_until(lambda: clickhouse.serving_path(st.ch_url) is not None, 30)
        for topo in topos:
            await _assert_results(settings, topo, events)
            _assert_ownership(topo)
            assert await poll_until(lambda topo=topo: _eq_async(committed(topo), total), 30)
            assert await poll_until(lambda topo=topo: not any(failing(topo.procs)), 30), topo.tails()
    finally:
        for sp in paused:
            sp.proc.send_signal(signal.SIGCONT)
        for topo in topos:
            topo.stop()
        await asyncio.to_thread(st.down)


async def _eq_async(value: Any, want: int) -> bool:
    return (await value) == want
