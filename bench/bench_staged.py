"""Scorer at scale: the staged topology (fold workers + ranking workers) beside the single scorer, in one run.

How to run (a private embedded stack; nothing shared is touched; ``--seconds`` is the load window)::

    .venv/bin/python bench/bench_staged.py --only e2e                       # 3,000 × 1/s, single then staged (~8 min)
    .venv/bin/python bench/bench_staged.py --only wide --topology staged --prefill   # 30,000 × 1 per 10 s (~8 min)
    .venv/bin/python bench/bench_staged.py --only wide --topology staged --prefill --kill fold:1  # kill -9 mid-load
    .venv/bin/python bench/bench_staged.py --only e2e --seconds 30          # smoke (reduced scale)

``--prefill`` sends one snapshot per contestant first and starts the ranking workers once those inputs are
on ``lb.scorer_inputs.v1`` (their first field is complete); without it the window starts with the whole
field tied at zero (bounded since the tie-note fix in ``rules/placing.py``). ``--rss-abort-mb`` (4 GB) kills
a worker that goes over and reports ``rss_guard``, so the shared machine survives (docs/benchmarks.md).

Scenarios (each run on its own topics and ClickHouse database of one stack):
- ``e2e``: ``--e2e-contestants`` (3,000) contestants × 1 snapshot per ``--e2e-period`` (1 s);
- ``wide``: ``--wide-contestants`` (30,000) contestants in one contest × 1 snapshot per ``--wide-period`` (10 s,
  the polling rate).
Each with ``--topology single``, ``staged`` (``--fold-workers N --rank-workers M``, 2 and 1) or ``both`` (the
default: the single scorer first, then the staged topology, same load, same stack).

What is measured, and how:
- The load comes from ``--generators`` open-loop generator processes (contestant ``i`` of cycle ``k`` is due at
  ``start + k·period + i·period/contestants`` and sent then, whatever the scorer does); each prints its
  schedule lag (sent − due). A run whose lag p99 is over ``--max-lag-ms`` did not offer the load it claims:
  it is marked ``"valid": false``.
- Latency counts from each snapshot's due time. Single scorer: until a ``lb.scores.v1`` update's offsets
  cover the snapshot's ``lb.events.v1`` offset (and until ClickHouse's ``leaderboard`` has that version).
  Staged: a ranking worker's offsets are ``lb.scorer_inputs.v1`` offsets, so the bench also reads that topic:
  the snapshot is mapped to the first inputs record of its contestant whose ``last_event_ms`` reaches its
  ``observed_at`` (``to_inputs_topic``: the fold stage alone), then to the first update covering that record.
- Rates are counted over the load window only (events due in it / its length; what was sent / the time it
  took); the load average is printed with every figure.
- RSS of every process (each worker, broker, ClickHouse, each generator, the bench) sampled each second
  through the window: peak, and the growth from the first to the last quarter of the window.
- ``--kill fold:i`` / ``rank:j``: kill -9 of that staged worker at the middle of the window, restarted at once
  with the same settings; its resume time (spawn → first log line, → "worker starting" (contest loaded,
  connected), → ``/healthz`` ready, → first new record folded) is printed, and latencies of snapshots due in
  the 30 s after the kill are shown apart.
- After the load: ``replay_contest`` (what ``liveboard score replay`` runs) rebuilds the contest from the
  archive; its digest is compared with the live one (``digest.equal``), and the archive's event count with
  what was sent (``digest.archive_complete``).

A 30,000-contestant contest file is ~7 MB and ~510,000 YAML values, over the default limits: the bench raises
``LIVEBOARD_YAML_MAX_BYTES`` / ``LIVEBOARD_YAML_MAX_NODES`` for itself and its workers (printed) unless set.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import json
import multiprocessing
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_scoring import Snapshots, pct
from deploy.embedded.processes import free_port, read_pid
from deploy.embedded.stack import Stack
from liveboard.clickhouse.client import get_client
from liveboard.clickhouse.migrate import migrate
from liveboard.kafka.catalog import EVENTS, SCORER_INPUTS, SCORES, ensure_topics
from liveboard.kafka.clients import make_consumer, make_producer
from liveboard.settings import Settings
from services.scoring.config import ScorerSettings
from services.scoring.replay import replay_contest
from tests.scoring.contests import T0, contest_doc, write_contest
from tests.scoring.support import ScorerProc, start_scorer
from tests.support import stack_settings

KILL_WINDOW_S = 30.0  # latencies of snapshots due this long after a kill are shown apart


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def tree_rss_mb(pid: int, tree: bool) -> float | None:
    """RSS of a process (and its descendants if ``tree``) in MB, None once it is gone."""
    total, seen, todo = 0, set(), [pid]
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
                    break
            if not tree:
                break
            for t in Path(f"/proc/{p}/task").iterdir():
                kids = (t / "children").read_text().split()
                todo.extend(int(k) for k in kids)
        except OSError:
            if p == pid:
                return None
    return total / 1024


def summary(v: list[float]) -> dict[str, Any]:
    if not v:
        return {"n": 0, "p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}
    return {
        "n": len(v),
        "p50_ms": round(pct(v, 50) * 1000),
        "p95_ms": round(pct(v, 95) * 1000),
        "p99_ms": round(pct(v, 99) * 1000),
        "max_ms": round(max(v) * 1000) if v else None,
    }


# ------------------------------------------------------------------------------------------ generator


def _generator(
    settings: dict[str, Any],
    cid: str,
    contestants: int,
    period: float,
    cycles: int,
    shard: tuple[int, int],
    start_at: float,
    out: Any,
    state: dict[int, tuple[int, int]] | None = None,
) -> None:
    """One open-loop load generator, a process of its own, for the contestants ``i % K == g``: sends back
    per record (due, partition, offset, contestant index, cycle, sent at) and the schedule lag of each.
    ``state``: each contestant's cumulative figures so far (after ``--prefill``)."""
    s = Settings(**settings, _env_file=None)  # type: ignore[call-arg]
    g, k_gen = shard

    async def run() -> dict[str, Any]:
        gen = Snapshots(cid)
        gen.state.update(state or {})
        rnd = random.Random(1000 + g)
        producer = make_producer(s, linger_ms=5)
        await producer.start()
        pending: list[tuple[float, int, int, float, Any]] = []
        lags: list[float] = []
        topic = s.topic(EVENTS)
        mine = range(g, contestants, k_gen)
        first_sent = last_sent = 0.0
        try:
            for k in range(cycles):
                t_obs = T0 + 60_000 + int(period * 1000) * k
                base = start_at + k * period
                for i in mine:
                    due = base + i * period / contestants
                    delay = due - time.time()
                    if delay > 0.002:
                        await asyncio.sleep(delay)
                    key, value = gen.make(i, t_obs, rnd)
                    now = time.time()
                    lags.append(max(0.0, now - due))
                    first_sent = first_sent or now
                    last_sent = now
                    pending.append((due, i, k, now, await producer.send(topic, key=key, value=value)))
            await producer.flush()
            sent = []
            for due, i, k, at, fut in pending:
                md = await fut
                sent.append((due, md.partition, md.offset, i, k, at))
        finally:
            await producer.stop()
        return {"sent": sent, "lags": lags, "first_sent": first_sent, "last_sent": last_sent}

    try:
        out.send(asyncio.run(run()))
    except BaseException as exc:  # the parent must hear of it, not wait forever
        out.send({"error": repr(exc)})


# ------------------------------------------------------------------------------------------- workers


@dataclass
class Worker:
    name: str
    env: dict[str, str]
    app_id: str
    log_dir: Path
    proc: ScorerProc | None = None
    spawned_at: float = 0.0
    generation: int = 0
    procs: list[ScorerProc] = field(default_factory=list)


def spawn(s: Settings, path: Path, w: Worker) -> ScorerProc:
    w.generation += 1
    log = w.log_dir / f"{w.name}-{w.generation}.log"
    w.spawned_at = time.time()
    w.proc = start_scorer(s, [path], w.app_id, log, free_port(), **w.env)
    w.procs.append(w.proc)
    return w.proc


def health(sp: ScorerProc) -> dict[str, Any] | None:
    try:
        return sp.health()[1]
    except Exception:
        return None


async def wait_ready(workers: list[Worker], timeout_s: float, single: bool) -> None:
    deadline = time.monotonic() + timeout_s
    waiting = list(workers)
    while waiting and time.monotonic() < deadline:
        for w in list(waiting):
            assert w.proc is not None
            if w.proc.proc.poll() is not None:
                raise RuntimeError(f"{w.name} exited:\n{w.proc.tail()}")
            doc = health(w.proc)
            if doc and doc.get("ready") and (not single or doc.get("lag")):
                waiting.remove(w)
        await asyncio.sleep(0.3)
    if waiting:
        raise RuntimeError("not ready in time: " + "\n---\n".join(f"{w.name}:\n{w.proc.tail()}" for w in waiting))  # type: ignore[union-attr]


def log_times(sp: ScorerProc) -> tuple[float | None, float | None]:
    """(first log line, "worker starting" line) times, seconds since the epoch, from the JSON log."""
    first = starting = None
    with contextlib.suppress(OSError):
        for line in sp.log.read_text(errors="replace").splitlines():
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if not isinstance(doc, dict) or "ts" not in doc:
                continue
            first = first or doc["ts"] / 1000
            if "worker starting" in str(doc.get("msg") or doc.get("message") or ""):
                starting = doc["ts"] / 1000
                break
    return first, starting


async def watch_resume(w: Worker, stage: str, timeout_s: float) -> dict[str, Any]:
    """Spawn → /healthz answers, → ready, → first record folded (fold stage)."""
    assert w.proc is not None
    t0 = w.spawned_at
    marks: dict[str, float | None] = {"health_s": None, "ready_s": None, "first_record_s": None}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if w.proc.proc.poll() is not None:
            return {"error": f"restarted {w.name} exited", "log": w.proc.tail(1500)}
        doc = health(w.proc)
        now = time.time()
        if doc is not None:
            marks["health_s"] = marks["health_s"] or round(now - t0, 2)
            if doc.get("ready") and marks["ready_s"] is None:
                marks["ready_s"] = round(now - t0, 2)
            if stage == "fold" and int(doc.get("processed") or 0) > 0 and marks["first_record_s"] is None:
                marks["first_record_s"] = round(now - t0, 2)
        if marks["ready_s"] is not None and (stage != "fold" or marks["first_record_s"] is not None):
            break
        await asyncio.sleep(0.1)
    first, starting = log_times(w.proc)
    marks["first_log_line_s"] = round(first - t0, 2) if first else None
    marks["worker_starting_s"] = round(starting - t0, 2) if starting else None
    return marks


# --------------------------------------------------------------------------------------------- a run


async def run_load(
    base: Settings,
    st: Stack,
    work: Path,
    args: argparse.Namespace,
    scenario: str,
    topology: str,
    contestants: int,
    period: float,
) -> dict[str, Any]:
    tag = f"{scenario[:2]}{topology[:2]}{uuid.uuid4().hex[:6]}"
    cid = f"bench-{tag}"
    t_file = time.perf_counter()
    path = write_contest(work, contest_doc(cid, contestants, groups=3))
    s = base.model_copy(update={"kafka_topic_prefix": f"{tag}-", "clickhouse_database": f"bench_{tag}"})
    migrate(s)
    assert (await ensure_topics(s)).success
    staged = topology == "staged"
    common = {
        "LIVEBOARD_LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "INFO"),
        "LIVEBOARD_SCORER_FLUSH_INTERVAL_MS": str(args.flush_interval_ms),
        "LIVEBOARD_SCORER_CONTESTS": json.dumps([cid]),
    }
    workers: list[Worker] = []
    if staged:
        for kind, n in (("fold", args.fold_workers), ("rank", args.rank_workers)):
            for i in range(n):
                env = {
                    **common,
                    "LIVEBOARD_SCORER_TOPOLOGY": "staged",
                    "LIVEBOARD_SCORER_STAGE": kind,
                    "LIVEBOARD_SCORER_WORKER": f"{i}/{n}",
                }
                workers.append(Worker(f"{kind}{i}", env, tag, work))
    else:
        workers.append(Worker("single", dict(common), tag, work))
    # with --prefill, ranking workers start once the prefill's inputs are on lb.scorer_inputs.v1: they replay
    # them before ranking, so their first field is the whole prefilled one (no start-of-contest zero tie)
    late = {w.name for w in workers if staged and args.prefill and w.name.startswith("rank")}
    for w in workers:
        if w.name not in late:
            spawn(s, path, w)
    print(f"[{tag}] {topology} {contestants} × 1/{period:g}s: logs in {work}/", flush=True)
    result: dict[str, Any] = {
        "scenario": scenario,
        "topology": topology,
        "contestants": contestants,
        "period_s": period,
        "seconds": args.seconds,
    }
    if staged:
        result["fold_workers"], result["rank_workers"] = args.fold_workers, args.rank_workers
    try:
        await wait_ready([w for w in workers if w.name not in late], args.ready_timeout, single=not staged)
        result["startup_s"] = round(time.perf_counter() - t_file, 1)  # contest file written → all workers ready
        result.update(await _drive(s, st, path, cid, args, workers, staged, contestants, period))
    except Exception as exc:
        result["error"] = repr(exc)
        result["logs"] = {w.name: w.proc.tail(1500) for w in workers if w.proc is not None}
    finally:
        for w in workers:
            for sp in w.procs:
                sp.stop()
    result["load_average"] = load()
    return result


async def _drive(
    s: Settings,
    st: Stack,
    path: Path,
    cid: str,
    args: argparse.Namespace,
    workers: list[Worker],
    staged: bool,
    contestants: int,
    period: float,
) -> dict[str, Any]:
    seconds = args.seconds
    cycles = max(1, round(seconds / period))
    updates: list[tuple[float, dict[str, int]]] = []  # (received, offsets) of lb.scores.v1 updates
    offsets_of: dict[int, dict[str, int]] = {}  # version -> offsets
    inputs: dict[str, list[tuple[int, int, int, float]]] = {}  # contestant -> (last_event_ms, part, offset, t)
    ch_seen: list[tuple[float, int]] = []
    stop = threading.Event()
    stop_async = asyncio.Event()

    async def listen_scores() -> None:
        consumer = make_consumer(s, s.topic(SCORES), group_id=None, auto_offset_reset="latest")
        await consumer.start()
        try:
            while not stop_async.is_set():
                batch = await consumer.getmany(timeout_ms=100)
                now = time.time()
                for recs in batch.values():
                    for r in recs:
                        doc = orjson.loads(r.value)
                        if doc.get("contest_id") == cid:
                            offsets = {k: int(v) for k, v in doc["offsets"].items()}
                            updates.append((now, offsets))
                            offsets_of[doc["version"]] = offsets
        finally:
            await consumer.stop()

    async def listen_inputs() -> None:
        consumer = make_consumer(
            s, s.topic(SCORER_INPUTS), group_id=None, auto_offset_reset="earliest", max_poll_records=5000
        )
        await consumer.start()
        try:
            while not stop_async.is_set():
                batch = await consumer.getmany(timeout_ms=100, max_records=5000)
                now = time.time()
                for tp, recs in batch.items():
                    for r in recs:
                        if dict(r.headers or ()).get("type") != b"scorer_inputs":
                            continue
                        doc = orjson.loads(r.value)
                        if doc["contest_id"] != cid:
                            continue
                        seq = inputs.setdefault(doc["contestant_id"], [])
                        if not seq or doc["last_event_ms"] > seq[-1][0]:  # the first record reaching each time
                            seq.append((doc["last_event_ms"], tp.partition, r.offset, now))
                await asyncio.sleep(0)
        finally:
            await consumer.stop()

    def poll_clickhouse() -> None:
        client = get_client(s)
        last = 0
        try:
            while not stop.is_set():
                with contextlib.suppress(Exception):
                    rows = client.query(
                        "SELECT max(version) FROM leaderboard WHERE contest_id = {c:String}", parameters={"c": cid}
                    ).result_rows
                    if rows and rows[0][0] and rows[0][0] != last:
                        last = rows[0][0]
                        ch_seen.append((time.time(), int(last)))
                time.sleep(0.05)
        finally:
            client.close()

    # RSS of every process, each second, through the window (and the drain)
    rss: dict[str, list[tuple[float, float]]] = {}
    pids: dict[str, int] = {"bench": os.getpid()}
    for name, pidfile in (("broker", st.broker_pidfile), ("clickhouse", st.ch_pidfile)):
        pid = read_pid(pidfile)
        if pid:
            pids[name] = pid

    guard: dict[str, Any] = {}  # set once a worker went over --rss-abort-mb (and was killed)

    def sample_rss() -> None:
        while not stop.is_set():
            now = time.time()
            cur = dict(pids)
            for w in workers:
                if w.proc is not None:
                    cur[w.name] = w.proc.proc.pid
            for name, pid in cur.items():
                # the bench spawned the stack, the workers and the generators: its own RSS alone
                mb = tree_rss_mb(pid, tree=name in ("broker", "clickhouse"))
                if mb is not None:
                    rss.setdefault(name, []).append((now, mb))
                    w = next((w for w in workers if w.name == name), None)
                    if w is not None and w.proc is not None and mb > args.rss_abort_mb and not guard:
                        # a shared machine must survive the bench: the worker is killed, the run reported
                        guard.update(worker=name, rss_mb=round(mb), at_utc=time.strftime("%H:%M:%S", time.gmtime(now)))
                        w.proc.proc.kill()
            stop.wait(1.0)

    tasks = [asyncio.create_task(listen_scores())]
    if staged:
        tasks.append(asyncio.create_task(listen_inputs()))
    threads = [
        asyncio.create_task(asyncio.to_thread(poll_clickhouse)),
        asyncio.create_task(asyncio.to_thread(sample_rss)),
    ]

    prefill: dict[int, tuple[int, int]] = {}
    if args.prefill:
        late = [w for w in workers if w.proc is None]

        async def start_late() -> None:
            if not late:
                return
            deadline = time.monotonic() + args.ready_timeout
            # until every contestant's prefill inputs are on lb.scorer_inputs.v1 (read by the bench's listener)
            for _ in range(int(args.ready_timeout * 2)):
                if len(inputs) >= contestants or time.monotonic() > deadline or guard:
                    break
                await asyncio.sleep(0.5)
            for w in late:
                spawn(s, path, w)
            await wait_ready(late, args.ready_timeout, single=False)

        prefill = await _prefill(s, cid, contestants, args.ready_timeout, guard, start_late)

    mp = multiprocessing.get_context("spawn")
    start_at = time.time() + args.generator_startup_s  # the generators' start-up is not in the window
    end_at = start_at + cycles * period
    gens = []
    for g in range(args.generators):
        parent_end, child_end = mp.Pipe(duplex=False)
        p = mp.Process(
            target=_generator,
            args=(
                s.model_dump(),
                cid,
                contestants,
                period,
                cycles,
                (g, args.generators),
                start_at,
                child_end,
                {i: v for i, v in prefill.items() if i % args.generators == g},
            ),
            daemon=True,
        )
        p.start()
        pids[f"generator{g}"] = p.pid  # type: ignore[assignment]
        gens.append((p, parent_end))
    load_start = load()

    kill: dict[str, Any] | None = None
    if args.kill and staged:
        stage, idx = args.kill.split(":")
        victim = next((w for w in workers if w.name == f"{stage}{idx}"), None)
        if victim is None:
            raise RuntimeError(f"--kill {args.kill}: no such worker (have {[w.name for w in workers]})")
        await asyncio.sleep(max(0.0, start_at + cycles * period / 2 - time.time()))
        assert victim.proc is not None
        t_kill = time.time()
        victim.proc.kill9()
        spawn(s, path, victim)
        kill = {"worker": victim.name, "at_s_into_window": round(t_kill - start_at, 1), "load_average": load()}
        kill["resume"] = await watch_resume(victim, stage, args.ready_timeout)
        kill["t_kill"] = t_kill

    gen_out = [await asyncio.to_thread(end.recv) for _p, end in gens]
    for p, _end in gens:
        p.join(10)
    load_end = load()
    errors = [g["error"] for g in gen_out if "error" in g]
    if errors:
        raise RuntimeError(f"generator failed: {errors}")
    sent = sorted(x for g in gen_out for x in g["sent"])
    lags = [x for g in gen_out for x in g["lags"]]
    first_sent = min(g["first_sent"] for g in gen_out)
    last_sent = max(g["last_sent"] for g in gen_out)
    t_obs_of = [T0 + 60_000 + int(period * 1000) * k for k in range(cycles)]

    def resolve(marks: list[tuple[float, dict[str, int]]]) -> tuple[list[tuple[float, float, float]], int]:
        """(due, latency from due, latency from send) per sent snapshot covered by ``marks``; how many are
        not covered."""
        by_part: dict[str, tuple[list[int], list[float]]] = {}
        for t, offsets in marks:
            for p, o in offsets.items():
                wm, ts = by_part.setdefault(p, ([], []))
                if not wm or o > wm[-1]:
                    wm.append(o)
                    ts.append(t)

        def first_cover(partition: int, offset: int) -> float | None:
            wm, ts = by_part.get(str(partition), ([], []))
            j = bisect.bisect_right(wm, offset)  # first watermark > offset
            return ts[j] if j < len(wm) else None

        out, missing = [], 0
        for due, partition, offset, i, k, at in sent:
            if staged:
                seq = inputs.get(f"c{i:04d}", [])
                j = bisect.bisect_left(seq, (t_obs_of[k],))
                t = first_cover(seq[j][1], seq[j][2]) if j < len(seq) else None
            else:
                t = first_cover(partition, offset)
            if t is None:
                missing += 1
            else:
                out.append((due, max(0.0, t - due), max(0.0, t - at)))
        return out, missing

    # drain: until every snapshot is covered by an update (or --drain-s passes)
    drain_deadline = time.time() + args.drain_s
    while time.time() < drain_deadline and not guard:
        _got, missing = await asyncio.to_thread(resolve, list(updates))
        if missing == 0:
            break
        await asyncio.sleep(2.0)
    drained_after = round(time.time() - end_at, 1)

    # the live digest, once it stops moving
    live, stable = None, 0
    for _ in range(0 if guard else 30):
        d = await asyncio.to_thread(_live_digest, s, cid)
        stable = stable + 1 if d is not None and d == live else 0
        live = d
        if stable >= 2:
            break
        await asyncio.sleep(1.0)
    stop.set()
    stop_async.set()
    await asyncio.gather(*tasks, *threads)

    upd, upd_missing = resolve(updates)
    chl, ch_missing = resolve([(t, offsets_of[v]) for t, v in ch_seen if v in offsets_of])
    window = cycles * period
    out: dict[str, Any] = {
        "events": len(sent),
        "window_s": round(window, 1),
        "offered_per_s": round(len(sent) / window, 1),  # due in the window / its length
        "sent_per_s": round(len(sent) / max(1e-9, last_sent - first_sent), 1),
        "generators": args.generators,
        "schedule_lag_ms": {
            "p50": round(pct(lags, 50) * 1000, 1),
            "p99": round(pct(lags, 99) * 1000, 1),
            "max": round(max(lags) * 1000, 1) if lags else None,
        },
        # a generator late beyond the bound did not offer the load it claims: the latencies mean nothing
        "valid": bool(lags) and pct(lags, 99) * 1000 <= args.max_lag_ms,
        "load_average_start_end": [load_start, load_end],
        "to_scores_topic": {**summary([x for _d, x, _s in upd]), "not_covered": upd_missing},
        "to_clickhouse": {**summary([x for _d, x, _s in chl]), "not_covered": ch_missing},
        # the same from the moment each snapshot was actually sent: the scorer's share when the generator
        # was late (an invalid run); the targets are judged on the figures from due time above
        "to_scores_topic_from_send": summary([x for _d, _x, x in upd]),
        "drained_after_window_s": drained_after,
        "rss_guard": guard or None,  # a worker killed for going over --rss-abort-mb: the run is not a result
    }
    if staged:
        fold_lat = []
        for due, _p, _o, i, k, _at in sent:
            seq = inputs.get(f"c{i:04d}", [])
            j = bisect.bisect_left(seq, (t_obs_of[k],))
            if j < len(seq):
                fold_lat.append(max(0.0, seq[j][3] - due))
        out["to_inputs_topic"] = summary(fold_lat)
    if kill is not None:
        t_kill = kill.pop("t_kill")
        near = [x for d, x, _s in upd if t_kill - 5 <= d < t_kill + KILL_WINDOW_S]
        rest = [x for d, x, _s in upd if not t_kill - 5 <= d < t_kill + KILL_WINDOW_S]
        kill["to_scores_topic_due_around_kill"] = summary(near)  # due from 5 s before to 30 s after
        kill["to_scores_topic_otherwise"] = summary(rest)
        out["kill"] = kill

    def rss_doc(samples: list[tuple[float, float]]) -> dict[str, Any]:
        inside = [mb for t, mb in samples if start_at <= t <= end_at] or [mb for _t, mb in samples]
        q = max(1, len(inside) // 4)
        before = [mb for t, mb in samples if t < start_at]  # start-up and --prefill
        return {
            # from the window's start to the end of the drain: the target's figure
            "peak_mb": round(max((mb for t, mb in samples if t >= start_at), default=max(inside))),
            "peak_before_window_mb": round(max(before)) if before else None,
            "first_quarter_mean_mb": round(statistics.mean(inside[:q])),
            "last_quarter_mean_mb": round(statistics.mean(inside[-q:])),
        }

    out["rss"] = {name: rss_doc(v) for name, v in sorted(rss.items()) if v}
    # the target's processes: workers, broker, ClickHouse, generators (the bench's listeners are not the system)
    system = [d["peak_mb"] for name, d in out["rss"].items() if name != "bench"]
    out["rss_peak_max_mb"] = max(system) if system else None
    out["load_average_after_drain"] = load()

    if not args.no_replay and not guard:
        t = time.perf_counter()
        # every sent snapshot must be in the archive (the replay reads the archive, not the log)
        want = {(f"c{i:04d}", t_obs_of[k]): (p, o, round(due - start_at, 2)) for due, p, o, i, k, _at in sent}
        archived: set[tuple[str, int]] = set()
        for _ in range(20):
            archived = await asyncio.to_thread(_archived, s, cid)
            if len(archived) >= len(want):
                break
            await asyncio.sleep(1.0)
        lost = sorted((v, k) for k, v in want.items() if k not in archived)
        report = await asyncio.to_thread(replay_contest, s, ScorerSettings(contest_files=[path]), cid)
        r1 = next((r for r in report["rounds"] if r["round_id"] == "r1"), None)
        out["digest"] = {
            "live": live,
            "replay": r1["digest"] if r1 else None,
            "equal": bool(r1 and live and r1["digest"] == live),
            "archived_events": len(archived),
            "sent_events": len(want),
            "archive_complete": not lost,
            # (partition, offset, due s into the window), (contestant, observed_at) of the first few lost
            "not_archived": [[list(v), list(k)] for v, k in lost[:20]],
            # what the broker and ClickHouse say of each lost record: on the log at its offset? parsed? its
            # event id in the archive (under another offset) or a dead letter naming that offset?
            "not_archived_diagnosis": await _diagnose(s, cid, [(v[0], v[1]) for v, _k in lost[:20]]) if lost else [],
            "replay_s": round(time.perf_counter() - t, 1),
            "load_average": load(),
        }
    return out


async def _prefill(
    s: Settings, cid: str, contestants: int, timeout_s: float, guard: dict[str, Any], then: Any
) -> dict[int, tuple[int, int]]:
    """One snapshot per contestant before the window (observed a second before cycle 0), with distinct
    figures, sent as fast as the broker takes them; then wait until the live digest stops moving. The
    window then measures a field in play, not the start of a contest where every contestant without data
    ties at zero (a tie of k rows costs O(k²) in placing: see docs/benchmarks.md)."""
    gen = Snapshots(cid)
    gen.state.update({i: (1 + i, i % 7) for i in range(contestants)})
    rnd = random.Random(7)
    producer = make_producer(s, linger_ms=20)
    await producer.start()
    t0 = time.time()
    try:
        for i in range(contestants):
            key, value = gen.make(i, T0 + 59_000, rnd)
            await producer.send(s.topic(EVENTS), key=key, value=value)
        await producer.flush()
    finally:
        await producer.stop()
    await then()
    deadline = time.monotonic() + timeout_s
    last, stable = None, 0
    while time.monotonic() < deadline and stable < 3 and not guard:
        await asyncio.sleep(2.0)
        d = await asyncio.to_thread(_live_digest, s, cid)
        stable = stable + 1 if d is not None and d == last else 0
        last = d
    print(f"prefill: {contestants} snapshots, settled after {time.time() - t0:.1f} s, load {load()}", flush=True)
    return dict(gen.state)


def _live_digest(s: Settings, cid: str) -> str | None:
    client = get_client(s)
    try:
        rows = client.query(
            "SELECT argMax(digest, version), count() FROM round_results "
            "WHERE contest_id = {c:String} AND round_id = 'r1'",
            parameters={"c": cid},
        ).result_rows
        return rows[0][0] if rows and rows[0][1] else None
    finally:
        client.close()


async def _diagnose(s: Settings, cid: str, where: list[tuple[int, int]]) -> list[dict[str, Any]]:
    """For records the archive lacks: read each back from ``lb.events.v1`` at its offset and look for its
    event id in the archive and for a dead letter naming its offset."""
    from aiokafka import TopicPartition

    from liveboard.contracts import parse_event

    out: list[dict[str, Any]] = []
    consumer = make_consumer(s, group_id=None, enable_auto_commit=False)
    await consumer.start()
    client = get_client(s)
    try:
        topic = s.topic(EVENTS)
        for p, o in where:
            tp = TopicPartition(topic, p)
            consumer.assign([tp])
            consumer.seek(tp, o)
            got = await consumer.getmany(tp, timeout_ms=3000, max_records=1)
            msgs = got.get(tp, [])
            d: dict[str, Any] = {"partition": p, "offset": o, "on_log": bool(msgs) and msgs[0].offset == o}
            if msgs:
                d["read_offset"] = msgs[0].offset
                try:
                    ev = parse_event(msgs[0].value)
                    d["event_id"] = ev.event_id
                    d["read"] = [getattr(ev, "contestant_id", None), ev.observed_at]
                    at = client.query(
                        "SELECT event_id, contestant_id, observed_at FROM events_archive "
                        "WHERE contest_id = {c:String} AND kafka_partition = {p:UInt32} AND kafka_offset = {o:UInt64}",
                        parameters={"c": cid, "p": p, "o": o},
                    ).result_rows
                    d["archive_at_offset"] = [list(r) for r in at]
                    rows = client.query(
                        "SELECT kafka_partition, kafka_offset FROM events_archive WHERE event_id = {e:String}",
                        parameters={"e": ev.event_id},
                    ).result_rows
                    d["archived_at"] = [list(r) for r in rows]
                except Exception as exc:
                    d["parse_error"] = repr(exc)[:300]
            dl = client.query(
                "SELECT count() FROM dead_letters WHERE reason LIKE {r:String}",
                parameters={"r": f"%[{p}]@{o}:%"},
            ).result_rows
            d["dead_letters"] = int(dl[0][0]) if dl else 0
            out.append(d)
    finally:
        client.close()
        await consumer.stop()
    return out


def _archived(s: Settings, cid: str) -> set[tuple[str, int]]:
    client = get_client(s)
    try:
        rows = client.query(
            "SELECT contestant_id, observed_at FROM events_archive FINAL "
            "WHERE contest_id = {c:String} AND type = 'live_metrics_snapshot'",
            parameters={"c": cid},
        ).result_rows
        return {(c, int(t)) for c, t in rows}
    finally:
        client.close()


# ------------------------------------------------------------------------------------------------ main


def verdicts(key: str, r: dict[str, Any], args: argparse.Namespace) -> list[str]:
    """One line per target, from the printed fields (a target is only 'met' on a valid run)."""
    out = []
    if "error" in r:
        return [f"{key}: ERROR {r['error']}"]
    if r.get("rss_guard"):
        out.append(f"{key}: a worker went over --rss-abort-mb and was killed: {r['rss_guard']} (targets NOT met)")
    valid = r.get("valid")
    p99 = r["to_scores_topic"]["p99_ms"]
    lim = 1000 if r["scenario"] == "e2e" else 2000
    ok = p99 is not None and p99 <= lim and r["to_scores_topic"]["not_covered"] == 0
    out.append(
        f"{key}: p99 {p99} ms (target ≤ {lim}) {'met' if ok and valid else 'NOT met' if valid else 'run not valid'}"
        f"; schedule lag p99 {r['schedule_lag_ms']['p99']} ms; load {r['load_average']}"
    )
    if r["scenario"] == "wide":
        peak = r["rss_peak_max_mb"]
        met = "NOT met" if peak is None or peak > 1024 else "met" if valid else "run not valid"
        out.append(f"{key}: biggest process RSS {peak} MB (target ≤ 1024 each) {met}")
    if "kill" in r:
        res = r["kill"]["resume"]
        ready = res.get("first_record_s") or res.get("ready_s")
        met = "NOT met" if not ready or ready > 3 else "met" if valid else "run not valid"
        out.append(f"{key}: resume after kill -9 {ready} s (target ≤ 3) {met}")
    if "digest" in r:
        d = r["digest"]
        out.append(f"{key}: digest live == replay: {d['equal']}; archive complete: {d['archive_complete']}")
    return out


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=["e2e", "wide"], action="append", help="scenarios (default both)")
    ap.add_argument("--topology", choices=["both", "single", "staged"], default="both")
    ap.add_argument("--fold-workers", type=int, default=2)
    ap.add_argument("--rank-workers", type=int, default=1)
    ap.add_argument("--e2e-contestants", type=int, default=3000)
    ap.add_argument("--e2e-period", type=float, default=1.0, help="seconds between a contestant's snapshots")
    ap.add_argument("--wide-contestants", type=int, default=30_000)
    ap.add_argument("--wide-period", type=float, default=10.0)
    ap.add_argument("--seconds", type=int, default=120, help="load window (120 for the record)")
    ap.add_argument("--generators", type=int, default=2, help="load generator processes")
    ap.add_argument("--generator-startup-s", type=float, default=6.0)
    ap.add_argument("--max-lag-ms", type=float, default=100.0, help="schedule lag p99 bound of a valid run")
    ap.add_argument("--kill", help="staged runs: kill -9 of fold:i or rank:j at mid-window, restarted at once")
    ap.add_argument("--flush-interval-ms", type=int, default=500)
    ap.add_argument("--drain-s", type=float, default=60.0, help="after the window, wait this long at most")
    ap.add_argument("--ready-timeout", type=float, default=600.0)
    ap.add_argument(
        "--prefill",
        action="store_true",
        help="one snapshot per contestant before the window, settled (a field in play, not the contest's start)",
    )
    ap.add_argument(
        "--rss-abort-mb",
        type=float,
        default=4096,
        help="kill a worker whose RSS goes over this and report the run (a shared machine must survive the bench)",
    )
    ap.add_argument("--no-replay", action="store_true", help="skip the replay digest check")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (worker logs) afterwards")
    ap.add_argument("--json", help="also write every result to this file")
    args = ap.parse_args()
    if args.kill:
        stage, _, idx = args.kill.partition(":")
        if stage not in ("fold", "rank") or not idx.isdigit():
            ap.error("--kill takes fold:i or rank:j")
    for name, value in (("LIVEBOARD_YAML_MAX_BYTES", str(64 << 20)), ("LIVEBOARD_YAML_MAX_NODES", "10000000")):
        os.environ.setdefault(name, value)
    print(
        f"machine: {os.cpu_count()} cores (nproc), Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d %H:%M %Z')}, load average {load()}; "
        f"LIVEBOARD_YAML_MAX_BYTES={os.environ['LIVEBOARD_YAML_MAX_BYTES']} "
        f"LIVEBOARD_YAML_MAX_NODES={os.environ['LIVEBOARD_YAML_MAX_NODES']}",
        flush=True,
    )
    scenarios = args.only or ["e2e", "wide"]
    topologies = ["single", "staged"] if args.topology == "both" else [args.topology]
    tmp = tempfile.mkdtemp(prefix="bench-staged-")
    results: dict[str, Any] = {}
    lines: list[str] = []
    try:
        work = Path(tmp)
        settings = stack_settings(work / "stack")
        st = Stack(settings)
        await asyncio.to_thread(st.up)
        try:
            migrate(settings)
            for sc in scenarios:
                n, period = (
                    (args.e2e_contestants, args.e2e_period)
                    if sc == "e2e"
                    else (args.wide_contestants, args.wide_period)
                )
                for topo in topologies:
                    key = f"{sc}_{n}_{topo}" + (
                        f"_{args.fold_workers}f{args.rank_workers}r" if topo == "staged" else ""
                    )
                    if topo == "staged" and args.kill:
                        key += f"_kill_{args.kill.replace(':', '')}"
                    results[key] = await run_load(settings, st, work, args, sc, topo, n, period)
                    print(json.dumps({key: results[key]}, ensure_ascii=False), flush=True)
                    lines += verdicts(key, results[key], args)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(st.down)
    finally:
        if args.json:
            text = json.dumps(results, ensure_ascii=False, indent=1)
            await asyncio.to_thread(Path(args.json).write_text, text)
        print("\n".join(["verdicts (each from the printed fields):", *lines]), flush=True)
        if args.keep:
            print(f"work folder kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
