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
import gc
import logging
import time
from collections.abc import Callable
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from liveboard.kafka.catalog import DLQ, EVENTS, SCORES
from liveboard.logs import now_ms
from liveboard.settings import Settings
from services.scoring import metrics as m
from services.scoring.batch import AckFn, Batch
from services.scoring.config import ScorerSettings
from services.scoring.contests import ContestPlan
from services.scoring.dedup import RecentIds
from services.scoring.flush import Flushes
from services.scoring.freeze_desk import FreezeDesk
from services.scoring.intake import Intake
from services.scoring.loader import archive_rows, fold
from services.scoring.recompute import Outcome, Recomputer, ScoreRef, Versions
from services.scoring.retry import RetryPolicy
from services.scoring.rows import (
    frozen_leaderboard_rows,
)
from services.scoring.sink import (
    ClickHouseSink,
)
from services.scoring.state import ContestState, FrozenRound

log = logging.getLogger(__name__)


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


class Scorer(Intake, Flushes):
    """Lifecycle, rebuild, recompute and freezes; reading records in is ``Intake``'s job (intake.py), writing
    and acknowledging them ``Flushes``' (flush.py), turning events into rows ``rows.py``'s."""

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
        self.start_offsets: dict[int, int] = {}  # lb.events.v1 partition -> committed offset when assigned
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

    # ------------------------------------------------------------------------------------- freezes

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

    def archived_offsets(self) -> dict[int, int]:
        """lb.events.v1 partition -> the offset below which every record is archived (and committed)."""
        out = dict(self.start_offsets)
        for (topic, p), off in self.acked.items():
            if topic == self.events_topic and off > out.get(p, 0):
                out[p] = off
        return out

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
