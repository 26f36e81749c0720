"""Scorer benchmark, side by side in one run, on a private embedded stack (nothing shared is touched).

    .venv/bin/python bench/bench_scoring.py                 # every scenario (~8 min on 2 cores)
    .venv/bin/python bench/bench_scoring.py --only e2e --contestants 1000 --seconds 20   # smoke

Scenarios:
- throughput: N snapshots pre-produced to a 6-partition topic; a raw aiokafka consume of it, the same
  consume with every record parsed and validated (the cost of validation alone), then the scorer
  (direct intake, then faust intake) catching up from offset 0: events/s from the first record processed
  to the last acknowledgement after its ClickHouse write, within a window (each scorer in its own consumer
  group and ClickHouse database).
- e2e: C contestants × 1 snapshot/s for S seconds (120 for the record) against a running scorer, sent by an
  open-loop load generator in a process of its own (its schedule lag is printed). Latency per event from
  its due time until (a) a ``lb.scores.v1`` update covers its offset, and (b) ``leaderboard`` in ClickHouse
  has a version covering it. Also, while the scorer writes, the board's leaderboard reads (top 50 of
  ``leaderboard FINAL`` every 30 ms, and ``services.board.queries.leaderboard_rows``, the whole round, once
  a second from its own process), the scorer's peak RSS, and the load average at the start and the end.
- replay: R events written straight into a fresh ``events_archive``; ``replay_contest`` timed.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import hashlib
import json
import multiprocessing
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import orjson
from aiokafka import TopicPartition

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deploy.embedded.processes import free_port
from deploy.embedded.stack import Stack
from liveboard.clickhouse.client import DEDUP_INSERT_SETTINGS, get_async_client, get_client
from liveboard.clickhouse.migrate import migrate
from liveboard.contracts import make_event_id, parse_event
from liveboard.kafka.catalog import EVENTS, SCORES, ensure_topics
from liveboard.kafka.clients import make_consumer, make_producer
from liveboard.settings import Settings
from services.board import queries
from services.scoring.config import ScorerSettings
from services.scoring.replay import replay_contest
from services.scoring.sink import ARCHIVE_COLUMNS
from tests.scoring import factory as f
from tests.scoring.contests import T0, make_contest
from tests.scoring.support import ScorerProc, start_scorer, wait_healthy
from tests.support import stack_settings


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * len(s)) - 1))]


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system, every thread) a process has used: /proc/<pid>/stat fields 14 and 15."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class Snapshots:
    """Fast canonical live snapshots: one validated template, fields filled in, the real event-id recipe."""

    def __init__(self, contest_id: str) -> None:
        self.contest_id = contest_id
        tpl = f.live_snapshot(contest_id, "c0000", T0, gmv_fen=0, orders_paid=0, viewers_uv=0, paid_buyers_uv=0)
        self.tpl = tpl.model_dump()
        self.state: dict[int, tuple[int, int]] = {}

    def make(self, i: int, t: int, rnd: random.Random) -> tuple[bytes, bytes]:
        gmv, orders = self.state.get(i, (0, 0))
        gmv += rnd.randint(0, 20_000)
        orders += rnd.randint(0, 3)
        self.state[i] = (gmv, orders)
        cid = f"c{i:04d}"
        doc = dict(self.tpl)
        data = dict(doc["data"])
        data.update(
            gmv_fen=gmv,
            orders_paid=orders,
            viewers_uv=1000 + orders,
            paid_buyers_uv=orders,
            live_started_at=T0 + 60_000,
        )
        doc.update(
            contestant_id=cid,
            account_id=f"acct-{cid}",
            room_id=f"room-{cid}",
            observed_at=t,
            ingested_at=t + 100,
            data=data,
        )
        doc["raw_ref"] = {"topic": "lb.raw.v1", "raw_id": hashlib.sha256(f"{cid}{t}".encode()).hexdigest()}
        doc["event_id"] = make_event_id(
            "live_metrics_snapshot", self.contest_id, "douyin", doc["account_id"], doc["room_id"], t, "provisional"
        )
        return f"{self.contest_id}:{cid}".encode(), orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)


async def _metrics(port: int) -> str:
    def get() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            return r.read().decode()

    return await asyncio.to_thread(get)


def _sum_metric(text: str, name: str, contains: str = "") -> float:
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name) and contains in line)


def _topic_settings(base: Settings, tag: str, db: str) -> Settings:
    s = base.model_copy(update={"kafka_topic_prefix": f"{tag}-", "clickhouse_database": db})
    migrate(s)
    return s


# ------------------------------------------------------------------------------------------ throughput


async def _committed(watcher: Any, tps: list[Any]) -> int:
    """Records the group has committed (sum over partitions): the scorer commits an offset only after the
    record's rows are in ClickHouse, so this counts records done, a fact per record. One OffsetFetch for
    every partition (``committed()`` would ask once per partition; tansu's answer to the admin client's
    ListConsumerGroupOffsets does not decode in aiokafka)."""
    got = await watcher._coordinator.fetch_committed_offsets(tps)
    return sum(max(0, meta.offset) for meta in got.values())


def _profile_summary(raw: Path, top: int = 25) -> dict[str, Any]:
    """py-spy's collapsed stacks (``--format raw``) → the functions with the most samples on the CPU: by own
    time (the leaf frame) and by total time (anywhere in the stack), as a share of every sample."""
    own: dict[str, int] = {}
    total: dict[str, int] = {}
    samples = 0
    if not raw.exists():
        return {"error": f"no profile at {raw}"}
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        samples += n
        frames = [
            fr.split(" (")[0] + " (" + fr.split(" (")[-1].split(":")[0].rsplit("/", 1)[-1] + ")"
            for fr in stack.split(";")
        ]
        own[frames[-1]] = own.get(frames[-1], 0) + n
        for fr in set(frames):
            total[fr] = total.get(fr, 0) + n

    def share(d: dict[str, int]) -> list[str]:
        return [f"{100 * v / samples:5.1f}%  {k}" for k, v in sorted(d.items(), key=lambda kv: -kv[1])[:top]]

    return {"samples": samples, "own": share(own), "total": share(total)}


def _py_spy(pid: int, out: Path) -> Any:
    """py-spy recording ``pid`` (every thread, on-CPU samples only) into collapsed stacks, until stopped."""
    exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    return subprocess.Popen(
        [exe, "record", "--pid", str(pid), "--rate", "100", "--format", "raw", "--output", str(out), "--nonblocking"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )


async def _scorer_rate(
    s: Settings,
    procs: list[ScorerProc],
    group: str,
    n: int,
    raw_per_s: float,
    raw_cpu_us: float,
    window_s: float,
    profile: Path | None,
) -> dict[str, Any]:
    """Catching up the pre-produced topic: the group's committed offsets, polled every 50 ms, give the
    records done (in ClickHouse, then committed) over time. The rate is taken over the load window only,
    from the first commit seen to the commit of the last record (records committed in between / time
    between), so start-up, the rebuild and the first flush are outside it; each end is known to ±50 ms."""
    topic = s.topic(EVENTS)
    watcher = make_consumer(s, group_id=group)  # never subscribes: it only reads the group's commits
    await watcher.start()
    tps = [TopicPartition(topic, p) for p in sorted(watcher.partitions_for_topic(topic) or ())]
    if not tps:
        await watcher._client.force_metadata_update()
        tps = [TopicPartition(topic, p) for p in sorted(watcher.partitions_for_topic(topic) or ())]
    if profile:
        profile.parent.mkdir(parents=True, exist_ok=True)
    spies: list[Any] = []  # started at the first commit: the profile covers the load window, not start-up
    try:
        first: tuple[float, int] | None = None
        cpu_first = cpu_last = 0.0
        last: tuple[float, int] = (time.perf_counter(), 0)
        load_start = None
        peak = 0.0
        t_launch = time.perf_counter()
        deadline = time.monotonic() + window_s + 120  # start-up and rebuild on a loaded machine, then the window
        while time.monotonic() < deadline:
            for sp in procs:
                if sp.proc.poll() is not None:
                    return {"error": f"scorer exited {sp.proc.returncode}", "log": sp.tail(1500)}
            try:
                done = await _committed(watcher, tps)
            except Exception:  # a busy broker on a loaded machine: ask again
                await asyncio.sleep(0.05)
                continue
            now = time.perf_counter()
            cpu = sum(cpu_s(sp.proc.pid) for sp in procs)
            peak = max(peak, *(rss_mb(sp.proc.pid) for sp in procs))
            if done > 0 and first is None:
                first = (now, done)
                cpu_first = cpu
                load_start = os.getloadavg()
                deadline = time.monotonic() + window_s  # the window: from the first commit, not from launch
                if profile:
                    spies = [_py_spy(sp.proc.pid, profile.with_suffix(f".{k}.txt")) for k, sp in enumerate(procs)]
            if done > last[1]:
                last = (now, done)
                cpu_last = cpu
            if done >= n:
                break
            await asyncio.sleep(0.05)
        load_end = os.getloadavg()
    finally:
        for spy in spies:
            spy.send_signal(signal.SIGINT)
        for spy in spies:
            with contextlib.suppress(subprocess.TimeoutExpired):
                spy.wait(30)
        await watcher.stop()
    if first is None or last[1] <= first[1]:
        return {"error": "nothing committed in the window", "log": procs[0].tail(1500)}
    rate = (last[1] - first[1]) / (last[0] - first[0])
    out: dict[str, Any] = {
        "per_s": round(rate),
        "ratio_to_raw": round(rate / raw_per_s, 3),
        "committed": last[1],
        "finished": last[1] >= n,
        "window_s": round(last[0] - first[0], 2),
        "committed_at_window_start": first[1],
        "start_to_first_commit_s": round(first[0] - t_launch, 2),  # start-up, rebuild, first flush
        # CPU the scorer process(es) spent per record in the window (every thread; not the broker's or
        # ClickHouse's): unlike the rate, it hardly moves with the machine's load, so it compares runs
        "cpu_us_per_event": round((cpu_last - cpu_first) / (last[1] - first[1]) * 1e6, 1),
        "peak_rss_mb": round(peak),
        "load_average_start_end": [load_start, load_end],
    }
    if raw_cpu_us:
        out["cpu_ratio_to_raw"] = round(raw_cpu_us / out["cpu_us_per_event"], 3)
    if profile:
        out["profile"] = {k: _profile_summary(profile.with_suffix(f".{k}.txt")) for k in range(len(procs))}
    return out


async def throughput(
    base: Settings,
    work: Path,
    n_events: int,
    contestants: int,
    window_s: float,
    staged_workers: list[int],
    faust: bool,
    profile: Path | None,
) -> dict[str, Any]:
    tag = f"tp{uuid.uuid4().hex[:6]}"
    cid = f"bench-{tag}"
    path, _ = make_contest(work, cid, contestants, groups=3)
    s = _topic_settings(base, tag, f"bench_{tag}_baseline")
    assert (await ensure_topics(s)).success
    gen = Snapshots(cid)
    rnd = random.Random(1)
    producer = make_producer(s, linger_ms=20)
    await producer.start()
    t0 = time.perf_counter()
    per = n_events // contestants
    for k in range(per):
        for i in range(contestants):
            key, value = gen.make(i, T0 + 60_000 + 1000 * k, rnd)
            await producer.send(s.topic(EVENTS), key=key, value=value)
    await producer.flush()
    await producer.stop()
    n = per * contestants
    produce_s = time.perf_counter() - t0

    async def consume(validate: bool) -> tuple[float, tuple[float, float, float], float]:
        """Events/s of one consumer reading the whole topic (from its first record to its last), each
        record parsed and validated by ``parse_event`` if ``validate``; the load average then; and the
        CPU this process spent per record (µs)."""
        consumer = make_consumer(s, s.topic(EVENTS), group_id=None, max_poll_records=10_000)
        await consumer.start()
        got, first = 0, None
        cpu0 = 0.0
        while got < n:
            batch = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for recs in batch.values():
                if recs and first is None:
                    first = time.perf_counter()
                    cpu0 = time.process_time()
                if validate:
                    for r in recs:
                        parse_event(r.value)
                got += len(recs)
        took = time.perf_counter() - (first or time.perf_counter())
        cpu_us = (time.process_time() - cpu0) / n * 1e6
        load = os.getloadavg()
        await consumer.stop()
        return n / took, load, cpu_us

    raw, raw_load, raw_cpu = await consume(False)
    out: dict[str, Any] = {
        "events": n,
        "contestants": contestants,
        "produce_s": round(produce_s, 1),
        "raw_consume_per_s": round(raw),
        "raw_load_average": raw_load,
        "raw_cpu_us_per_event": round(raw_cpu, 1),
    }
    # the same consume, each record parsed and validated (parse_event), nothing else: the cost of
    # validation on its own, between the raw consume and the scorer
    pv, pv_load, pv_cpu = await consume(True)
    out["parse_validate_per_s"] = round(pv)
    out["parse_validate_cpu_us_per_event"] = round(pv_cpu, 1)
    out["parse_validate_cpu_ratio_to_raw"] = round(raw_cpu / pv_cpu, 3)
    out["parse_validate_ratio_to_raw"] = round(pv / raw, 3)
    out["parse_validate_load_average"] = pv_load
    print(json.dumps({"throughput_baselines": out}, ensure_ascii=False), flush=True)

    runs: list[tuple[str, dict[str, str], int]] = [("scorer_1_process", {"LIVEBOARD_SCORER_INTAKE": "direct"}, 1)]
    if faust:
        runs.append(("scorer_faust_intake", {"LIVEBOARD_SCORER_INTAKE": "faust"}, 1))
    runs += [(f"staged_fold_{w}_processes", {"LIVEBOARD_SCORER_TOPOLOGY": "staged"}, w) for w in staged_workers]
    for name, env, workers in runs:
        si = _topic_settings(base, tag, f"bench_{tag}_{name}")
        app_id = f"{tag}-{name}"
        staged = env.get("LIVEBOARD_SCORER_TOPOLOGY") == "staged"
        procs: list[ScorerProc] = []
        ports: set[int] = set()
        try:
            for w in range(workers):
                port = free_port()
                while port in ports:  # two workers asked in a row may be offered the same free port
                    port = free_port()
                ports.add(port)
                extra = (
                    {**env, "LIVEBOARD_SCORER_STAGE": "fold", "LIVEBOARD_SCORER_WORKER": f"{w}/{workers}"}
                    if staged
                    else env
                )
                procs.append(start_scorer(si, [path], app_id, work / f"tp-{name}-{w}.log", port, **extra))
            group = f"{app_id}-fold" if staged else app_id
            prof = profile / name if profile else None
            out[name] = {
                "processes": workers,
                # the staged fold workers also send the changed inputs to lb.scorer_inputs.v1; no ranking
                # worker runs (the fold stage's throughput is measured on its own)
                "what": "fold stage only (--stage fold --worker i/N), no ranking worker"
                if staged
                else env["LIVEBOARD_SCORER_INTAKE"] + " intake, single topology",
                **await _scorer_rate(si, procs, group, n, raw, raw_cpu, window_s, prof),
            }
        finally:
            for sp in procs:
                sp.stop()
        print(json.dumps({name: out[name]}, ensure_ascii=False), flush=True)
    return out


# ------------------------------------------------------------------------------------------------- e2e


def _generator(settings: dict[str, Any], cid: str, contestants: int, seconds: int, start_at: float, out: Any) -> None:
    """The open-loop load generator, a process of its own: snapshot i of second k is due at
    ``start_at + k + i / contestants`` (wall clock) and is sent then, whatever the scorer does; sends back,
    per record, (due time, partition, offset), and the schedule lag (sent − due) of each."""
    s = Settings(**settings, _env_file=None)  # type: ignore[call-arg]

    async def run() -> tuple[list[tuple[float, int, int]], list[float]]:
        gen = Snapshots(cid)
        rnd = random.Random(2)
        producer = make_producer(s, linger_ms=5)
        await producer.start()
        due_and_futures: list[tuple[float, Any]] = []
        lags: list[float] = []
        interval = 1.0 / contestants
        try:
            for k in range(seconds):
                t_obs = T0 + 60_000 + 1000 * k
                for i in range(contestants):
                    due = start_at + k + i * interval
                    delay = due - time.time()
                    if delay > 0.002:
                        await asyncio.sleep(delay)
                    key, value = gen.make(i, t_obs, rnd)
                    lags.append(max(0.0, time.time() - due))
                    due_and_futures.append((due, await producer.send(s.topic(EVENTS), key=key, value=value)))
            await producer.flush()
            sent = []
            for due, fut in due_and_futures:
                md = await fut
                sent.append((due, md.partition, md.offset))
        finally:
            await producer.stop()
        return sent, lags

    out.send(asyncio.run(run()))


def _board_reader(settings: dict[str, Any], cid: str, stop: Any, out: Any) -> None:
    """The board's own read (services/board/queries.leaderboard_rows: the whole round, decoded) in a loop,
    once a second (each read ships the whole round into Python, ≈ 80 ms of a core at 3,000 rows: more often
    would load the shared 2 cores the scorer is measured on), until ``stop``; sends back (seconds per read,
    rows per read)."""
    s = Settings(**settings, _env_file=None)  # type: ignore[call-arg]

    async def run() -> tuple[list[float], list[int]]:
        times: list[float] = []
        rows: list[int] = []
        ch = await get_async_client(s)
        try:
            while not stop.is_set():
                t = time.perf_counter()
                got = await queries.leaderboard_rows(ch, cid, "r1")
                if got:
                    times.append(time.perf_counter() - t)
                    rows.append(len(got))
                await asyncio.sleep(1.0)
        finally:
            await ch.close()
        return times, rows

    out.send(asyncio.run(run()))


async def e2e(base: Settings, work: Path, contestants: int, seconds: int, intake: str, flush_ms: int) -> dict[str, Any]:
    tag = f"e2e{uuid.uuid4().hex[:6]}"
    cid = f"bench-{tag}"
    path, _ = make_contest(work, cid, contestants, groups=3)
    s = _topic_settings(base, tag, f"bench_{tag}")
    assert (await ensure_topics(s)).success
    port = free_port()
    sp = start_scorer(
        s,
        [path],
        tag,
        work / f"{tag}.log",
        port,
        LIVEBOARD_SCORER_INTAKE=intake,
        LIVEBOARD_LOG_LEVEL=os.environ.get("BENCH_LOG_LEVEL", "INFO"),
        LIVEBOARD_SCORER_FLUSH_INTERVAL_MS=str(flush_ms),
    )
    print("scorer log:", sp.log, flush=True)
    try:
        await wait_healthy(sp, 120)
        return await _drive(s, sp, cid, contestants, seconds)
    finally:
        sp.stop()


def _hist_le(text: str, name: str, q: float) -> float | None:
    """The upper bound (ms) of the histogram bucket that holds quantile ``q`` (0..1) of ``name`` (summed over
    labels): a recompute's p50/p99 to the bucket's resolution, from the scorer's own /metrics."""
    buckets: dict[float, float] = {}
    for line in text.splitlines():
        if line.startswith(name + "_bucket{"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            bound = float("inf") if le == "+Inf" else float(le)
            buckets[bound] = buckets.get(bound, 0.0) + float(line.split()[-1])
    if not buckets or not buckets.get(float("inf")):
        return None
    total = buckets[float("inf")]
    for bound in sorted(buckets):
        if buckets[bound] >= q * total:
            return bound * 1000
    return None


async def _drive(s: Settings, sp: ScorerProc, cid: str, contestants: int, seconds: int) -> dict[str, Any]:
    sent: list[tuple[float, int, int]] = []  # (due time, partition, offset), from the generator process
    updates: list[tuple[float, dict[str, int]]] = []
    offsets_of: dict[int, dict[str, int]] = {}  # version -> offsets it had read
    ch_seen: list[tuple[float, int]] = []  # (when a leaderboard version first showed in ClickHouse, version)
    reads: list[float] = []  # the board's read (whole round)
    read_rows: list[int] = []
    final_reads: list[float] = []  # top 50 of `leaderboard FINAL`
    rss: list[float] = []
    stop = asyncio.Event()

    async def listen() -> None:
        consumer = make_consumer(s, s.topic(SCORES), group_id=None, auto_offset_reset="latest")
        await consumer.start()
        try:
            while not stop.is_set():
                batch = await consumer.getmany(timeout_ms=100)
                now = time.time()
                for recs in batch.values():
                    for r in recs:
                        doc = orjson.loads(r.value)
                        if doc["contest_id"] == cid:
                            offsets = {k: int(v) for k, v in doc["offsets"].items()}
                            updates.append((now, offsets))
                            offsets_of[doc["version"]] = offsets
        finally:
            await consumer.stop()

    def poll_clickhouse() -> None:
        client = get_client(s)
        last = 0
        try:
            while not stop.is_set():
                rows = client.query(
                    "SELECT max(version) FROM leaderboard WHERE contest_id = {c:String}", parameters={"c": cid}
                ).result_rows
                if rows and rows[0][0] and rows[0][0] != last:
                    last = rows[0][0]
                    ch_seen.append((time.time(), int(last)))
                t = time.perf_counter()
                client.query(
                    "SELECT group_id, contestant_id, rank, display_name, total_display, gmv_fen FROM leaderboard "
                    "FINAL WHERE contest_id = {c:String} AND round_id = 'r1' ORDER BY group_id, rank LIMIT 50",
                    parameters={"c": cid},
                )
                final_reads.append(time.perf_counter() - t)
                time.sleep(0.03)
        finally:
            client.close()

    async def sample_rss() -> None:
        while not stop.is_set():
            rss.append(rss_mb(sp.proc.pid))
            await asyncio.sleep(1)

    tasks = [asyncio.create_task(listen()), asyncio.create_task(sample_rss())]
    poller = asyncio.create_task(asyncio.to_thread(poll_clickhouse))
    # the board is its own process: so is its read here (the load generator's GIL is not in its way)
    mp = multiprocessing.get_context("spawn")
    stop_reads = mp.Event()
    parent_end, child_end = mp.Pipe(duplex=False)
    reader = mp.Process(target=_board_reader, args=(s.model_dump(), cid, stop_reads, child_end), daemon=True)
    reader.start()
    # the load generator is a process of its own too (open loop: it sends on schedule whatever happens here)
    gen_end, gen_child = mp.Pipe(duplex=False)
    start_at = time.time() + 3.0  # the generator's start-up (imports, producer) is not in the window
    generator = mp.Process(
        target=_generator, args=(s.model_dump(), cid, contestants, seconds, start_at, gen_child), daemon=True
    )
    generator.start()
    load_start = os.getloadavg()
    got_sent, lags = await asyncio.to_thread(gen_end.recv)
    generator.join(10)
    sent.extend(got_sent)
    behind = time.time() - (start_at + seconds)
    load_end = os.getloadavg()
    await asyncio.sleep(8)
    stop.set()
    stop_reads.set()
    await asyncio.gather(*tasks, poller)
    got_reads = await asyncio.to_thread(parent_end.recv)
    reader.join(10)
    reads.extend(got_reads[0])
    read_rows.extend(got_reads[1])
    text = await _metrics(sp.port)

    def latencies(marks: list[tuple[float, dict[str, int]]]) -> tuple[list[float], int]:
        by_part: dict[str, tuple[list[int], list[float]]] = {}
        for t, offsets in marks:
            for p, o in offsets.items():
                wm, ts = by_part.setdefault(p, ([], []))
                if not wm or o > wm[-1]:
                    wm.append(o)
                    ts.append(t)
        out, missing = [], 0
        for t_due, partition, offset in sent:  # latency counted from the snapshot's due time
            wm, ts = by_part.get(str(partition), ([], []))
            j = bisect.bisect_right(wm, offset)  # first watermark > offset
            if j >= len(wm):
                missing += 1
            else:
                out.append(max(0.0, ts[j] - t_due))
        return out, missing

    upd, upd_missing = latencies(updates)
    ch_versions = [(t, offsets_of[v]) for t, v in ch_seen if v in offsets_of]
    chl, ch_missing = latencies(ch_versions)
    rec_sum = _sum_metric(text, "liveboard_scoring_recompute_seconds_sum")
    rec_n = _sum_metric(text, "liveboard_scoring_recompute_seconds_count")

    def summary(v: list[float]) -> dict[str, float]:
        return {
            "p50_ms": round(pct(v, 50) * 1000),
            "p95_ms": round(pct(v, 95) * 1000),
            "p99_ms": round(pct(v, 99) * 1000),
            "max_ms": round(max(v) * 1000) if v else float("nan"),
        }

    return {
        "contestants": contestants,
        "seconds": seconds,
        "events": len(sent),
        "producer_behind_s": round(behind, 2),
        "schedule_lag_ms": {  # the generator's sent − due: a late generator would flatter the latencies
            "p50": round(pct(lags, 50) * 1000, 1),
            "p99": round(pct(lags, 99) * 1000, 1),
            "max": round(max(lags) * 1000, 1) if lags else None,
        },
        # a generator more than 100 ms late at p99 did not offer the load it claims: the latencies mean nothing
        "valid": bool(lags) and pct(lags, 99) <= 0.1,
        "load_average_start_end": [load_start, load_end],
        "to_scores_topic": {**summary(upd), "not_covered": upd_missing},
        "to_clickhouse": {**summary(chl), "not_covered": ch_missing},
        "leaderboard_read": {  # top 50 of `leaderboard FINAL`, every 30 ms (as in the earlier runs)
            "p50_ms": round(pct(final_reads, 50) * 1000, 1),
            "p99_ms": round(pct(final_reads, 99) * 1000, 1),
            "n": len(final_reads),
        },
        "board_whole_round_read": {  # services.board.queries.leaderboard_rows, own process, once a second
            "p50_ms": round(pct(reads, 50) * 1000, 1),
            "p99_ms": round(pct(reads, 99) * 1000, 1),
            "n": len(reads),
            "rows": max(read_rows) if read_rows else 0,
        },
        "recompute_mean_ms": round(rec_sum / rec_n * 1000, 1) if rec_n else None,
        # per stage: a recompute's own time (bucket bounds), how often one ran; to_clickhouse − to_scores_topic
        # above is the publish after the write
        "recompute_p50_le_ms": _hist_le(text, "liveboard_scoring_recompute_seconds", 0.5),
        "recompute_p99_le_ms": _hist_le(text, "liveboard_scoring_recompute_seconds", 0.99),
        "recompute_every_ms": round((seconds + 8) * 1000 / rec_n) if rec_n else None,
        "insert_mean_ms": {
            t: round(
                _sum_metric(text, f'liveboard_scoring_sink_insert_seconds_sum{{table="{t}"}}')
                / max(1.0, _sum_metric(text, f'liveboard_scoring_sink_insert_seconds_count{{table="{t}"}}'))
                * 1000,
                1,
            )
            for t in (
                "events_archive",
                "contestant_series",
                "scores",
                "leaderboard",
                "round_results",
            )
        },
        "inserts": {
            t: int(_sum_metric(text, f'liveboard_scoring_sink_insert_seconds_count{{table="{t}"}}'))
            for t in ("events_archive", "leaderboard")
        },
        "recomputes": int(rec_n),
        "scorer_peak_rss_mb": round(max(rss)) if rss else None,
        "scorer_mean_rss_mb": round(statistics.mean(rss)) if rss else None,
        "load_average": os.getloadavg(),
    }


# ---------------------------------------------------------------------------------------------- replay


def replay(base: Settings, work: Path, n_events: int, contestants: int) -> dict[str, Any]:
    tag = f"rp{uuid.uuid4().hex[:6]}"
    cid = f"bench-{tag}"
    path, _ = make_contest(work, cid, contestants, groups=3)
    s = _topic_settings(base, tag, f"bench_{tag}")
    gen = Snapshots(cid)
    parse_event(gen.make(0, T0, random.Random(0))[1])  # the template is a valid event
    gen.state.clear()
    rnd = random.Random(3)
    client = get_client(s)
    t0 = time.perf_counter()
    per = n_events // contestants
    rows: list[list[Any]] = []
    written = 0
    for k in range(per):
        for i in range(contestants):
            _key, value = gen.make(i, T0 + 60_000 + 1000 * k, rnd)
            ev = orjson.loads(value)
            rows.append(
                [
                    ev["event_id"],
                    ev["type"],
                    cid,
                    ev["contestant_id"],
                    "douyin",
                    ev["account_id"],
                    ev["room_id"],
                    "",
                    ev["observed_at"],
                    ev["ingested_at"],
                    "poll",
                    "provisional",
                    value,
                    i % 6,
                    written,
                ]
            )
            written += 1
            if len(rows) >= 100_000:
                client.insert(
                    "events_archive", rows, column_names=list(ARCHIVE_COLUMNS), settings=DEDUP_INSERT_SETTINGS
                )
                rows = []
    if rows:
        client.insert("events_archive", rows, column_names=list(ARCHIVE_COLUMNS), settings=DEDUP_INSERT_SETTINGS)
    client.close()
    load_s = time.perf_counter() - t0
    cfg = ScorerSettings(contest_files=[path])
    report = replay_contest(s, cfg, cid)
    return {
        "events": report["events"],
        "archive_load_s": round(load_s, 1),
        "replay_s": report["seconds"],
        "fold_s": report["fold_seconds"],
        "events_per_s": report["events_per_s"],
        "series_rows": report["series_rows"],
        "digest": report["rounds"][0]["digest"] if report["rounds"] else None,
    }


# ------------------------------------------------------------------------------------------------ main


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", choices=["throughput", "e2e", "replay"], action="append")
    ap.add_argument("--throughput-events", type=int, default=150_000)
    ap.add_argument("--throughput-window", type=float, default=90.0, help="seconds each intake may take at most")
    ap.add_argument(
        "--staged-workers",
        type=int,
        action="append",
        help="throughput: fold workers of the staged runs (default 1 and 2)",
    )
    ap.add_argument("--faust", action="store_true", help="throughput: also the faust intake (slow, off by default)")
    ap.add_argument(
        "--profile", help="throughput: py-spy each scorer process into this folder and print its top entries"
    )
    ap.add_argument("--contestants", type=int, action="append", help="e2e field sizes (default 1000 and 3000)")
    ap.add_argument("--seconds", type=int, default=120, help="e2e load duration (120 for the record, ~20 for smoke)")
    ap.add_argument("--intake", default="direct", choices=["faust", "direct"], help="e2e scorer intake")
    ap.add_argument("--flush-interval-ms", type=int, default=500, help="LIVEBOARD_SCORER_FLUSH_INTERVAL_MS for e2e")
    ap.add_argument("--replay-events", type=int, default=1_000_000)
    ap.add_argument("--keep", action="store_true", help="keep the work folder (scorer logs) afterwards")
    args = ap.parse_args()
    only = set(args.only or ["throughput", "e2e", "replay"])
    print(
        f"machine: {os.cpu_count()} cores (nproc), Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d %H:%M %Z')}, load average {os.getloadavg()}",
        flush=True,
    )
    tmp = tempfile.mkdtemp(prefix="bench-scoring-")
    try:
        work = Path(tmp)
        settings = stack_settings(work / "stack")
        st = Stack(settings)
        await asyncio.to_thread(st.up)
        try:
            migrate(settings)
            results: dict[str, Any] = {}
            if "throughput" in only:
                results["throughput"] = await throughput(
                    settings,
                    work,
                    args.throughput_events,
                    3000,
                    args.throughput_window,
                    args.staged_workers or [1, 2],
                    args.faust,
                    Path(args.profile) if args.profile else None,
                )
                print(json.dumps({"throughput": results["throughput"]}, ensure_ascii=False), flush=True)
            if "e2e" in only:
                for n in args.contestants or [1000, 3000]:
                    key = f"e2e_{n}_{args.intake}_flush{args.flush_interval_ms}"
                    results[key] = await e2e(settings, work, n, args.seconds, args.intake, args.flush_interval_ms)
                    print(json.dumps({key: results[key]}, ensure_ascii=False), flush=True)
            if "replay" in only:
                results["replay"] = await asyncio.to_thread(replay, settings, work, args.replay_events, 3000)
                print(json.dumps({"replay": results["replay"]}, ensure_ascii=False), flush=True)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(st.down)
    finally:
        if args.keep:
            print(f"work folder kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
