"""Writing what is queued and acknowledging it (the scorer's output half): the board flush (what recomputes
made, then the lb.scores.v1 updates), the record flush (archive, series, revisions, dead letters, then the
acknowledgements), the explained scores, each retried with the scorer's retry policy until ClickHouse takes
it (same rows, same tokens). A mixin of ``processor.Scorer`` (its batches, sink, producer)."""

from __future__ import annotations

import asyncio
import logging
import time

import orjson

from liveboard.aio import wait_set
from services.scoring import metrics as m
from services.scoring.batch import Batch
from services.scoring.recompute import ScoreRef, score_row
from services.scoring.sink import BOARD_TABLES, RECORD_TABLES, offsets_token, version_token

log = logging.getLogger("services.scoring.processor")  # one logger name for the scorer's core, as before


class Flushes:
    # A record batch whose write was started and not finished: a flush cut short (cancelled by a timeout
    # around it, the rebalance listener's or ``stop``'s). The next record flush writes it first.
    unwritten: Batch | None = None
    # The same for the board: a board batch cut short is written (and its updates published) first by the
    # next board flush. Dropping it left those contestants' rows stale until they changed again, since a
    # recompute writes only the rows that changed.
    board_unwritten: Batch | None = None

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
            if self.board_unwritten is not None:
                await self._write_board(self.board_unwritten)
            b = self.board
            if b.empty():
                return
            self.board = Batch()
            await self._write_board(b)

    async def _write_board(self, b: Batch) -> None:
        """Write one board batch (retrying until ClickHouse takes it), then publish its updates."""
        self.board_unwritten = b  # until its updates are published
        t_start = self.last_board_start = time.monotonic()
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
        self.board_unwritten = None
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
            # A batch whose write was cut short is written first (same rows, same tokens), before anything
            # newer is acknowledged. Dropping it made a hole in the archive below a committed offset: its
            # records' ids are already in the recent-id memory, so when the consumer reads them again (from
            # the committed offsets, e.g. after a rebalance) they pass as duplicates and their offsets are
            # committed with the next batch (tests/scoring/test_archive_complete.py).
            if self.unwritten is not None:
                await self._write_records(self.unwritten)
            b = self.batch
            if not b.empty():
                self.batch = Batch()
                await self._write_records(b)
            self.last_flush = time.monotonic()

    async def _write_records(self, b: Batch) -> None:
        """Write one record batch (retrying until ClickHouse takes it), then acknowledge its records."""
        self.unwritten = b  # until ClickHouse has every table of it
        t_start = self.last_flush_start = time.monotonic()
        await self._until_written(b, RECORD_TABLES)
        self.unwritten = None
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
