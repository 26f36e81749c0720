"""ClickHouse writes of the scorer: batched, token de-duplicated inserts into the projection tables.

Effectively once: every insert carries an ``insert_deduplication_token`` derived from the Kafka offsets
its rows came from (archive, series, revisions, dead letters) or from the recompute that made them
(``version`` plus the offsets it had read, for scores and leaderboards). The tables keep the last
``non_replicated_deduplication_window`` block ids, so a batch retried after a lost answer is dropped by
ClickHouse; ``async_insert=0`` because asynchronous inserts bypass that check. After a crash the redelivered
events form different batches (different tokens) — then the replacing engines collapse the repeated rows
and readers use ``FINAL``. Inserts run in a worker thread so consumption goes on meanwhile.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Sequence
from typing import Any

from clickhouse_connect.driver.client import Client

from liveboard.clickhouse.client import DEDUP_INSERT_SETTINGS, get_client
from liveboard.contracts.tables import (
    ARCHIVE_COLUMNS,
    FREEZE_ANSWER_COLUMNS,
    LEADERBOARD_COLUMNS,
    RECONCILE_COLUMNS,
    SERIES_COLUMNS,
)
from liveboard.settings import Settings
from services.scoring import metrics as m

log = logging.getLogger(__name__)

SCORES_COLUMNS = (
    "contest_id",
    "round_id",
    "group_id",
    "contestant_id",
    "version",
    "computed_at",
    "rule_version",
    "rank",
    "total",
    "data_score",
    "judge_score",
    "explanation",
    "events_counted",
    "last_event_ms",
)
DEAD_LETTER_COLUMNS = (
    "dlq_id",
    "received_at",
    "source",
    "platform",
    "reason",
    "body",
    "kafka_partition",
    "kafka_offset",
)
REVISION_COLUMNS = (
    "contest_id",
    "contestant_id",
    "platform",
    "account_id",
    "source_id",
    "metric",
    "old_value",
    "new_value",
    "old_event_id",
    "new_event_id",
    "old_observed_at",
    "new_observed_at",
    "revision",
    "detected_at",
)
PENDING_COLUMNS = (
    "contest_id",
    "round_id",
    "group_id",
    "contestant_id",
    "version",
    "detected_at",
    "differs",
    "frozen_rank",
    "frozen_total",
    "live_rank",
    "live_total",
    "live_total_display",
    "frozen_digest",
    "live_digest",
    "explanation",
)

# ledger vs snapshot per contestant, round and platform (0030; services/scoring/reconcile.py)

ROUND_RESULT_COLUMNS = (
    "contest_id",
    "round_id",
    "version",
    "computed_at",
    "digest",
    "frozen",
    "frozen_digest",
    "field_size",
    "rejected",
    "rule_version",
    "offsets",
)

COLUMNS: dict[str, tuple[str, ...]] = {
    "events_archive": ARCHIVE_COLUMNS,
    "contestant_series": SERIES_COLUMNS,
    "scores": SCORES_COLUMNS,
    "leaderboard": LEADERBOARD_COLUMNS,
    "dead_letters": DEAD_LETTER_COLUMNS,
    "metric_revisions": REVISION_COLUMNS,
    "pending_revisions": PENDING_COLUMNS,
    "ledger_reconciliation": RECONCILE_COLUMNS,
    "round_results": ROUND_RESULT_COLUMNS,
    "freeze_answers": FREEZE_ANSWER_COLUMNS,
}
VERSION_INDEX = {
    "scores": SCORES_COLUMNS.index("version"),
    "leaderboard": LEADERBOARD_COLUMNS.index("version"),
    "pending_revisions": PENDING_COLUMNS.index("version"),
    "ledger_reconciliation": RECONCILE_COLUMNS.index("version"),
    "round_results": ROUND_RESULT_COLUMNS.index("version"),
}

# Rows derived from records: written by the record flush, after which the records are acknowledged.
RECORD_TABLES: tuple[str, ...] = ("events_archive", "dead_letters", "contestant_series", "metric_revisions")
# Rows made by recomputes: written by the board flush as soon as a recompute produced them (their own
# inserts, not held up by the bulk of the archive), round_results last, then the lb.scores.v1 updates
# are published (so the board reads the leaderboard an update announces). Explained score rows are
# written separately and less often (processor.explain).
BOARD_TABLES: tuple[str, ...] = ("pending_revisions", "ledger_reconciliation", "leaderboard", "round_results")
BATCH_TABLES: tuple[str, ...] = (*RECORD_TABLES, *BOARD_TABLES)
TABLE_ORDER = (*BATCH_TABLES, "scores")


def offsets_token(prefix: str, ranges: dict[tuple[str, int], tuple[int, int]]) -> str:
    """``prefix|topic:partition:first-last|…`` over every partition a batch read, in a stable order."""
    parts = [f"{t}:{p}:{lo}-{hi}" for (t, p), (lo, hi) in sorted(ranges.items())]
    return f"{prefix}|" + "|".join(parts)


def version_token(prefix: str, table: str, rows: Sequence[Sequence[Any]], positions: dict[int, int]) -> str:
    """For rows made by recomputes: the versions they carry (with their keys) and the offsets read.

    A retried batch has the same rows, hence the same token; two different batches never share one (their
    rows have different versions), which a token from the batch's recomputes alone would not guarantee:
    score rows carried over from an earlier flush have no recompute of their own."""
    vi = VERSION_INDEX[table]
    versions = [r[vi] for r in rows]
    h = hashlib.sha1()
    for r in rows:
        h.update(f"{r[0]}\x1f{r[1]}\x1f{r[2]}\x1f{r[3]}\x1f{r[vi]}\n".encode())
    marks = ",".join(f"{p}:{o}" for p, o in sorted(positions.items()))
    h.update(marks.encode())
    return f"{prefix}|v{min(versions)}-{max(versions)}|n{len(rows)}|{h.hexdigest()[:20]}"


class ClickHouseSink:
    """Synchronous clickhouse-connect clients used from worker threads: one per table for inserts (so the
    tables of one flush can be written concurrently), one for commands and queries. A client is used by one
    thread at a time (its lock); a failed statement drops the client and the next use connects anew."""

    def __init__(self, settings: Settings, database: str | None = None) -> None:
        self.settings = settings
        self.database = database if database is not None else settings.clickhouse_database
        self._clients: dict[str, Client] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def _get(self, name: str = "query") -> Client:
        client = self._clients.get(name)
        if client is None:
            client = self._clients[name] = get_client(self.settings, database=self.database)
        return client

    def _reset(self, name: str) -> None:
        client = self._clients.pop(name, None)
        if client is not None:
            try:
                client.close()
            except Exception:
                pass

    def _lock(self, name: str) -> asyncio.Lock:
        lock = self._locks.get(name)
        if lock is None:
            lock = self._locks[name] = asyncio.Lock()
        return lock

    def insert_sync(self, table: str, rows: Sequence[Sequence[Any]], token: str) -> None:
        if not rows:
            return
        t0 = time.perf_counter()
        try:
            self._get(table).insert(
                table,
                rows,
                column_names=list(COLUMNS[table]),
                settings={**DEDUP_INSERT_SETTINGS, "insert_deduplication_token": token},
            )
        except Exception:
            m.CH_ERRORS.labels(table).inc()
            self._reset(table)
            raise
        m.SINK_LATENCY.labels(table).observe(time.perf_counter() - t0)
        m.SINK_ROWS.labels(table).observe(len(rows))

    async def insert(self, table: str, rows: Sequence[Sequence[Any]], token: str) -> None:
        async with self._lock(table):
            await asyncio.to_thread(self.insert_sync, table, rows, token)

    def command_sync(self, sql: str, parameters: dict[str, Any] | None = None, table: str = "command") -> Any:
        try:
            return self._get().command(sql, parameters=parameters)
        except Exception:
            m.CH_ERRORS.labels(table).inc()
            self._reset("query")
            raise

    async def command(self, sql: str, parameters: dict[str, Any] | None = None, table: str = "command") -> Any:
        async with self._lock("query"):
            return await asyncio.to_thread(self.command_sync, sql, parameters, table)

    def query_sync(self, sql: str, parameters: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        try:
            return list(self._get().query(sql, parameters=parameters).result_rows)
        except Exception:
            m.CH_ERRORS.labels("query").inc()
            self._reset("query")
            raise

    async def query(self, sql: str, parameters: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        async with self._lock("query"):
            return await asyncio.to_thread(self.query_sync, sql, parameters)

    def close(self) -> None:
        for name in list(self._clients):
            self._reset(name)
