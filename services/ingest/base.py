"""What the three platform collectors share: rooms and their revision cursor, emission with
dead-lettering, background work after a push is acknowledged, account sync and heartbeats.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from liveboard.contracts.events import EventValidationError, event_id_for, parse_event
from liveboard.contracts.records import raw_id_of
from liveboard.kafka.catalog import RAW
from services.ingest import metrics as m
from services.ingest.api import ApiClient, CallError, RateLimiter
from services.ingest.clock import Clock
from services.ingest.config import IngestSettings
from services.ingest.dedup import TtlSet
from services.ingest.events import build
from services.ingest.normalise import NormaliseError
from services.ingest.producer import Acks, EventProducer
from services.ingest.registry import Registration, Registry
from services.ingest.scheduler import Done, Scheduler
from services.ingest.shared import SharedSeen, SharedState
from services.ingest.tokens import earliest_expiry

log = logging.getLogger(__name__)

# What a normaliser may raise on a payload that is not what the platform documents.
BAD_PAYLOAD = (NormaliseError, EventValidationError, KeyError, TypeError, ValueError, AttributeError)


# after its final figures, a room is looked at again for late corrections at finished_poll_interval_s,
# doubling while nothing changes, up to this (and only for final_corrections_s)
CORRECTION_POLL_CAP_S = 3600.0


@dataclass
class RoomState:
    account_id: str
    room_id: str
    started_at: int | None = None
    ended_at: int | None = None
    last_observed: int | None = None
    final_emitted: bool = False  # the room's final figures are on the broker
    polls: int = 0
    # Finality (PlatformCollector.room_revision): the figures of the previous poll after the platform's
    # revision time, and the figures last emitted as final (acknowledged)
    candidate: bytes | None = None
    final_figures: bytes | None = None
    final_sent: bytes | None = None  # final figures handed to the producer, not yet acknowledged
    final_at: int | None = None  # when the first final figures were acknowledged
    corrections: int = 0  # final figures emitted again because the platform corrected them
    quiet_polls: int = 0  # polls since the final figures last changed
    retired: bool = False  # no longer polled: late corrections can no longer come


class PlatformCollector:
    platform: str = ""

    def __init__(
        self,
        settings: IngestSettings,
        clock: Clock,
        producer: EventProducer,
        registry: Registry,
        session: aiohttp.ClientSession,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.producer = producer
        self.registry = registry
        self.session = session
        self.limiter = RateLimiter(self.platform, settings.qps(self.platform), clock)
        self.api = ApiClient(self.platform, session, clock, self.limiter, settings.request_timeout_s)
        self.api.on_malformed = self._malformed
        self.scheduler = Scheduler(
            self.platform,
            clock,
            concurrency=settings.max_concurrency,
            backoff_base_s=settings.backoff_base_s,
            backoff_cap_s=settings.backoff_cap_s,
        )
        self.rooms: dict[str, RoomState] = {}
        self.rooms_by_account: dict[str, dict[str, RoomState]] = {}
        self.dedup: TtlSet | SharedSeen = TtlSet(int(settings.dedup_ttl_s * 1000), settings.dedup_max)
        # Set by use_shared() when pushes are received by several worker processes (services/ingest/shared.py)
        self.state: SharedState | None = None
        self._accounts: set[str] = set()
        self._work: asyncio.Queue[tuple[str, Callable[[], Awaitable[None]]]] = asyncio.Queue(settings.push_buffer_max)
        self._tasks: list[asyncio.Task] = []
        self._marking: set[asyncio.Task] = set()  # when_acked waiters
        self._beat_polls = 0
        self._beat_errors = 0

    async def _malformed(self, endpoint: str, body: bytes) -> None:
        await self.dead_letter(endpoint, "response body is not a JSON object", body, self.clock.now_ms())

    def use_shared(self, state: SharedState) -> None:
        """Keep what several webhook processes must agree on in the shared state instead of in memory."""
        self.state = state
        self.dedup = SharedSeen(state, f"{self.platform}.push", int(self.settings.dedup_ttl_s * 1000))

    # -- pushes ------------------------------------------------------------------------------------

    async def first_seen(self, key: str, now: int) -> bool:
        """Whether a push id is new (False: a duplicate of a push already handled).

        Inside a push handler (``answer_acked``) the id is only noted: it is remembered as handled once the
        broker has acknowledged everything the push produced, never before, so a crash at any point before
        that leaves the platform's retry free to get in (re-delivery, never loss; a retry of a push whose
        records did reach the broker makes the same event ids, which downstream drops). A retry that
        arrives while the first delivery still waits for the broker is let through for the same reason.
        Outside a handler (no Acks) the id is remembered at once.

        With the shared state (webhook workers), the read is gathered with the other handlers' of this pass
        of the event loop into one statement (SharedState.lookup_seen)."""
        return (await self.first_seen_many([key], now))[0]

    async def first_seen_many(self, keys: list[str], now: int) -> list[bool]:
        acks = Acks.current()
        if acks is None:
            return self.dedup.add_many(keys, now)
        if isinstance(self.dedup, SharedSeen):
            known = await self.dedup.has_many_batched(keys, now)
        else:
            known = self.dedup.has_many(keys, now)
        noted = set(acks.seen_keys)
        out = []
        for k, old in zip(keys, known, strict=True):
            fresh = not old and k not in noted
            if fresh:
                noted.add(k)
                acks.seen_keys.append(k)
            out.append(fresh)
        return out

    def unsee(self, key: str) -> None:
        """Forget a push id noted or remembered by ``first_seen`` (the push could not be taken on)."""
        acks = Acks.current()
        if acks is not None and key in acks.seen_keys:
            acks.seen_keys.remove(key)
        self.dedup.discard(key)

    async def answer_acked(self, endpoint: str, handler: Callable[[], Awaitable[web.Response]]) -> web.Response:
        """Run a push handler and answer only once everything it produced is acknowledged by the broker;
        only then are its push ids remembered as handled (``first_seen``).

        Nothing answered is lost: if the collector dies after answering, the records are on the broker; if
        it dies before, nothing was remembered and the platform retries; if the broker refuses them, the
        answer is a 503 and nothing is remembered either.
        """
        with Acks() as acks:
            resp = await handler()
            ok = await acks.wait()
        if ok:
            if acks.seen_keys:
                if isinstance(self.dedup, SharedSeen):
                    # committed (in one transaction with the other pushes acknowledged in this pass of the
                    # loop: SharedState.mark_seen) before the answer goes out
                    await self.dedup.add_acked(acks.seen_keys, self.clock.now_ms())
                else:
                    self.dedup.add_many(acks.seen_keys, self.clock.now_ms())
            return resp
        m.child(m.PUSHES, self.platform, endpoint, "produce_failed").inc()
        return web.Response(status=503, text="busy")

    def when_acked(self, acks: Acks, done: Callable[[bool], None]) -> None:
        """Call ``done(True)`` once every record of the (closed) ``acks`` block is acknowledged, or
        ``done(False)`` if one was not. Pollers mark a fact emitted this way: only once it is on the broker,
        without waiting for it on the poll path. A crash before leaves it unmarked (emitted again later)."""
        if not acks.futures:
            done(True)
            return
        task = asyncio.create_task(self._when_acked(acks, done))
        self._marking.add(task)
        task.add_done_callback(self._marking.discard)

    @staticmethod
    async def _when_acked(acks: Acks, done: Callable[[bool], None]) -> None:
        done(await acks.wait())

    def room_account(self, room_id: str) -> str | None:
        if self.state is not None:
            return self.state.room_account(self.platform, room_id)
        st = self.rooms.get(room_id)
        return None if st is None else st.account_id

    # -- lifecycle -------------------------------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        return []

    def account_jobs(self, account_id: str) -> None:
        """Add the poll jobs of one account (subclasses)."""

    def drop_account(self, account_id: str) -> None:
        for key in [k for k in self.scheduler.jobs if f":{account_id}" in k]:
            self.scheduler.remove(key)
        for rid in self.rooms_by_account.pop(account_id, {}):
            self.rooms.pop(rid, None)

    def configured(self, account_id: str) -> bool:
        """Whether this collector has what it needs to poll the account (subclasses)."""
        return True

    def sync_accounts(self) -> None:
        # recomputed every time: contests become active and inactive with time, not only on changes
        wanted = set(self.registry.accounts(self.platform))
        for acc in sorted(wanted - self._accounts):
            if not self.configured(acc):
                log.warning(
                    "registered account has no credentials in the platforms file; not polled",
                    extra={"fields": {"platform": self.platform, "account_id": acc}},
                )
                continue
            self._accounts.add(acc)
            self.account_jobs(acc)
        for acc in self._accounts - wanted:
            self._accounts.discard(acc)
            self.drop_account(acc)

    async def run(self) -> None:
        workers = max(4, self.settings.max_concurrency // 4)
        self._tasks = [asyncio.create_task(self.scheduler.run(), name=f"{self.platform}-scheduler")]
        self._tasks += [asyncio.create_task(self._worker()) for _ in range(workers)]
        self._tasks.append(asyncio.create_task(self._sync_loop()))
        self._tasks.append(asyncio.create_task(self._heartbeat_loop()))
        try:
            await asyncio.gather(*self._tasks)
        finally:
            for t in self._tasks:
                t.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def run_background(self) -> None:
        """A webhook worker process: only the work pushes queue after their answer (no polling)."""
        workers = max(4, self.settings.max_concurrency // 4)
        self._tasks = [asyncio.create_task(self._worker()) for _ in range(workers)]
        try:
            await asyncio.gather(*self._tasks)
        finally:
            for t in self._tasks:
                t.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _sync_loop(self) -> None:
        while True:
            self.sync_accounts()
            m.ROOMS.labels(self.platform).set(sum(1 for r in self.rooms.values() if not r.final_emitted))
            m.WAITING_FINAL.labels(self.platform).set(sum(1 for _ in self.waiting_final()))
            if self.state is not None:
                try:
                    await self.shared_tick()
                except Exception:  # the shared file is an optimisation of the pushes: never stop polling
                    log.exception("shared state tick failed", extra={"fields": {"platform": self.platform}})
            await asyncio.sleep(1.0)

    async def shared_tick(self) -> None:
        """The polling process's side of the shared state, once a second (subclasses)."""
        for job in self.state.take_nudges(self.platform) if self.state is not None else []:
            self.scheduler.nudge(job)

    def nudge(self, job: str) -> None:
        """Run a poll job now (a push said there is something new)."""
        if self.state is not None:
            self.state.nudge(self.platform, job)  # the scheduler lives in the polling process
        else:
            self.scheduler.nudge(job)

    # -- background work after a push was acknowledged --------------------------------------------

    def defer(self, what: str, fn: Callable[[], Awaitable[None]]) -> bool:
        """Queue slow work (e.g. an order-detail fetch) to run after the push is answered."""
        try:
            self._work.put_nowait((what, fn))
            return True
        except asyncio.QueueFull:
            return False

    async def _worker(self) -> None:
        while True:
            what, fn = await self._work.get()
            try:
                await fn()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("background work failed", extra={"fields": {"platform": self.platform, "what": what}})
            finally:
                self._work.task_done()

    async def idle(self) -> None:
        """Wait until queued background work is done (tests, shutdown)."""
        await self._work.join()

    async def retrying(self, what: str, fn: Callable[[], Awaitable[None]], attempts: int = 6) -> None:
        """Run ``fn``, retrying platform failures with the scheduler's backoff (simulated time aware)."""
        for n in range(1, attempts + 1):
            try:
                await fn()
                return
            except CallError as exc:
                if n == attempts:
                    log.warning(
                        "giving up after retries; the reconciliation poll will pick it up",
                        extra={"fields": {"platform": self.platform, "what": what, "error": exc.kind}},
                    )
                    return
                wait = 0.0 if exc.kind == "token_invalid" else (exc.retry_after_s or self.scheduler.backoff(n))
                await self.clock.sleep(wait)

    # -- rooms -----------------------------------------------------------------------------------

    def room(self, account_id: str, room_id: str) -> tuple[RoomState, bool]:
        st = self.rooms.get(room_id)
        if st is None:
            st = self.rooms[room_id] = RoomState(account_id, room_id)
            self.rooms_by_account.setdefault(account_id, {})[room_id] = st
            return st, True
        return st, False

    def freshness(self) -> Iterator[tuple[str, str, int]]:
        for st in self.rooms.values():
            if st.last_observed is not None and not st.final_emitted:
                yield self.platform, st.room_id, st.last_observed

    def room_revision(self, st: RoomState, now: int, data: dict[str, Any]) -> str | None:
        """The revision this poll's snapshot of a room goes out as, or None: emit nothing.

        None of the three platforms marks its figures as revised (platform-apis.md: no revision or status
        field beyond live/ended), so a room's figures are final when they are stable over two consecutive
        polls after the platform's documented revision time (``final_after_s`` after the stream ended).
        One poll is not enough: its answer may have been computed just before the revision landed (the
        request races it), and a late revision would go out labelled final for ever.

        After the final figures, the room is still polled (``next_room_delay``) for late corrections until
        ``final_corrections_s`` has passed: a changed value, once confirmed by the next poll, is emitted as
        final again (the newer final figures win downstream; a frozen round keeps what it froze). Unchanged
        polls emit nothing.
        """
        figures = orjson.dumps(data, option=orjson.OPT_SORT_KEYS)
        if st.ended_at is None or now < st.ended_at + self.settings.final_after_s * 1000:
            st.candidate = None
            return "provisional"
        stable = st.candidate == figures
        st.candidate = figures
        out = st.final_sent or st.final_figures
        if out is None:
            return "final" if stable else "provisional"
        if figures == out:
            st.quiet_polls += 1
            return None
        st.quiet_polls = 0
        return "final" if stable else None  # a correction, once the next poll confirms it

    def room_emitted(self, st: RoomState, revision: str | None, acks: Acks, now: int) -> None:
        """After a room's snapshot was handed to the producer (inside ``acks``): final figures count as
        out only once the broker has acknowledged them (else the next polls emit them again)."""
        st.last_observed = now
        st.polls += 1
        if revision != "final":
            return
        figures = st.final_sent = st.candidate

        def done(ok: bool) -> None:
            if st.final_sent == figures:
                st.final_sent = None  # if refused, the next poll emits them again
            if not ok or figures is None or figures == st.final_figures:
                return
            if st.final_figures is None:
                st.final_at = now
                m.FINAL_FIGURES.labels(self.platform, "final").inc()
            else:
                st.corrections += 1
                m.FINAL_FIGURES.labels(self.platform, "correction").inc()
                log.info(
                    "late correction of a room's final figures",
                    extra={"fields": {"platform": self.platform, "room_id": st.room_id, "corrections": st.corrections}},
                )
            st.final_figures = figures
            st.final_emitted = True

        self.when_acked(acks, done)

    def next_room_delay(self, st: RoomState, now: int) -> float:
        """When to poll a room again; raises Done once late corrections can no longer come."""
        s = self.settings
        if st.ended_at is None:
            return s.poll_interval_s
        final_at = st.ended_at + s.final_after_s * 1000
        if now < final_at:
            return max(0.05, min(s.finished_poll_interval_s, (final_at - now) / 1000 + 0.05))
        if now >= final_at + s.final_corrections_s * 1000:
            if st.final_figures is None and st.final_sent is None:
                log.warning(
                    "a room's figures never settled; its last figures stay provisional",
                    extra={"fields": {"platform": self.platform, "room_id": st.room_id}},
                )
            st.retired = True
            raise Done
        out = st.final_sent or st.final_figures
        if out is None or st.candidate != out:
            return s.poll_interval_s  # settling, or a change to confirm: the next poll soon
        return min(s.finished_poll_interval_s * 2 ** min(st.quiet_polls, 8), CORRECTION_POLL_CAP_S)

    def waiting_final(self) -> Iterator[RoomState]:
        """Rooms that ended and whose final figures are not out yet."""
        for st in self.rooms.values():
            if st.ended_at is not None and not st.final_emitted:
                yield st

    # -- emission --------------------------------------------------------------------------------

    async def archive(
        self, account_id: str, source: str, endpoint: str, body: bytes, received_at: int, meta=None
    ) -> dict[str, str]:
        return await self.producer.archive_raw(
            platform=self.platform,
            account_id=account_id,
            source=source,
            endpoint=endpoint,
            body=body,
            received_at=received_at,
            meta=meta,
        )

    async def dead_letter(
        self, endpoint: str, reason: str, body: bytes, received_at: int, account_id: str | None = None
    ) -> None:
        await self.producer.dead_letter(
            source=f"ingest.{self.platform}.{endpoint}",
            platform=self.platform,
            reason=reason,
            body=body,
            received_at=received_at,
            account_id=account_id,
        )

    async def publish(
        self,
        *,
        endpoint: str,
        account_id: str,
        source: str,
        raw: bytes,
        received_at: int,
        make_events: Callable[[dict[str, str]], list[Any]],
        meta: dict[str, Any] | None = None,
    ) -> bool:
        """Normalise ``raw`` into events; archive it and produce them, or dead-letter it with the reason.

        Normalising first means nothing is produced for a payload that turns out to be bad, and the bad
        payload is kept whole on the dead-letter topic instead; the collector carries on either way.
        """
        raw_ref = {"topic": RAW, "raw_id": raw_id_of(raw)}
        try:
            events = make_events(raw_ref)
        except BAD_PAYLOAD as exc:
            await self.dead_letter(endpoint, f"{type(exc).__name__}: {exc}", raw, received_at, account_id)
            return False
        await self.archive(account_id, source, endpoint, raw, received_at, meta)
        for out in events:
            await self.producer.emit_doc(out.doc, out.value)
        return True

    @staticmethod
    def build_all(event_type: str, regs: list[Registration], **kw: Any) -> list[Any]:
        return [build(event_type, reg, **kw) for reg in regs]

    async def _heartbeat_loop(self) -> None:
        while True:
            await self.clock.sleep(self.settings.heartbeat_interval_s)
            await self.heartbeat()

    async def heartbeat(self) -> None:
        now = self.clock.now_ms()
        ages = [now - st.last_observed for st in self.rooms.values() if st.last_observed and not st.final_emitted]
        runs, errors = self.scheduler.runs, self.scheduler.errors
        polled, failed = runs - self._beat_polls, errors - self._beat_errors
        self._beat_polls, self._beat_errors = runs, errors
        for contest_id in self.registry.contests():
            doc: dict[str, Any] = {
                "event_id": "",
                "type": "collector_heartbeat",
                "schema_version": 1,
                "contest_id": contest_id,
                "contestant_id": None,
                "platform": self.platform,
                "account_id": None,
                "room_id": None,
                "video_id": None,
                "observed_at": now,
                "ingested_at": now,
                "source": "poll",
                "revision": "final",
                "raw_ref": None,
                "data": {
                    "collector_id": self.settings.collector_id,
                    "rooms_polled": polled,
                    "errors": failed,
                    "lag_ms": max(ages, default=0),
                    "last_ok_at": self.api.last_ok_ms,
                    "token_expires_at": earliest_expiry(self.platform),
                    "quota_remaining": self.api.quota_remaining,
                },
            }
            doc["event_id"] = event_id_for(doc)
            await self.producer.emit(parse_event(doc))
