"""``liveboard replay --contest ID``: rebuild every projection of a contest from the archive, into fresh
tables, and compare the result with what the live scorer computed.

Into a separate database (``replay_<contest>``, recreated; the scoring migrations 0020–0039 applied):

- ``events_archive``: the contest's archived events, copied inside ClickHouse (``feed_latest`` follows
  through its materialized view); ``frozen_rounds`` / ``frozen_round_events``: the freeze records;
- ``contestant_series``, ``metric_revisions``: from folding every archived event, in time order per
  contestant, through the live code (``parse_event`` → ``ContestState.apply``);
- ``scores``, ``leaderboard``, ``pending_revisions``, ``round_results``: one recompute per round of the
  final state. Frozen rounds are re-scored from exactly the events their freeze recorded, and must give
  the recorded digest and content hash again.

The printed digest is ``RoundResult.digest()`` of the final state, which is a function of the *set* of
events: partition count, batch sizes, arrival order and restarts of the live run do not enter it. It must
equal the newest digest in the live ``round_results``.
"""

from __future__ import annotations

import logging
import re
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from liveboard.clickhouse.client import DEDUP_INSERT_SETTINGS, get_client
from liveboard.clickhouse.migrate import discover
from liveboard.errors import ConfigError
from liveboard.logs import now_ms
from liveboard.settings import Settings
from services.scoring.config import ScorerSettings
from services.scoring.freeze import content_hash, freeze_history, frozen_results, plan_of, score_frozen_set
from services.scoring.loader import archive_rows, fold
from services.scoring.recompute import Recomputer, Versions, score_row
from services.scoring.rows import frozen_leaderboard_rows, revision_row, series_row
from services.scoring.sink import ClickHouseSink
from services.scoring.state import ContestState, FrozenRound

log = logging.getLogger(__name__)

SCORING_MIGRATIONS = range(20, 40)
INSERT_CHUNK = 200_000


def replay_database(contest_id: str) -> str:
    return "replay_" + re.sub(r"[^A-Za-z0-9_]", "_", contest_id)


def _prepare(settings: Settings, db: str, recreate: bool) -> None:
    if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", db) or db == settings.clickhouse_database:
        raise ConfigError(f"replay database {db!r} must be a plain identifier other than the live database")
    admin = get_client(settings, database="")
    try:
        if recreate:
            admin.command(f"DROP DATABASE IF EXISTS {db} SYNC")
        admin.command(f"CREATE DATABASE IF NOT EXISTS {db}")
        for mig in discover():
            if mig.version in SCORING_MIGRATIONS:
                for stmt in mig.statements(db):
                    admin.command(stmt)
    finally:
        admin.close()


def _copy_records(settings: Settings, db: str, contest_id: str) -> int:
    live = settings.clickhouse_database
    client = get_client(settings, database="")
    try:
        params = {"c": contest_id}
        for table in ("events_archive", "frozen_rounds", "frozen_round_events", "frozen_round_history"):
            client.command(
                f"INSERT INTO {db}.{table} SELECT * FROM {live}.{table} FINAL WHERE contest_id = {{c:String}}",
                parameters=params,
                settings=DEDUP_INSERT_SETTINGS,
            )
        return int(
            client.query(
                f"SELECT count() FROM {db}.events_archive WHERE contest_id = {{c:String}}", parameters=params
            ).result_rows[0][0]
        )
    finally:
        client.close()


def _live_digests(settings: Settings, contest_id: str) -> dict[str, str]:
    client = get_client(settings)
    try:
        rows = client.query(
            "SELECT round_id, argMax(digest, version) FROM round_results WHERE contest_id = {c:String} "
            "GROUP BY round_id",
            parameters={"c": contest_id},
        ).result_rows
        return {r: d for r, d in rows}
    finally:
        client.close()


class _Chunked:
    """Insert rows in chunks while folding, so a million-event replay never holds all of them; a chunk is
    written by a background thread while the fold goes on (at most one chunk in flight per table)."""

    def __init__(self, sink: ClickHouseSink, table: str, prefix: str, pool: ThreadPoolExecutor) -> None:
        self.sink, self.table, self.prefix, self.pool = sink, table, prefix, pool
        self.rows: list[list[Any]] = []
        self.n = 0
        self.chunks = 0
        self.pending: Future[None] | None = None

    def add(self, row: list[Any]) -> None:
        self.rows.append(row)
        if len(self.rows) >= INSERT_CHUNK:
            self.flush()

    def flush(self) -> None:
        if self.pending is not None:
            self.pending.result()
            self.pending = None
        if self.rows:
            rows, self.rows = self.rows, []
            token = f"{self.prefix}:{self.table}:{self.chunks}"
            self.pending = self.pool.submit(self.sink.insert_sync, self.table, rows, token)
            self.n += len(rows)
            self.chunks += 1

    def close(self) -> None:
        self.flush()
        if self.pending is not None:
            self.pending.result()
            self.pending = None


def replay_contest(
    settings: Settings, cfg: ScorerSettings, contest_id: str, *, database: str | None = None, recreate: bool = True
) -> dict[str, Any]:
    t0 = time.perf_counter()
    plan = plan_of(cfg, contest_id)
    db = database or replay_database(contest_id)
    _prepare(settings, db, recreate)
    pool = ThreadPoolExecutor(max_workers=3, thread_name_prefix="replay")
    # the archive copy runs inside ClickHouse while the fold reads the live archive
    copying = pool.submit(_copy_records, settings, db, contest_id)
    sink = ClickHouseSink(settings, database=db)
    reader = ClickHouseSink(settings)
    prefix = f"replay-{now_ms()}"
    state = ContestState(plan)
    series = _Chunked(sink, "contestant_series", prefix, pool)
    revisions = _Chunked(sink, "metric_revisions", prefix, pool)
    detected = now_ms()

    def on_event(ev: Any, _row: tuple[Any, ...]) -> None:
        if ev.type == "live_metrics_snapshot":
            series.add(series_row(ev))
        if state.revisions:
            for r in state.revisions:
                revisions.add(revision_row(r, detected))
            state.revisions.clear()

    t_fold = time.perf_counter()
    stats = fold({plan.id: state}, archive_rows(reader._get(), [plan.id]), on_event)
    fold_s = time.perf_counter() - t_fold
    series.close()
    revisions.close()
    copied = copying.result()
    pool.shutdown()
    reader.close()
    client = sink._get()

    # Frozen rounds: a recorded freeze counts only with its round_frozen event in the log; every freeze of
    # every round's chain is re-scored from the events it recorded (sequence <= k), in the order they were
    # made, and must give its recorded digest and content hash (which covers the previous one) again.
    frozen_checks: dict[str, dict[str, Any]] = {}
    done: dict[str, FrozenRound] = {}
    prev_hash: dict[str, str] = {}
    for rec in sorted(freeze_history(client, contest_id, None, database=db), key=lambda r: (r.frozen_at, r.sequence)):
        rid = rec.round_id
        logged = state.freeze_chain.get(rid, {}).get(rec.sequence)
        if logged is None or logged[0] != rec.content_hash:
            continue
        outcome, fstate, inputs, _n = score_frozen_set(
            client, plan, rid, dict(done), database=db, sequence=rec.sequence
        )
        chash = content_hash(inputs.for_round(fstate, rid), prev_hash.get(rid), rec.sequence)
        reproduced = outcome.digest == rec.leaderboard_digest and chash == rec.content_hash
        before = frozen_checks.get(rid, {})
        frozen_checks[rid] = {
            "frozen_digest": rec.leaderboard_digest,
            "replayed_frozen_digest": outcome.digest,
            "content_hash": rec.content_hash,
            "replayed_content_hash": chash,
            "freezes": rec.sequence,
            "frozen_reproduced": reproduced and before.get("frozen_reproduced", True),
        }
        prev_hash[rid] = chash
        done[rid] = FrozenRound(rid, rec.frozen_at, chash, outcome.digest, rec.event_count, frozen_results(outcome))
    state.frozen.update(done)

    rc = Recomputer(state, Versions(), cfg.update_top_n)
    rc.mark(state.active_rounds | set(done))
    state.active_rounds |= set(done)
    outcomes = rc.run({})
    leaderboard, scores, pending, results, reconcile = [], [], [], [], []
    for o in outcomes:
        if o.frozen:
            leaderboard.extend(frozen_leaderboard_rows(state.frozen[o.round_id], plan.id, o.version, o.computed_at))
        leaderboard.extend(o.leaderboard_rows)
        scores.extend(score_row(ref) for ref in o.scores)
        pending.extend(o.pending_rows)
        reconcile.extend(o.reconcile_rows)
        results.append(o.result_row)
    for table, rows in (
        ("scores", scores),
        ("leaderboard", leaderboard),
        ("pending_revisions", pending),
        ("ledger_reconciliation", reconcile),
        ("round_results", results),
    ):
        for i in range(0, len(rows), INSERT_CHUNK):
            sink.insert_sync(table, rows[i : i + INSERT_CHUNK], f"{prefix}:{table}:{i}")
    sink.close()

    live = _live_digests(settings, contest_id)
    rounds = []
    ok = True
    for o in outcomes:
        entry: dict[str, Any] = {
            "round_id": o.round_id,
            "digest": o.digest,
            "live_digest": live.get(o.round_id),
            "matches_live": live.get(o.round_id) == o.digest,
            "field": o.result_row[7],
            "frozen": o.frozen,
        }
        entry.update(frozen_checks.get(o.round_id, {}))
        if entry["live_digest"] is not None and not entry["matches_live"]:
            ok = False
        if o.frozen and not entry.get("frozen_reproduced", False):
            ok = False
        rounds.append(entry)
    seconds = time.perf_counter() - t0
    report = {
        "contest_id": contest_id,
        "database": db,
        "events": stats.events,
        "archived_rows": copied,
        "invalid": stats.invalid,
        "series_rows": series.n,
        "revision_rows": revisions.n,
        "seconds": round(seconds, 3),
        "fold_seconds": round(fold_s, 3),
        "events_per_s": round(stats.events / seconds, 1) if seconds else 0.0,
        "rounds": rounds,
        "ok": ok,
    }
    log.info("replay done", extra={"fields": {k: v for k, v in report.items() if k != "rounds"}})
    return report
