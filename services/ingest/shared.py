"""State the polling process and the webhook worker processes share: one SQLite file in the state dir.

With several webhook workers on one port (``SO_REUSEPORT``), the kernel hands each new connection to any
worker, so a re-delivered push usually lands on a different process than the first delivery. What must
therefore be common to all of them lives here, in a file (WAL mode) rather than in any process's memory,
so it also survives a worker being killed and restarted:

* ``seen``: push message ids (de-duplication: a replayed push yields one event, whichever worker gets
  it) and the WeChat order steps already emitted (``namespace`` keeps the two apart). A key is written
  only once the broker has acknowledged what it stands for (services/ingest/base.py ``answer_acked``,
  ``when_acked``): the file must never say "handled" about something a crash could still lose;
* ``rooms``: Douyin room → account, written by the poller when a poll finds a room, read by workers (the
  live push names only its room);
* ``pending``: Douyin live pushes for rooms no poll has seen yet, written by workers, emitted by the poller
  once the room shows up (then deleted), or expired as ``unknown_room``;
* ``nudges``: jobs a push asks the poller to run now (Douyin ``create_video``).

Writes are short transactions; ``BEGIN IMMEDIATE`` serialises them across processes, which is what makes
"is the room known? else hold the push" atomic against the poller's "room found, take its held pushes".
Durability to the disk is not needed (``synchronous=OFF``): the file outlives processes, not the machine,
and every event id is deterministic anyway.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import orjson

LOCK_RETRY_S = 0.0002
LOCK_TIMEOUT_S = 10.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS seen (key TEXT PRIMARY KEY, exp INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS seen_exp ON seen (exp);
CREATE TABLE IF NOT EXISTS rooms (
    platform TEXT NOT NULL, room_id TEXT NOT NULL, account_id TEXT NOT NULL, PRIMARY KEY (platform, room_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pending (
    id INTEGER PRIMARY KEY, platform TEXT NOT NULL, room_id TEXT NOT NULL, received_at INTEGER NOT NULL,
    msg_type TEXT NOT NULL, msgs BLOB NOT NULL, body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS pending_room ON pending (platform, room_id);
CREATE TABLE IF NOT EXISTS nudges (platform TEXT NOT NULL, job TEXT NOT NULL, PRIMARY KEY (platform, job))
    WITHOUT ROWID;
"""


class SharedState:
    def __init__(self, path: Path) -> None:
        self.path = path
        # isolation_level=None: we issue BEGIN ourselves. timeout=0: SQLite's own busy handler sleeps
        # blindly (1, 2, 5 … 100 ms between tries), which under three processes' contention blocked an event
        # loop for up to half a second at a time while the lock had long been free (measured: p99 0.3 ms,
        # max 545 ms per write); _locked() retries every 0.2 ms instead.
        self.db = sqlite3.connect(str(path), isolation_level=None, timeout=0, check_same_thread=False)
        self._locked(lambda: self.db.execute("PRAGMA journal_mode=WAL"))
        self._locked(lambda: self.db.execute("PRAGMA synchronous=OFF"))
        self._locked(lambda: self.db.executescript(SCHEMA))
        self._rooms: dict[tuple[str, str], str] = {}  # rooms never change account: cache the hits
        self._next_expiry = 0.0
        # push handlers' de-dup reads and seen marks, gathered over one pass of the event loop (see lookup_seen
        # and mark_seen): one statement / one transaction for all of them instead of one per push
        self._lookups: list[tuple[list[str], int, asyncio.Future]] = []
        self._marks: list[tuple[list[str], int, int, asyncio.Future]] = []
        self.flushes = {"lookups": 0, "marks": 0}  # statements actually run (tests, profiling)

    def close(self) -> None:
        self.db.close()

    def _locked(self, fn: Any) -> Any:
        """Run ``fn``, retrying while another process holds the lock (transactions here take tens of µs)."""
        deadline = time.monotonic() + LOCK_TIMEOUT_S
        while True:
            try:
                return fn()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                if time.monotonic() > deadline:
                    raise
                time.sleep(LOCK_RETRY_S)

    def _write(self, fn: Any) -> Any:
        self._locked(lambda: self.db.execute("BEGIN IMMEDIATE"))
        try:
            out = fn()
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self._locked(lambda: self.db.execute("COMMIT"))
        return out

    def _read(self, sql: str, args: tuple[Any, ...]) -> list[Any]:
        return self._locked(lambda: self.db.execute(sql, args).fetchall())

    # -- de-duplication ----------------------------------------------------------------------------

    def add_seen(self, keys: list[str], now_ms: int, ttl_ms: int) -> list[bool]:
        """Mark ``keys`` seen; for each, True if it was new (an expired key counts as new)."""
        exp = now_ms + ttl_ms

        def run() -> list[bool]:
            out = []
            for k in keys:
                cur = self.db.execute(
                    "INSERT INTO seen (key, exp) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET exp = excluded.exp "
                    "WHERE seen.exp <= ?",
                    (k, exp, now_ms),
                )
                out.append(cur.rowcount == 1)
            return out

        fresh = self._write(run)
        self._maybe_expire(now_ms)
        return fresh

    def is_seen(self, key: str, now_ms: int) -> bool:
        rows = self._read("SELECT exp FROM seen WHERE key = ?", (key,))
        return bool(rows) and rows[0][0] > now_ms

    def seen_of(self, keys: list[str], now_ms: int) -> list[bool]:
        """For each key, whether it is remembered (not expired): one read for a whole batch."""
        if not keys:
            return []
        if len(keys) == 1:
            return [self.is_seen(keys[0], now_ms)]
        hit: set[str] = set()
        for i in range(0, len(keys), 500):  # well under SQLite's bound on query parameters
            part = keys[i : i + 500]
            marks = ",".join("?" * len(part))
            rows = self._read(f"SELECT key FROM seen WHERE exp > ? AND key IN ({marks})", (now_ms, *part))
            hit.update(r[0] for r in rows)
        return [k in hit for k in keys]

    # -- the same, gathered over one pass of the event loop (webhook workers' hot path) -----------------
    #
    # A push costs a de-dup read before its handling and a seen mark after its records were acknowledged.
    # One statement each per push was ~12 % of a webhook worker's CPU in the py-spy profile at 1,000 pushes/s
    # (docs/benchmarks.md, Ingest, fifth pass): every autocommit read takes WAL read locks, every mark a
    # cross-process BEGIN IMMEDIATE … COMMIT. The pushes of one producer batch are acknowledged together, so
    # their handlers all resume in the same pass of the loop: the first to ask schedules one flush at the end
    # of that pass (call_soon) and every handler that asks before it joins it. Each handler still waits for
    # its own keys: a mark is committed before the handler answers, never after (the guarantee is unchanged,
    # only the transaction is shared); if the flush fails, every handler in it gets the error.

    async def lookup_seen(self, keys: list[str], now_ms: int) -> list[bool]:
        """``seen_of`` for a push handler, batched with the other handlers of this pass of the loop."""
        if not keys:
            return []
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        if not self._lookups:
            loop.call_soon(self._flush_lookups)
        self._lookups.append((keys, now_ms, fut))
        return await fut

    def _flush_lookups(self) -> None:
        asks, self._lookups = self._lookups, []
        try:
            keys = list(dict.fromkeys(k for ks, _, _ in asks for k in ks))
            exp: dict[str, int] = {}
            for i in range(0, len(keys), 500):  # well under SQLite's bound on query parameters
                part = keys[i : i + 500]
                marks = ",".join("?" * len(part))
                self.flushes["lookups"] += 1
                exp.update(self._read(f"SELECT key, exp FROM seen WHERE key IN ({marks})", tuple(part)))
        except BaseException as exc:
            for _, _, fut in asks:
                if not fut.done():
                    fut.set_exception(exc)
            return
        for ks, now_ms, fut in asks:
            if not fut.done():  # (its handler may have been cancelled)
                fut.set_result([exp.get(k, 0) > now_ms for k in ks])

    async def mark_seen(self, keys: list[str], now_ms: int, ttl_ms: int) -> None:
        """``add_seen`` for keys whose records the broker has acknowledged, committed in one transaction with
        the marks of the other handlers of this pass of the loop; returns once committed."""
        if not keys:
            return
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        if not self._marks:
            loop.call_soon(self._flush_marks)
        self._marks.append((keys, now_ms + ttl_ms, now_ms, fut))
        await fut

    def _flush_marks(self) -> None:
        marks, self._marks = self._marks, []
        rows = [(k, exp, now_ms) for ks, exp, now_ms, _ in marks for k in ks]
        now = max(now_ms for _, _, now_ms, _ in marks)
        try:
            self.flushes["marks"] += 1
            self._write(
                lambda: self.db.executemany(
                    "INSERT INTO seen (key, exp) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET exp = excluded.exp "
                    "WHERE seen.exp <= ?",
                    rows,
                )
            )
        except BaseException as exc:
            for *_, fut in marks:
                if not fut.done():
                    fut.set_exception(exc)
            return
        for *_, fut in marks:
            if not fut.done():
                fut.set_result(None)
        self._maybe_expire(now)

    def forget(self, keys: list[str]) -> None:
        if keys:
            self._write(lambda: self.db.executemany("DELETE FROM seen WHERE key = ?", [(k,) for k in keys]))

    def _maybe_expire(self, now_ms: int) -> None:
        # expired keys are harmless (add_seen overwrites them); delete them now and then to bound the file
        t = time.monotonic()
        if t < self._next_expiry:
            return
        self._next_expiry = t + 10.0
        self._write(lambda: self.db.execute("DELETE FROM seen WHERE exp <= ?", (now_ms,)))

    # -- Douyin rooms and held live pushes -----------------------------------------------------------

    def room_account(self, platform: str, room_id: str) -> str | None:
        acc = self._rooms.get((platform, room_id))
        if acc is None:
            rows = self._read("SELECT account_id FROM rooms WHERE platform = ? AND room_id = ?", (platform, room_id))
            if rows:
                acc = self._rooms[(platform, room_id)] = rows[0][0]
        return acc

    def add_rooms(self, platform: str, rooms: list[tuple[str, str]]) -> None:
        if rooms:
            self._write(
                lambda: self.db.executemany(
                    "INSERT OR IGNORE INTO rooms (platform, room_id, account_id) VALUES (?, ?, ?)",
                    [(platform, r, a) for r, a in rooms],
                )
            )

    def account_or_hold(
        self, platform: str, room_id: str, received_at: int, msg_type: str, msgs: list[dict[str, Any]], body: bytes
    ) -> str | None:
        """The room's account if a poll has found the room; else the push is held (None). Atomic against
        the poller's add_rooms + take_pending, so a push is never held for a room already taken."""
        acc = self._rooms.get((platform, room_id))
        if acc is not None:
            return acc

        def run() -> str | None:
            row = self.db.execute(
                "SELECT account_id FROM rooms WHERE platform = ? AND room_id = ?", (platform, room_id)
            ).fetchone()
            if row is not None:
                return row[0]
            self.db.execute(
                "INSERT INTO pending (platform, room_id, received_at, msg_type, msgs, body) VALUES (?, ?, ?, ?, ?, ?)",
                (platform, room_id, received_at, msg_type, orjson.dumps(msgs), body),
            )
            return None

        acc = self._write(run)
        if acc is not None:
            self._rooms[(platform, room_id)] = acc
        return acc

    def ready_pending(self, platform: str) -> list[tuple[int, str, str, int, str, list[dict[str, Any]], bytes]]:
        """Held pushes whose room is now known: (id, room_id, account_id, received_at, msg_type, msgs, body)."""
        rows = self._read(
            "SELECT p.id, p.room_id, r.account_id, p.received_at, p.msg_type, p.msgs, p.body FROM pending p "
            "JOIN rooms r ON r.platform = p.platform AND r.room_id = p.room_id WHERE p.platform = ? ORDER BY p.id",
            (platform,),
        )
        return [(i, rid, acc, ts, t, orjson.loads(msgs), bytes(body)) for i, rid, acc, ts, t, msgs, body in rows]

    def delete_pending(self, ids: list[int]) -> None:
        if ids:
            self._write(lambda: self.db.executemany("DELETE FROM pending WHERE id = ?", [(i,) for i in ids]))

    def expire_pending(self, platform: str, older_than_ms: int, max_held: int) -> int:
        """Drop held pushes of rooms whose newest push is older than ``older_than_ms``, and the oldest
        beyond ``max_held``; returns how many were dropped (they were no registered account's room)."""

        def run() -> int:
            cur = self.db.execute(
                "DELETE FROM pending WHERE platform = ? AND room_id IN (SELECT room_id FROM pending "
                "WHERE platform = ? GROUP BY room_id HAVING max(received_at) < ?)",
                (platform, platform, older_than_ms),
            )
            n = cur.rowcount
            (held,) = self.db.execute("SELECT count(*) FROM pending WHERE platform = ?", (platform,)).fetchone()
            if held > max_held:
                cur = self.db.execute(
                    "DELETE FROM pending WHERE id IN (SELECT id FROM pending WHERE platform = ? ORDER BY id LIMIT ?)",
                    (platform, held - max_held),
                )
                n += cur.rowcount
            return n

        return self._write(run)

    def pending_count(self, platform: str) -> int:
        return self._read("SELECT count(*) FROM pending WHERE platform = ?", (platform,))[0][0]

    # -- nudges --------------------------------------------------------------------------------------

    def nudge(self, platform: str, job: str) -> None:
        self._write(lambda: self.db.execute("INSERT OR IGNORE INTO nudges VALUES (?, ?)", (platform, job)))

    def take_nudges(self, platform: str) -> list[str]:
        def run() -> list[str]:
            rows = self.db.execute("SELECT job FROM nudges WHERE platform = ?", (platform,)).fetchall()
            self.db.execute("DELETE FROM nudges WHERE platform = ?", (platform,))
            return [r[0] for r in rows]

        return self._write(run)


class SharedSeen:
    """The ``TtlSet`` interface (add, discard, ``in``) over the shared ``seen`` table, one namespace each."""

    def __init__(self, state: SharedState, namespace: str, ttl_ms: int) -> None:
        self.state = state
        self.prefix = namespace + "|"
        self.ttl_ms = ttl_ms
        self._now_ms = 0

    def add(self, key: str, now_ms: int) -> bool:
        self._now_ms = now_ms
        return self.state.add_seen([self.prefix + key], now_ms, self.ttl_ms)[0]

    def add_many(self, keys: list[str], now_ms: int) -> list[bool]:
        self._now_ms = now_ms
        return self.state.add_seen([self.prefix + k for k in keys], now_ms, self.ttl_ms)

    def has(self, key: str, now_ms: int) -> bool:
        self._now_ms = now_ms
        return self.state.is_seen(self.prefix + key, now_ms)

    def has_many(self, keys: list[str], now_ms: int) -> list[bool]:
        self._now_ms = now_ms
        return self.state.seen_of([self.prefix + k for k in keys], now_ms)

    async def has_many_batched(self, keys: list[str], now_ms: int) -> list[bool]:
        """``has_many`` gathered with the other push handlers of this loop pass (SharedState.lookup_seen)."""
        self._now_ms = now_ms
        return await self.state.lookup_seen([self.prefix + k for k in keys], now_ms)

    async def add_acked(self, keys: list[str], now_ms: int) -> None:
        """Remember acknowledged keys in one transaction with this loop pass's others (SharedState.mark_seen)."""
        self._now_ms = now_ms
        await self.state.mark_seen([self.prefix + k for k in keys], now_ms, self.ttl_ms)

    def discard(self, key: str) -> None:
        self.state.forget([self.prefix + key])

    def __contains__(self, key: str) -> bool:
        return self.state.is_seen(self.prefix + key, self._now_ms)
