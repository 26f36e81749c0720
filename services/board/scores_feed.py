"""Live leaderboards: one reader of lb.scores.v1 and ClickHouse, fanned out to every connected screen.

A score message only says *which* round changed (``contest_id``, ``round_id``; the rest of its shape is the
scorer's business); the board then reads that round's leaderboard from ClickHouse, the source of truth,
and publishes a full snapshot per group. Full snapshots (never deltas) make a reconnecting screen whole by
itself. Messages arriving within ``coalesce_ms`` are merged into one read. A periodic refresh re-reads the
rounds anyone watches, so a lost message, a stale feed turning stale, or a scorer that is down still show.

Each snapshot is serialised once per (round, group, row limit) and the same bytes go to every stream.
A slow stream never holds up the others: it keeps only the newest snapshot not yet written.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka.errors import KafkaError
from clickhouse_connect.driver.asyncclient import AsyncClient

from liveboard.kafka.catalog import SCORES
from liveboard.kafka.clients import make_consumer
from liveboard.kafka.gaps import GapGuard
from liveboard.settings import Settings
from services.board import metrics, queries, screen_data
from services.board.config import BoardSettings
from services.board.contests import ContestRegistry, find_round, organisation_label

log = logging.getLogger(__name__)

RoundKey = tuple[str, str]  # (contest_id, round_id)
ALL_GROUPS = ""  # the group key meaning "every group of the round"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class GroupSnapshot:
    contest_id: str
    round_id: str
    group_id: str
    doc: dict[str, Any]  # the full snapshot (all rows); "rows" are cut to the subscriber's limit on send
    fingerprint: str
    _encoded: dict[int, bytes] = field(default_factory=dict)
    _etags: dict[int, str] = field(default_factory=dict)

    def etag(self, limit: int) -> str:
        """A validator of what ``encoded(limit)`` shows: the content's fingerprint and the row limit. Weak:
        ``generated_at``/``server_now_ms`` differ between two reads of the same content."""
        tag = self._etags.get(limit)
        if tag is None:
            if len(self._etags) >= 8:
                self._etags.pop(next(iter(self._etags)))
            tag = self._etags[limit] = f'W/"{self.fingerprint[:32]}-{limit}"'
        return tag

    def encoded(self, limit: int) -> bytes:
        hit = self._encoded.get(limit)
        if hit is None:
            doc = dict(self.doc)
            doc["rows"] = self.doc["rows"][:limit]
            hit = orjson.dumps(doc)
            if len(self._encoded) >= 8:  # bounded: row limits are the client's choice (1..10,000)
                self._encoded.pop(next(iter(self._encoded)))
            self._encoded[limit] = hit
        return hit


@dataclass
class RoundState:
    groups: dict[str, GroupSnapshot]
    read_at: float  # monotonic
    version: int


class Subscriber:
    """One connected stream: the newest undelivered message, and a wake-up for its writer."""

    __slots__ = ("closed", "key", "limit", "pending", "wake")

    def __init__(self, key: tuple[str, str, str], limit: int) -> None:
        self.key = key
        self.limit = limit
        self.pending: bytes | None = None
        self.wake = asyncio.Event()
        self.closed = False

    def offer(self, data: bytes) -> None:
        if self.pending is not None:
            metrics.SSE_DROPPED.inc()
        self.pending = data
        self.wake.set()

    def close(self) -> None:
        self.closed = True
        self.wake.set()


def sse_frame(event: str, data: bytes, event_id: str | None = None) -> bytes:
    head = f"event: {event}\n" + (f"id: {event_id}\n" if event_id else "")
    return head.encode() + b"data: " + data + b"\n\n"


class ScoresHub:
    def __init__(self, settings: Settings, board: BoardSettings, ch: AsyncClient, contests: ContestRegistry) -> None:
        self.settings = settings
        self.board = board
        self.ch = ch
        self.contests = contests
        self.rounds: dict[RoundKey, RoundState] = {}
        self.subscribers: dict[tuple[str, str, str], set[Subscriber]] = {}
        self._locks: dict[RoundKey, asyncio.Lock] = {}
        self._dirty: dict[RoundKey, int] = {}  # round -> computed_at of the newest message (0: unknown)
        self._dirty_event = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._background: dict[RoundKey, asyncio.Task[None]] = {}  # reads started by a request, not awaited
        self._watched: dict[RoundKey, float] = {}  # rounds read recently by the API (monotonic)
        self.consumer_ready = asyncio.Event()
        self.last_message_ms: int | None = None
        # the big screens' extras (issue 12): the contests' clock (wall, or the demo's simulated one)
        self.contest_clock = screen_data.parse_contest_clock(board.contest_clock)

    # ------------------------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._consume(), name="board-scores-consumer"),
            asyncio.create_task(self._apply_dirty(), name="board-scores-apply"),
            asyncio.create_task(self._periodic(), name="board-scores-refresh"),
        ]

    async def stop(self) -> None:
        self.disconnect_all()
        tasks = [*self._tasks, *self._background.values()]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t

    def disconnect_all(self) -> int:
        """End every stream (shutdown; tests of reconnection). Browsers reconnect by themselves."""
        n = 0
        for subs in self.subscribers.values():
            for s in subs:
                s.close()
                n += 1
        return n

    # ------------------------------------------------------------------------------------- streams

    def subscribe(self, contest_id: str, round_id: str, group_id: str, limit: int) -> Subscriber:
        sub = Subscriber((contest_id, round_id, group_id), limit)
        self.subscribers.setdefault(sub.key, set()).add(sub)
        metrics.SSE_CLIENTS.inc()
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        subs = self.subscribers.get(sub.key)
        if subs is not None and sub in subs:
            subs.discard(sub)
            metrics.SSE_CLIENTS.dec()
            if not subs:
                del self.subscribers[sub.key]

    def client_count(self) -> int:
        return sum(len(s) for s in self.subscribers.values())

    # ----------------------------------------------------------------------------------- snapshots

    async def snapshot(self, contest_id: str, round_id: str, group_id: str) -> GroupSnapshot:
        """The current snapshot of a group.

        A round nobody has read yet is read now. One read more than ``refresh_interval_s`` ago is still
        answered at once while a single background read replaces it: a request must not wait for
        ClickHouse because the timer is a moment late (that wait was the API's p99 under load), and a
        score change never waits for the timer anyway (lb.scores.v1). Only a snapshot older than
        three refresh periods (the reads are failing or stuck) makes the request wait for a read.
        """
        key = (contest_id, round_id)
        now = time.monotonic()
        self._watched[key] = now
        state = self.rounds.get(key)
        if state is None or now - state.read_at > 3 * self.board.refresh_interval_s:
            state = await self.refresh(key, max_age_s=self.board.refresh_interval_s)
        elif now - state.read_at > self.board.refresh_interval_s:
            self._refresh_soon(key)
        snap = state.groups.get(group_id)
        if snap is None:
            snap = self._build_group(contest_id, round_id, group_id, [], {}, now_ms())
        return snap

    def _refresh_soon(self, key: RoundKey) -> None:
        if key in self._background:
            return  # one read in flight is enough
        task = asyncio.create_task(self._refresh_quietly(key), name="board-scores-revalidate")
        self._background[key] = task
        task.add_done_callback(lambda _t: self._background.pop(key, None))

    async def _refresh_quietly(self, key: RoundKey) -> None:
        try:
            await self.refresh(key, max_age_s=self.board.refresh_interval_s)
        except Exception as exc:  # the next request retries; the old snapshot stays until 3 periods
            log.warning("leaderboard refresh failed", extra={"fields": {"round": list(key), "error": repr(exc)}})

    async def refresh(
        self, key: RoundKey, *, message_computed_at: int = 0, max_age_s: float | None = None
    ) -> RoundState:
        """Read a round from ClickHouse, publish every group whose content changed.

        With ``max_age_s``, a state read by someone else while this call waited for the lock is good
        enough: a burst of requests on a stale round makes one read, not one each.
        """
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            current = self.rounds.get(key)
            if max_age_s is not None and current is not None and time.monotonic() - current.read_at <= max_age_s:
                return current
            t0 = time.perf_counter()
            contest_id, round_id = key
            rows, fresh, facts = await asyncio.gather(
                queries.leaderboard_rows(self.ch, contest_id, round_id),
                queries.feed_freshness(self.ch, contest_id),
                screen_data.screen_facts(self.ch, contest_id, round_id),  # slots, final figures (screens)
            )
            at = now_ms()
            by_group: dict[str, list[dict[str, Any]]] = {}
            for r in rows:
                by_group.setdefault(r["group_id"], []).append(r)
            group_ids = set(by_group) | {g for (c, rd, g) in self.subscribers if (c, rd) == key}
            old = self.rounds.get(key)
            groups: dict[str, GroupSnapshot] = {}
            for g in group_ids:
                members = rows if g == ALL_GROUPS else by_group.get(g, [])
                groups[g] = self._build_group(contest_id, round_id, g, members, fresh, at, facts)
            if ALL_GROUPS not in groups:
                groups[ALL_GROUPS] = self._build_group(contest_id, round_id, ALL_GROUPS, rows, fresh, at, facts)
            state = RoundState(groups, time.monotonic(), max((int(r["version"]) for r in rows), default=0))
            self.rounds[key] = state
            published = 0
            for g, snap in groups.items():
                before = old.groups.get(g) if old else None
                if before is None or before.fingerprint != snap.fingerprint:
                    published += self._publish(snap)
            metrics.SNAPSHOT_LATENCY.observe(time.perf_counter() - t0)
            if message_computed_at:
                metrics.UPDATE_DELAY.observe(max(0.0, (now_ms() - message_computed_at) / 1000))
            return state

    def _publish(self, snap: GroupSnapshot) -> int:
        subs = self.subscribers.get((snap.contest_id, snap.round_id, snap.group_id))
        if not subs:
            return 0
        for s in subs:
            s.offer(sse_frame("snapshot", snap.encoded(s.limit), str(snap.doc["version"])))
        return len(subs)

    def _build_group(
        self,
        contest_id: str,
        round_id: str,
        group_id: str,
        rows: list[dict[str, Any]],
        fresh: dict[str, tuple[int, int]],
        at_ms: int,
        facts: screen_data.ScreenFacts | None = None,
    ) -> GroupSnapshot:
        stale_ms = int(self.board.stale_after_s * 1000)
        facts = facts or screen_data.ScreenFacts()
        clk = self.contest_clock
        contest = self.contests.get(contest_id)
        rnd = find_round(contest, round_id) if contest else None
        group_names = {g.id: g.name for g in contest.groups} if contest else {}
        out_rows = []
        for r in sorted(rows, key=lambda r: (r["rank"] or 1 << 31, r["group_id"], r["contestant_id"])):
            observed, ingested = fresh.get(r["contestant_id"], (0, 0))
            # Staleness: the newest evidence of data, i.e. when data last reached the archive (feed_latest,
            # our clock) or the newest data the scorer counted (last_data_ms), whichever is later.
            # (last_data_ms is on the contest's clock: brought to the wall's, where arrivals and now are)
            last_arrival = max(ingested, clk.to_wall_ms(int(r["last_data_ms"])))
            out_rows.append(
                {
                    "rank": int(r["rank"]),
                    "group_id": r["group_id"],
                    "contestant_id": r["contestant_id"],
                    "display_name": r["display_name"],
                    "organisation": r["organisation"]
                    or (organisation_label(contest, r["contestant_id"]) if contest else ""),
                    "total": r["total"],
                    "total_display": r["total_display"] or r["total"],
                    "data_score": r["data_score"],
                    "judge_score": r["judge_score"],
                    "gmv_fen": int(r["gmv_fen"]),
                    "net_gmv_fen": int(r["net_gmv_fen"]),
                    "paid_orders": int(r["paid_orders"]),
                    "viewers": int(r["viewers"]),
                    "conversion_ppm": int(r["conversion_ppm"]),
                    "award": r["award"],
                    "advanced": bool(r["advanced"]),
                    "last_data_ms": int(r["last_data_ms"]),
                    "last_observed_ms": observed or None,
                    "last_ingested_ms": ingested or None,
                    "last_arrival_ms": last_arrival or None,
                    "stale": (not last_arrival) or at_ms - last_arrival > stale_ms,
                    # ranked | excluded (取消资格: no place, listed last) | provisional; 待定 ties; why, zh-CN first
                    "status": r.get("status") or "ranked",
                    "pending": bool(r.get("pending")),
                    "notes": [n for n in (r.get("notes") or "").split("\n") if n],
                    # the big screens (issue 12): 并列, frozen (最终), award id, platforms, slot, final figures
                    "tied": bool(r.get("tied")),
                    "frozen": bool(r.get("frozen")),
                    "award_id": r.get("award_id") or "",
                    **screen_data.row_extras(contest, rnd, facts, r),
                }
            )
        totals = {
            "contestants": len(out_rows),
            "gmv_fen": sum(r["gmv_fen"] for r in out_rows),
            "net_gmv_fen": sum(r["net_gmv_fen"] for r in out_rows),
            "paid_orders": sum(r["paid_orders"] for r in out_rows),
            "viewers": sum(r["viewers"] for r in out_rows),
            "stale": sum(1 for r in out_rows if r["stale"]),
        }
        content = {
            "contest_id": contest_id,
            "round_id": round_id,
            "group_id": group_id,
            "contest_name": contest.name if contest else contest_id,
            "round_name": rnd.name if rnd else round_id,
            "group_name": group_names.get(group_id, group_id) if group_id else "",
            "window": {"start_ms": rnd.window.start, "end_ms": rnd.window.end} if rnd else None,
            "version": max((int(r["version"]) for r in rows), default=0),
            "computed_at": max((int(r["computed_at"]) for r in rows), default=0),
            "digest": rows[0]["digest"] if rows else "",
            "stale_after_ms": stale_ms,
            "totals": totals,
            "rows": out_rows,
            # the big screens (issue 12): decimals, logo/colours, the contest's clock, 最终, collective ranking
            "display": screen_data.display_settings(contest),
            "clock": clk.to_dict(),
            "final": bool(out_rows) and all(r["frozen"] for r in out_rows),
            "collective": screen_data.collective_standings(contest, rnd, out_rows) if not group_id else [],
        }
        fingerprint = hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()
        doc = {**content, "generated_at": at_ms, "server_now_ms": at_ms}
        return GroupSnapshot(contest_id, round_id, group_id, doc, fingerprint)

    # --------------------------------------------------------------------------------- background

    def note_message(self, value: bytes | None) -> RoundKey | None:
        """Mark the round a score message names as changed; malformed messages are counted and skipped."""
        try:
            msg = orjson.loads(value or b"")
            key = (str(msg["contest_id"]), str(msg["round_id"]))
            computed_at = int(msg.get("computed_at") or 0)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            metrics.SCORE_UPDATES.labels("malformed").inc()
            return None
        metrics.SCORE_UPDATES.labels("ok").inc()
        self.last_message_ms = now_ms()
        self._dirty[key] = max(self._dirty.get(key, 0), computed_at)
        self._dirty_event.set()
        return key

    async def _consume(self) -> None:
        # No consumer group: every board replica reads every update, and starts from the end (the state
        # it needs is in ClickHouse, not in old messages). A short fetch wait keeps the update within 1 s.
        while True:
            consumer = make_consumer(
                self.settings,
                self.settings.topic(SCORES),
                group_id=None,
                auto_offset_reset="latest",
                fetch_max_wait_ms=50,
                client_id="liveboard-board",
            )
            try:
                await consumer.start()
                await consumer.getmany(timeout_ms=0)  # join the partitions, resolve "latest" now
                self.consumer_ready.set()
                # ranking workers publish concurrently: an update passed over at the head of a partition
                # would leave a screen on an older version until the next refresh (liveboard/kafka/gaps.py)
                guard = GapGuard(consumer)
                while True:
                    batch = await consumer.getmany(timeout_ms=1000, max_records=1000)
                    for tp, records in batch.items():
                        for rec in guard.take(tp, records):
                            self.note_message(rec.value)
            except asyncio.CancelledError:
                raise
            except (KafkaError, OSError) as exc:
                log.warning("score updates consumer failed; retrying", extra={"fields": {"error": repr(exc)}})
                await asyncio.sleep(2)
            finally:
                with contextlib.suppress(Exception):
                    await consumer.stop()

    async def _apply_dirty(self) -> None:
        while True:
            await self._dirty_event.wait()
            if self.board.coalesce_ms:
                await asyncio.sleep(self.board.coalesce_ms / 1000)
            self._dirty_event.clear()
            dirty, self._dirty = self._dirty, {}
            await self._refresh_many(dirty.items())

    async def _periodic(self) -> None:
        while True:
            await asyncio.sleep(self.board.refresh_interval_s)
            cutoff = time.monotonic() - 4 * self.board.refresh_interval_s
            for k, t in list(self._watched.items()):
                if t < cutoff:
                    del self._watched[k]
            wanted = {(c, r) for (c, r, _g) in self.subscribers} | set(self._watched)
            for k in list(self.rounds):
                if k not in wanted:
                    del self.rounds[k]  # nobody looks: do not keep re-reading it
            for k in [k for k, lock in self._locks.items() if k not in self.rounds and not lock.locked()]:
                del self._locks[k]  # bounded: a lock per round still held, not per round ever asked for
            try:
                await self.contests.reload_async()  # a worker thread: a bad file never stalls the streams
            except Exception:
                log.exception("reloading contest files failed")
            await self._refresh_many((k, 0) for k in wanted)

    async def _refresh_many(self, items: Iterable[tuple[RoundKey, int]]) -> None:
        for key, computed_at in items:
            try:
                await self.refresh(key, message_computed_at=computed_at)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("leaderboard refresh failed", extra={"fields": {"round": list(key), "error": repr(exc)}})
