"""The scorer's core, independent of how records arrive (faust agent or direct consumer, ``app.py``).

For each batch of ``lb.events.v1`` records: validate (invalid → ``lb.dlq.v1``), drop recent duplicates,
fold into state, queue archive/series rows and mark rounds dirty. A recompute loop scores dirty rounds at
most every ``coalesce_ms``, timed to end when the next board flush may start; the board flush writes what
recomputes made (``sink.BOARD_TABLES``) at once and then publishes the score updates; the record flush
writes the rows derived from records (``sink.RECORD_TABLES``) and then acknowledges the records. Each
table gets at most one insert per ``flush_interval_ms``; explained score rows are written by their own
loop, less often.
**Offsets are committed only for acknowledged records**, so nothing is lost
when the process dies or ClickHouse is down: the flush retries until it succeeds (consumption stops
once ``max_pending_rows`` wait) and a restarted scorer rebuilds state from the archive and re-reads from
the committed offsets.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from liveboard.aio import wait_set
from liveboard.contracts import parse_event
from liveboard.errors import ValidationError
from liveboard.kafka.catalog import DLQ, EVENTS, SCORES
from liveboard.logs import now_ms
from liveboard.settings import Settings
from services.scoring import metrics as m
from services.scoring.config import ScorerSettings
from services.scoring.contests import ContestPlan
from services.scoring.dedup import RecentIds
from services.scoring.freeze_desk import FreezeDesk
from services.scoring.loader import archive_rows, fold
from services.scoring.recompute import Outcome, Recomputer, ScoreRef, Versions, score_row
from services.scoring.retry import RetryPolicy
from services.scoring.rows import (
    archive_row,
    dead_letter_row,
    frozen_leaderboard_rows,
    revision_row,
    series_row,
)
from services.scoring.sink import (
    BOARD_TABLES,
    RECORD_TABLES,
    TABLE_ORDER,
    ClickHouseSink,
    offsets_token,
    version_token,
)
from services.scoring.state import ContestState, FrozenRound

log = logging.getLogger(__name__)

FOLD_CHUNK = 500  # records folded between two yields to the event loop


@dataclass(slots=True)
class Record:
    topic: str
    partition: int
    offset: int
    value: bytes
    handle: Any = None  # what the intake needs to acknowledge it (a faust event, or None for direct)


# An intake acknowledges records after their batch is in ClickHouse.
AckFn = Callable[[list[Record]], Awaitable[None]]


@dataclass
class Batch:
    """Everything queued between two flushes. A failed flush retries the same Batch (same tokens)."""

    rows: dict[str, list[list[Any]]] = field(default_factory=lambda: {t: [] for t in TABLE_ORDER})
    ranges: dict[str, dict[tuple[str, int], tuple[int, int]]] = field(default_factory=dict)
    # a built row (frozen results) or the ScoreRef it is built from when written
    leaderboard: dict[tuple[str, str, str, str], list[Any] | ScoreRef] = field(default_factory=dict)
    deletes: list[tuple[str, str, str, str, int]] = field(default_factory=list)
    scores: dict[tuple[str, str, str], ScoreRef] = field(default_factory=dict)
    updates: list[dict[str, Any]] = field(default_factory=list)
    dead_out: list[tuple[bytes, bytes]] = field(default_factory=list)  # invalid events to lb.dlq.v1
    acks: dict[str, list[Record]] = field(default_factory=dict)  # intake name -> records
    freezes: list[tuple[str, str]] = field(default_factory=list)
    positions: dict[int, int] = field(default_factory=dict)
    written: set[str] = field(default_factory=set)  # tables already written (a retry skips them)
    leaderboard_rows: list[list[Any]] | None = None  # built once, so a retry sends the same rows

    def pending_rows(self) -> int:
        return sum(len(v) for v in self.rows.values()) + len(self.leaderboard)

    def empty(self) -> bool:
        return (
            not self.pending_rows()
            and not self.scores
            and not self.updates
            and not self.dead_out
            and not any(self.acks.values())
            and not self.freezes
            and not self.deletes
        )


def _note_range(ranges: dict[tuple[str, int], tuple[int, int]], topic: str, partition: int, offset: int) -> None:
    key = (topic, partition)
    cur = ranges.get(key)
    if cur is None:
        ranges[key] = (offset, offset)
    else:
        lo, hi = cur
        ranges[key] = (min(lo, offset), max(hi, offset))


def _settle_heap() -> None:
    """After the state is rebuilt: keep the garbage collector's full passes out of recomputes.

    The state is a large, long-lived heap (a winning snapshot per room, inputs per contestant and round);
    a full collection walks all of it (≈ 0.1 s at 3,000 contestants, measured) and the collector ran one
    in the middle of recomputes. What the rebuild made is moved out of the collector's sight
    (``gc.freeze``) and the young generation is collected less often. Replaced snapshots are freed by
    reference counting as before; only reference cycles wait longer."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 50)


class Scorer:
    def __init__(
        self,
        settings: Settings,
        cfg: ScorerSettings,
        plans: dict[str, ContestPlan],
        sink: ClickHouseSink | None = None,
    ) -> None:
        self.settings = settings
        self.cfg = cfg
        self.plans = plans
        self.sink = sink or ClickHouseSink(settings)
        self.retry = RetryPolicy(cfg.retry_base_s, cfg.retry_cap_s)
        self.desk = FreezeDesk(settings, cfg, set(plans), self.sink, self.retry)  # lb.freeze_requests.v1
        self.events_topic = settings.topic(EVENTS)
        self.dlq_topic = settings.topic(DLQ)
        self.scores_topic = settings.topic(SCORES)
        self.versions = Versions()
        self.states = {cid: ContestState(p) for cid, p in plans.items()}
        self.recomputers = {cid: Recomputer(st, self.versions, cfg.update_top_n) for cid, st in self.states.items()}
        self.dedup = RecentIds(cfg.dedup_capacity)
        self.batch = Batch()  # record-derived rows and the records to acknowledge after them
        self.board = Batch()  # what recomputes made: leaderboard, round results, updates to publish
        self.positions: dict[int, int] = {}  # lb.events.v1 partition -> next offset to process
        self.acked: dict[tuple[str, int], int] = {}
        self.ackers: dict[str, AckFn] = {}
        self.ready = asyncio.Event()
        self.room = asyncio.Event()
        self.room.set()
        self.flush_wanted = asyncio.Event()
        self.board_wanted = asyncio.Event()
        self.flush_failing = False
        self.all_partitions = True  # set by the intake from its assignment
        self.behind = False  # a backlog to read (set from the lag every second)
        self.last_flush = 0.0
        self.last_flush_start = 0.0
        self.last_board_start = 0.0
        self.producer: AIOKafkaProducer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._flush_lock = asyncio.Lock()
        self._board_lock = asyncio.Lock()
        self._explain_lock = asyncio.Lock()
        self.explain_pending: dict[tuple[str, str, str], ScoreRef] = {}
        self.last_scores_cost = 0.0
        self.archive_contests = set(cfg.contests) if cfg.contests else None
        self.processed = 0

    # ------------------------------------------------------------------------------------ lifecycle

    async def start(self, producer: AIOKafkaProducer | None) -> None:
        """Rebuild state from the archive, then start the recompute and flush loops."""
        self.producer = producer
        await self._rebuild()
        _settle_heap()
        self._tasks = [
            asyncio.create_task(self._recompute_loop(), name="scorer-recompute"),
            asyncio.create_task(self._flush_loop(), name="scorer-flush"),
            asyncio.create_task(self._board_loop(), name="scorer-board"),
            asyncio.create_task(self._explain_loop(), name="scorer-explain"),
            asyncio.create_task(self.desk.run(), name="scorer-freeze-desk"),
        ]
        self.ready.set()

    async def stop(self) -> None:
        """Flush what is queued (so its records are acknowledged), then stop the loops."""
        try:
            await asyncio.wait_for(self.flush(final=True), timeout=20)
        except Exception as exc:
            log.warning("final flush failed", extra={"fields": {"error": repr(exc)}})
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):
                pass
        self.sink.close()

    async def _rebuild(self) -> None:
        t0 = time.perf_counter()
        if not self.states:
            return
        floor = await self._retry("versions", self._max_version)
        self.versions.last = max(self.versions.last, floor)
        stats = await self._retry("rebuild", self._fold_archive)
        frozen = await self._retry("frozen", self._load_frozen)
        for st in self.states.values():
            st.revisions.clear()  # recorded when they were first seen
            st.record_revisions = True
        for cid, rc in self.recomputers.items():
            rc.mark(self.states[cid].active_rounds)
            m.STATE_CONTESTANTS.labels(cid).set(len(self.states[cid].contestants))
        log.info(
            "state rebuilt from the archive",
            extra={
                "fields": {
                    "events": stats.events,
                    "seconds": round(time.perf_counter() - t0, 3),
                    "frozen_rounds": frozen,
                    "version_floor": floor,
                }
            },
        )

    def _max_version(self) -> int:
        rows = self.sink.query_sync(
            "SELECT max(version) FROM (SELECT max(version) AS version FROM leaderboard "
            "UNION ALL SELECT max(version) FROM scores UNION ALL SELECT max(version) FROM pending_revisions)"
        )
        return int(rows[0][0] or 0)

    def _fold_archive(self) -> Any:
        for st in self.states.values():
            st.record_revisions = False
        client = self.sink._get()

        def remember(ev: Any, _row: tuple[Any, ...]) -> None:
            self.dedup.add(ev.event_id)

        return fold(self.states, archive_rows(client, self.states.keys()), remember)

    def _load_frozen(self) -> int:
        # every freeze of the chains (frozen_round_history); the one in force per round is the one whose
        # round_frozen event is the newest in the log (a re-freeze after an appeal: sequence n+1)
        rows = self.sink.query_sync(
            "SELECT contest_id, round_id, frozen_at, content_hash, leaderboard_digest, event_count, results "
            "FROM frozen_round_history FINAL WHERE contest_id IN {ids:Array(String)} ORDER BY sequence",
            {"ids": sorted(self.states)},
        )
        n = 0
        for contest_id, round_id, frozen_at, content_hash, digest, count, results in rows:
            st = self.states[contest_id]
            seen = st.frozen_events.get(round_id)
            if seen is None or seen[1] != content_hash:
                continue  # not the freeze in force, or its round_frozen event is not in the log (yet)
            frozen = FrozenRound(round_id, int(frozen_at), content_hash, digest, int(count), orjson.loads(results))
            st.frozen[round_id] = frozen
            # (re)write the frozen rows: a crash may have come between archiving the event and writing them
            version = self.versions.next()
            for row in frozen_leaderboard_rows(frozen, contest_id, version, now_ms()):
                self.board.leaderboard[(row[0], row[1], row[2], row[3])] = row
            self.board_wanted.set()
            n += 1
        return n

    async def _retry(self, what: str, fn: Callable[[], Any]) -> Any:
        return await self.retry.in_thread(what, fn)

    # -------------------------------------------------------------------------------------- intake

    def register_acker(self, name: str, fn: AckFn) -> None:
        self.ackers[name] = fn

    async def handle_events(self, intake: str, records: list[Record]) -> None:
        """Fold a batch of ``lb.events.v1`` records in; they are acknowledged by a later flush.

        In chunks, yielding to the event loop between them, so a large batch (catching up) does not hold
        up flushes, acknowledgements and recomputes; each chunk's rows and acknowledgements go to the
        batch that is current while it is folded."""
        await self.ready.wait()
        for i in range(0, len(records), FOLD_CHUNK):
            while not self.room.is_set():
                await self.room.wait()
            self._fold_chunk(intake, records[i : i + FOLD_CHUNK])
            await asyncio.sleep(0)

    def _fold_chunk(self, intake: str, records: list[Record]) -> None:
        b = self.batch
        rows = b.rows
        archive, series = rows["events_archive"], rows["contestant_series"]
        ranges = b.ranges.setdefault("events", {})
        dedup = self.dedup
        states = self.states
        recomputers = self.recomputers
        only = self.archive_contests
        positions = self.positions
        counts: dict[tuple[str, str], int] = {}
        for rec in records:
            positions[rec.partition] = rec.offset + 1
            try:
                ev = parse_event(rec.value)
            except ValidationError as exc:
                self._dead_letter(rec, str(exc))
                continue
            t = ev.type
            if dedup.seen(ev.event_id):
                outcome = "duplicate"
            else:
                st = states.get(ev.contest_id)
                if st is None and only is not None:
                    outcome = "other_contest"
                else:
                    archive.append(archive_row(ev, rec.value, rec.partition, rec.offset))
                    _note_range(ranges, rec.topic, rec.partition, rec.offset)
                    if st is None:
                        outcome = "unscored"
                    else:
                        if t == "live_metrics_snapshot":
                            series.append(series_row(ev))
                        elif t == "round_frozen":
                            b.freezes.append((ev.contest_id, ev.data.round_id))
                        dirty = st.apply(ev)
                        if dirty:
                            recomputers[ev.contest_id].mark(dirty)
                        outcome = "applied"
            key = (t, outcome)
            counts[key] = counts.get(key, 0) + 1
        for (t, outcome), n in counts.items():
            m.EVENTS.labels(t, outcome).inc(n)
            if outcome == "duplicate":
                m.DUPLICATES.inc(n)
        b.acks.setdefault(intake, []).extend(records)
        self.processed += len(records)
        for st in states.values():
            if st.revisions:
                stamp = now_ms()
                for r in st.revisions:
                    rows["metric_revisions"].append(revision_row(r, stamp))
                    m.REVISIONS.labels(r.metric).inc()
                st.revisions.clear()
        self._check_room()
        if len(archive) >= self.cfg.flush_max_rows:
            self.flush_wanted.set()

    async def handle_dead_letters(self, intake: str, records: list[Record]) -> None:
        await self.ready.wait()
        b = self.batch
        ranges = b.ranges.setdefault("dead_letters", {})
        for rec in records:
            b.rows["dead_letters"].append(dead_letter_row(rec.value, rec.partition, rec.offset))
            _note_range(ranges, rec.topic, rec.partition, rec.offset)
        b.acks.setdefault(intake, []).extend(records)
        self._check_room()

    def _dead_letter(self, rec: Record, reason: str) -> None:
        m.EVENTS.labels("invalid", "invalid").inc()
        log.warning(
            "invalid event dead-lettered",
            extra={"fields": {"partition": rec.partition, "offset": rec.offset, "reason": reason[:300]}},
        )
        try:
            body = {"body": rec.value.decode("utf-8")}
        except UnicodeDecodeError:
            body = {"body_b64": base64.b64encode(rec.value).decode()}
        doc = {
            "source": "scoring",
            "platform": "",
            "account_id": None,
            "reason": f"{rec.topic}[{rec.partition}]@{rec.offset}: {reason}",
            "received_at": now_ms(),
            **body,
        }
        self.batch.dead_out.append((b"scoring", orjson.dumps(doc)))

    def pending_rows(self) -> int:
        return self.batch.pending_rows() + self.board.pending_rows()

    def _check_room(self) -> None:
        pending = self.pending_rows()
        m.SINK_PENDING.set(pending)
        if pending >= self.cfg.max_pending_rows:
            if self.room.is_set():
                log.warning("sink backlog full: consumption paused", extra={"fields": {"rows": pending}})
            self.room.clear()
            self.flush_wanted.set()

    # ------------------------------------------------------------------------------------ recompute

    async def _recompute_loop(self) -> None:
        coalesce = self.cfg.coalesce_ms / 1000
        interval = self.cfg.flush_interval_ms / 1000
        tick = min(0.02, max(coalesce / 4, 0.005))
        while True:
            await asyncio.sleep(tick)
            if not self.all_partitions:
                continue  # another worker holds part of the topic: a leaderboard from half the log is wrong
            now = time.monotonic()
            for cid, rc in self.recomputers.items():
                # A result cannot be written before the board's next flush slot: recomputing earlier only
                # makes a version that the next one replaces unseen, and keeps the newest events waiting
                # for that slot. So a recompute is timed to end as the slot opens.
                slot = self.last_board_start + interval - rc.last_cost - tick
                if now >= slot and rc.due(now, coalesce, self.behind):
                    try:
                        outcomes = rc.run(dict(self.positions))
                    except Exception:
                        log.exception("recompute failed", extra={"fields": {"contest": cid}})
                        continue
                    for o in outcomes:
                        self._queue_outcome(o)
                    await asyncio.sleep(0)

    def recompute_now(self) -> list[Outcome]:
        """Recompute every dirty round at once (tests, replay)."""
        out = []
        for rc in self.recomputers.values():
            if rc.dirty:
                for o in rc.run(dict(self.positions)):
                    self._queue_outcome(o)
                    out.append(o)
        return out

    def _queue_outcome(self, o: Outcome) -> None:
        b = self.board
        if not o.frozen:
            for ref in o.scores:
                b.leaderboard[(ref.contest_id, ref.round_id, ref.group_id, ref.contestant_id)] = ref
        for group, cid in o.deletes:
            b.deletes.append((o.contest_id, o.round_id, group, cid, o.version))
        for ref in o.scores:
            b.scores[(ref.contest_id, ref.round_id, ref.contestant_id)] = ref
        b.rows["pending_revisions"].extend(o.pending_rows)
        b.rows["ledger_reconciliation"].extend(o.reconcile_rows)
        b.rows["round_results"].append(o.result_row)
        b.updates.append(o.update)
        b.positions = dict(self.positions)
        self.board_wanted.set()

    # ---------------------------------------------------------------------------------------- flush

    async def _flush_loop(self) -> None:
        interval = self.cfg.flush_interval_ms / 1000
        while True:
            await wait_set(self.flush_wanted, interval)
            wait = self.last_flush_start + interval - time.monotonic()
            if wait > 0 and self.room.is_set():
                await asyncio.sleep(wait)
            self.flush_wanted.clear()
            await self.flush_records()

    async def _board_loop(self) -> None:
        interval = self.cfg.flush_interval_ms / 1000
        while True:
            await self.board_wanted.wait()
            wait = self.last_board_start + interval - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self.board_wanted.clear()
            await self.flush_board()

    async def flush(self, final: bool = False) -> None:
        """Write everything queued (retrying until ClickHouse takes it): the board's rows, then publish
        their updates; the records' rows, then acknowledge the records.

        Each half is serialised: a flush asked for by a rebalance or at stop waits for the one in progress,
        so batches are written, published and acknowledged strictly in order."""
        await self.flush_board()
        await self.flush_records()
        if final:
            await self.explain()

    async def flush_board(self) -> None:
        async with self._board_lock:
            b = self.board
            if b.empty():
                return
            t_start = self.last_board_start = time.monotonic()
            self.board = Batch()
            # Explained score rows are a projection of state, not of these records (a restarted scorer
            # rewrites every one on its first recompute), so they are written on their own, less often,
            # and never hold up the leaderboard or the acknowledgements.
            self.explain_pending.update(b.scores)
            b.scores = {}
            # round_results last: its row (the version's digest, what tests, replay and the notary compare)
            # means the version's leaderboard and pending revisions are in
            await self._until_written(b, BOARD_TABLES[:-1])
            await self._until_written(b, BOARD_TABLES[-1:])
            t_written = time.monotonic()
            await self._publish(b)
            if log.isEnabledFor(logging.DEBUG):
                log.debug(
                    "board flushed",
                    extra={
                        "fields": {
                            "rows": {t: len(r) for t, r in b.rows.items() if r},
                            "leaderboard": len(b.leaderboard),
                            "updates": len(b.updates),
                            "write_s": round(t_written - t_start, 3),
                            "total_s": round(time.monotonic() - t_start, 3),
                        }
                    },
                )

    async def flush_records(self) -> None:
        async with self._flush_lock:
            b = self.batch
            if not b.empty():
                t_start = self.last_flush_start = time.monotonic()
                self.batch = Batch()
                await self._until_written(b, RECORD_TABLES)
                t_written = time.monotonic()
                await self._ack(b)
                if log.isEnabledFor(logging.DEBUG):
                    log.debug(
                        "records flushed",
                        extra={
                            "fields": {
                                "rows": {t: len(r) for t, r in b.rows.items() if r},
                                "acks": sum(len(v) for v in b.acks.values()),
                                "write_s": round(t_written - t_start, 3),
                                "total_s": round(time.monotonic() - t_start, 3),
                            }
                        },
                    )
                for contest_id, round_id in b.freezes:
                    await self._apply_freeze(contest_id, round_id)
            self.last_flush = time.monotonic()

    async def _explain_loop(self) -> None:
        while True:
            # at most every scores_interval, and never more than a tenth of the time: a large field gets its
            # explained rows less often, its leaderboard as often
            await asyncio.sleep(max(self.cfg.scores_interval_ms / 1000, 10 * self.last_scores_cost))
            await self.explain()

    async def explain(self) -> None:
        """Write the newest explained ``scores`` row of every contestant that changed since the last time."""
        async with self._explain_lock:
            refs = self.explain_pending
            if not refs:
                return
            self.explain_pending = {}
            t0 = time.perf_counter()
            rows = await asyncio.to_thread(lambda: [score_row(ref) for ref in refs.values()])
            self.last_scores_cost = time.perf_counter() - t0
            token = version_token(f"{self.sink.database}.scores", "scores", rows, {})
            await self.retry.call("write of explained scores", lambda: self.sink.insert("scores", rows, token))

    async def _until_written(self, b: Batch, tables: tuple[str, ...]) -> None:
        """Write the batch, retrying (same rows, same tokens) until ClickHouse takes every table of it."""

        def failing(_exc: BaseException, _delay: float) -> None:
            self.flush_failing = True

        await self.retry.call(f"write of {', '.join(tables)} (offsets held)", lambda: self._write(b, tables), failing)
        self.flush_failing = False
        self._check_room_after_flush()

    def _check_room_after_flush(self) -> None:
        pending = self.pending_rows()
        m.SINK_PENDING.set(pending)
        if pending < self.cfg.max_pending_rows:
            self.room.set()

    async def _write(self, b: Batch, tables: tuple[str, ...]) -> None:
        if "events_archive" in tables and b.dead_out:
            await self._produce_dead_letters(b)
        ev_ranges = b.ranges.get("events", {})
        dlq_ranges = b.ranges.get("dead_letters", {})
        todo = [t for t in tables if t not in b.written]
        if "leaderboard" in todo:
            await self._deletes(b)
        inserts = []
        names = []
        for table in todo:
            if table == "leaderboard":
                if b.leaderboard_rows is None:  # built once, so a retry sends the same rows (same token)
                    b.leaderboard_rows = [
                        v.leaderboard_row() if isinstance(v, ScoreRef) else v for v in b.leaderboard.values()
                    ]
                rows = b.leaderboard_rows
            else:
                rows = b.rows[table]
            if not rows:
                continue
            if table in ("events_archive", "contestant_series", "metric_revisions"):
                token = offsets_token(f"{self.sink.database}.{table}", ev_ranges)
            elif table == "dead_letters":
                token = offsets_token(f"{self.sink.database}.{table}", dlq_ranges)
            else:
                token = version_token(f"{self.sink.database}.{table}", table, rows, b.positions)
            inserts.append(self.sink.insert(table, rows, token))
            names.append(table)
        # every table's insert is attempted at once; a failed one is retried with the same token
        results = await asyncio.gather(*inserts, return_exceptions=True)
        failed = None
        for name, r in zip(names, results, strict=True):
            if isinstance(r, BaseException):
                failed = failed or r
            else:
                b.written.add(name)
        if failed is not None:
            raise failed

    async def _deletes(self, b: Batch) -> None:
        for contest_id, round_id, group, cid, version in b.deletes:
            if (contest_id, round_id, group, cid) in b.leaderboard:
                continue  # ranked there again in the same batch
            await self.sink.command(
                "DELETE FROM leaderboard WHERE contest_id = {c:String} AND round_id = {r:String} "
                "AND group_id = {g:String} AND contestant_id = {p:String} AND version < {v:UInt64}",
                {"c": contest_id, "r": round_id, "g": group, "p": cid, "v": version},
                table="leaderboard",
            )
        b.deletes.clear()

    async def _produce_dead_letters(self, b: Batch) -> None:
        if self.producer is None:
            raise RuntimeError("no producer for dead letters")
        futures = [
            await self.producer.send(
                self.dlq_topic, key=k, value=v, headers=[("type", b"dead_letter"), ("schema_version", b"1")]
            )
            for k, v in b.dead_out
        ]
        await asyncio.gather(*futures)
        b.dead_out = []

    async def _publish(self, b: Batch) -> None:
        if not b.updates or self.producer is None:
            return
        try:
            futures = []
            for u in b.updates:
                futures.append(
                    await self.producer.send(
                        self.scores_topic,
                        key=u["contest_id"].encode(),
                        value=orjson.dumps(u),
                        headers=[("type", b"score_update"), ("schema_version", b"1")],
                    )
                )
            await asyncio.wait_for(asyncio.gather(*futures), timeout=10)
            m.UPDATES.labels("published").inc(len(b.updates))
        except Exception as exc:
            m.UPDATES.labels("failed").inc(len(b.updates))
            log.error("score update not published", extra={"fields": {"error": repr(exc)[:300]}})

    async def _ack(self, b: Batch) -> None:
        for intake, records in b.acks.items():
            if not records:
                continue
            await self.ackers[intake](records)
            for rec in records:
                key = (rec.topic, rec.partition)
                if rec.offset + 1 > self.acked.get(key, 0):
                    self.acked[key] = rec.offset + 1
        for (topic, p), off in self.acked.items():
            m.COMMITTED.labels(topic, str(p)).set(off)

    async def _apply_freeze(self, contest_id: str, round_id: str) -> None:
        """A ``round_frozen`` event was archived: show the frozen result and keep it (pending revisions)."""
        st = self.states.get(contest_id)
        if st is None:
            return
        seen = st.frozen_events.get(round_id)
        # the freeze in force is the newest round_frozen of the round's chain in the log; its row is the
        # frozen_round_history row with the same content hash
        rows = await self._retry(
            "frozen",
            lambda: self.sink.query_sync(
                "SELECT frozen_at, content_hash, leaderboard_digest, event_count, results FROM frozen_round_history "
                "FINAL WHERE contest_id = {c:String} AND round_id = {r:String} AND content_hash = {h:String}",
                {"c": contest_id, "r": round_id, "h": seen[1] if seen is not None else ""},
            ),
        )
        if not rows:
            log.error(
                "round_frozen event without its frozen_round_history row; ignored (run `liveboard score freeze`)",
                extra={"fields": {"contest": contest_id, "round": round_id, "event": seen[1] if seen else None}},
            )
            return
        frozen_at, content_hash, digest, count, results = rows[0]
        frozen = FrozenRound(round_id, int(frozen_at), content_hash, digest, int(count), orjson.loads(results))
        already = st.frozen.get(round_id)
        st.frozen[round_id] = frozen
        version = self.versions.next()
        shown = set()
        for row in frozen_leaderboard_rows(frozen, contest_id, version, now_ms()):
            self.board.leaderboard[(row[0], row[1], row[2], row[3])] = row
            shown.add((row[2], row[3]))
        # rows of an earlier freeze of the chain (or of the live result) that this freeze no longer lists
        before = already.results.get("leaderboard", []) if already is not None else []
        for doc in before:
            if (doc["group_id"], doc["contestant_id"]) not in shown:
                self.board.deletes.append((contest_id, round_id, doc["group_id"], doc["contestant_id"], version))
        rc = self.recomputers[contest_id]
        rc.views.pop(round_id, None)
        rc.mark({round_id, *st.plan.dependents.get(round_id, ())})
        st.active_rounds.add(round_id)
        if already is None:
            log.info(
                "round frozen",
                extra={"fields": {"contest": contest_id, "round": round_id, "digest": digest, "events": count}},
            )
        self.board_wanted.set()

    # --------------------------------------------------------------------------------------- status

    def lag(self, highwater: Callable[[int], int | None], partitions: list[int]) -> dict[int, int]:
        out = {}
        for p in partitions:
            hw = highwater(p)
            if hw is None:
                continue
            pos = self.positions.get(p)
            if pos is None:
                pos = self.acked.get((self.events_topic, p), 0)
            out[p] = max(0, hw - pos)
        return out
